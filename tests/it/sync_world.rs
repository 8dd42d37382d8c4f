//! A whole markdrop on loopback for the sync tests: the Dropbox emulator (sending signed
//! webhooks to the app), the real web app on port 0, real Redis under a key prefix of the
//! test's own, and any number of real workers in this process. Accounts are linked through the
//! real OAuth flow.

use std::future::Future;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use markdrop::config::StoreSettings;
use markdrop::config::{Settings, WorkerSettings};
use markdrop::dropbox::{AccountId, DropboxClient, RetryPolicy};
use markdrop::emulator::{Emulator, EmulatorConfig, RunningEmulator};
use markdrop::store::{AccountStatus, Store};
use markdrop::web::Application;
use markdrop::worker::Worker;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::{Backend, DEADLINE, redis_url, unique_prefix, web_settings};

pub const APP_SECRET: &str = "sync-test-app-secret";

pub struct SyncWorld {
    pub dropbox: RunningEmulator,
    pub store: Store,
    pub prefix: String,
    /// The Redis the store lives in, unless it is embedded.
    pub redis: String,
    /// The store is an embedded one, shared by the app and every worker.
    pub embedded: bool,
    pub address: String,
    pub settings: Settings,
    pub workers: Vec<RunningWorker>,
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

/// Worker settings for tests: short leases and backoffs, so takeovers and retries happen
/// within a test's deadline.
pub fn test_worker_settings() -> WorkerSettings {
    WorkerSettings {
        lease_ttl: Duration::from_secs(2),
        retry_base: Duration::from_millis(100),
        retry_cap: Duration::from_millis(800),
        idle_poll: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(3),
        ..WorkerSettings::default()
    }
}

impl SyncWorld {
    /// Everything running on `backend`, with one worker.
    pub async fn start(backend: Backend, test: &str) -> SyncWorld {
        let mut world = SyncWorld::without_workers(backend, test).await;
        world.spawn_worker(test_worker_settings());
        world
    }

    /// Everything but the workers, on `backend`.
    pub async fn without_workers(backend: Backend, test: &str) -> SyncWorld {
        match backend {
            Backend::Redis => SyncWorld::without_workers_on(test, &redis_url()).await,
            Backend::Embedded => {
                let embedded = Backend::Embedded.store(test);
                SyncWorld::assemble(test, &redis_url(), Some(embedded), true).await
            }
        }
    }

    /// Everything but the workers, on the Redis at `redis`.
    pub async fn without_workers_on(test: &str, redis: &str) -> SyncWorld {
        SyncWorld::assemble(test, redis, None, true).await
    }

    /// Everything but the workers, on Redis, with an emulator that shows its consent page
    /// instead of approving at once (for a browser to click through).
    pub async fn with_consent_page(test: &str) -> SyncWorld {
        SyncWorld::assemble(test, &redis_url(), None, false).await
    }

    /// Everything but the workers: on `embedded` when given (the workers then share it, as in
    /// one `serve` process), else on the Redis at `redis`.
    async fn assemble(
        test: &str,
        redis: &str,
        embedded: Option<Store>,
        auto_approve: bool,
    ) -> SyncWorld {
        // `RUST_LOG=markdrop=debug cargo test …` shows what the app and workers did.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        // The app's address must be known before the emulator starts, to send webhooks to it.
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the app");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        let mut config = EmulatorConfig::new("test-app-key", APP_SECRET);
        config.webhook_url = Some(format!("{address}/webhook").parse().expect("url"));
        config.auto_approve = auto_approve;
        config.webhook_batch_window = Duration::from_millis(5);
        config.webhook_retry_base = Duration::from_millis(50);
        let dropbox = Emulator::new(config).start(0).await.expect("start the emulator");
        let mut settings = web_settings(APP_SECRET, Some(dropbox.url()));
        // Dropbox sends the browser back to the app itself.
        settings.base_url = address.parse().expect("the app's URL");
        let prefix = unique_prefix(test);
        let store = match &embedded {
            Some(embedded) => embedded.clone(),
            None => test_store(redis, &settings, &prefix),
        };
        let app = Application::build_on(listener, &settings, store.clone()).expect("build the app");
        tokio::spawn(app.run_until_stopped());
        let redis = redis.to_owned();
        let embedded = embedded.is_some();
        SyncWorld {
            dropbox,
            store,
            prefix,
            redis,
            embedded,
            address,
            settings,
            workers: Vec::new(),
        }
    }

    pub fn emulator(&self) -> &Emulator {
        &self.dropbox.emulator
    }

    /// Starts one more worker with `settings`: on Redis with a store handle of its own (as
    /// another process would have), on the embedded store sharing it (as in one process).
    pub fn spawn_worker(&mut self, settings: WorkerSettings) {
        let store = if self.embedded {
            self.store.clone()
        } else {
            test_store(&self.redis, &self.settings, &self.prefix)
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

    /// "Connect Dropbox" as a browser does it, the emulator approving at once.
    pub async fn connect(&self, account: &str) {
        self.emulator().sign_in(account);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let login = http.get(format!("{}/login", self.address)).send().await.expect("login");
        let cookie = login
            .headers()
            .get(SET_COOKIE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let authorize = location(&login);
        let approved = http.get(authorize).send().await.expect("authorize");
        let callback = location(&approved);
        let linked = http.get(callback).header(COOKIE, cookie).send().await.expect("the callback");
        assert_eq!(linked.status(), 303, "linked: {:?}", linked.text().await);
    }

    /// Waits until `path` in the account holds an HTML document, and returns it.
    pub async fn html(&self, account: &str, path: &str) -> String {
        let emulator = self.emulator().clone();
        let read = || emulator.read_file(account, path);
        eventually(&format!("{path} to be written"), || std::future::ready(read().is_some())).await;
        String::from_utf8(read().expect("written")).expect("UTF-8 HTML")
    }

    /// Waits until `path` in the account holds exactly `render` of the Markdown `source`.
    pub async fn html_matching(&self, account: &str, path: &str, source: &str, stem: &str) {
        let expected = markdrop::render::render(source.as_bytes(), stem).into_bytes();
        let emulator = self.emulator().clone();
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

    pub async fn status(&self, account: &str) -> AccountStatus {
        let account = AccountId::parse(account).expect("an account id");
        self.store.status(&account).await.expect("status").unwrap_or_default()
    }

    /// POSTs a notification signed with the app secret, as Dropbox does; returns the status.
    pub async fn notify(&self, body: &str) -> u16 {
        self.notify_at(&self.address, body).await
    }

    /// [`SyncWorld::notify`] to the markdrop at `address`.
    pub async fn notify_at(&self, address: &str, body: &str) -> u16 {
        notify(address, body).await
    }

    /// Uploads the emulator has seen for the account so far.
    pub fn uploads(&self, account: &str) -> u64 {
        self.emulator().stats().calls("files/upload", account)
    }
}

fn test_store(redis: &str, settings: &Settings, prefix: &str) -> Store {
    Store::open(&StoreSettings::redis(redis, prefix), &settings.secret_key).expect("store")
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_else(|| panic!("a redirect, got {}", response.status()))
        .to_owned()
}

/// POSTs a notification signed with the app secret, as Dropbox does, to the markdrop at
/// `address`; returns the status.
pub async fn notify(address: &str, body: &str) -> u16 {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    reqwest::Client::new()
        .post(format!("{address}/webhook"))
        .header("X-Dropbox-Signature", hex::encode(mac.finalize().into_bytes()))
        .body(body.to_owned())
        .send()
        .await
        .expect("POST /webhook")
        .status()
        .as_u16()
}

/// Polls `condition` until it holds, failing the test with `what` after [`DEADLINE`].
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < DEADLINE, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
