//! The Redis backend (Redis ≥ 6.2, or a Redis Cluster), shared by every `web` and `worker`
//! process.
//!
//! Accounts are divided into shards ([`keys`]); each shard has its own queue and its own
//! hashes, and every key of a shard carries the shard as its hash tag, so a cluster spreads
//! shards over its nodes while each script touches one slot. Keys, each after the configured
//! prefix (`REDIS_KEY_PREFIX`) and the shard's tag `{s<n>}:`:
//!
//! | key | type | role |
//! |---|---|---|
//! | `ready` | sorted set | one member per account with work; score = when it is due (ms) |
//! | `retries` | sorted set | accounts with notes waiting for a retry; score = when the soonest is due (ms) |
//! | `tokens` | hash | account → sealed token record |
//! | `cursors` | hash | account → `list_folder` cursor |
//! | `failures` | hash | account → passes failed in a row, for the backoff |
//! | `names` | hash | account → display name, for the account page |
//! | `status` | hash | account → sync status (JSON), for the account page |
//! | `links` | hash | account → link id, which signed-in sessions must match |
//! | `gen:<account>` | counter | bumped by every notification, so a pass can tell it missed one |
//! | `lease:<account>` | string, PX TTL | random token of the worker holding the account |
//! | `files:<account>` | hash | `.md` lower-case path → [`super::FileRecord`] (JSON) |
//! | `attachments:<account>` | hash | lower-case path → display path |
//! | `notes:<account>` | hash | `.md` lower-case path → display path |
//! | `settings:<account>` | hash | `markdrop.toml` lower-case path → its record (JSON) |
//!
//! Two keys belong to no shard, right after the prefix: `metrics` (hash: series → count, added
//! to by every process, `crate::metrics`) and `layout` (`shards=<n>`, so a process with another
//! `REDIS_SHARDS` refuses to run against the keys).
//!
//! Every multi-step change is one Lua script (`src/store/redis/lua/`), so it is atomic without
//! locks. Idle workers learn of new work on the channel `<prefix>wake`, whose messages name the
//! shard, instead of polling Redis; which shard a claim looks at is [`schedule`]'s business.

mod connection;
mod keys;
pub mod migrate;
mod schedule;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::{AsyncCommands, Script};
use tokio::sync::OnceCell;

use self::connection::{Connection, Endpoint};
pub use self::keys::{Keys, Shard};
use self::schedule::ShardSchedule;
use super::codec::EncodedChanges;
use super::work::{ClaimOutcome, Completion, Lease, LeaseError, StoredClaim};
use super::{QueueDepth, StoreError};
use crate::account::AccountId;
use crate::config::RedisSettings;

/// Calls to different shards in flight at once, for the calls that ask every shard (the
/// claim's look at shards it has not heard from, the queue's size).
const SHARDS_IN_FLIGHT: usize = 64;
/// How long a claim starts new batches of questions for, and tries due shards for (twice at
/// most): a healthy Redis answers a thousand questions in milliseconds, and the three together
/// stay within the store's call deadline (2 s).
const ASK_BUDGET: Duration = Duration::from_millis(400);
const CLAIMS_BUDGET: Duration = Duration::from_millis(400);
/// Shards asked in one batch, and at once. More at once ask faster, but with a master down
/// the cluster client (redis 0.32) stops answering for every node once about 64 calls to the
/// down one are pending; 16 keeps it answering (the node-restart test fails at 64).
const ASK_BATCH: usize = 128;
const ASK_IN_FLIGHT: usize = 16;
/// How long after a layout check that got no answer it is tried again.
const LAYOUT_RETRY: Duration = Duration::from_secs(5);
/// How long one shard may take to answer a claim's question or script.
const SHARD_DEADLINE: Duration = Duration::from_millis(300);

#[derive(Clone)]
pub struct RedisStore {
    endpoint: Arc<Endpoint>,
    /// Made on first use and kept: it reconnects by itself after Redis restarts (or a cluster
    /// node fails over), and a process that starts while Redis is down serves (503s) instead
    /// of crashing.
    connection: Arc<OnceCell<Connection>>,
    keys: Keys,
    scripts: Arc<Scripts>,
    schedule: Arc<ShardSchedule>,
    layout: Arc<LayoutCheck>,
}

/// Whether the keys are known to be laid out as this process lays them out.
#[derive(Default)]
struct LayoutCheck {
    checked: std::sync::atomic::AtomicBool,
    /// When the check was last tried without an answer.
    tried_at: std::sync::Mutex<Option<Instant>>,
}

impl LayoutCheck {
    /// Whether to try the check now: not again within [`LAYOUT_RETRY`] of a try that got no
    /// answer, so calls to the other shards are not each held up by it.
    fn due(&self) -> bool {
        let mut tried_at = self.tried_at.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if tried_at.is_some_and(|tried| now.duration_since(tried) < LAYOUT_RETRY) {
            return false;
        }
        *tried_at = Some(now);
        true
    }
}

/// The Lua scripts, each sent once and then called by its SHA1.
struct Scripts {
    enqueue: Script,
    claim: Script,
    renew: Script,
    commit: Script,
    complete: Script,
    reschedule: Script,
    unlink: Script,
    replace_tokens: Script,
    forget: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            enqueue: Script::new(include_str!("lua/enqueue.lua")),
            claim: Script::new(include_str!("lua/claim.lua")),
            renew: Script::new(include_str!("lua/renew.lua")),
            commit: Script::new(include_str!("lua/commit.lua")),
            complete: Script::new(include_str!("lua/complete.lua")),
            reschedule: Script::new(include_str!("lua/reschedule.lua")),
            unlink: Script::new(include_str!("lua/unlink.lua")),
            replace_tokens: Script::new(include_str!("lua/replace_tokens.lua")),
            forget: Script::new(include_str!("lua/forget.lua")),
        }
    }
}

impl RedisStore {
    /// Reaches Redis as `settings` say: one server (`redis://`, `rediss://`; a managed Redis's
    /// self-signed certificate is accepted with `rediss://…#insecure`, as Heroku requires), or a
    /// cluster through any of its nodes. Keys start with the settings' prefix, so several
    /// deployments or tests can share one Redis.
    ///
    /// Only the URLs are checked here: a Redis that cannot be reached yet is not an error, each
    /// call reports its own failure and the next one tries again.
    pub(super) fn new(settings: &RedisSettings) -> Result<RedisStore, StoreError> {
        let keys = Keys::new(&settings.key_prefix, settings.shards);
        Ok(RedisStore {
            endpoint: Arc::new(Endpoint::new(settings)?),
            connection: Arc::new(OnceCell::new()),
            schedule: Arc::new(ShardSchedule::new(usize::from(settings.shards.get()))),
            layout: Arc::new(LayoutCheck::default()),
            keys,
            scripts: Arc::new(Scripts::new()),
        })
    }

    /// The shared connection, made now if it does not exist yet. Until the keys are known to
    /// be laid out as this process lays them out, each call checks first; keys laid out
    /// otherwise fail it. A layout key out of reach (its cluster node is down) is no reason to
    /// hold up the other shards: the check is made again, at most every [`LAYOUT_RETRY`].
    async fn connection(&self) -> Result<Connection, StoreError> {
        let connection = self
            .connection
            .get_or_try_init(|| async { Ok::<_, StoreError>(self.endpoint.connect().await?) })
            .await?
            .clone();
        if !self.layout.checked.load(std::sync::atomic::Ordering::Acquire) && self.layout.due() {
            let mut checking = connection.clone();
            let check = tokio::time::timeout(SHARD_DEADLINE, self.check_layout(&mut checking));
            match check.await.unwrap_or_else(|_| Err(no_answer())) {
                Ok(()) => self.layout.checked.store(true, std::sync::atomic::Ordering::Release),
                Err(error) if error.is_laid_out_otherwise() => return Err(error),
                Err(_) => {}
            }
        }
        Ok(connection)
    }

    /// Refuses keys laid out otherwise: by another `REDIS_SHARDS`, or before shards (they need
    /// `markdrop migrate`). A Redis with neither gets this process's layout.
    async fn check_layout(&self, connection: &mut Connection) -> Result<(), StoreError> {
        let wanted = self.keys.layout_marker();
        let found: Option<String> = connection.get(self.keys.layout()).await?;
        match found {
            Some(found) if found == wanted => Ok(()),
            Some(found) => Err(StoreError::laid_out_otherwise(format!(
                "the keys under this REDIS_KEY_PREFIX are laid out in {found} but REDIS_SHARDS asks for {}; set REDIS_SHARDS to the deployment's number",
                self.keys.shard_count()
            ))),
            None => {
                if self.laid_out_before_shards(connection).await? {
                    return Err(StoreError::laid_out_otherwise(
                        "the keys under this REDIS_KEY_PREFIX are laid out as before shards; stop every process and run `markdrop migrate` (docs/OPERATIONS.md §2)".to_owned(),
                    ));
                }
                // Two processes starting at once agree: the second one reads the first's.
                let _: bool = connection.set_nx(self.keys.layout(), &wanted).await?;
                let found: Option<String> = connection.get(self.keys.layout()).await?;
                if found.as_deref() == Some(wanted.as_str()) {
                    Ok(())
                } else {
                    Err(StoreError::laid_out_otherwise(format!(
                        "another process laid the keys out otherwise ({found:?}) while this one started"
                    )))
                }
            }
        }
    }

    /// Whether the keys under the prefix are markdrop's from before shards: a `tokens` hash of
    /// account ids right after the prefix (another program's `tokens` key is not taken for it).
    async fn laid_out_before_shards(
        &self,
        connection: &mut Connection,
    ) -> Result<bool, StoreError> {
        let tokens = format!("{}tokens", self.keys.prefix());
        let kind: String = redis::cmd("TYPE").arg(&tokens).query_async(connection).await?;
        if kind != "hash" {
            return Ok(false);
        }
        let field: Option<String> =
            redis::cmd("HRANDFIELD").arg(&tokens).query_async(connection).await?;
        Ok(field.is_some_and(|field| AccountId::parse(&field).is_ok()))
    }

    /// `HSET hash account value`: the per-account fields of the shard's hashes (tokens, names,
    /// status, links).
    async fn hash_set(
        &self,
        hash: String,
        account: &AccountId,
        value: &str,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let _: i64 = connection.hset(hash, account.as_str(), value).await?;
        Ok(())
    }

    /// `HGETALL hash`: the per-account hashes kept by path (note paths, attachments, settings).
    async fn hash_entries(&self, hash: String) -> Result<HashMap<String, String>, StoreError> {
        let mut connection = self.connection().await?;
        Ok(connection.hgetall(hash).await?)
    }

    /// `HGET hash account`.
    async fn hash_get(
        &self,
        hash: String,
        account: &AccountId,
    ) -> Result<Option<String>, StoreError> {
        let mut connection = self.connection().await?;
        Ok(connection.hget(hash, account.as_str()).await?)
    }

    pub(super) async fn enqueue(
        &self,
        accounts: &[AccountId],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut by_shard: BTreeMap<Shard, Vec<&AccountId>> = BTreeMap::new();
        for account in accounts {
            by_shard.entry(self.keys.shard(account)).or_default().push(account);
        }
        let connection = self.connection().await?;
        // One script per shard, sent together: a webhook's accounts are in many shards.
        let calls = by_shard.iter().map(|(shard, accounts)| {
            let mut invocation = self.scripts.enqueue.prepare_invoke();
            invocation
                .key(self.keys.ready(*shard))
                .arg(self.keys.wake())
                .arg(now_ms)
                .arg(shard.to_string());
            for account in accounts {
                invocation.key(self.keys.generation(account)).arg(account.as_str());
            }
            let mut connection = connection.clone();
            async move { invocation.invoke_async::<i64>(&mut connection).await }
        });
        for added in in_flight(calls.collect()).await {
            added?;
        }
        // This process's own next claim knows at once; the others hear the wake-up.
        for shard in by_shard.keys() {
            self.schedule.due_by(*shard, now_ms);
        }
        Ok(())
    }

    /// Every queued account, soonest due first.
    pub(super) async fn queued(&self) -> Result<Vec<AccountId>, StoreError> {
        let connection = self.connection().await?;
        let calls =
            self.keys.all_shards().map(|shard| self.queued_in(connection.clone(), shard)).collect();
        let mut queued = Vec::new();
        for members in in_flight(calls).await {
            queued.extend(members?);
        }
        queued.sort_by(|a: &(String, f64), b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(queued.iter().filter_map(|(member, _)| AccountId::parse(member).ok()).collect())
    }

    async fn queued_in(
        &self,
        mut connection: Connection,
        shard: Shard,
    ) -> Result<Scored, StoreError> {
        Ok(connection.zrange_withscores(self.keys.ready(shard), 0, -1).await?)
    }

    pub(super) async fn save_tokens(
        &self,
        account: &AccountId,
        sealed: &str,
    ) -> Result<(), StoreError> {
        self.hash_set(self.keys.tokens(self.keys.shard(account)), account, sealed).await
    }

    pub(super) async fn tokens(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        self.hash_get(self.keys.tokens(self.keys.shard(account)), account).await
    }

    pub(super) async fn save_display_name(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Result<(), StoreError> {
        self.hash_set(self.keys.names(self.keys.shard(account)), account, name).await
    }

    pub(super) async fn display_name(
        &self,
        account: &AccountId,
    ) -> Result<Option<String>, StoreError> {
        self.hash_get(self.keys.names(self.keys.shard(account)), account).await
    }

    pub(super) async fn status(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        self.hash_get(self.keys.status(self.keys.shard(account)), account).await
    }

    pub(super) async fn link_id(
        &self,
        account: &AccountId,
        candidate: &str,
    ) -> Result<String, StoreError> {
        let links = self.keys.links(self.keys.shard(account));
        let mut connection = self.connection().await?;
        let (_, id): (bool, String) = redis::pipe()
            .atomic()
            .hset_nx(&links, account.as_str(), candidate)
            .hget(&links, account.as_str())
            .query_async(&mut connection)
            .await?;
        Ok(id)
    }

    pub(super) async fn current_link_id(
        &self,
        account: &AccountId,
    ) -> Result<Option<String>, StoreError> {
        self.hash_get(self.keys.links(self.keys.shard(account)), account).await
    }

    pub(super) async fn is_queued(&self, account: &AccountId) -> Result<bool, StoreError> {
        let mut connection = self.connection().await?;
        let ready = self.keys.ready(self.keys.shard(account));
        let score: Option<f64> = connection.zscore(ready, account.as_str()).await?;
        Ok(score.is_some())
    }

    pub(super) async fn forget_account(&self, account: &AccountId) -> Result<(), StoreError> {
        let (keys, shard) = (&self.keys, self.keys.shard(account));
        let mut invocation = self.scripts.forget.prepare_invoke();
        invocation
            .key(keys.tokens(shard))
            .key(keys.cursors(shard))
            .key(keys.ready(shard))
            .key(keys.generation(account))
            .key(keys.lease(account))
            .key(keys.names(shard))
            .key(keys.status(shard))
            .key(keys.links(shard))
            .key(keys.files(account))
            .key(keys.failures(shard))
            .key(keys.retries(shard))
            .key(keys.attachments(account))
            .key(keys.notes(account))
            .key(keys.settings(account))
            .arg(account.as_str());
        let mut connection = self.connection().await?;
        let _: i64 = invocation.invoke_async(&mut connection).await?;
        Ok(())
    }

    pub(super) async fn restart_sync(
        &self,
        account: &AccountId,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let (keys, shard) = (&self.keys, self.keys.shard(account));
        let mut connection = self.connection().await?;
        redis::pipe()
            .atomic()
            .del(keys.lease(account))
            .hdel(keys.cursors(shard), account.as_str())
            .del(keys.files(account))
            .del(keys.attachments(account))
            .del(keys.notes(account))
            .del(keys.settings(account))
            // Due now, wherever a claim had pushed it.
            .zadd(keys.ready(shard), account.as_str(), now_ms)
            .query_async::<()>(&mut connection)
            .await?;
        self.schedule.due_by(shard, now_ms);
        // The wake-up tells idle workers. Not in the transaction: a cluster client sends a
        // transaction to one slot's node, and PUBLISH has no key to place it. The restart is
        // made whatever becomes of it: a worker finds the account within its refresh anyway.
        let published: Result<i64, _> = connection.publish(keys.wake(), shard.to_string()).await;
        if let Err(error) = published {
            tracing::warn!(error = %crate::telemetry::error_chain(&error), "a restart's wake-up was not sent; workers find the account within seconds");
        }
        Ok(())
    }

    /// Takes a due account whose lease is free from the shards whose work is due, round robin
    /// ([`schedule`]), after asking the shards whose knowledge ran out.
    ///
    /// A shard that does not answer (its cluster node is down or slow) is left alone for
    /// [`schedule::QUIET`] while the others go on; only when no shard answers at all is the
    /// claim an error. Every wait is bounded, so a claim ends well within the store's call
    /// deadline and a claim script is never cut off by it.
    pub(super) async fn claim(
        &self,
        lease_ttl_ms: u64,
        now_ms: u64,
    ) -> Result<ClaimOutcome<StoredClaim>, StoreError> {
        let mut unanswered = Unanswered::default();
        let connection = self.connection().await?;
        let started = Instant::now();
        let ask_first = self.schedule.ask_first(started);
        if !ask_first
            && let Some(claim) =
                self.claim_due(lease_ttl_ms, now_ms, started, &mut unanswered).await
        {
            unanswered.report();
            return Ok(ClaimOutcome::Claimed(claim));
        }
        // A process that has caught up asks one batch a claim, so a wake-up that comes
        // meanwhile waits for one batch at most; the worker comes straight back for the rest.
        let budget = if ask_first { ASK_BUDGET } else { Duration::ZERO };
        let caught_up = self.ask_stale(&connection, budget, &mut unanswered).await;
        if let Some(claim) =
            self.claim_due(lease_ttl_ms, now_ms, Instant::now(), &mut unanswered).await
        {
            unanswered.report();
            return Ok(ClaimOutcome::Claimed(claim));
        }
        unanswered.into_result()?;
        // Shards left to ask (the budget ran out) are asked at once by the next claim.
        let next_due_in_ms = match caught_up {
            true => self.schedule.next_due_in(now_ms, Instant::now()),
            false => Some(0),
        };
        Ok(ClaimOutcome::NothingDue { next_due_in_ms })
    }

    /// Asks the shards whose knowledge ran out, in whole batches, starting none once `budget`
    /// has passed (one batch at least); whether every one was asked. Never a question cut off
    /// half way: the cluster client copes badly with calls dropped while a node is down.
    async fn ask_stale(
        &self,
        connection: &Connection,
        budget: Duration,
        unanswered: &mut Unanswered,
    ) -> bool {
        let asking = Instant::now();
        loop {
            let mut stale = self.schedule.stale(Instant::now());
            if stale.is_empty() {
                self.schedule.caught_up(Instant::now());
                return true;
            }
            stale.truncate(ASK_BATCH);
            self.ask(connection, stale, unanswered).await;
            if asking.elapsed() >= budget {
                return false;
            }
        }
    }

    /// Runs the claim script on the shards whose work is due, in the schedule's order, until
    /// one gives an account or [`CLAIMS_BUDGET`] has passed.
    async fn claim_due(
        &self,
        lease_ttl_ms: u64,
        now_ms: u64,
        started: Instant,
        unanswered: &mut Unanswered,
    ) -> Option<StoredClaim> {
        for shard in self.schedule.due(now_ms, started) {
            if started.elapsed() >= CLAIMS_BUDGET {
                break;
            }
            let asked_at = Instant::now();
            let claimed =
                tokio::time::timeout(SHARD_DEADLINE, self.claim_in(shard, lease_ttl_ms, now_ms));
            match claimed.await.unwrap_or_else(|_| Err(no_answer())) {
                Ok(ShardClaim::Claimed(claim)) => {
                    self.schedule.claimed_from(shard);
                    return Some(claim);
                }
                Ok(ShardClaim::NextDueAt(due_at)) => {
                    unanswered.answered += 1;
                    self.schedule.answered(shard, due_at, asked_at);
                }
                // A claim script cut off by the deadline may have run: the lease it took runs
                // out after its TTL, and the account is claimed then.
                Err(error) => {
                    unanswered.failed(error);
                    self.schedule.unanswered(shard, Instant::now());
                }
            }
        }
        None
    }

    /// Asks each of `shards` when its soonest work is due, [`ASK_IN_FLIGHT`] at a time.
    async fn ask(&self, connection: &Connection, shards: Vec<Shard>, unanswered: &mut Unanswered) {
        let calls: Vec<_> =
            shards.into_iter().map(|shard| self.soonest_in(connection.clone(), shard)).collect();
        let answers: Vec<_> =
            futures_util::stream::iter(calls).buffer_unordered(ASK_IN_FLIGHT).collect().await;
        for (shard, asked_at, answer) in answers {
            match answer {
                Ok(due_at) => {
                    unanswered.answered += 1;
                    self.schedule.answered(shard, due_at, asked_at);
                }
                Err(error) => {
                    unanswered.failed(error);
                    self.schedule.unanswered(shard, Instant::now());
                }
            }
        }
    }

    /// When the shard's soonest work is due, queued or waiting for a retry (ms), and when it
    /// was asked.
    async fn soonest_in(
        &self,
        mut connection: Connection,
        shard: Shard,
    ) -> (Shard, Instant, Result<Option<u64>, StoreError>) {
        let asked_at = Instant::now();
        let answer: Result<(Scored, Scored), _> = redis::pipe()
            .zrange_withscores(self.keys.ready(shard), 0, 0)
            .zrange_withscores(self.keys.retries(shard), 0, 0)
            .query_async(&mut connection)
            .await;
        let answer = answer.map_err(StoreError::from).map(|(ready, retries)| {
            let soonest = ready.iter().chain(&retries).map(|(_, score)| *score).reduce(f64::min);
            soonest.map(|score| score.max(0.0) as u64)
        });
        (shard, asked_at, answer)
    }

    /// Runs the claim script on one shard.
    async fn claim_in(
        &self,
        shard: Shard,
        lease_ttl_ms: u64,
        now_ms: u64,
    ) -> Result<ShardClaim, StoreError> {
        let keys = &self.keys;
        let token = crate::crypto::random_token();
        let leased_at = Instant::now();
        let mut invocation = self.scripts.claim.prepare_invoke();
        invocation
            .key(keys.ready(shard))
            .key(keys.tokens(shard))
            .key(keys.cursors(shard))
            .key(keys.failures(shard))
            .key(keys.status(shard))
            .key(keys.retries(shard))
            .arg(now_ms)
            .arg(lease_ttl_ms)
            .arg(&token)
            .arg(keys.shard_prefix(shard))
            .arg(CLAIM_LOOKAHEAD);
        let mut connection = self.connection().await?;
        let reply: Vec<Option<String>> = invocation.invoke_async(&mut connection).await?;
        if reply.len() != 7 {
            // Not claimed: the reply is empty, or the soonest member and its score.
            let due_at = reply
                .get(1)
                .and_then(|score| score.as_deref()?.parse::<f64>().ok())
                .map(|score| score.max(0.0) as u64);
            return Ok(ShardClaim::NextDueAt(due_at));
        }
        let mut fields = reply.into_iter();
        let mut next = || fields.next().flatten();
        let (
            Some(account),
            Some(sealed_tokens),
            cursor,
            Some(generation),
            Some(failures),
            status,
            Some(due_at),
        ) = (next(), next(), next(), next(), next(), next(), next())
        else {
            return Err(StoreError::new(anyhow::anyhow!("a claim reply is missing fields")));
        };
        let account = AccountId::parse(&account).map_err(StoreError::new)?;
        Ok(ShardClaim::Claimed(StoredClaim {
            leased_at,
            due_at_ms: due_at.parse::<f64>().map_or(now_ms, |score| score as u64),
            lease: Lease { account, token },
            sealed_tokens,
            cursor,
            generation: generation.parse().map_err(StoreError::new)?,
            failures: failures.parse().map_err(StoreError::new)?,
            status,
        }))
    }

    pub(super) async fn renew(
        &self,
        lease: &Lease,
        lease_ttl_ms: u64,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.scripts.renew.prepare_invoke();
        invocation
            .key(self.keys.lease(&lease.account))
            .key(self.keys.ready(self.keys.shard(&lease.account)))
            .arg(&lease.token)
            .arg(lease_ttl_ms)
            .arg(now_ms + lease_ttl_ms)
            .arg(lease.account.as_str());
        let mut connection = self.connection().await?;
        let renewed: i64 = invocation.invoke_async(&mut connection).await?;
        Ok(renewed == 1)
    }

    pub(super) async fn recorded_paths(
        &self,
        account: &AccountId,
    ) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection().await?;
        Ok(connection.hkeys(self.keys.files(account)).await?)
    }

    pub(super) async fn file_records(
        &self,
        account: &AccountId,
        paths: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.connection().await?;
        // HMGET with one field answers a bare value, not an array; a pipeline of one keeps the
        // reply shape the same for any number of paths.
        let (records,): (Vec<Option<String>>,) = redis::pipe()
            .cmd("HMGET")
            .arg(self.keys.files(account))
            .arg(paths)
            .query_async(&mut connection)
            .await?;
        Ok(records)
    }

    pub(super) async fn note_paths(
        &self,
        account: &AccountId,
    ) -> Result<HashMap<String, String>, StoreError> {
        self.hash_entries(self.keys.notes(account)).await
    }

    pub(super) async fn record_count(&self, account: &AccountId) -> Result<usize, StoreError> {
        let mut connection = self.connection().await?;
        Ok(connection.hlen(self.keys.files(account)).await?)
    }

    pub(super) async fn attachments(
        &self,
        account: &AccountId,
    ) -> Result<HashMap<String, String>, StoreError> {
        self.hash_entries(self.keys.attachments(account)).await
    }

    pub(super) async fn settings_files(
        &self,
        account: &AccountId,
    ) -> Result<HashMap<String, String>, StoreError> {
        self.hash_entries(self.keys.settings(account)).await
    }

    pub(super) async fn commit(
        &self,
        lease: &Lease,
        changes: EncodedChanges,
        cursor: Option<&str>,
        status: Option<&str>,
    ) -> Result<(), LeaseError> {
        let account = &lease.account;
        let (writes, drops) = split_changes(changes.files);
        let (attach, detach) = split_changes(changes.attachments);
        let (name, unname) = split_changes(changes.note_paths);
        let (configure, unconfigure) = split_changes(changes.settings);
        let shard = self.keys.shard(account);
        let mut invocation = self.scripts.commit.prepare_invoke();
        invocation
            .key(self.keys.lease(account))
            .key(self.keys.files(account))
            .key(self.keys.cursors(shard))
            .key(self.keys.status(shard))
            .key(self.keys.attachments(account))
            .key(self.keys.notes(account))
            .key(self.keys.settings(account))
            .arg(&lease.token)
            .arg(account.as_str())
            .arg(cursor.unwrap_or(""))
            .arg(status.unwrap_or(""))
            .arg(changes.forget_under.len())
            .arg(writes.len())
            .arg(drops.len())
            .arg(attach.len())
            .arg(detach.len())
            .arg(name.len())
            .arg(unname.len())
            .arg(configure.len())
            .arg(unconfigure.len());
        for prefix in &changes.forget_under {
            invocation.arg(prefix);
        }
        // In the script's order: each hash's writes, then each hash's drops.
        for (path, value) in writes.into_iter().chain(attach).chain(name).chain(configure) {
            invocation.arg(path).arg(value);
        }
        for path in drops.into_iter().chain(detach).chain(unname).chain(unconfigure) {
            invocation.arg(path);
        }
        let mut connection = self.connection().await?;
        let committed: i64 = invocation.invoke_async(&mut connection).await?;
        if committed == 1 { Ok(()) } else { Err(LeaseError::Lost) }
    }

    pub(super) async fn complete(
        &self,
        lease: &Lease,
        generation: u64,
        status: &str,
        retry_at: Option<u64>,
        now_ms: u64,
    ) -> Result<Completion, LeaseError> {
        let (account, shard) = (&lease.account, self.keys.shard(&lease.account));
        let mut invocation = self.scripts.complete.prepare_invoke();
        invocation
            .key(self.keys.lease(account))
            .key(self.keys.ready(shard))
            .key(self.keys.generation(account))
            .key(self.keys.failures(shard))
            .key(self.keys.status(shard))
            .key(self.keys.retries(shard))
            .arg(&lease.token)
            .arg(account.as_str())
            .arg(generation)
            .arg(now_ms)
            .arg(status)
            .arg(self.keys.wake())
            .arg(retry_at.map(|at| at.to_string()).unwrap_or_default())
            .arg(shard.to_string());
        let mut connection = self.connection().await?;
        let outcome: i64 = invocation.invoke_async(&mut connection).await?;
        if let Some(retry_at) = retry_at {
            self.schedule.due_by(shard, retry_at);
        }
        match outcome {
            0 => Ok(Completion::Done),
            1 => {
                self.schedule.due_by(shard, now_ms);
                Ok(Completion::Again)
            }
            _ => Err(LeaseError::Lost),
        }
    }

    pub(super) async fn reschedule(
        &self,
        lease: &Lease,
        due_at_ms: u64,
        count_failure: bool,
        status: Option<&str>,
        wake: bool,
    ) -> Result<(), LeaseError> {
        let (account, shard) = (&lease.account, self.keys.shard(&lease.account));
        let mut invocation = self.scripts.reschedule.prepare_invoke();
        invocation
            .key(self.keys.lease(account))
            .key(self.keys.ready(shard))
            .key(self.keys.failures(shard))
            .key(self.keys.status(shard))
            .arg(&lease.token)
            .arg(account.as_str())
            .arg(due_at_ms)
            .arg(if count_failure { "1" } else { "0" })
            .arg(status.unwrap_or(""))
            .arg(if wake { self.keys.wake() } else { String::new() })
            .arg(shard.to_string());
        let mut connection = self.connection().await?;
        let rescheduled: i64 = invocation.invoke_async(&mut connection).await?;
        if rescheduled != 1 {
            return Err(LeaseError::Lost);
        }
        self.schedule.due_by(shard, due_at_ms);
        Ok(())
    }

    pub(super) async fn unlink(
        &self,
        lease: &Lease,
        sealed_tokens: &str,
        status: &str,
        now_ms: u64,
    ) -> Result<bool, LeaseError> {
        let (account, shard) = (&lease.account, self.keys.shard(&lease.account));
        let mut invocation = self.scripts.unlink.prepare_invoke();
        invocation
            .key(self.keys.lease(account))
            .key(self.keys.tokens(shard))
            .key(self.keys.cursors(shard))
            .key(self.keys.files(account))
            .key(self.keys.ready(shard))
            .key(self.keys.generation(account))
            .key(self.keys.failures(shard))
            .key(self.keys.status(shard))
            .key(self.keys.retries(shard))
            .key(self.keys.attachments(account))
            .key(self.keys.notes(account))
            .key(self.keys.settings(account))
            .arg(&lease.token)
            .arg(account.as_str())
            .arg(sealed_tokens)
            .arg(status)
            .arg(now_ms)
            .arg(self.keys.wake())
            .arg(shard.to_string());
        let mut connection = self.connection().await?;
        let outcome: i64 = invocation.invoke_async(&mut connection).await?;
        match outcome {
            1 => Ok(true),
            0 => {
                self.schedule.due_by(shard, now_ms);
                Ok(false)
            }
            _ => Err(LeaseError::Lost),
        }
    }

    pub(super) async fn replace_tokens(
        &self,
        lease: &Lease,
        sealed_tokens: &str,
        sealed: &str,
    ) -> Result<bool, StoreError> {
        let account = &lease.account;
        let mut invocation = self.scripts.replace_tokens.prepare_invoke();
        invocation
            .key(self.keys.lease(account))
            .key(self.keys.tokens(self.keys.shard(account)))
            .arg(&lease.token)
            .arg(account.as_str())
            .arg(sealed_tokens)
            .arg(sealed);
        let mut connection = self.connection().await?;
        let replaced: i64 = invocation.invoke_async(&mut connection).await?;
        Ok(replaced == 1)
    }

    /// Every linked account, a page at a time: a page is [`SWEEP_SHARDS`] shards, read at
    /// once (HSCAN, so no single call blocks Redis however many accounts there are). The cursor
    /// is the next page's first shard, so the sweep needs no state of its own.
    ///
    /// A shard that fails (its cluster node is down) is passed over with a warning: its
    /// accounts could not be queued anyway, and the others should not wait for it. Only a page
    /// whose every shard failed is an error.
    pub(super) async fn linked_accounts_page(
        &self,
        cursor: u64,
    ) -> Result<(u64, Vec<AccountId>), StoreError> {
        let shards = u64::from(self.keys.shard_count().get());
        let end = cursor.saturating_add(SWEEP_SHARDS).min(shards);
        let connection = self.connection().await?;
        let calls: Vec<_> = (cursor..end)
            .map(|shard| self.linked_in(connection.clone(), Shard::from_index(shard as usize)))
            .collect();
        let (mut accounts, mut failed) = (Vec::new(), Vec::new());
        for linked in in_flight(calls).await {
            match linked {
                Ok(linked) => accounts.extend(linked),
                Err(error) => failed.push(error),
            }
        }
        if failed.len() as u64 == end - cursor
            && let Some(error) = failed.pop()
        {
            return Err(error);
        }
        if let Some(error) = failed.first() {
            tracing::warn!(shards = failed.len(), error = %crate::telemetry::error_chain(error), "the start-up sweep passed over shards that did not answer");
        }
        Ok((if end >= shards { 0 } else { end }, accounts))
    }

    /// Every account linked in `shard`, each call within [`SHARD_DEADLINE`].
    async fn linked_in(
        &self,
        mut connection: Connection,
        shard: Shard,
    ) -> Result<Vec<AccountId>, StoreError> {
        let (mut position, mut accounts) = (0u64, Vec::new());
        loop {
            // Field–value pairs: HSCAN's NOVALUES needs Redis 7.4, and managed Redis lags.
            let mut scan = redis::cmd("HSCAN");
            scan.arg(self.keys.tokens(shard)).arg(position).arg("COUNT").arg(SWEEP_PAGE);
            let page = scan.query_async::<(u64, Vec<(String, redis::Value)>)>(&mut connection);
            let (next, pairs) =
                tokio::time::timeout(SHARD_DEADLINE, page).await.map_err(|_| no_answer())??;
            accounts.extend(pairs.iter().filter_map(|(field, _)| AccountId::parse(field).ok()));
            if next == 0 {
                return Ok(accounts);
            }
            position = next;
        }
    }

    /// How many leases are held, in every shard (for the tests: a SCAN of every key).
    pub(super) async fn leases_held(&self) -> Result<usize, StoreError> {
        let mut connection = self.connection().await?;
        let pattern = format!("{}{{s*}}:lease:*", escape_glob(self.keys.prefix()));
        if self.endpoint.is_cluster() {
            // KEYS goes to every primary and the answers are joined; SCAN would see one node.
            let keys: Vec<String> =
                redis::cmd("KEYS").arg(&pattern).query_async(&mut connection).await?;
            return Ok(keys.len());
        }
        let (mut cursor, mut held) = (0u64, 0);
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SWEEP_PAGE)
                .query_async(&mut connection)
                .await?;
            held += keys.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(held)
    }

    /// A connection of its own subscribed to the wake channel (pub/sub cannot share the
    /// multiplexed connection); in a cluster, on the `attempt`th node named in `REDIS_URL`.
    pub(super) async fn subscribe_wake(
        &self,
        attempt: usize,
    ) -> Result<redis::aio::PubSub, StoreError> {
        let mut pubsub = self.endpoint.pubsub(attempt).await?;
        pubsub.subscribe(self.keys.wake()).await?;
        // Anything may have been announced while nobody listened: every shard is asked anew.
        self.schedule.forget();
        Ok(pubsub)
    }

    /// A wake-up's message: the shard it names has work due now.
    pub(super) fn woken(&self, message: &str) {
        match Shard::parse(message, self.keys.shard_count()) {
            Some(shard) => self.schedule.due_by(shard, 0),
            None => self.schedule.forget(),
        }
    }

    pub(super) async fn add_metrics(
        &self,
        counts: &std::collections::BTreeMap<String, u64>,
    ) -> Result<(), StoreError> {
        // Atomic: a scrape never sees half a flush (a histogram's buckets out of step).
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (series, count) in counts {
            pipe.hincr(self.keys.metrics(), series, *count).ignore();
        }
        let mut connection = self.connection().await?;
        Ok(pipe.query_async::<()>(&mut connection).await?)
    }

    pub(super) async fn metrics(
        &self,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let mut connection = self.connection().await?;
        Ok(connection.hgetall(self.keys.metrics()).await?)
    }

    pub(super) async fn queue_depth(&self, now_ms: u64) -> Result<QueueDepth, StoreError> {
        let connection = self.connection().await?;
        let calls = self
            .keys
            .all_shards()
            .map(|shard| self.depth_in(connection.clone(), shard, now_ms))
            .collect();
        let mut depth = QueueDepth::default();
        for shard in in_flight(calls).await {
            let (queued, due) = shard?;
            depth.queued += queued;
            depth.due += due;
        }
        Ok(depth)
    }

    /// The shard's queued accounts, and of those the ones due at `now_ms`.
    async fn depth_in(
        &self,
        mut connection: Connection,
        shard: Shard,
        now_ms: u64,
    ) -> Result<(u64, u64), StoreError> {
        Ok(redis::pipe()
            .zcard(self.keys.ready(shard))
            .zcount(self.keys.ready(shard), "-inf", now_ms)
            .query_async(&mut connection)
            .await?)
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.connection().await?.ping().await?)
    }
}

/// A shard that did not answer within [`SHARD_DEADLINE`].
fn no_answer() -> StoreError {
    StoreError::new(anyhow::anyhow!("no answer within {SHARD_DEADLINE:?}"))
}

/// Awaits `calls` (one per shard), [`SHARDS_IN_FLIGHT`] at a time; the answers come in no
/// particular order.
async fn in_flight<F: std::future::Future>(calls: Vec<F>) -> Vec<F::Output> {
    futures_util::stream::iter(calls).buffer_unordered(SHARDS_IN_FLIGHT).collect().await
}

/// The shards a claim could not ask, and whether any could.
#[derive(Default)]
struct Unanswered {
    answered: usize,
    failed: usize,
    first: Option<StoreError>,
}

impl Unanswered {
    fn failed(&mut self, error: StoreError) {
        self.failed += 1;
        self.first.get_or_insert(error);
    }

    /// Logs the shards that did not answer, if any.
    fn report(&self) {
        if let Some(error) = &self.first {
            tracing::warn!(
                shards = self.failed,
                error = %crate::telemetry::error_chain(error),
                "some shards did not answer; the others go on, and these are asked again within 10 s"
            );
        }
    }

    /// An error when every shard asked failed (Redis is out of reach); else logs the few that did.
    fn into_result(self) -> Result<(), StoreError> {
        match self.first {
            Some(error) if self.answered == 0 => Err(error),
            _ => {
                self.report();
                Ok(())
            }
        }
    }
}

/// Sorted-set members with their scores.
type Scored = Vec<(String, f64)>;

/// What the claim script found in one shard.
enum ShardClaim {
    Claimed(StoredClaim),
    /// Nothing claimable now; the shard's soonest work is due then (`None`: none queued).
    NextDueAt(Option<u64>),
}

/// Due members looked at per claim, so accounts held by live workers are stepped over.
const CLAIM_LOOKAHEAD: u32 = 16;
/// Changes to a hash as (field, value) pairs to set and fields to delete.
fn split_changes(changes: Vec<(String, Option<String>)>) -> (Vec<(String, String)>, Vec<String>) {
    let (mut writes, mut drops) = (Vec::new(), Vec::new());
    for (field, value) in changes {
        match value {
            Some(value) => writes.push((field, value)),
            None => drops.push(field),
        }
    }
    (writes, drops)
}

/// Accounts read per HSCAN in the start-up sweep.
const SWEEP_PAGE: u32 = 500;
/// Shards one page of the start-up sweep reads, all at once.
const SWEEP_SHARDS: u64 = 16;

/// `prefix` with Redis glob characters escaped, for SCAN MATCH.
fn escape_glob(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
