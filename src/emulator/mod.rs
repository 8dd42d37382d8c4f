//! A faithful local Dropbox for tests and `markdrop demo`.
//!
//! One HTTP server answers as Dropbox's api, content and www hosts at once: the files and users
//! routes markdrop uses ([`routes`]), OAuth with a consent page ([`oauth`]), signed webhooks with
//! retries ([`webhooks`]), and a test-only control surface under `/_emulator/` ([`control`]).
//! docs/dropbox.md §12 is the checklist it follows: same paths, JSON shapes, headers, status codes
//! and strictness as Dropbox on the wire.
//!
//! It shares no code with the client in `src/dropbox/` on purpose: a misreading of the wire
//! format must not hide by living on both sides.
//!
//! [`Emulator`] is the shared state and the Rust test controls; [`Emulator::start`] serves it.

mod clock;
mod content_hash;
mod control;
mod cursor;
mod faults;
mod folder;
mod guard;
mod oauth;
mod path;
mod rate_limit;
mod routes;
mod state;
mod stats;
mod tokens;
mod webhooks;
mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use tokio::sync::{Barrier, mpsc, oneshot};
use tokio::task::JoinHandle;

pub use self::content_hash::content_hash;
pub use self::faults::{FaultRule, Gate};
pub use self::folder::{FolderMirror, FolderProblem, SymlinkProblem};
pub use self::guard::{WeakSecret, parse_control_secret};
pub use self::stats::{CONTENT_ROUTES, Stats};
pub use self::webhooks::ChallengeError;

use self::path::DropboxPath;
use self::state::{Minter, MoveError, Namespace, NodeKind, WriteMode, WriteRequest};
use self::tokens::{ClientAuth, Tokens, all_scopes, random_token};
use self::wire::{Conflict, WriteError};

/// The default of [`EmulatorConfig::max_concurrent_calls_per_user`]: Dropbox publishes no rate
/// limit, and its own Rust SDK's `examples/large-file-upload.rs` runs 20 calls at once for one
/// user (`PARALLELISM`), so Dropbox tolerates that many. markdrop's client starts an account at
/// `CALLS_IN_FLIGHT_PER_ACCOUNT` (16) calls in flight and feels its way from there.
pub const DEFAULT_CALLS_PER_USER: usize = 20;

/// How the emulated Dropbox app is registered, and the knobs tests turn.
#[derive(Clone)]
pub struct EmulatorConfig {
    pub app_key: String,
    pub app_secret: String,
    /// Where signed webhook notifications go; None = no webhooks.
    pub webhook_url: Option<url::Url>,
    /// The redirect URIs registered in the App Console: `/oauth2/authorize` refuses any other
    /// with an error page. Empty = any http(s) URI is accepted.
    pub redirect_uris: Vec<url::Url>,
    /// `/oauth2/authorize` approves at once as the signed-in account instead of showing the
    /// consent page.
    pub auto_approve: bool,
    /// Lifetime of issued access tokens (`expires_in`); default 4 h.
    pub access_token_lifetime: Duration,
    /// First delay of the webhook retry backoff (Dropbox retries ~10 min with exponential
    /// backoff); small in tests.
    pub webhook_retry_base: Duration,
    /// Changes within this long of the first go out as one notification (Dropbox batches
    /// several accounts); default 100 ms.
    pub webhook_batch_window: Duration,
    /// How long every `/2/…` call waits before it is served: Dropbox's own time to answer, for
    /// benchmarks at a realistic speed (loopback answers in microseconds). Default none.
    pub latency: Duration,
    /// A write (upload, delete) to an account while another of its writes is in progress gets
    /// 429 `too_many_write_operations`, as on Dropbox. On by default; off only for a test that
    /// must have writes to one account overlap.
    pub refuse_overlapping_writes: bool,
    /// Dropbox's per-user rate limit, modelled as the most `/2/…` calls one account may have in
    /// flight at once; one more is answered 429 `too_many_requests` with `Retry-After`
    /// (docs/dropbox.md §14). Default 20: Dropbox publishes no number, and 20 is what its own
    /// Rust SDK's example runs at once for one user. `None` = no limit.
    pub max_concurrent_calls_per_user: Option<usize>,
    /// How long an upload session may be used after it started; then it is `not_found`.
    /// Default 7 days, as on Dropbox (docs/dropbox.md §13).
    pub upload_session_lifetime: Duration,
    /// Opens the `/_emulator/` control routes (as a bearer token) and mints the owner links
    /// that let a browser "Allow" on the consent page ([`guard`]); `None` = made up for the
    /// run, read back with [`Emulator::control_secret`].
    pub control_secret: Option<secrecy::SecretString>,
}

impl EmulatorConfig {
    /// An app with the given key and secret: no webhooks, any redirect URI, the consent page
    /// shown, 4-hour tokens, webhook retries starting after one second, webhooks batched over
    /// 100 ms.
    pub fn new(app_key: impl Into<String>, app_secret: impl Into<String>) -> Self {
        EmulatorConfig {
            app_key: app_key.into(),
            app_secret: app_secret.into(),
            webhook_url: None,
            redirect_uris: Vec::new(),
            auto_approve: false,
            access_token_lifetime: Duration::from_secs(4 * 3600),
            webhook_retry_base: Duration::from_secs(1),
            webhook_batch_window: Duration::from_millis(100),
            latency: Duration::ZERO,
            refuse_overlapping_writes: true,
            max_concurrent_calls_per_user: Some(DEFAULT_CALLS_PER_USER),
            upload_session_lifetime: Duration::from_secs(7 * 24 * 3600),
            control_secret: None,
        }
    }
}

impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("app_key", &self.app_key)
            .field("app_secret", &"[redacted]")
            .field("webhook_url", &self.webhook_url.as_ref().map(url::Url::as_str))
            .field(
                "redirect_uris",
                &self.redirect_uris.iter().map(url::Url::as_str).collect::<Vec<_>>(),
            )
            .field("auto_approve", &self.auto_approve)
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("webhook_retry_base", &self.webhook_retry_base)
            .field("webhook_batch_window", &self.webhook_batch_window)
            .field("latency", &self.latency)
            .field("refuse_overlapping_writes", &self.refuse_overlapping_writes)
            .field("max_concurrent_calls_per_user", &self.max_concurrent_calls_per_user)
            .field("upload_session_lifetime", &self.upload_session_lifetime)
            .field("control_secret", &self.control_secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Why a test control refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmulatorError {
    #[error("no account {0}")]
    UnknownAccount(String),
    #[error("{0:?} is not a usable Dropbox path")]
    MalformedPath(String),
    #[error("nothing at {0}")]
    NotFound(String),
    #[error("something is in the way at {0}")]
    Conflict(String),
    #[error("{0} is a folder, not a file")]
    NotAFile(String),
}

/// Tokens for an account linked to the configured app, as a finished OAuth flow would give.
pub struct LinkedAccount {
    pub account_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl fmt::Debug for LinkedAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkedAccount")
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

/// The emulated Dropbox: accounts, files, tokens, stats and faults. Cheap to clone; clones share
/// one state.
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

struct Inner {
    config: EmulatorConfig,
    guard: guard::Guard,
    world: Mutex<World>,
    stats: stats::Recorder,
    calls_in_flight: rate_limit::CallsInFlight,
    faults: Mutex<Vec<FaultRule>>,
    holds: Mutex<Vec<Hold>>,
    /// Accounts that changed, for the webhook sender; `None` without a webhook URL.
    changes: Option<mpsc::UnboundedSender<(String, stats::Pending)>>,
    /// The sender's end, taken by the first [`Emulator::start`].
    changes_receiver: Mutex<Option<mpsc::UnboundedReceiver<(String, stats::Pending)>>>,
}

/// A gate for [`Emulator::hold_calls`]: the calls still to be caught, and the barrier they wait at.
struct Hold {
    route: String,
    remaining: usize,
    barrier: Arc<Barrier>,
}

/// Everything behind the one lock. Handlers hold it only for in-memory work, never across an
/// `.await`, so one lock keeps every operation atomic without contention worth measuring.
#[derive(Default)]
struct World {
    accounts: BTreeMap<String, Account>,
    listings: cursor::Listings,
    writes: routes::NamespaceWrites,
    sessions: routes::UploadSessions,
    tokens: Tokens,
    signed_in: Option<String>,
    mint: Mint,
}

struct Account {
    /// The legacy numeric id, and the home namespace's id.
    uid: u64,
    display_name: String,
    email: String,
    /// The account's tree: for a team member, the team space's, with their home folder in it.
    files: Namespace,
    /// Set for a Dropbox Business member in a team space.
    team: Option<TeamSpace>,
}

/// A team space as one member sees it: the team's root namespace, and the member's home folder
/// in it. Calls without `Dropbox-API-Path-Root` see only the home folder (its paths start
/// there); calls rooted at the team's namespace see the whole tree, team folders included.
struct TeamSpace {
    root_namespace: u64,
    home: DropboxPath,
}

#[derive(Default)]
struct Mint {
    revs: u64,
}

impl Minter for Mint {
    fn id(&mut self) -> String {
        format!("id:{}", random_token(22))
    }

    fn rev(&mut self) -> String {
        use rand::Rng;
        self.revs += 1;
        // Lowercase hex, at least 9 characters (docs/dropbox.md §3.2); the counter keeps it unique.
        format!("{:09x}{:06x}", self.revs, rand::thread_rng().gen_range(0..0x100_0000))
    }
}

/// A served emulator; [`RunningEmulator::stop`] ends it.
pub struct RunningEmulator {
    pub emulator: Emulator,
    url: url::Url,
    server: ServerHandle,
    webhook_sender: Option<JoinHandle<()>>,
    /// Tells the webhook sender to cancel its deliveries and return.
    webhook_shutdown: Option<oneshot::Sender<()>>,
}

impl RunningEmulator {
    /// The base URL, e.g. `http://127.0.0.1:PORT/`; it serves the api, content and www hosts.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// Stops serving and sending webhooks. When it returns no delivery is in flight or waiting
    /// to retry: notifications not yet delivered are dropped.
    pub async fn stop(mut self) {
        let server = self.server.clone();
        let sender = self.webhook_sender.take();
        if let Some(shutdown) = self.webhook_shutdown.take() {
            let _ = shutdown.send(());
        }
        drop(self);
        if let Some(sender) = sender {
            // Err only if the sender panicked or was aborted; it is gone either way.
            let _ = sender.await;
        }
        server.stop(false).await;
    }
}

impl Drop for RunningEmulator {
    /// A test that forgets [`RunningEmulator::stop`] (or panics first) still frees its port and
    /// worker threads: the stop command is sent at once, only the waiting is skipped.
    fn drop(&mut self) {
        drop(self.server.stop(false));
        // Aborting drops the sender's future, and with it the deliveries it owns.
        if let Some(sender) = &self.webhook_sender {
            sender.abort();
        }
    }
}

impl Emulator {
    /// An emulator for the app `config` describes, with no accounts yet. Nothing is served until
    /// [`Emulator::start`]; the test controls work at once.
    pub fn new(mut config: EmulatorConfig) -> Emulator {
        let guard = guard::Guard::new(config.control_secret.take());
        let (changes, receiver) = match config.webhook_url {
            Some(_) => {
                let (sender, receiver) = mpsc::unbounded_channel();
                (Some(sender), Some(receiver))
            }
            None => (None, None),
        };
        Emulator {
            inner: Arc::new(Inner {
                config,
                guard,
                world: Mutex::default(),
                stats: stats::Recorder::default(),
                calls_in_flight: rate_limit::CallsInFlight::default(),
                faults: Mutex::default(),
                holds: Mutex::default(),
                changes,
                changes_receiver: Mutex::new(receiver),
            }),
        }
    }

    /// Binds 127.0.0.1 on the given port (0 = any) and serves in the background on the current
    /// tokio runtime.
    pub async fn start(self, port: u16) -> std::io::Result<RunningEmulator> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let address = listener.local_addr()?;
        let url = url::Url::parse(&format!("http://{address}/"))
            .map_err(|error| std::io::Error::other(error.to_string()))?;
        let data = web::Data::new(self.clone());
        let own = web::Data::new(guard::OwnAddress(address.to_string()));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(own.clone())
                .wrap(actix_web::middleware::from_fn(guard::only_own_address))
                // No page of the emulator may be framed: a page on another local port must not
                // lay the consent page under its own and have the owner click Allow.
                .wrap(
                    actix_web::middleware::DefaultHeaders::new()
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Content-Security-Policy", "frame-ancestors 'none'")),
                )
                .configure(routes::configure)
                .configure(oauth::configure)
                .configure(control::configure)
                .default_service(web::to(routes::unknown_route))
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        let receiver = self.lock(&self.inner.changes_receiver).take();
        let (webhook_sender, webhook_shutdown) =
            match (receiver, self.inner.config.webhook_url.clone()) {
                (Some(receiver), Some(target)) => {
                    let settings = webhooks::Settings {
                        target,
                        app_secret: self.inner.config.app_secret.clone(),
                        retry_base: self.inner.config.webhook_retry_base,
                        batch_window: self.inner.config.webhook_batch_window,
                        stats: self.inner.stats.clone(),
                        uids: self.uids(),
                    };
                    let (shutdown, shut_down) = oneshot::channel::<()>();
                    let shut_down = async move {
                        // A dropped sender means the same as a sent signal: stop.
                        let _ = shut_down.await;
                    };
                    let sender = tokio::spawn(webhooks::run(receiver, settings, shut_down));
                    (Some(sender), Some(shutdown))
                }
                _ => (None, None),
            };
        tracing::debug!(%url, "emulator serving");
        Ok(RunningEmulator {
            emulator: self,
            url,
            server: handle,
            webhook_sender,
            webhook_shutdown,
        })
    }

    fn lock<'a, T>(&self, mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
        // Every operation leaves the state consistent before it can panic, so a poisoned lock
        // still guards good data; refusing it would turn one test's panic into everyone's.
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.lock(&self.inner.world)
    }

    fn config(&self) -> &EmulatorConfig {
        &self.inner.config
    }

    /// A lookup of account id → legacy numeric uid, for `delta.users` in webhooks.
    fn uids(&self) -> webhooks::UidLookup {
        let emulator = self.clone();
        Arc::new(move |account_id: &str| {
            emulator.world().accounts.get(account_id).map(|account| account.uid)
        })
    }

    /// Queues a webhook notification for the account; never waits for delivery.
    fn notify(&self, account_id: &str) {
        if let Some(changes) = &self.inner.changes {
            // The receiver is gone only once the emulator stopped; nobody is listening then.
            // Pending from now: a test waiting for quiet must count a change still in its batch
            // window, not only notifications on the wire.
            let _ = changes.send((account_id.to_owned(), self.inner.stats.webhook_pending()));
        }
    }

    /// A new account with tokens already linked to the configured app: all four scopes, a
    /// refresh token, and the secret flow (refreshing needs the app secret, like markdrop's).
    pub fn create_account(&self, display_name: &str) -> LinkedAccount {
        self.create(display_name, false)
    }

    /// [`Emulator::create_account`] for a Dropbox Business member in a team space: the team's
    /// tree has the member's home folder `/<display_name>` (holding what they see without
    /// `Dropbox-API-Path-Root`) beside whatever team folders a test puts there. The test
    /// controls (`put_file`, `read_file`, …) take paths from the team's root.
    pub fn create_team_member(&self, display_name: &str) -> LinkedAccount {
        self.create(display_name, true)
    }

    fn create(&self, display_name: &str, in_team: bool) -> LinkedAccount {
        use rand::Rng;
        let mut world = self.world();
        // Real account ids are always 40 characters (docs/dropbox.md §3.1).
        let account_id = format!("dbid:AA{}", random_token(33));
        let email_user: String = display_name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let account = Account {
            uid: rand::thread_rng().gen_range(10_000_000..100_000_000),
            display_name: display_name.to_owned(),
            email: format!(
                "{}@example.com",
                if email_user.is_empty() { "user" } else { &email_user }
            ),
            files: Namespace::default(),
            team: None,
        };
        let mut account = account;
        if in_team {
            let home = DropboxPath::parse(&format!("/{}", display_name.replace('/', " ")))
                .unwrap_or_else(|_| DropboxPath { display: "/Home".into(), lower: "/home".into() });
            account.files.create_folder(&home, &mut world.mint);
            let root_namespace = rand::thread_rng().gen_range(10_000_000..100_000_000);
            account.team = Some(TeamSpace { root_namespace, home });
        }
        world.accounts.insert(account_id.clone(), account);
        let lifetime = self.config().access_token_lifetime;
        let issued =
            world.tokens.grant(&account_id, all_scopes(), ClientAuth::Secret, true, lifetime);
        tracing::debug!(%account_id, "account created");
        LinkedAccount {
            account_id,
            access_token: issued.access_token,
            refresh_token: issued.refresh_token.unwrap_or_default(),
        }
    }

    /// Who is "signed in at dropbox.com" for `/oauth2/authorize`.
    pub fn sign_in(&self, account_id: &str) {
        self.world().signed_in = Some(account_id.to_owned());
    }

    /// Writes a file as the user would (overwriting, parents created): a journal entry and a
    /// webhook, unless the content is identical.
    pub fn put_file(
        &self,
        account_id: &str,
        path: &str,
        content: impl Into<Vec<u8>>,
    ) -> Result<(), EmulatorError> {
        let path = parse_control_path(path)?;
        let changed = {
            let mut world = self.world();
            let World { accounts, mint, .. } = &mut *world;
            let files = &mut account_mut(accounts, account_id)?.files;
            let request = WriteRequest {
                path: path.clone(),
                content: Arc::new(content.into()),
                mode: WriteMode::Overwrite,
                autorename: false,
                strict_conflict: false,
                client_modified: None,
            };
            match files.write(request, clock::now_seconds(), mint) {
                Ok(written) => written.changed,
                Err(WriteError::Conflict(Conflict::Folder)) => {
                    return Err(EmulatorError::NotAFile(path.display));
                }
                Err(_) => return Err(EmulatorError::Conflict(path.display)),
            }
        };
        if changed {
            self.notify(account_id);
        }
        Ok(())
    }

    /// Deletes a file or folder (with everything in it) as the user would.
    pub fn delete_path(&self, account_id: &str, path: &str) -> Result<(), EmulatorError> {
        let path = parse_control_path(path)?;
        {
            let mut world = self.world();
            let files = &mut account_mut(&mut world.accounts, account_id)?.files;
            files.delete(&path.lower).ok_or(EmulatorError::NotFound(path.display))?;
        }
        self.notify(account_id);
        Ok(())
    }

    /// Moves or renames a file or folder as the user would.
    pub fn move_path(&self, account_id: &str, from: &str, to: &str) -> Result<(), EmulatorError> {
        let (from, to) = (parse_control_path(from)?, parse_control_path(to)?);
        let changed = {
            let mut world = self.world();
            let World { accounts, mint, .. } = &mut *world;
            let files = &mut account_mut(accounts, account_id)?.files;
            match files.move_path(&from, &to, mint) {
                Ok(changed) => changed,
                Err(MoveError::NotFound) => return Err(EmulatorError::NotFound(from.display)),
                Err(MoveError::Conflict) => return Err(EmulatorError::Conflict(to.display)),
            }
        };
        if changed {
            self.notify(account_id);
        }
        Ok(())
    }

    /// A file's content, or `None` if there is no such account or file.
    pub fn read_file(&self, account_id: &str, path: &str) -> Option<Vec<u8>> {
        let path = DropboxPath::parse(path).ok()?;
        let world = self.world();
        match &world.accounts.get(account_id)?.files.get(&path.lower)?.kind {
            NodeKind::File(file) => Some(file.content.to_vec()),
            NodeKind::Folder => None,
        }
    }

    /// The `path_display` of every file in the account, sorted.
    pub fn file_paths(&self, account_id: &str) -> Vec<String> {
        let world = self.world();
        let Some(account) = world.accounts.get(account_id) else {
            return Vec::new();
        };
        let mut paths: Vec<String> =
            account.files.files().map(|(_, node, _)| node.display.clone()).collect();
        paths.sort();
        paths
    }

    /// Every file of the account as (`path_lower`, `path_display`, `rev`), for the folder mirror.
    fn file_revs(&self, account_id: &str) -> Vec<(String, String, String)> {
        let world = self.world();
        let Some(account) = world.accounts.get(account_id) else {
            return Vec::new();
        };
        account
            .files
            .files()
            .map(|(lower, node, file)| (lower.clone(), node.display.clone(), file.rev.clone()))
            .collect()
    }

    /// The rev of one file of the account.
    fn file_rev(&self, account_id: &str, lower: &str) -> Option<String> {
        match &self.world().accounts.get(account_id)?.files.get(lower)?.kind {
            NodeKind::File(file) => Some(file.rev.clone()),
            NodeKind::Folder => None,
        }
    }

    /// Sends Dropbox's one-off verification `GET ?challenge=…` to the webhook URL, as the App
    /// Console does when the URL is added; the receiver must echo the challenge.
    pub async fn verify_webhook(&self) -> Result<(), ChallengeError> {
        let target = self.config().webhook_url.as_ref().ok_or(ChallengeError::NoWebhook)?;
        webhooks::challenge(target).await
    }

    /// What the emulator has served so far: calls per route and account, peak concurrency,
    /// webhook deliveries.
    pub fn stats(&self) -> Stats {
        self.inner.stats.snapshot()
    }

    /// Uploads and deletions for the account that the emulator is serving right now (held by a
    /// fault included): a write that may still land.
    pub fn writes_in_flight(&self, account_id: &str) -> u32 {
        self.inner.stats.writes_in_flight(account_id)
    }

    /// The `/2/…` calls for the account in flight right now, as the rate limit counts them
    /// (0 when `max_concurrent_calls_per_user` is `None`).
    pub fn calls_in_flight(&self, account_id: &str) -> usize {
        self.inner.calls_in_flight.of(account_id)
    }

    /// Adds a fault: the next `fault.times` matching calls are delayed and/or answered with the
    /// fault's response instead of normally. Rules are matched in the order they were added.
    pub fn add_fault(&self, fault: FaultRule) {
        tracing::debug!(route = %fault.route, status = fault.status, times = fault.times, "fault added");
        self.lock(&self.inner.faults).push(fault);
    }

    /// Holds the next `calls` calls to `route` (`"files/upload"`, `"oauth2/token"`, …) until all
    /// of them are waiting, then lets them go together: a way to have exactly that many calls in
    /// flight at once that does not rest on a delay being long enough. Held calls count as in
    /// flight; the ones after them pass freely.
    pub fn hold_calls(&self, route: &str, calls: usize) {
        if calls == 0 {
            return;
        }
        let barrier = Arc::new(Barrier::new(calls));
        let hold = Hold { route: route.to_owned(), remaining: calls, barrier };
        self.lock(&self.inner.holds).push(hold);
    }

    /// What every call goes through before it is served: a hold, then a fault. Returns the
    /// fault's response, or `None` to serve the call normally.
    async fn intercept(&self, route: &str, account_id: &str) -> Option<actix_web::HttpResponse> {
        if !self.inner.config.latency.is_zero() {
            tokio::time::sleep(self.inner.config.latency).await;
        }
        let barrier = {
            let mut holds = self.lock(&self.inner.holds);
            let index = holds.iter().position(|hold| hold.route == route);
            index.map(|index| {
                let hold = &mut holds[index];
                hold.remaining -= 1;
                let barrier = hold.barrier.clone();
                if hold.remaining == 0 {
                    holds.remove(index);
                }
                barrier
            })
        };
        if let Some(barrier) = barrier {
            barrier.wait().await;
        }
        let fault = faults::take(&mut self.lock(&self.inner.faults), route, Some(account_id))?;
        if let Some(delay) = fault.delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(gate) = &fault.gate {
            gate.pass().await;
        }
        let response = fault.response()?;
        tracing::debug!(route, status = fault.status, "fault injected");
        Some(response)
    }

    /// Every cursor issued so far for the account gets 409 `reset` on `list_folder/continue`.
    pub fn reset_cursors(&self, account_id: &str) {
        if let Some(account) = self.world().accounts.get_mut(account_id) {
            account.files.epoch += 1;
        }
    }

    /// The account's access tokens expire now: 401 `expired_access_token`; refresh still works.
    pub fn expire_access_tokens(&self, account_id: &str) {
        self.world().tokens.expire_account(account_id);
    }

    /// Every token of the account dies: 401 `invalid_access_token`, refresh → `invalid_grant`.
    pub fn revoke_tokens(&self, account_id: &str) {
        self.world().tokens.revoke_account(account_id);
    }

    /// Turns a file into something like a Google Doc: listed with `is_downloadable: false`
    /// (hidden by `include_non_downloadable_files: false`), download → 409 `unsupported_file`.
    pub fn mark_non_downloadable(&self, account_id: &str, path: &str) -> Result<(), EmulatorError> {
        let path = parse_control_path(path)?;
        {
            let mut world = self.world();
            let files = &mut account_mut(&mut world.accounts, account_id)?.files;
            if matches!(files.get(&path.lower), Some(node) if matches!(node.kind, NodeKind::Folder))
            {
                return Err(EmulatorError::NotAFile(path.display));
            }
            let file = files.file_mut(&path.lower).ok_or(EmulatorError::NotFound(path.display))?;
            file.downloadable = false;
            files.touch(&path.lower);
        }
        self.notify(account_id);
        Ok(())
    }
}

fn parse_control_path(path: &str) -> Result<DropboxPath, EmulatorError> {
    DropboxPath::parse(path).map_err(|_| EmulatorError::MalformedPath(path.to_owned()))
}

fn account_mut<'a>(
    accounts: &'a mut BTreeMap<String, Account>,
    account_id: &str,
) -> Result<&'a mut Account, EmulatorError> {
    accounts.get_mut(account_id).ok_or_else(|| EmulatorError::UnknownAccount(account_id.to_owned()))
}
