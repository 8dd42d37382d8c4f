//! A Redis of a test's own, for what the shared one cannot do: stop and start again on the same
//! port and folder (every write persisted), or speak only TLS.

use super::scratch_dir;
use super::wait::eventually_blocking;

/// A Redis of the test's own, persisting every write, that can be stopped and started again on
/// the same port and folder.
pub struct PrivateRedis {
    port: u16,
    dir: std::path::PathBuf,
    server: Option<std::process::Child>,
    /// Serve TLS only, with a self-signed certificate (as managed Redis does).
    tls: bool,
}

impl PrivateRedis {
    pub fn start(name: &str) -> PrivateRedis {
        PrivateRedis::launch(name, false)
    }

    /// A Redis that speaks only TLS, with a self-signed certificate made by `openssl`.
    pub fn start_tls(name: &str) -> PrivateRedis {
        PrivateRedis::launch(name, true)
    }

    fn launch(name: &str, tls: bool) -> PrivateRedis {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut redis = PrivateRedis { port, dir: scratch_dir(name), server: None, tls };
        if tls {
            let made = std::process::Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"])
                .args(["-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "cert.pem"])
                .current_dir(&redis.dir)
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl (scripts/test installs it)");
            assert!(made.success(), "a self-signed certificate");
        }
        redis.restart();
        redis
    }

    /// `redis://…`, or for TLS `rediss://…` trusting the self-signed certificate as Heroku's
    /// instructions say (`#insecure`).
    pub fn url(&self) -> String {
        if self.tls {
            // The form `REDIS_TLS_INSECURE` gives a platform-set URL.
            format!("rediss://127.0.0.1:{}#insecure", self.port)
        } else {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    /// The TLS URL without `#insecure`: the certificate must then be trusted.
    pub fn strict_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let port = self.port.to_string();
        let mut command = std::process::Command::new("redis-server");
        if self.tls {
            command.args(["--port", "0", "--tls-port", &port, "--tls-auth-clients", "no"]);
            command.args(["--tls-cert-file", "cert.pem", "--tls-key-file", "key.pem"]);
            command.args(["--tls-ca-cert-file", "cert.pem"]);
        } else {
            command.args(["--port", &port]);
        }
        let server = command
            .current_dir(&self.dir)
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server (scripts/test installs it)");
        self.server = Some(server);
        eventually_blocking("redis-server to accept connections", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
