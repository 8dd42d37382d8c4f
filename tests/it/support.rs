//! Helpers every test file shares.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen in well under a second.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// An empty directory of the test's own under the system temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("markdrop-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// The lines a child process writes to `output`, as they come, for a test to wait on one
/// (`recv_timeout(DEADLINE)`).
pub fn lines_of(output: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(output).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    received
}

/// Polls `condition` until it holds, failing the test with `what` after [`DEADLINE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Redis that `scripts/test` starts for the tests.
pub fn redis_url() -> String {
    std::env::var("MARKDROP_TEST_REDIS_URL").expect(
        "MARKDROP_TEST_REDIS_URL is not set: run the tests with scripts/test, which starts Redis",
    )
}

/// A key prefix no other test (or earlier run) uses, so tests share one Redis safely.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("test:{test}:{}:{nanos}:", std::process::id())
}

/// Valid settings for the web app under test: bound to 127.0.0.1 on a free port, talking to
/// `dropbox` (the emulator's URL) when given.
pub fn web_settings(app_secret: &str, dropbox: Option<&url::Url>) -> markdrop::config::Settings {
    let dropbox = dropbox.map(url::Url::to_string);
    let mut vars = vec![
        ("DROPBOX_APP_KEY", "test-app-key".to_owned()),
        ("DROPBOX_APP_SECRET", app_secret.to_owned()),
        ("SECRET_KEY", "0123456789abcdef0123456789abcdef".to_owned()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("BASE_URL", "http://markdrop.test".to_owned()),
    ];
    if let Some(url) = dropbox {
        for var in ["DROPBOX_API_URL", "DROPBOX_CONTENT_URL", "DROPBOX_WEB_URL"] {
            vars.push((var, url.clone()));
        }
    }
    markdrop::config::Settings::from_lookup(|name| {
        vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .expect("valid settings")
}

/// Starts the real web app with `settings` on a store under `prefix` in the Redis at
/// `redis_url`; returns its base address and the store it uses.
pub fn spawn_app(
    settings: &markdrop::config::Settings,
    redis_url: &str,
    prefix: &str,
) -> (String, markdrop::store::Store) {
    use markdrop::{config::StoreSettings, store::Store};
    let store =
        Store::open(&StoreSettings::redis(redis_url, prefix), &settings.secret_key).expect("store");
    let app = markdrop::web::Application::build(settings, store.clone()).expect("build the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    (address, store)
}

/// Claims the first due account as a worker would, failing the test if none is due.
pub async fn claim(store: &markdrop::store::Store) -> markdrop::store::Claim {
    use markdrop::store::ClaimOutcome;
    match store.claim(Duration::from_secs(30)).await.expect("claim") {
        ClaimOutcome::Claimed(claim) => *claim,
        ClaimOutcome::NothingDue { .. } => panic!("no account is due"),
    }
}

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
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < DEADLINE, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
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

/// Which store a contract test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// The Redis `scripts/test` starts, under a key prefix of the test's own.
    Redis,
    /// A redb file in a scratch folder of the test's own.
    Embedded,
}

impl Backend {
    /// A fresh, empty store on this backend, sealing with the tests' `SECRET_KEY`.
    pub fn store(self, test: &str) -> markdrop::store::Store {
        self.store_with_key(test, "0123456789abcdef0123456789abcdef")
    }

    pub fn store_with_key(self, test: &str, secret_key: &str) -> markdrop::store::Store {
        use markdrop::{config::StoreSettings, store::Store};
        let settings = match self {
            Backend::Redis => StoreSettings::redis(&redis_url(), &unique_prefix(test)),
            Backend::Embedded => {
                StoreSettings::embedded(scratch_dir(&format!("{test}-{}", unique_suffix())))
            }
        };
        Store::open(&settings, &secret_key.to_owned().into()).expect("store")
    }
}

fn unique_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos())
}

/// Runs each named `async fn(Backend)` of the calling module as a test on both backends:
/// `<module>::redis::<name>` and `<module>::embedded::<name>`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Redis).await
                }
            )*
        }
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Embedded).await
                }
            )*
        }
    };
}
