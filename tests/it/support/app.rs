//! A whole markdrop on loopback: the real web app on port 0 over a store of the test's own, the
//! Dropbox emulator as its Dropbox (sending signed notifications to the app), and as many real
//! workers in this process as a test starts. Accounts are linked through the real OAuth flow.
//!
//! [`TestApp::start`] is the web app alone on Redis, [`TestApp::on`] the same on either backend,
//! [`TestApp::with_worker`] adds one worker; [`TestApp::builder`] is for anything else.

use std::net::TcpListener;
use std::time::Duration;

use markdrop::config::{Settings, WorkerSettings};
use markdrop::dropbox::{AccountId, DropboxClient, RetryPolicy};
use markdrop::emulator::{Emulator, EmulatorConfig, RunningEmulator};
use markdrop::store::{AccountStatus, Store};
use markdrop::web::Application;
use markdrop::worker::Worker;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::store::Backend;
use super::wait::eventually;
use super::{APP_KEY, APP_SECRET, SECRET_KEY, unique_prefix, webhooks};

pub struct TestApp {
    /// `http://127.0.0.1:<port>`, also the app's `BASE_URL`: Dropbox sends browsers back here.
    pub address: String,
    pub settings: Settings,
    pub store: Store,
    /// The Redis the store lives in (a cluster's nodes, comma-separated) and its key prefix
    /// (unused when the store is embedded), for whatever else a test starts on the same store.
    pub redis: String,
    pub prefix: String,
    /// Which store: an embedded one is shared by the app and every worker.
    pub backend: Backend,
    pub dropbox: RunningEmulator,
    pub workers: Vec<RunningWorker>,
    /// A client that follows no redirects, so a test sees every answer.
    pub http: reqwest::Client,
}

/// How a [`TestApp`] starts; by default on the tests' Redis, with a Dropbox that approves
/// access at once, and no workers.
pub struct Builder<'t> {
    test: &'t str,
    backend: Backend,
    redis: Option<String>,
    consent_page: bool,
    worker: bool,
    settings: Option<AdjustSettings>,
    emulator: Option<AdjustEmulator>,
}

/// A change a test makes to the app's settings before it starts.
type AdjustSettings = Box<dyn FnOnce(&mut Settings) + Send>;

/// A change a test makes to the emulator's configuration before it starts.
type AdjustEmulator = Box<dyn FnOnce(&mut EmulatorConfig) + Send>;

impl<'t> Builder<'t> {
    pub fn on(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// On the Redis at `url` (one of the test's own, or none at all) instead of the shared one.
    pub fn on_redis_at(mut self, url: &str) -> Self {
        self.redis = Some(url.to_owned());
        self
    }

    /// Dropbox shows its consent page instead of approving at once (for a browser to click).
    pub fn with_consent_page(mut self) -> Self {
        self.consent_page = true;
        self
    }

    /// One worker, with [`worker_settings`].
    pub fn with_worker(mut self) -> Self {
        self.worker = true;
        self
    }

    /// The app's settings changed by `adjust` before it starts.
    pub fn with_settings(mut self, adjust: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        self.settings = Some(Box::new(adjust));
        self
    }

    /// The emulator's configuration changed by `adjust` before it starts.
    pub fn with_emulator(
        mut self,
        adjust: impl FnOnce(&mut EmulatorConfig) + Send + 'static,
    ) -> Self {
        self.emulator = Some(Box::new(adjust));
        self
    }

    pub async fn start(self) -> TestApp {
        // `RUST_LOG=markdrop=debug cargo test …` shows what the app and workers did.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        // The app's address must be known before the emulator starts, to send webhooks to it.
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the app");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        let mut config = EmulatorConfig::new(APP_KEY, APP_SECRET);
        config.webhook_url = Some(format!("{address}/webhook").parse().expect("url"));
        config.auto_approve = !self.consent_page;
        config.webhook_batch_window = Duration::from_millis(5);
        config.webhook_retry_base = Duration::from_millis(50);
        if let Some(adjust) = self.emulator {
            adjust(&mut config);
        }
        let dropbox = Emulator::new(config).start(0).await.expect("start the emulator");
        let mut settings = settings(dropbox.url());
        settings.base_url = address.parse().expect("the app's URL");
        if let Some(adjust) = self.settings {
            adjust(&mut settings);
        }
        let redis = self.redis.unwrap_or_else(|| self.backend.redis_url());
        let prefix = unique_prefix(self.test);
        let store = match self.backend {
            Backend::Redis | Backend::RedisCluster => {
                self.backend.open_at(&redis, &prefix, SECRET_KEY)
            }
            Backend::Embedded => Backend::Embedded.store(self.test),
        };
        let app = Application::build_on(listener, &settings, store.clone()).expect("build the app");
        tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let mut app = TestApp {
            address,
            settings,
            store,
            redis,
            prefix,
            backend: self.backend,
            dropbox,
            workers: Vec::new(),
            http,
        };
        if self.worker {
            app.spawn_worker(worker_settings());
        }
        app
    }
}

/// Valid settings for the app under test, bound to 127.0.0.1 on a free port, with `dropbox`
/// (the emulator) as its Dropbox.
fn settings(dropbox: &url::Url) -> Settings {
    let mut vars = vec![
        ("DROPBOX_APP_KEY", APP_KEY.to_owned()),
        ("DROPBOX_APP_SECRET", APP_SECRET.to_owned()),
        ("SECRET_KEY", SECRET_KEY.to_owned()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("BASE_URL", "http://markdrop.test".to_owned()),
    ];
    for var in ["DROPBOX_API_URL", "DROPBOX_CONTENT_URL", "DROPBOX_WEB_URL"] {
        vars.push((var, dropbox.to_string()));
    }
    Settings::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
        .expect("valid settings")
}

/// Worker settings for tests: short leases and backoffs, so takeovers and retries happen
/// within a test's deadline.
pub fn worker_settings() -> WorkerSettings {
    WorkerSettings {
        lease_ttl: Duration::from_secs(2),
        retry_base: Duration::from_millis(100),
        retry_cap: Duration::from_millis(800),
        idle_poll: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(3),
        ..WorkerSettings::default()
    }
}

/// A worker task; [`RunningWorker::stop`] is SIGTERM, [`RunningWorker::kill`] a crash.
pub struct RunningWorker {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningWorker {
    /// Asks the worker to stop, as SIGTERM does, and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("the worker ends cleanly");
    }

    /// Ends the worker at once, wherever it is, without letting it hand anything back: what a
    /// crash leaves behind.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

impl TestApp {
    pub fn builder(test: &str) -> Builder<'_> {
        Builder {
            test,
            backend: Backend::Redis,
            redis: None,
            consent_page: false,
            worker: false,
            settings: None,
            emulator: None,
        }
    }

    /// The web app on the tests' Redis, no workers.
    pub async fn start(test: &str) -> TestApp {
        TestApp::builder(test).start().await
    }

    /// The web app on `backend`, no workers.
    pub async fn on(backend: Backend, test: &str) -> TestApp {
        TestApp::builder(test).on(backend).start().await
    }

    /// The web app and one worker on `backend`.
    pub async fn with_worker(backend: Backend, test: &str) -> TestApp {
        TestApp::builder(test).on(backend).with_worker().start().await
    }

    pub fn emulator(&self) -> &Emulator {
        &self.dropbox.emulator
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Starts one more worker with `settings`: on Redis with a store handle of its own (as
    /// another process would have), on the embedded store sharing it (as in one process).
    pub fn spawn_worker(&mut self, settings: WorkerSettings) {
        let store = match self.backend {
            Backend::Embedded => self.store.clone(),
            backend => backend.open_at(&self.redis, &self.prefix, SECRET_KEY),
        };
        let retry = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
        };
        let dropbox =
            DropboxClient::new(&self.settings.dropbox).expect("client").with_retry_policy(retry);
        let worker = Worker::new(store, dropbox, settings);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(worker.run(async {
            let _ = stopped.await;
        }));
        self.workers.push(RunningWorker { stop: Some(stop), task });
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    /// POSTs `body` to `/webhook` as JSON, with `signature` when given.
    pub async fn post_webhook(&self, body: &[u8], signature: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url("/webhook"))
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("X-Dropbox-Signature", signature);
        }
        request.send().await.expect("POST /webhook")
    }

    /// POSTs a notification signed with the app secret, as Dropbox does; returns the status.
    pub async fn notify(&self, body: &str) -> u16 {
        webhooks::notify(&self.address, body).await
    }

    /// The accounts waiting for a pass.
    pub async fn queued(&self) -> Vec<String> {
        let queued = self.store.queued().await.expect("read the queue");
        queued.iter().map(|account| account.as_str().to_owned()).collect()
    }

    pub async fn status(&self, account: &str) -> AccountStatus {
        let account = AccountId::parse(account).expect("an account id");
        self.store.status(&account).await.expect("status").unwrap_or_default()
    }

    /// Creates a Dropbox account with `files` in it, then connects it to markdrop through the
    /// real "Connect Dropbox" flow. Returns the account id.
    pub async fn link_with_files(&self, name: &str, files: &[(&str, &str)]) -> String {
        let account = self.emulator().create_account(name).account_id;
        for (path, content) in files {
            self.emulator().put_file(&account, path, *content).expect("put a file");
        }
        self.connect(&account).await;
        account
    }

    /// "Connect Dropbox" as a browser does it, signed in at Dropbox as `account`.
    pub async fn connect(&self, account: &str) {
        self.emulator().sign_in(account);
        connect(&self.address).await;
    }

    /// Waits until `path` in the account holds an HTML document, and returns it.
    pub async fn html(&self, account: &str, path: &str) -> String {
        let emulator = self.emulator();
        let html = eventually(&format!("{path} to be written"), || {
            std::future::ready(emulator.read_file(account, path))
        })
        .await;
        String::from_utf8(html).expect("UTF-8 HTML")
    }

    /// Waits until `path` in the account holds exactly `render` of the Markdown `source`.
    pub async fn html_matching(&self, account: &str, path: &str, source: &str, stem: &str) {
        let expected =
            markdrop::render::render(source.as_bytes(), &markdrop::render::Page::alone(stem))
                .into_bytes();
        let emulator = self.emulator();
        eventually(&format!("{path} to be the rendering of its note"), || {
            std::future::ready(emulator.read_file(account, path).as_ref() == Some(&expected))
        })
        .await;
    }

    /// Waits until markdrop has nothing left to do: no notification on its way, nothing queued,
    /// no lease held.
    pub async fn quiet(&self) {
        eventually("markdrop to have nothing left to do", || async {
            let idle = |store: Store| async move {
                store.queued().await.expect("queued").is_empty()
                    && store.leases_held().await.expect("leases") == 0
            };
            // Uploads notify before their pass ends; a pass ends before its lease goes.
            idle(self.store.clone()).await
                && self.emulator().stats().webhooks_pending() == 0
                && idle(self.store.clone()).await
        })
        .await;
    }

    /// Pages written for the account so far: single uploads the emulator has seen, and files
    /// committed in batches (a pass with several pages stages them and commits them together).
    pub fn uploads(&self, account: &str) -> u64 {
        let stats = self.emulator().stats();
        stats.calls("files/upload", account) + stats.batch_commits(account)
    }
}

/// "Connect Dropbox" in a browser against the markdrop at `address`, the person signed in at
/// Dropbox and Dropbox approving at once; the callback is followed to `address` whatever
/// `BASE_URL` says.
pub async fn connect(address: &str) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = http.get(format!("{address}/login")).send().await.expect("login");
    let cookie = login
        .headers()
        .get(SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let approved = http.get(location(&login)).send().await.expect("authorize");
    let back: url::Url = location(&approved).parse().expect("a callback URL");
    let callback = format!("{address}/oauth/callback?{}", back.query().unwrap_or_default());
    let linked = http.get(callback).header(COOKIE, cookie).send().await.expect("the callback");
    assert_eq!(linked.status(), 303, "linked: {:?}", linked.text().await);
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_else(|| panic!("a redirect, got {}", response.status()))
        .to_owned()
}
