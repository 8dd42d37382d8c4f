//! A Redis of a test's own, for what the shared one cannot do: stop and start again on the same
//! port and folder (every write persisted), or speak only TLS; and a Redis Cluster of a test's
//! own, one of whose nodes can be stopped and started again.

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

/// A three-master Redis Cluster of the test's own, each node persisting every write, so one can
/// be stopped and started again on the same port and folder and rejoin with its slots.
pub struct PrivateCluster {
    nodes: Vec<ClusterNode>,
}

struct ClusterNode {
    port: u16,
    bus_port: u16,
    dir: std::path::PathBuf,
    server: Option<std::process::Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl ClusterNode {
    fn start(&mut self) {
        let server = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--cluster-port", &self.bus_port.to_string()])
            .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
            // Down in a second, and the other nodes' slots keep serving meanwhile.
            .args(["--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no"])
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .current_dir(&self.dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server (scripts/test installs it)");
        self.server = Some(server);
        eventually_blocking("a cluster node to accept connections", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }

    /// `redis-cli` against this node.
    fn cli(&self, args: &[&str]) -> String {
        let output = std::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli (scripts/test installs it)");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl PrivateCluster {
    pub fn start(name: &str) -> PrivateCluster {
        let mut nodes: Vec<ClusterNode> = (0..3)
            .map(|n| ClusterNode {
                port: free_port(),
                bus_port: free_port(),
                dir: scratch_dir(&format!("{name}-{n}")),
                server: None,
            })
            .collect();
        nodes.iter_mut().for_each(ClusterNode::start);
        let addresses: Vec<String> =
            nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)).collect();
        let created = std::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("redis-cli --cluster create");
        assert!(created.success(), "the cluster is created");
        let cluster = PrivateCluster { nodes };
        cluster.wait_until_whole();
        cluster
    }

    /// Every node's URL, comma-separated, as `REDIS_URL` names a cluster.
    pub fn url(&self) -> String {
        let urls: Vec<String> =
            self.nodes.iter().map(|node| format!("redis://127.0.0.1:{}", node.port)).collect();
        urls.join(",")
    }

    /// Which node (0, 1 or 2) holds `key`: the one that answers for it rather than redirect.
    pub fn node_of(&self, key: &str) -> usize {
        let holds = |node: &ClusterNode| node.cli(&["EXISTS", key]).trim() == "1";
        self.nodes.iter().position(holds).unwrap_or_else(|| panic!("no node holds {key}"))
    }

    pub fn stop(&mut self, node: usize) {
        self.nodes[node].stop();
    }

    /// Starts a stopped node again; it rejoins with its slots and the data it persisted.
    pub fn restart(&mut self, node: usize) {
        self.nodes[node].start();
        self.wait_until_whole();
    }

    fn wait_until_whole(&self) {
        for node in &self.nodes {
            eventually_blocking("every node to see the cluster whole", || {
                node.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.nodes.iter_mut().for_each(ClusterNode::stop);
    }
}
