//! The Redis backend (Redis ≥ 6.2), shared by every `web` and `worker` process.
//!
//! Keys, each after the configured prefix (`REDIS_KEY_PREFIX`; with a hash tag such as
//! `{markdrop}:` every key falls in one Redis Cluster slot, so multi-key scripts stay legal):
//!
//! | key | type | role |
//! |---|---|---|
//! | `ready` | sorted set | one member per account with work; score = when it is due (ms) |
//! | `gen:<account>` | counter | bumped by every notification, so a pass can tell it missed one |
//! | `lease:<account>` | string, PX TTL | random token of the worker holding the account |
//! | `tokens` | hash | account → sealed token record |
//! | `cursors` | hash | account → `list_folder` cursor |
//! | `files:<account>` | hash | `.md` lower-case path → [`super::FileRecord`] (JSON) |
//! | `failures` | hash | account → passes failed in a row, for the backoff |
//! | `retries` | sorted set | accounts with notes waiting for a retry; score = when the soonest is due (ms) |
//! | `metrics` | hash | series → count, added to by every process (`crate::metrics`) |
//! | `names` | hash | account → display name, for the account page |
//! | `status` | hash | account → sync status (JSON), for the account page |
//! | `links` | hash | account → link id, which signed-in sessions must match |
//!
//! Every multi-step change is one Lua script (`src/store/lua/`), so it is atomic without locks.
//! Idle workers learn of new work on the channel `<prefix>wake` instead of polling Redis.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use super::codec::EncodedChanges;
use super::work::{ClaimOutcome, Completion, Lease, LeaseError, StoredClaim};
use super::{QueueDepth, StoreError};
use crate::account::AccountId;

/// A reply may take this long before the call counts as failed. Enqueueing is one short
/// script; a Redis slower than this is better reported (503, and Dropbox retries) than waited on.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
const RECONNECT_MAX_DELAY_MS: u64 = 500;

#[derive(Clone)]
pub struct RedisStore {
    client: Arc<redis::Client>,
    /// Made on first use and kept: the manager reconnects by itself after Redis restarts, and a
    /// process that starts while Redis is down serves (503s) instead of crashing.
    connection: Arc<OnceCell<ConnectionManager>>,
    keys: Keys,
    scripts: Arc<Scripts>,
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

#[derive(Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn ready(&self) -> String {
        format!("{}ready", self.prefix)
    }

    fn generation(&self, account: &AccountId) -> String {
        format!("{}gen:{account}", self.prefix)
    }

    fn lease(&self, account: &AccountId) -> String {
        format!("{}lease:{account}", self.prefix)
    }

    fn tokens(&self) -> String {
        format!("{}tokens", self.prefix)
    }

    fn cursors(&self) -> String {
        format!("{}cursors", self.prefix)
    }

    fn names(&self) -> String {
        format!("{}names", self.prefix)
    }

    fn status(&self) -> String {
        format!("{}status", self.prefix)
    }

    fn links(&self) -> String {
        format!("{}links", self.prefix)
    }

    fn metrics(&self) -> String {
        format!("{}metrics", self.prefix)
    }

    fn files(&self, account: &AccountId) -> String {
        format!("{}files:{account}", self.prefix)
    }

    fn attachments(&self, account: &AccountId) -> String {
        format!("{}attachments:{account}", self.prefix)
    }

    fn settings(&self, account: &AccountId) -> String {
        format!("{}settings:{account}", self.prefix)
    }

    fn notes(&self, account: &AccountId) -> String {
        format!("{}notes:{account}", self.prefix)
    }

    fn failures(&self) -> String {
        format!("{}failures", self.prefix)
    }

    fn retries(&self) -> String {
        format!("{}retries", self.prefix)
    }

    /// The pub/sub channel that wakes idle workers (not a key).
    fn wake(&self) -> String {
        format!("{}wake", self.prefix)
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://`, `rediss://`; a managed Redis's self-signed certificate is
    /// accepted with `rediss://…#insecure`, as Heroku requires). Keys start with `key_prefix`,
    /// so several deployments or tests can share one Redis.
    ///
    /// Only the URL is checked here: a Redis that cannot be reached yet is not an error, each
    /// call reports its own failure and the next one tries again.
    pub(super) fn new(url: &SecretString, key_prefix: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url.expose_secret())?;
        Ok(RedisStore {
            client: Arc::new(client),
            connection: Arc::new(OnceCell::new()),
            keys: Keys { prefix: key_prefix.to_owned() },
            scripts: Arc::new(Scripts::new()),
        })
    }

    /// The shared connection, made now if it does not exist yet.
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let manager = self
            .connection
            .get_or_try_init(|| {
                // redis-rs hands `factor` to backon as the growth multiplier: its default (100)
                // waits 100 s before a third attempt. A caller that needs an answer (a webhook
                // with Dropbox waiting, a health check) gets one quickly; the next call retries.
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(RESPONSE_TIMEOUT)
                    .set_connection_timeout(CONNECTION_TIMEOUT)
                    .set_factor(2)
                    .set_max_delay(RECONNECT_MAX_DELAY_MS)
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config((*self.client).clone(), config)
            })
            .await?;
        Ok(manager.clone())
    }

    /// `HSET hash account value`: the per-account hashes (tokens, names, status, links).
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
        if accounts.is_empty() {
            return Ok(());
        }
        let mut invocation = self.scripts.enqueue.prepare_invoke();
        invocation.key(self.keys.ready()).arg(self.keys.wake()).arg(now_ms);
        for account in accounts {
            invocation.key(self.keys.generation(account)).arg(account.as_str());
        }
        let mut connection = self.connection().await?;
        let _: i64 = invocation.invoke_async(&mut connection).await?;
        Ok(())
    }

    pub(super) async fn queued(&self) -> Result<Vec<AccountId>, StoreError> {
        let mut connection = self.connection().await?;
        let members: Vec<String> = connection.zrange(self.keys.ready(), 0, -1).await?;
        Ok(members.iter().filter_map(|member| AccountId::parse(member).ok()).collect())
    }

    pub(super) async fn save_tokens(
        &self,
        account: &AccountId,
        sealed: &str,
    ) -> Result<(), StoreError> {
        self.hash_set(self.keys.tokens(), account, sealed).await
    }

    pub(super) async fn tokens(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        self.hash_get(self.keys.tokens(), account).await
    }

    pub(super) async fn save_display_name(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Result<(), StoreError> {
        self.hash_set(self.keys.names(), account, name).await
    }

    pub(super) async fn display_name(
        &self,
        account: &AccountId,
    ) -> Result<Option<String>, StoreError> {
        self.hash_get(self.keys.names(), account).await
    }

    pub(super) async fn status(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        self.hash_get(self.keys.status(), account).await
    }

    pub(super) async fn link_id(
        &self,
        account: &AccountId,
        candidate: &str,
    ) -> Result<String, StoreError> {
        let mut connection = self.connection().await?;
        let (_, id): (bool, String) = redis::pipe()
            .atomic()
            .hset_nx(self.keys.links(), account.as_str(), candidate)
            .hget(self.keys.links(), account.as_str())
            .query_async(&mut connection)
            .await?;
        Ok(id)
    }

    pub(super) async fn current_link_id(
        &self,
        account: &AccountId,
    ) -> Result<Option<String>, StoreError> {
        self.hash_get(self.keys.links(), account).await
    }

    pub(super) async fn is_queued(&self, account: &AccountId) -> Result<bool, StoreError> {
        let mut connection = self.connection().await?;
        let score: Option<f64> = connection.zscore(self.keys.ready(), account.as_str()).await?;
        Ok(score.is_some())
    }

    pub(super) async fn forget_account(&self, account: &AccountId) -> Result<(), StoreError> {
        let mut invocation = self.scripts.forget.prepare_invoke();
        invocation
            .key(self.keys.tokens())
            .key(self.keys.cursors())
            .key(self.keys.ready())
            .key(self.keys.generation(account))
            .key(self.keys.lease(account))
            .key(self.keys.names())
            .key(self.keys.status())
            .key(self.keys.links())
            .key(self.keys.files(account))
            .key(self.keys.failures())
            .key(self.keys.retries())
            .key(self.keys.attachments(account))
            .key(self.keys.notes(account))
            .key(self.keys.settings(account))
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
        let mut connection = self.connection().await?;
        Ok(redis::pipe()
            .atomic()
            .del(self.keys.lease(account))
            .hdel(self.keys.cursors(), account.as_str())
            .del(self.keys.files(account))
            .del(self.keys.attachments(account))
            .del(self.keys.notes(account))
            .del(self.keys.settings(account))
            // Due now, wherever a claim had pushed it; the wake-up tells idle workers.
            .zadd(self.keys.ready(), account.as_str(), now_ms)
            .publish(self.keys.wake(), 1)
            .query_async::<()>(&mut connection)
            .await?)
    }

    pub(super) async fn claim(
        &self,
        lease_ttl_ms: u64,
        now_ms: u64,
    ) -> Result<ClaimOutcome<StoredClaim>, StoreError> {
        let token = crate::crypto::random_token();
        let leased_at = std::time::Instant::now();
        let mut invocation = self.scripts.claim.prepare_invoke();
        invocation
            .key(self.keys.ready())
            .key(self.keys.tokens())
            .key(self.keys.cursors())
            .key(self.keys.failures())
            .key(self.keys.status())
            .key(self.keys.retries())
            .arg(now_ms)
            .arg(lease_ttl_ms)
            .arg(&token)
            .arg(&self.keys.prefix)
            .arg(CLAIM_LOOKAHEAD);
        let mut connection = self.connection().await?;
        let reply: Vec<Option<String>> = invocation.invoke_async(&mut connection).await?;
        if reply.len() != 7 {
            // Not claimed: the reply is empty, or the soonest member and its score.
            let next_due_in_ms = reply
                .get(1)
                .and_then(|score| score.as_deref()?.parse::<f64>().ok())
                .map(|score| (score as u64).saturating_sub(now_ms));
            return Ok(ClaimOutcome::NothingDue { next_due_in_ms });
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
        Ok(ClaimOutcome::Claimed(StoredClaim {
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
            .key(self.keys.ready())
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
        let mut invocation = self.scripts.commit.prepare_invoke();
        invocation
            .key(self.keys.lease(account))
            .key(self.keys.files(account))
            .key(self.keys.cursors())
            .key(self.keys.status())
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
        let account = &lease.account;
        let mut invocation = self.scripts.complete.prepare_invoke();
        invocation
            .key(self.keys.lease(account))
            .key(self.keys.ready())
            .key(self.keys.generation(account))
            .key(self.keys.failures())
            .key(self.keys.status())
            .key(self.keys.retries())
            .arg(&lease.token)
            .arg(account.as_str())
            .arg(generation)
            .arg(now_ms)
            .arg(status)
            .arg(self.keys.wake())
            .arg(retry_at.map(|at| at.to_string()).unwrap_or_default());
        let mut connection = self.connection().await?;
        let outcome: i64 = invocation.invoke_async(&mut connection).await?;
        match outcome {
            0 => Ok(Completion::Done),
            1 => Ok(Completion::Again),
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
        let account = &lease.account;
        let mut invocation = self.scripts.reschedule.prepare_invoke();
        invocation
            .key(self.keys.lease(account))
            .key(self.keys.ready())
            .key(self.keys.failures())
            .key(self.keys.status())
            .arg(&lease.token)
            .arg(account.as_str())
            .arg(due_at_ms)
            .arg(if count_failure { "1" } else { "0" })
            .arg(status.unwrap_or(""))
            .arg(if wake { self.keys.wake() } else { String::new() });
        let mut connection = self.connection().await?;
        let rescheduled: i64 = invocation.invoke_async(&mut connection).await?;
        if rescheduled == 1 { Ok(()) } else { Err(LeaseError::Lost) }
    }

    pub(super) async fn unlink(
        &self,
        lease: &Lease,
        sealed_tokens: &str,
        status: &str,
        now_ms: u64,
    ) -> Result<bool, LeaseError> {
        let account = &lease.account;
        let mut invocation = self.scripts.unlink.prepare_invoke();
        invocation
            .key(self.keys.lease(account))
            .key(self.keys.tokens())
            .key(self.keys.cursors())
            .key(self.keys.files(account))
            .key(self.keys.ready())
            .key(self.keys.generation(account))
            .key(self.keys.failures())
            .key(self.keys.status())
            .key(self.keys.retries())
            .key(self.keys.attachments(account))
            .key(self.keys.notes(account))
            .key(self.keys.settings(account))
            .arg(&lease.token)
            .arg(account.as_str())
            .arg(sealed_tokens)
            .arg(status)
            .arg(now_ms)
            .arg(self.keys.wake());
        let mut connection = self.connection().await?;
        let outcome: i64 = invocation.invoke_async(&mut connection).await?;
        match outcome {
            1 => Ok(true),
            0 => Ok(false),
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
            .key(self.keys.tokens())
            .arg(&lease.token)
            .arg(account.as_str())
            .arg(sealed_tokens)
            .arg(sealed);
        let mut connection = self.connection().await?;
        let replaced: i64 = invocation.invoke_async(&mut connection).await?;
        Ok(replaced == 1)
    }

    /// Every linked account, a page at a time (HSCAN: no single call blocks Redis however many
    /// accounts there are).
    pub(super) async fn linked_accounts_page(
        &self,
        cursor: u64,
    ) -> Result<(u64, Vec<AccountId>), StoreError> {
        let mut connection = self.connection().await?;
        // Field–value pairs: HSCAN's NOVALUES needs Redis 7.4, and managed Redis lags behind.
        let (next, pairs): (u64, Vec<(String, redis::Value)>) = redis::cmd("HSCAN")
            .arg(self.keys.tokens())
            .arg(cursor)
            .arg("COUNT")
            .arg(SWEEP_PAGE)
            .query_async(&mut connection)
            .await?;
        Ok((next, pairs.iter().filter_map(|(field, _)| AccountId::parse(field).ok()).collect()))
    }

    pub(super) async fn leases_held(&self) -> Result<usize, StoreError> {
        let mut connection = self.connection().await?;
        let pattern = format!("{}lease:*", escape_glob(&self.keys.prefix));
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

    /// A dedicated connection subscribed to the wake channel (pub/sub cannot share the
    /// multiplexed connection).
    pub(super) async fn subscribe_wake(&self) -> Result<redis::aio::PubSub, StoreError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.keys.wake()).await?;
        Ok(pubsub)
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
        let mut connection = self.connection().await?;
        let (queued, due): (u64, u64) = redis::pipe()
            .zcard(self.keys.ready())
            .zcount(self.keys.ready(), "-inf", now_ms)
            .query_async(&mut connection)
            .await?;
        Ok(QueueDepth { queued, due })
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(())
    }
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
