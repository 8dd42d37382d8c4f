//! `markdrop migrate`: a store that markdrop wrote before shards (`tests/data/redis-v1.jsonl`,
//! four accounts) is loaded under an old, hash-tagged prefix with raw commands; the real binary
//! moves it; and a store on the new prefix must answer as the old one did. The main cases run
//! on the single Redis `scripts/test` starts and on its Redis Cluster.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use markdrop::account::AccountId;
use markdrop::clock::ManualClock;
use markdrop::store::{ClaimOutcome, Store};
use redis::FromRedisValue;

use crate::support::processes::{Processes, exit_of};
use crate::support::store::{open_redis, open_redis_cluster, redis_cluster_url, redis_url};
use crate::support::{ALICE, BOB, SECRET_KEY, unique_prefix};

const CAROL: &str = "dbid:AACarol00000000000000000000000000000000";
const DAVE: &str = "dbid:AADave000000000000000000000000000000000";
const ACCOUNTS: [&str; 4] = [ALICE, BOB, CAROL, DAVE];
const FIXTURE: &str = include_str!("../data/redis-v1.jsonl");

async fn migration_keeps_every_token_cursor_record_and_queued_account(target: Target) {
    let (old, new) = prefixes("migrate-keeps");
    let mut raw = target.raw().await;
    let fixture = Fixture::load(&mut raw, &old).await;

    let run = target.migrate(&new, &["--from-prefix", &old]).await;
    assert!(run.status.success(), "{run:?}");
    let layout: Option<String> = raw.run(redis::cmd("GET").arg(format!("{new}layout"))).await;
    assert_eq!(layout.as_deref(), Some("shards=1024"), "the new layout is marked");
    assert!(
        run.stdout.contains(
            "migrated 4 accounts to 1024 shards (4 with tokens, 2 with a cursor, 2 queued, 1 retrying); metrics copied"
        ),
        "{run:?}"
    );
    for sealed in fixture.hash("tokens").values() {
        assert!(!run.stdout.contains(sealed) && !run.stderr.contains(sealed), "a token printed");
    }

    let time = ManualClock::new();
    let store = target.store(&new).with_clock(time.clock());
    let answers = Answers::of(&store).await;
    for account in ACCOUNTS {
        assert!(answers.linked[account], "{account}'s tokens open");
        assert_eq!(answers.names[account].as_ref(), fixture.hash("names").get(account));
        assert_eq!(answers.links[account].as_ref(), fixture.hash("links").get(account));
        let has_status = answers.statuses[account].is_some();
        assert_eq!(has_status, fixture.hash("status").contains_key(account), "{account}");
    }
    assert_eq!(answers.queued, [CAROL, BOB], "queued as before, soonest first");
    assert_eq!(answers.alice.notes, fixture.hash(&format!("notes:{ALICE}")));
    assert_eq!(answers.alice.attachments, fixture.hash(&format!("attachments:{ALICE}")));
    let records = &answers.alice.records;
    let html: Vec<_> = records.iter().map(|record| record.as_ref().map(|r| &r.html_path)).collect();
    assert_eq!(html, [Some(&"/Ideas.html".to_owned()), Some(&"/Notes/Plan.html".to_owned())]);
    let settings = answers.alice.settings.get("/markdrop.toml").expect("Alice's settings record");
    assert_eq!(settings.path, "/markdrop.toml");
    assert_eq!(answers.metrics, BTreeMap::from([("markdrop_conversions_total".to_owned(), 7)]));

    // Every old due time has passed (Alice's retry is the last), so all of it is due now.
    let until_latest = fixture.latest_score().saturating_sub(time.clock().now_millis());
    time.advance(Duration::from_millis(until_latest + 1));
    let claims = claim_all(&store).await;
    let claimed: Vec<&str> = claims.keys().map(String::as_str).collect();
    assert_eq!(claimed, [BOB, CAROL, ALICE], "the queued accounts and Alice's retry, by id");
    for (account, claim) in &claims {
        assert_eq!(Some(&claim.sealed_tokens), fixture.hash("tokens").get(account));
        assert!(claim.tokens.is_some(), "{account}'s tokens open in a claim");
    }
    assert_eq!(claims[ALICE].cursor.as_deref(), Some("AAAcursor-alice"));
    assert_eq!((claims[BOB].failures, claims[BOB].generation), (1, 1));
    assert_eq!((claims[CAROL].failures, claims[CAROL].generation), (0, 2));
    store.enqueue(&[account(DAVE)]).await.expect("enqueue Dave");
    let dave = claim_all(&store).await;
    assert_eq!(dave[DAVE].cursor.as_deref(), Some("AAAcursor-dave"), "Dave resumes");
}

async fn a_second_run_changes_nothing_and_delete_old_removes_only_the_old_keys(target: Target) {
    let (old, new) = prefixes("migrate-again");
    let mut raw = target.raw().await;
    Fixture::load(&mut raw, &old).await;
    assert!(target.migrate(&new, &["--from-prefix", &old]).await.status.success());
    let store = target.store(&new);
    let first = Answers::of(&store).await;
    let new_keys = raw.keys(&new).await;
    assert!(new_keys.len() > 10, "the new layout is written: {new_keys:?}");

    let again = target.migrate(&new, &["--from-prefix", &old]).await;
    assert!(again.status.success(), "{again:?}");
    assert!(again.stdout.contains("already migrated 4 accounts"), "{again:?}");
    assert_eq!(Answers::of(&target.store(&new)).await, first);
    assert_eq!(raw.keys(&new).await, new_keys);

    let delete = target.migrate(&new, &["--from-prefix", &old, "--delete-old"]).await;
    assert!(delete.status.success(), "{delete:?}");
    assert!(delete.stdout.contains("old keys deleted"), "{delete:?}");
    assert_eq!(raw.keys(&old).await, Vec::<String>::new(), "no old key is left");
    assert_eq!(raw.keys(&new).await, new_keys, "the new keys are untouched");
    assert_eq!(Answers::of(&target.store(&new)).await, first);
}

/// Runs each named `async fn(Target)` of the calling module as a test on the single Redis
/// (`single::<name>`) and on the cluster (`cluster::<name>`).
macro_rules! on_both_targets {
    ($($name:ident),* $(,)?) => {
        mod single {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Target::Single).await
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Target::Cluster).await
                }
            )*
        }
    };
}

on_both_targets!(
    migration_keeps_every_token_cursor_record_and_queued_account,
    a_second_run_changes_nothing_and_delete_old_removes_only_the_old_keys,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_refuses_while_an_old_lease_is_held_and_writes_nothing() {
    let target = Target::Single;
    let (old, new) = prefixes("migrate-leased");
    let mut raw = target.raw().await;
    Fixture::load(&mut raw, &old).await;
    let lease = redis::cmd("SET")
        .arg(format!("{old}lease:{BOB}"))
        .arg("worker")
        .arg("PX")
        .arg(60_000)
        .clone();
    raw.run::<()>(&lease).await;

    let run = target.migrate(&new, &["--from-prefix", &old]).await;
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert_eq!(run.stderr.trim().lines().count(), 1, "one line: {run:?}");
    assert!(run.stderr.contains("stop every `web` and `worker` process"), "{run:?}");
    assert!(run.stderr.contains("wait 60 s"), "{run:?}");
    assert_eq!(raw.keys(&new).await, Vec::<String>::new(), "nothing written under the new prefix");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_refuses_while_an_idle_old_worker_waits_for_work_and_writes_nothing() {
    let target = Target::Single;
    let (old, new) = prefixes("migrate-listening");
    let mut raw = target.raw().await;
    Fixture::load(&mut raw, &old).await;
    // An old worker between passes: no lease, but subscribed to its wake-ups.
    let client = redis::Client::open(redis_url()).expect("a Redis URL");
    let mut idle_worker = client.get_async_pubsub().await.expect("a pub/sub connection");
    idle_worker.subscribe(format!("{old}wake")).await.expect("subscribe");

    let run = target.migrate(&new, &["--from-prefix", &old]).await;
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("1 markdrop processes still wait for work"), "{run:?}");
    assert!(run.stderr.contains("stop every `web` and `worker` process"), "{run:?}");
    assert_eq!(raw.keys(&new).await, Vec::<String>::new(), "nothing written under the new prefix");
    drop(idle_worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_in_place_keeps_the_metrics_once_and_lets_processes_start_again() {
    let target = Target::Single;
    let prefix = unique_prefix("migrate-in-place");
    let mut raw = target.raw().await;
    Fixture::load(&mut raw, &prefix).await;
    let refused = target.store(&prefix).ping().await.expect_err("the old layout is refused");
    assert!(refused.to_string().contains("run `markdrop migrate`"), "{refused}");

    let run = target.migrate(&prefix, &["--delete-old"]).await;
    assert!(run.status.success(), "{run:?}");
    assert!(run.stdout.contains("migrated 4 accounts"), "{run:?}");
    assert!(!run.stdout.contains("metrics copied"), "they are the same key: {run:?}");
    let store = target.store(&prefix);
    for id in ACCOUNTS {
        assert!(store.tokens(&account(id)).await.expect("tokens").is_some(), "{id} is linked");
    }
    let metrics = store.metrics().await.expect("metrics");
    assert_eq!(metrics, BTreeMap::from([("markdrop_conversions_total".to_owned(), 7)]));
    let outside_shards: Vec<String> =
        raw.keys(&prefix).await.into_iter().filter(|key| !key.contains("{s")).collect();
    assert_eq!(outside_shards, [format!("{prefix}layout"), format!("{prefix}metrics")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_refuses_keys_laid_out_for_another_number_of_shards() {
    let target = Target::Single;
    let (old, new) = prefixes("migrate-shards");
    let mut raw = target.raw().await;
    Fixture::load(&mut raw, &old).await;
    assert!(target.migrate(&new, &["--from-prefix", &old]).await.status.success());
    let new_keys = raw.keys(&new).await;

    let mut command = target.migrate_command(&new);
    command.args(["--from-prefix", &old]).env("REDIS_SHARDS", "16");
    let run = output(&mut command).await;
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("set REDIS_SHARDS to the deployment's number"), "{run:?}");
    assert_eq!(raw.keys(&new).await, new_keys, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_after_an_account_was_unlinked_neither_brings_it_back_nor_deletes_the_old_keys() {
    let target = Target::Single;
    let (old, new) = prefixes("migrate-unlinked");
    let mut raw = target.raw().await;
    Fixture::load(&mut raw, &old).await;
    assert!(target.migrate(&new, &["--from-prefix", &old]).await.status.success());
    let store = target.store(&new);
    store.forget_account(&account(DAVE)).await.expect("Dave unlinks");
    let old_keys = raw.keys(&old).await;

    let run = target.migrate(&new, &["--from-prefix", &old, "--delete-old"]).await;
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains(&format!("(first: {DAVE}), so nothing was copied")), "{run:?}");
    assert!(store.tokens(&account(DAVE)).await.expect("tokens").is_none(), "still unlinked");
    assert_eq!(raw.keys(&old).await, old_keys, "the old keys are kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_needs_only_redis_url_and_names_it_when_missing() {
    let run = output(Command::new(env!("CARGO_BIN_EXE_markdrop")).arg("migrate").env_clear()).await;
    assert_eq!(run.status.code(), Some(2), "a configuration problem: {run:?}");
    assert!(run.stderr.starts_with("markdrop: REDIS_URL is not set"), "{run:?}");
}

/// A unique old prefix, hash-tagged as old cluster deployments had it, and a new one.
fn prefixes(test: &str) -> (String, String) {
    (format!("{}{{old}}:", unique_prefix(test)), unique_prefix(test))
}

fn account(id: &str) -> AccountId {
    AccountId::parse(id).expect("an account id")
}

/// Claims until nothing is due, by account.
async fn claim_all(store: &Store) -> BTreeMap<String, markdrop::store::Claim> {
    let mut claims = BTreeMap::new();
    while let ClaimOutcome::Claimed(claim) =
        store.claim(Duration::from_secs(30)).await.expect("claim")
    {
        let previous = claims.insert(claim.lease.account().to_string(), *claim);
        assert!(previous.is_none(), "an account claimed twice");
    }
    claims
}

/// What the store on the new prefix answers, through its public calls only.
#[derive(Debug, PartialEq)]
struct Answers {
    linked: BTreeMap<&'static str, bool>,
    names: BTreeMap<&'static str, Option<String>>,
    links: BTreeMap<&'static str, Option<String>>,
    statuses: BTreeMap<&'static str, Option<markdrop::store::AccountStatus>>,
    queued: Vec<String>,
    alice: Records,
    metrics: BTreeMap<String, u64>,
}

/// Alice's records, the only account with any.
#[derive(Debug, PartialEq)]
struct Records {
    records: Vec<Option<markdrop::store::FileRecord>>,
    notes: HashMap<String, String>,
    attachments: HashMap<String, String>,
    settings: HashMap<String, markdrop::store::SettingsRecord>,
}

impl Answers {
    async fn of(store: &Store) -> Answers {
        let (mut linked, mut names, mut links) =
            (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let mut statuses = BTreeMap::new();
        for id in ACCOUNTS {
            let account = account(id);
            linked.insert(id, store.tokens(&account).await.expect("tokens").is_some());
            names.insert(id, store.display_name(&account).await.expect("name"));
            links.insert(id, store.current_link_id(&account).await.expect("link id"));
            statuses.insert(id, store.status(&account).await.expect("status"));
        }
        let alice = account(ALICE);
        let paths = ["/ideas.md".to_owned(), "/notes/plan.md".to_owned()];
        Answers {
            linked,
            names,
            links,
            statuses,
            queued: store.queued().await.expect("queued").iter().map(|a| a.to_string()).collect(),
            alice: Records {
                records: store.file_records(&alice, &paths).await.expect("records"),
                notes: store.note_paths(&alice).await.expect("note paths"),
                attachments: store.attachments(&alice).await.expect("attachments"),
                settings: store.settings_files(&alice).await.expect("settings"),
            },
            metrics: store.metrics().await.expect("metrics"),
        }
    }
}

/// The old store, as the fixture holds it.
struct Fixture(Vec<serde_json::Value>);

impl Fixture {
    /// Writes the fixture's keys under `prefix` with raw commands, as the old markdrop had them.
    async fn load(raw: &mut Raw, prefix: &str) -> Fixture {
        let entries: Vec<serde_json::Value> =
            FIXTURE.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect();
        for entry in &entries {
            let key = format!("{prefix}{}", entry["key"].as_str().expect("a key"));
            let mut command = redis::Cmd::new();
            if let Some(hash) = entry["hash"].as_object() {
                command.arg("HSET").arg(&key);
                for (field, value) in hash {
                    command.arg(field).arg(value.as_str().expect("a string value"));
                }
            } else if let Some(members) = entry["zset"].as_array() {
                command.arg("ZADD").arg(&key);
                for member in members {
                    command
                        .arg(member[1].as_u64().expect("a score"))
                        .arg(member[0].as_str().expect("a member"));
                }
            } else {
                command.arg("SET").arg(&key).arg(entry["string"].as_str().expect("a string"));
            }
            raw.run::<()>(&command).await;
        }
        Fixture(entries)
    }

    /// The hash at `key` (after the prefix).
    fn hash(&self, key: &str) -> HashMap<String, String> {
        let entry = self.0.iter().find(|entry| entry["key"] == key).expect("a key of the fixture");
        serde_json::from_value(entry["hash"].clone()).expect("a hash")
    }

    /// The latest due time in the old queues (ms).
    fn latest_score(&self) -> u64 {
        let members = self.0.iter().filter_map(|entry| entry["zset"].as_array()).flatten();
        members.filter_map(|member| member[1].as_u64()).max().expect("queued accounts")
    }
}

/// Which Redis a migration runs on.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The Redis `scripts/test` starts.
    Single,
    /// The Redis Cluster whose nodes `MARKDROP_TEST_REDIS_CLUSTER_URL` names.
    Cluster,
}

impl Target {
    fn urls(self) -> String {
        match self {
            Target::Single => redis_url(),
            Target::Cluster => redis_cluster_url(),
        }
    }

    fn store(self, prefix: &str) -> Store {
        match self {
            Target::Single => open_redis(&self.urls(), prefix, SECRET_KEY),
            Target::Cluster => open_redis_cluster(&self.urls(), prefix, SECRET_KEY),
        }
    }

    async fn raw(self) -> Raw {
        let urls = self.urls();
        match self {
            Target::Single => {
                let client = redis::Client::open(urls).expect("a Redis URL");
                Raw::Single(client.get_multiplexed_async_connection().await.expect("Redis"))
            }
            Target::Cluster => {
                let client = redis::cluster::ClusterClient::new(urls.split(',').map(str::trim))
                    .expect("the cluster's URLs");
                Raw::Cluster(client.get_async_connection().await.expect("the cluster"))
            }
        }
    }

    /// `markdrop migrate` to the keys under `new`, with nothing in its environment but the
    /// Redis settings: it needs neither Dropbox's keys nor `SECRET_KEY`.
    fn migrate_command(self, new: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_markdrop"));
        command
            .arg("migrate")
            .env_clear()
            .env("REDIS_URL", self.urls())
            .env("REDIS_CLUSTER", matches!(self, Target::Cluster).to_string())
            .env("REDIS_KEY_PREFIX", new);
        command
    }

    /// Runs `markdrop migrate <args>` to the keys under `new`.
    async fn migrate(self, new: &str, args: &[&str]) -> Run {
        output(self.migrate_command(new).args(args)).await
    }
}

/// How a `markdrop` process ended and what it wrote.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `command` to its end, failing the test if it takes past the deadline.
async fn output(command: &mut Command) -> Run {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut children = Processes(vec![command.spawn().expect("start markdrop")]);
    let child = &mut children.0[0];
    // Its output is a line or two, far below a pipe's buffer, so it cannot block on a write.
    let status = exit_of(child).await;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().expect("piped").read_to_string(&mut stdout).expect("stdout");
    child.stderr.take().expect("piped").read_to_string(&mut stderr).expect("stderr");
    Run { status, stdout, stderr }
}

/// Raw commands to the Redis or the cluster, bypassing markdrop.
enum Raw {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Raw {
    async fn run<T: FromRedisValue>(&mut self, command: &redis::Cmd) -> T {
        let reply = match self {
            Raw::Single(connection) => command.query_async(connection).await,
            Raw::Cluster(connection) => command.query_async(connection).await,
        };
        reply.unwrap_or_else(|error| panic!("a raw Redis command failed: {error}"))
    }

    /// Every key under `prefix`, sorted (KEYS: on a cluster it asks every primary).
    async fn keys(&mut self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.run(redis::cmd("KEYS").arg(format!("{prefix}*"))).await;
        keys.sort();
        keys
    }
}
