//! The sync worker end to end, with the figures BENCHMARKS.md reports.
//!
//! 1. Convergence: `SYNC_BENCH_ACCOUNTS` accounts (default 1,000), each with
//!    `SYNC_BENCH_FILES` notes (default 5), are linked at once as the OAuth callback links
//!    them (tokens saved, first pass queued); measured from the first enqueue until every
//!    `.html` exists: conversions a second, Dropbox calls per converted file, CPU time of the
//!    worker, this process and Redis.
//! 2. Single-change latency: `SYNC_BENCH_SAMPLES` times (default 200), one note changes and a
//!    signed webhook says so; measured from just before the webhook is sent until the new
//!    `.html` is in the emulator. One change at a time, each after markdrop is idle again.
//! 3. New-note latency: the same for a quarter as many notes that did not exist before, whose
//!    page markdrop must first look up (it may be a person's).
//! 4. A settings change: a `markdrop.toml` at the top of the first account chooses another
//!    theme; measured from just before the webhook until every page of it has the new look.
//!
//! `SYNC_BENCH_LATENCY_MS` makes the emulator take that long to answer every call, as Dropbox
//! does over the internet (loopback answers in microseconds). `SYNC_BENCH_CLUSTER=1` runs on
//! the Redis Cluster `MARKDROP_TEST_REDIS_CLUSTER_URL` names (`bench/sync` starts three
//! masters) instead of one Redis; Redis CPU is then the sum over its nodes, and the report says
//! how the run's keys and memory spread over them.
//!
//! The worker is the real `markdrop worker` binary in a process of its own, so its peak RSS
//! (`VmHWM`) and CPU time are its alone. The Dropbox emulator and the web app run in this
//! process; Redis is the one `MARKDROP_TEST_REDIS_URL` names (`bench/sync` starts a private
//! one), under a key prefix of this run's own, deleted at the end. The worker's log goes to a
//! file under `target/tmp/`, at `warn` (`SYNC_BENCH_LOG` sets another `RUST_LOG` for it), and its
//! concurrency is `WORKER_ACCOUNTS` from the environment, as in production.
//!
//! `cargo bench --bench sync` (which passes `--bench`) runs the full configuration; `cargo test
//! --all-targets` runs a small one that checks every `.html` is the rendering of its note, so CI
//! notices when the benchmark stops working.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use markdrop::config::{Settings, StoreSettings};
use markdrop::dropbox::{AccountId, AccountTokens};
use markdrop::emulator::{
    CONTENT_ROUTES, Emulator, EmulatorConfig, LinkedAccount, RunningEmulator, Stats,
};
use markdrop::store::Store;
use markdrop::web::Application;
use secrecy::SecretString;
use sha2::Sha256;

const APP_KEY: &str = "bench-app-key";
const APP_SECRET: &str = "bench-app-secret";
const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef";
/// Accounts per enqueue call: a callback enqueues one, a webhook batch a few hundred at most.
const ENQUEUE_BATCH: usize = 100;
/// How often convergence is checked. Checks run in this process, on the emulator's state, so
/// checking much more often would take CPU from the worker.
const CONVERGENCE_POLL: Duration = Duration::from_millis(10);
/// How often a latency sample looks for the new `.html`: a blocking thread, since the async
/// timer's resolution is a millisecond.
const LATENCY_POLL: Duration = Duration::from_micros(200);
const LATENCY_DEADLINE: Duration = Duration::from_secs(10);
/// A line only the `serif` theme's stylesheet has (`static/serif.css`).
const SERIF_MARK: &str = "--background: #fbf8f1;";

struct Config {
    /// `--bench`: the full configuration, judged against the goals. Otherwise a smoke test.
    full: bool,
    accounts: usize,
    files: usize,
    samples: usize,
    /// How long the emulator takes to answer each call.
    latency: Duration,
    /// For convergence; generous, since a debug build runs the smoke test.
    deadline: Duration,
}

impl Config {
    fn from_args_and_env() -> Config {
        let full = std::env::args().any(|arg| arg == "--bench");
        let (accounts, files, samples) = if full { (1000, 5, 200) } else { (5, 2, 5) };
        Config {
            full,
            accounts: env_count("SYNC_BENCH_ACCOUNTS", accounts),
            files: env_count("SYNC_BENCH_FILES", files),
            samples: env_count("SYNC_BENCH_SAMPLES", samples),
            latency: Duration::from_millis(match std::env::var("SYNC_BENCH_LATENCY_MS") {
                Ok(value) if !value.is_empty() => value.parse().unwrap_or_else(|_| {
                    panic!("SYNC_BENCH_LATENCY_MS must be a whole number, got {value:?}")
                }),
                _ => 0,
            }),
            deadline: Duration::from_secs(if full { 600 } else { 60 }),
        }
    }
}

fn env_count(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => match value.parse() {
            Ok(count) if count > 0 => count,
            _ => panic!("{var} must be a positive whole number, got {value:?}"),
        },
        _ => default,
    }
}

fn main() {
    let config = Config::from_args_and_env();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let report = runtime.block_on(run(&config));
    println!("{report}");
}

async fn run(config: &Config) -> String {
    let redis = Redis::from_env();
    let prefix = format!("bench:sync:{}:{}:", std::process::id(), nanos());
    let mut world = World::start(config, redis, &prefix).await;
    let mut worker = WorkerProcess::start(&world);
    world.wait_until_worker_listens(&mut worker).await;
    let saving_tokens = world.save_tokens().await;

    let convergence = world.converge(config, &worker).await;
    world.check_every_note(config);
    let spread = world.spread().await;
    let latency = world.single_changes(config, &worker, Change::Edit).await;
    let new_notes = world.single_changes(config, &worker, Change::NewNote).await;
    let restyle = world.restyle(config).await;
    let peak_rss_kib = worker.peak_rss_kib();
    let exit = worker.stop();
    let log = std::fs::read_to_string(&worker.log).unwrap_or_default();
    let problems: Vec<&str> =
        log.lines().filter(|line| line.contains("WARN") || line.contains("ERROR")).collect();

    let report = Report {
        config,
        redis: &world.redis,
        spread,
        saving_tokens,
        convergence,
        latency,
        new_notes,
        restyle,
        peak_rss_kib,
        exit,
        worker_accounts: &worker.accounts,
        problems: &problems,
        log: &worker.log,
    };
    let text = report.to_markdown();
    world.delete_keys().await;
    world.dropbox.stop().await;
    assert!(exit.success(), "the worker exited with {exit}; its log: {}", worker.log.display());
    text
}

/// What a latency sample changes.
#[derive(Clone, Copy)]
enum Change {
    /// A note that exists and was converted.
    Edit,
    /// A note made anew.
    NewNote,
}

impl Change {
    fn samples(self, config: &Config) -> usize {
        match self {
            Change::Edit => config.samples,
            Change::NewNote => config.samples.div_ceil(4),
        }
    }
}

/// The Redis the benchmark runs on: one server, or a cluster's nodes.
struct Redis {
    /// `REDIS_URL` as markdrop takes it: one URL, or the cluster's nodes comma-separated.
    url: String,
    cluster: bool,
}

impl Redis {
    fn from_env() -> Redis {
        let cluster = std::env::var("SYNC_BENCH_CLUSTER").is_ok_and(|value| value == "1");
        let var =
            if cluster { "MARKDROP_TEST_REDIS_CLUSTER_URL" } else { "MARKDROP_TEST_REDIS_URL" };
        let url = std::env::var(var).unwrap_or_else(|_| {
            panic!("{var} is not set: run bench/sync (or scripts/test), which starts Redis")
        });
        Redis { url, cluster }
    }

    fn settings(&self, prefix: &str) -> StoreSettings {
        if self.cluster {
            StoreSettings::redis_cluster(&self.url, prefix)
        } else {
            StoreSettings::redis(&self.url, prefix)
        }
    }

    /// A connection to each server, for what is asked of each one (CPU, memory, keys).
    async fn nodes(&self) -> Vec<redis::aio::MultiplexedConnection> {
        let mut nodes = Vec::new();
        for url in self.url.split(',') {
            let client = redis::Client::open(url).expect("a Redis URL");
            nodes.push(client.get_multiplexed_async_connection().await.expect("connect to Redis"));
        }
        nodes
    }
}

/// One Redis server's part of a run.
struct NodeShare {
    /// The run's keys it holds.
    keys: usize,
    /// `used_memory`: everything it holds, the run's keys and any other.
    used_memory: u64,
}

/// The keys on one server matching `pattern` (on a cluster node, that node's alone).
async fn keys_on(node: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<String> {
    let (mut cursor, mut keys) = (0u64, Vec::new());
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(node)
            .await
            .expect("SCAN");
        keys.extend(page);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// The emulator, the web app and the store, all in this process.
struct World {
    dropbox: RunningEmulator,
    store: Store,
    redis: Redis,
    prefix: String,
    webhook_url: String,
    http: reqwest::Client,
    accounts: Vec<String>,
    /// Tokens to link, by account; taken by [`World::save_tokens`].
    tokens: Vec<LinkedAccount>,
    note_bytes: usize,
}

impl World {
    async fn start(config: &Config, redis: Redis, prefix: &str) -> World {
        let mut emulator_config = EmulatorConfig::new(APP_KEY, APP_SECRET);
        emulator_config.latency = config.latency;
        let dropbox = Emulator::new(emulator_config).start(0).await.expect("start the emulator");
        let store =
            Store::open(&redis.settings(prefix), &SecretString::from(SECRET_KEY.to_owned()))
                .expect("a store on the benchmark's Redis");
        let app = Application::build(&web_settings(dropbox.url(), &redis, prefix), store.clone())
            .expect("build the web app");
        let webhook_url = format!("http://127.0.0.1:{}/webhook", app.port());
        tokio::spawn(app.run_until_stopped());

        let emulator = &dropbox.emulator;
        let mut accounts = Vec::with_capacity(config.accounts);
        let mut note_bytes = 0;
        for a in 0..config.accounts {
            let account = emulator.create_account(&format!("Bench {a}"));
            for f in 1..=config.files {
                let note = note(a, f, 0);
                note_bytes += note.len();
                emulator.put_file(&account.account_id, &md_path(f), note).expect("put a note");
            }
            accounts.push(account);
        }
        World {
            dropbox,
            store,
            redis,
            prefix: prefix.to_owned(),
            webhook_url,
            http: reqwest::Client::new(),
            accounts: accounts.iter().map(|account| account.account_id.clone()).collect(),
            tokens: accounts,
            note_bytes: note_bytes / (config.accounts * config.files),
        }
    }

    /// Saves every account's tokens as the OAuth callback does, without queueing a pass yet
    /// (`converge` does, on the clock). After the worker started: its start-up sweep queues
    /// every linked account, which would start the work before the clock.
    async fn save_tokens(&mut self) -> Duration {
        let start = Instant::now();
        for account in std::mem::take(&mut self.tokens) {
            let tokens = AccountTokens {
                access_token: SecretString::from(account.access_token),
                refresh_token: SecretString::from(account.refresh_token),
                expires_at: None,
                path_root: None,
            };
            let id = AccountId::parse(&account.account_id).expect("an emulator account id");
            self.store.save_tokens(&id, &tokens).await.expect("save tokens");
        }
        start.elapsed()
    }

    fn emulator(&self) -> &Emulator {
        &self.dropbox.emulator
    }

    /// Waits until the worker has swept the (still empty) queue and subscribed to wake-ups,
    /// so the convergence clock does not include its start-up. Its subscription to
    /// `<prefix>wake` (src/store/redis/mod.rs) is the sign; it logs nothing at `warn`.
    async fn wait_until_worker_listens(&self, worker: &mut WorkerProcess) {
        let channel = format!("{}wake", self.prefix);
        let start = Instant::now();
        loop {
            // A cluster node counts only the subscribers connected to it.
            let mut subscribers = 0;
            for mut node in self.redis.nodes().await {
                let (_, here): (String, u64) = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(&channel)
                    .query_async(&mut node)
                    .await
                    .expect("PUBSUB NUMSUB");
                subscribers += here;
            }
            if subscribers > 0 {
                return;
            }
            if let Some(status) = worker.exited() {
                panic!("the worker exited with {status}; its log: {}", worker.log.display());
            }
            assert!(start.elapsed() < Duration::from_secs(30), "the worker did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Deletes every key of this run, so runs against a long-lived Redis do not pile up.
    async fn delete_keys(&self) {
        for mut node in self.redis.nodes().await {
            for key in keys_on(&mut node, &format!("{}*", self.prefix)).await {
                // One at a time: a cluster node refuses a call on keys of several slots.
                let _: u64 =
                    redis::cmd("UNLINK").arg(&key).query_async(&mut node).await.expect("UNLINK");
            }
        }
    }

    /// Redis's own CPU time so far (`INFO cpu`), over every node.
    async fn redis_cpu(&self) -> Duration {
        let mut total = Duration::ZERO;
        for mut node in self.redis.nodes().await {
            let info: String =
                redis::cmd("INFO").arg("cpu").query_async(&mut node).await.expect("INFO cpu");
            let seconds: f64 = info
                .lines()
                .filter_map(|line| line.split_once(':'))
                .filter(|(key, _)| matches!(*key, "used_cpu_sys" | "used_cpu_user"))
                .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
                .sum();
            total += Duration::from_secs_f64(seconds);
        }
        total
    }

    /// How this run's keys and each node's memory lie over the nodes, after convergence.
    async fn spread(&self) -> Vec<NodeShare> {
        let mut shares = Vec::new();
        for mut node in self.redis.nodes().await {
            let keys = keys_on(&mut node, &format!("{}*", self.prefix)).await.len();
            let info: String =
                redis::cmd("INFO").arg("memory").query_async(&mut node).await.expect("INFO");
            let used_memory = info
                .lines()
                .find_map(|line| line.strip_prefix("used_memory:"))
                .and_then(|bytes| bytes.trim().parse().ok())
                .unwrap_or(0);
            shares.push(NodeShare { keys, used_memory });
        }
        shares
    }

    /// Phase 1: links every account at once and waits until every note has its `.html`.
    async fn converge(&self, config: &Config, worker: &WorkerProcess) -> Convergence {
        let before = Usage::now(self, worker).await;
        let start = Instant::now();
        let ids: Vec<AccountId> =
            self.accounts.iter().map(|id| AccountId::parse(id).expect("an account id")).collect();
        for batch in ids.chunks(ENQUEUE_BATCH) {
            self.store.enqueue(batch).await.expect("enqueue");
        }
        let enqueued = start.elapsed();
        // Claim order: due time (one per batch), then account id.
        let mut pending: Vec<&str> = Vec::with_capacity(ids.len());
        for batch in ids.chunks(ENQUEUE_BATCH) {
            let mut batch: Vec<&str> = batch.iter().map(AccountId::as_str).collect();
            batch.sort_unstable();
            pending.extend(batch);
        }
        let mut polling = Duration::ZERO;
        while !pending.is_empty() {
            assert!(
                start.elapsed() < config.deadline,
                "{} of {} accounts still lack an .html after {:?}",
                pending.len(),
                self.accounts.len(),
                config.deadline
            );
            tokio::time::sleep(CONVERGENCE_POLL).await;
            let checking = Instant::now();
            // Accounts are claimed in this order, so the finished ones make a prefix of it,
            // but for the few dozen in flight together. Only the prefix is looked at: once
            // every account is done it is all of them, and until then a check costs next to
            // nothing.
            let finished =
                pending.iter().take_while(|account| self.is_done(account, config)).count();
            pending.drain(..finished);
            polling += checking.elapsed();
        }
        let elapsed = start.elapsed();
        let during = Usage::now(self, worker).await.since(&before);
        self.quiet().await;
        Convergence {
            enqueued,
            elapsed,
            polling,
            during,
            calls: Calls::from(&self.emulator().stats()),
            refusals: Refusals::from(&self.emulator().stats()),
            note_bytes: self.note_bytes,
        }
    }

    /// Whether every note of the account has its `.html`. Uploads go in listing order, so the
    /// last note's usually comes last: an unfinished account is told by one lookup that finds
    /// nothing.
    fn is_done(&self, account: &str, config: &Config) -> bool {
        (1..=config.files)
            .rev()
            .all(|f| self.emulator().read_file(account, &html_path(f)).is_some())
    }

    /// Every `.html` is exactly the rendering of its note: the benchmark measured real work.
    fn check_every_note(&self, config: &Config) {
        for (a, account) in self.accounts.iter().enumerate() {
            for f in 1..=config.files {
                let expected = markdrop::render::render(
                    note(a, f, 0).as_bytes(),
                    &markdrop::render::Page::alone(&stem(f)),
                );
                let html = self.emulator().read_file(account, &html_path(f));
                assert!(
                    html.as_deref() == Some(expected.as_bytes()),
                    "{account}{} is not the rendering of its note",
                    html_path(f)
                );
            }
        }
    }

    /// Phases 2 and 3: one change at a time, each announced by a signed webhook.
    async fn single_changes(
        &self,
        config: &Config,
        worker: &WorkerProcess,
        change: Change,
    ) -> Latency {
        let calls_before = Calls::from(&self.emulator().stats());
        let before = Usage::now(self, worker).await;
        let count = change.samples(config);
        let mut samples = Vec::with_capacity(count);
        let mut answers = Vec::with_capacity(count);
        for sample in 0..count {
            // Spread over the accounts and their notes: 7919 is prime, so up to as many samples
            // as there are accounts each change a different one.
            let a = (sample * 7919) % self.accounts.len();
            let account = &self.accounts[a];
            let (md, html, stem, note) = match change {
                Change::Edit => {
                    let f = 1 + sample % config.files;
                    (md_path(f), html_path(f), stem(f), note(a, f, sample + 1))
                }
                Change::NewNote => {
                    let stem = format!("new-{sample}");
                    (format!("/{stem}.md"), format!("/{stem}.html"), stem, note(a, 0, 1))
                }
            };
            let expected =
                markdrop::render::render(note.as_bytes(), &markdrop::render::Page::alone(&stem))
                    .into_bytes();
            self.emulator().put_file(account, &md, note).expect("change a note");
            let emulator = self.emulator().clone();
            let (account_id, path) = (account.clone(), html.clone());
            let watcher = tokio::task::spawn_blocking(move || {
                let start = Instant::now();
                loop {
                    if emulator.read_file(&account_id, &path).as_deref() == Some(&expected[..]) {
                        return Some(Instant::now());
                    }
                    if start.elapsed() > LATENCY_DEADLINE {
                        return None;
                    }
                    std::thread::sleep(LATENCY_POLL);
                }
            });
            let sent = Instant::now();
            self.send_webhook(account).await;
            answers.push(sent.elapsed());
            let seen = watcher.await.expect("the watcher thread").unwrap_or_else(|| {
                panic!("sample {sample}: {account}{html} not updated within 10 s")
            });
            samples.push(seen - sent);
            self.quiet().await;
        }
        Latency {
            samples,
            answers,
            during: Usage::now(self, worker).await.since(&before),
            calls: Calls::from(&self.emulator().stats()).since(&calls_before),
        }
    }

    /// Phase 4: the first account's settings change (a `markdrop.toml` at its top chooses
    /// another theme), so every note of it is converted again.
    async fn restyle(&self, config: &Config) -> Restyle {
        let account = &self.accounts[0];
        // Its notes, and the new notes phase 3 made in it (sample 0 always goes to account 0).
        let new_notes = (0..Change::NewNote.samples(config))
            .filter(|sample| (sample * 7919) % self.accounts.len() == 0)
            .count();
        let notes = config.files + new_notes;
        let calls_before = Calls::from(&self.emulator().stats());
        let start = Instant::now();
        (self.emulator().put_file(account, "/markdrop.toml", "theme = \"serif\"\n"))
            .expect("put the settings file");
        self.send_webhook(account).await;
        let restyled = |f: usize| {
            let page = self.emulator().read_file(account, &html_path(f)).unwrap_or_default();
            std::str::from_utf8(&page).is_ok_and(|page| page.contains(SERIF_MARK))
        };
        let mut pending: Vec<usize> = (1..=config.files).rev().collect();
        while !pending.is_empty() {
            assert!(start.elapsed() < config.deadline, "{} pages not restyled", pending.len());
            tokio::time::sleep(CONVERGENCE_POLL).await;
            pending.retain(|&f| !restyled(f));
        }
        let elapsed = start.elapsed();
        self.quiet().await;
        Restyle {
            notes,
            elapsed,
            calls: Calls::from(&self.emulator().stats()).since(&calls_before),
        }
    }

    async fn send_webhook(&self, account: &str) {
        let body = serde_json::json!({
            "list_folder": { "accounts": [account] },
            "delta": { "users": [] },
        })
        .to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("any key");
        mac.update(body.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        let response = self
            .http
            .post(&self.webhook_url)
            .header("Content-Type", "application/json")
            .header("X-Dropbox-Signature", signature)
            .body(body)
            .send()
            .await
            .expect("post the webhook");
        assert_eq!(response.status(), 200, "the webhook was refused");
    }

    /// Waits until markdrop has nothing left to do: nothing queued, no lease held.
    async fn quiet(&self) {
        let start = Instant::now();
        loop {
            let queued = self.store.queued().await.expect("the queue");
            if queued.is_empty() && self.store.leases_held().await.expect("leases") == 0 {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "markdrop never went idle");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

fn web_settings(dropbox: &url::Url, redis: &Redis, prefix: &str) -> Settings {
    let vars = [
        ("REDIS_CLUSTER", redis.cluster.to_string()),
        ("DROPBOX_APP_KEY", APP_KEY.to_owned()),
        ("DROPBOX_APP_SECRET", APP_SECRET.to_owned()),
        ("SECRET_KEY", SECRET_KEY.to_owned()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("REDIS_URL", redis.url.clone()),
        ("REDIS_KEY_PREFIX", prefix.to_owned()),
        ("DROPBOX_API_URL", dropbox.to_string()),
        ("DROPBOX_CONTENT_URL", dropbox.to_string()),
        ("DROPBOX_WEB_URL", dropbox.to_string()),
    ];
    Settings::from_lookup(|name| vars.iter().find(|(var, _)| *var == name).map(|(_, v)| v.clone()))
        .expect("valid settings")
}

/// `markdrop worker` in a process of its own, killed if the benchmark panics first.
struct WorkerProcess {
    child: Child,
    log: PathBuf,
    /// `WORKER_ACCOUNTS` as the worker sees it, for the report.
    accounts: String,
}

impl WorkerProcess {
    fn start(world: &World) -> WorkerProcess {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sync-bench-worker-{}.log", std::process::id()));
        let stderr = File::create(&log).expect("create the worker's log");
        let dropbox = world.dropbox.url().to_string();
        let mut command = Command::new(env!("CARGO_BIN_EXE_markdrop"));
        command
            .arg("worker")
            // Out of the repository, so a developer's `.env` cannot change what is measured.
            .current_dir(env!("CARGO_TARGET_TMPDIR"))
            .env("DROPBOX_APP_KEY", APP_KEY)
            .env("DROPBOX_APP_SECRET", APP_SECRET)
            .env("SECRET_KEY", SECRET_KEY)
            .env("REDIS_URL", &world.redis.url)
            .env("REDIS_CLUSTER", world.redis.cluster.to_string())
            .env("REDIS_KEY_PREFIX", &world.prefix)
            .env("DROPBOX_API_URL", &dropbox)
            .env("DROPBOX_CONTENT_URL", &dropbox)
            .env("DROPBOX_WEB_URL", &dropbox)
            .env("RUST_LOG", std::env::var("SYNC_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
            // A file, not a terminal: no colour codes.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // markdrop counts an empty variable as unset.
        let accounts = std::env::var("WORKER_ACCOUNTS")
            .ok()
            .filter(|accounts| !accounts.is_empty())
            .unwrap_or_else(|| "256 (default)".into());
        let child = command.spawn().expect("start `markdrop worker`");
        WorkerProcess { child, log, accounts }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("the worker's status")
    }

    /// User plus system CPU time so far.
    fn cpu(&self) -> Duration {
        process_cpu(&format!("/proc/{}/stat", self.child.id()))
    }

    /// The most resident memory the worker has had (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the worker's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    /// SIGTERM, as a platform stops it, then waits for it to drain and exit.
    fn stop(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "the worker ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User plus system CPU time of a process, from its `/proc/<pid>/stat`.
fn process_cpu(stat: &str) -> Duration {
    let stat = std::fs::read_to_string(stat).expect("a /proc stat file");
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, utime 14 and stime 15 (proc(5)).
    let fields: Vec<&str> =
        stat.rsplit_once(')').expect("a stat line").1.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        command_output("getconf", &["CLK_TCK"]).and_then(|ticks| ticks.parse().ok()).unwrap_or(100)
    })
}

/// CPU time spent by each party, at one moment or over a phase.
#[derive(Clone, Copy)]
struct Usage {
    worker: Duration,
    bench: Duration,
    redis: Duration,
}

impl Usage {
    async fn now(world: &World, worker: &WorkerProcess) -> Usage {
        Usage {
            worker: worker.cpu(),
            bench: process_cpu("/proc/self/stat"),
            redis: world.redis_cpu().await,
        }
    }

    fn since(&self, before: &Usage) -> Usage {
        Usage {
            worker: self.worker.saturating_sub(before.worker),
            bench: self.bench.saturating_sub(before.bench),
            redis: self.redis.saturating_sub(before.redis),
        }
    }
}

/// Calls the emulator served, per route.
struct Calls(BTreeMap<String, u64>);

impl Calls {
    fn from(stats: &Stats) -> Calls {
        // `Stats` names no routes; its serialized form has every one (route → account → calls).
        let value = serde_json::to_value(stats).expect("stats as JSON");
        let routes = value["calls"].as_object().cloned().unwrap_or_default();
        Calls(
            routes
                .into_iter()
                .map(|(route, by_account)| {
                    let calls = by_account
                        .as_object()
                        .map_or(0, |accounts| accounts.values().filter_map(|v| v.as_u64()).sum());
                    (route, calls)
                })
                .collect(),
        )
    }

    fn since(&self, before: &Calls) -> Calls {
        Calls(
            self.0
                .iter()
                .map(|(route, calls)| {
                    (route.clone(), calls - before.0.get(route).copied().unwrap_or(0))
                })
                .filter(|(_, calls)| *calls > 0)
                .collect(),
        )
    }

    fn route(&self, route: &str) -> u64 {
        self.0.get(route).copied().unwrap_or(0)
    }

    /// Calls to the content host: downloads, uploads and upload-session calls.
    fn content(&self) -> u64 {
        CONTENT_ROUTES.iter().map(|route| self.route(route)).sum()
    }

    fn all(&self) -> u64 {
        self.0.values().sum()
    }

    /// `route: calls` for every route called, for the report.
    fn listing(&self) -> String {
        let parts: Vec<String> =
            self.0.iter().map(|(route, calls)| format!("`{route}` {calls}")).collect();
        parts.join(", ")
    }
}

struct Convergence {
    /// How long enqueueing every account took (inside `elapsed`).
    enqueued: Duration,
    elapsed: Duration,
    /// This process's time spent checking for convergence (inside `elapsed`).
    polling: Duration,
    during: Usage,
    calls: Calls,
    refusals: Refusals,
    note_bytes: usize,
}

/// The 429s the emulator answered by itself during the run: its namespace lock and its
/// per-user rate limit, which a client that paces itself never meets.
struct Refusals {
    write_lock: u64,
    rate_limit: u64,
}

impl Refusals {
    fn from(stats: &Stats) -> Refusals {
        Refusals {
            write_lock: stats.total_refusals("too_many_write_operations"),
            rate_limit: stats.total_refusals("too_many_requests"),
        }
    }
}

struct Latency {
    samples: Vec<Duration>,
    /// How long the web app took to answer each webhook.
    answers: Vec<Duration>,
    during: Usage,
    calls: Calls,
}

/// Phase 4: what converting one account again after its settings changed took.
struct Restyle {
    /// The account's notes.
    notes: usize,
    elapsed: Duration,
    calls: Calls,
}

struct Report<'a> {
    config: &'a Config,
    redis: &'a Redis,
    /// Each Redis server's part, after convergence.
    spread: Vec<NodeShare>,
    /// Saving every account's tokens, before the clock starts.
    saving_tokens: Duration,
    convergence: Convergence,
    latency: Latency,
    new_notes: Latency,
    restyle: Restyle,
    peak_rss_kib: u64,
    exit: ExitStatus,
    worker_accounts: &'a str,
    problems: &'a [&'a str],
    log: &'a PathBuf,
}

impl Report<'_> {
    fn to_markdown(&self) -> String {
        let Report { config, convergence: c, latency: l, .. } = self;
        let files = (config.accounts * config.files) as u64;
        let rate = files as f64 / c.elapsed.as_secs_f64();
        let content_per_file = c.calls.content() as f64 / files as f64;
        let all_per_file = c.calls.all() as f64 / files as f64;
        let rss_mb = self.peak_rss_kib as f64 / 1024.0;
        let mut latencies = l.samples.clone();
        latencies.sort();
        let mut answers = l.answers.clone();
        answers.sort();
        let median = percentile(&latencies, 50.0);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let share = |cpu: Duration| {
            format!(
                "{:.2} s | {:.0}% | {:.0} µs |",
                cpu.as_secs_f64(),
                percent(cpu, c.elapsed),
                cpu.as_secs_f64() * 1e6 / files as f64
            )
        };
        let verdict = |met: bool| match (config.full, met) {
            (false, _) => "(smoke run: not judged)",
            (true, true) => "met",
            (true, false) => "**missed**",
        };

        let mut out = String::new();
        let _ =
            writeln!(out, "\n## Sync benchmark ({})\n", if config.full { "full" } else { "smoke" });
        let _ = writeln!(out, "{}\n", machine(cores));
        let _ = writeln!(
            out,
            "{} accounts × {} notes ({} notes of {:.1} KB on average) on {}; worker `WORKER_ACCOUNTS` = {}; \
             {} latency samples, {} new notes; the emulator answers each call after {} ms.\n",
            config.accounts,
            config.files,
            files,
            c.note_bytes as f64 / 1000.0,
            match self.redis.cluster {
                true => format!("a Redis Cluster of {} masters", self.spread.len()),
                false => "one Redis".to_owned(),
            },
            self.worker_accounts,
            config.samples,
            self.new_notes.samples.len(),
            config.latency.as_millis()
        );
        let _ = writeln!(out, "| figure | measured | goal |");
        let _ = writeln!(out, "|---|---|---|");
        // The goals (issue 15): on loopback, throughput; at Dropbox's latency, the time a
        // first pass takes, which is mostly waiting.
        let waiting = !config.latency.is_zero();
        let time_goal = match waiting {
            true => format!("≤ 10 s: {}", verdict(c.elapsed <= Duration::from_secs(10))),
            false => String::new(),
        };
        let _ = writeln!(
            out,
            "| time until every `.html` exists (from the first enqueue; enqueueing took {:.0} ms, saving the tokens before it {:.0} ms) | **{:.2} s** | {time_goal} |",
            ms(c.enqueued),
            ms(self.saving_tokens),
            c.elapsed.as_secs_f64()
        );
        let rate_goal = match waiting {
            true => String::new(),
            false => format!("≥ 6,000: {}", verdict(rate >= 6000.0)),
        };
        let _ = writeln!(out, "| conversions/s | **{rate:.0}** | {rate_goal} |");
        let _ = writeln!(
            out,
            "| content calls per converted file (download + upload; upload sessions {}), and batch commits | **{content_per_file:.3}** ({} + {}), {} commits | 2 per file (refused calls sent again aside), one commit per batch: {} |",
            c.calls.content() - c.calls.route("files/download") - c.calls.route("files/upload"),
            c.calls.route("files/download"),
            c.calls.route("files/upload"),
            c.calls.route("files/upload_session/finish_batch_v2"),
            verdict(c.calls.content() <= 2 * files + c.refusals.rate_limit)
        );
        // Rate-limit refusals are how an account's bound on calls in flight finds Dropbox's
        // (src/dropbox/concurrency.rs): a few are the design, and each is waited out.
        let _ = writeln!(
            out,
            "| 429s the emulator answered while converging: write-lock refusals / rate-limit refusals | {} / {} | 0 write-lock refusals: {} |",
            c.refusals.write_lock,
            c.refusals.rate_limit,
            verdict(c.refusals.write_lock == 0)
        );
        let _ = writeln!(
            out,
            "| all API calls per converted file | {all_per_file:.3} ({}) | |",
            c.calls.listing()
        );
        let _ = writeln!(
            out,
            "| worker peak RSS (`VmHWM`, both phases) | **{rss_mb:.1} MiB** | ≤ 100 MB: {} |",
            verdict(self.peak_rss_kib as f64 * 1024.0 <= 100e6)
        );
        // A change costs three calls in a row (list, download, upload): at Dropbox's latency,
        // three times it; on loopback, what markdrop itself takes.
        let (latency_goal, latency_bound) = match waiting {
            true => ("≤ 3 × the latency", config.latency * 3),
            false => ("≤ 20 ms", Duration::from_millis(20)),
        };
        let _ = writeln!(
            out,
            "| single-change latency, webhook sent → `.html` uploaded: median | **{:.2} ms** | {latency_goal}: {} |",
            ms(median),
            verdict(median <= latency_bound)
        );
        let _ = writeln!(
            out,
            "| … p90 / p99 / max | {:.2} / {:.2} / {:.2} ms | |",
            ms(percentile(&latencies, 90.0)),
            ms(percentile(&latencies, 99.0)),
            ms(latencies.last().copied().unwrap_or_default())
        );
        let _ = writeln!(
            out,
            "| … the web app's answer to the webhook alone: median / p99 | {:.2} / {:.2} ms | |",
            ms(percentile(&answers, 50.0)),
            ms(percentile(&answers, 99.0))
        );
        let _ = writeln!(
            out,
            "| API calls per single change | {:.2} ({}) | |",
            l.calls.all() as f64 / config.samples as f64,
            l.calls.listing()
        );
        let mut new_latencies = self.new_notes.samples.clone();
        new_latencies.sort();
        let _ = writeln!(
            out,
            "| new-note latency (its page looked up first): median / p99 | {:.2} / {:.2} ms | |",
            ms(percentile(&new_latencies, 50.0)),
            ms(percentile(&new_latencies, 99.0))
        );
        let _ = writeln!(
            out,
            "| API calls per new note | {:.2} ({}) | |",
            self.new_notes.calls.all() as f64 / new_latencies.len().max(1) as f64,
            self.new_notes.calls.listing()
        );
        let r = &self.restyle;
        let _ = writeln!(
            out,
            "| settings change (a `markdrop.toml` at the top of an account of {} notes chooses another theme): every page converted again | **{:.2} s** | {} calls ({}) |",
            r.notes,
            r.elapsed.as_secs_f64(),
            r.calls.all(),
            r.calls.listing()
        );
        let _ = writeln!(
            out,
            "\nCPU time (user + system) while converging ({:.2} s on {cores} cores):\n",
            c.elapsed.as_secs_f64()
        );
        let _ = writeln!(out, "| process | CPU | of one core | per conversion |");
        let _ = writeln!(out, "|---|---|---|---|");
        let _ = writeln!(out, "| worker | {}", share(c.during.worker));
        let _ = writeln!(
            out,
            "| this process: emulator, web app, convergence checks ({:.0} ms of them) | {}",
            ms(c.polling),
            share(c.during.bench)
        );
        let _ = writeln!(out, "| Redis (every node) | {}", share(c.during.redis));
        if self.redis.cluster {
            let keys: usize = self.spread.iter().map(|node| node.keys).sum();
            let _ = writeln!(out, "\nThe run's {keys} keys over the nodes, after converging:\n");
            let _ = writeln!(out, "| node | keys | share | `used_memory` |");
            let _ = writeln!(out, "|---|---|---|---|");
            for (n, node) in self.spread.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.1}% | {:.1} MiB |",
                    n + 1,
                    node.keys,
                    node.keys as f64 * 100.0 / keys.max(1) as f64,
                    node.used_memory as f64 / (1024.0 * 1024.0)
                );
            }
        }
        let _ = writeln!(
            out,
            "\nWhile sampling latency: worker {:.1} ms, this process {:.1} ms, Redis {:.1} ms of CPU per change \
             (the waits between changes included).",
            ms(per(l.during.worker, config.samples)),
            ms(per(l.during.bench, config.samples)),
            ms(per(l.during.redis, config.samples))
        );
        let _ = writeln!(
            out,
            "Percentiles are nearest-rank; each sample looks for its `.html` every {} µs.",
            LATENCY_POLL.as_micros()
        );
        let _ = writeln!(out, "\nWorker exit: {}. Log: {}.", self.exit, self.log.display());
        if self.problems.is_empty() {
            let _ = writeln!(out, "No WARN or ERROR line in the worker's log.");
        } else {
            let _ = writeln!(
                out,
                "{} WARN/ERROR lines in the worker's log; the first ones:",
                self.problems.len()
            );
            for line in self.problems.iter().take(20) {
                let _ = writeln!(out, "    {line}");
            }
        }
        out
    }
}

fn per(total: Duration, count: usize) -> Duration {
    total / count.max(1) as u32
}

fn percent(part: Duration, whole: Duration) -> f64 {
    100.0 * part.as_secs_f64() / whole.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Cores, memory, CPU, date, commit and compiler, for BENCHMARKS.md.
fn machine(cores: usize) -> String {
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or("?".to_owned(), |kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|name| name.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    let commit = command_output("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    let dirty = command_output("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|changes| !changes.is_empty());
    let rustc = command_output("rustc", &["--version"]).unwrap_or_default();
    format!(
        "Measured {date} on {cores} cores ({cpu}), {memory_gib}; commit {commit}{}; {rustc}; \
         worker built with the `{}` profile.",
        if dirty { " with uncommitted changes" } else { "" },
        if cfg!(debug_assertions) { "debug" } else { "release" }
    )
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos())
}

fn md_path(file: usize) -> String {
    format!("/notes/n{file}.md")
}

fn html_path(file: usize) -> String {
    format!("/notes/n{file}.html")
}

fn stem(file: usize) -> String {
    format!("n{file}")
}

/// A realistic note of about 3 KB: headings, lists, a task list, a table, code, a footnote.
/// `revision` changes its text, so each latency sample uploads a new document.
fn note(account: usize, file: usize, revision: usize) -> String {
    format!(
        "# Project notes {account}.{file}\n\n\
         Revision {revision}. Notes from the weekly sync, kept in Dropbox so everyone can read\n\
         them on any device. The *HTML copy* is what we share with people outside the team.\n\n\
         {NOTE_BODY}"
    )
}

const NOTE_BODY: &str = r#"## Agenda

1. Status of the **sync worker** and the queue
2. Rendering: tables, footnotes[^render] and task lists
3. Deployment to the staging dyno
4. Anything else

## Decisions

- Keep one pending pass per account, however many notifications arrive.
- Uploads go one at a time per account; downloads may run ahead.
- Leases expire after 15 seconds, so a crashed worker's accounts are picked up quickly.
- ~~Poll Dropbox every minute~~ Webhooks only, with a sweep at start-up.

### Action items

- [x] Write the benchmark for the webhook endpoint
- [x] Measure rendering overhead against bare `push_html`
- [ ] Benchmark the worker end to end
- [ ] Update the README with the figures

## Figures

| Step | Median | p99 | Notes |
|---|---:|---:|---|
| Webhook answered | 1.0 ms | 3.4 ms | signed, verified, queued |
| Note downloaded | 0.4 ms | 1.2 ms | loopback |
| Note rendered | 0.1 ms | 0.3 ms | 3 KB of Markdown |
| HTML uploaded | 0.5 ms | 1.5 ms | overwrite mode |

## Code

The pass, in short:

```rust
for entry in page.entries {
    if is_markdown(&entry.name) && entry.content_hash != record.source_hash {
        let markdown = client.download(&entry.path).await?;
        let document = render(&markdown, stem(&entry.name));
        client.upload(&html_path(&entry.path), document).await?;
    }
}
```

And the shell one-liner we use to check a folder:

```sh
find ~/Dropbox/notes -name '*.md' | while read -r f; do test -f "${f%.md}.html" || echo "$f"; done
```

## Discussion

Most of the hour went to the queue. A notification only says *which* account changed, never
which file, so every pass starts from the account's cursor and lists what changed since. Three
points came up again and again:

- **Fairness.** A busy account must not starve the others: each pass converts what it listed
  and then goes to the back of the queue, and a change during the pass queues exactly one more.
- **Crashes.** A worker may die at any moment. The lease runs out, another worker takes the
  account over and resumes from the last committed cursor; the file records make sure nothing
  already uploaded is uploaded again.
- **Rate limits.** Dropbox answers 429 with a `Retry-After`; the account waits that long (plus
  a little jitter) while the others carry on.

We also looked at the account page, which shows the 20 most recent conversions and the state
of the last pass, so people can tell at a glance whether a note was converted and when.

## Open questions

> Should a note larger than 10 MiB be split, or only reported? For now it is reported on the
> account page, with its size and the limit.

Someone asked whether `.markdown` files count too. Not yet: only `.md`, in any case, so
`README.MD` and `notes.Md` are converted. See the [design notes](https://example.com/design)
for the reasoning, and the [Dropbox API docs](https://www.dropbox.com/developers/documentation)
for what a cursor is.

[^render]: Footnotes are numbered in reading order and listed at the end of the document.
"#;
