//! The Redis backend (Redis ≥ 6.2), shared by every `web` and `worker` process.
//!
//! Keys, each after the configured prefix (`REDIS_KEY_PREFIX`; with a hash tag such as
//! `{markdrop}:` every key falls in one Redis Cluster slot, so multi-key scripts stay legal):
//!
//! | key | type | role |
//! |---|---|---|
//! | `ready` | sorted set | one member per account with work; score = when it is due (ms) |
//! | `gen:<account>` | counter | bumped by every notification, so a pass can tell it missed one |
//! | `lease:<account>` | string | the worker holding the account (with the sync worker) |
//! | `tokens` | hash | account → sealed token record |
//! | `cursors` | hash | account → `list_folder` cursor (with the sync worker) |
//! | `names` | hash | account → display name, for the account page |
//! | `status` | hash | account → sync status (JSON), for the account page |
//! | `links` | hash | account → link id, which signed-in sessions must match |
//!
//! Every multi-step change is one Lua script, so it is atomic without locks.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use super::{AccountStatus, StoreError, TokenSealer};
use crate::dropbox::{AccountId, AccountTokens};

/// A reply may take this long before the call counts as failed. Enqueueing is one short
/// script; a Redis slower than this is better reported (503, and Dropbox retries) than waited on.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
const RECONNECT_MAX_DELAY_MS: u64 = 500;

/// `INCR gen` and `ZADD ready NX now` for each account: a new member is due now; one already
/// queued keeps its due time. (design.md has `LT`, which would let any notification, including
/// the one our own upload triggers, cut a 429's Retry-After or a backoff short; the bumped
/// generation already tells a running pass to go again.)
const ENQUEUE: &str = r"
for i = 2, #KEYS do
  redis.call('INCR', KEYS[i])
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[i])
end
return #KEYS - 1
";

/// Everything kept for one account, gone in one step.
const FORGET: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('HDEL', KEYS[8], ARGV[1])
return 1
";

#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    /// Made on first use and kept: the manager reconnects by itself after Redis restarts, and a
    /// process that starts while Redis is down serves (503s) instead of crashing.
    connection: Arc<OnceCell<ConnectionManager>>,
    keys: Keys,
    sealer: TokenSealer,
    enqueue: Script,
    forget: Script,
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
}

impl RedisStore {
    /// Connects to `url` (`redis://`, `rediss://`; a managed Redis's self-signed certificate is
    /// accepted with `rediss://…#insecure`, as Heroku requires). Keys start with `key_prefix`,
    /// so several deployments or tests can share one Redis.
    ///
    /// Only the URL is checked here: a Redis that cannot be reached yet is not an error, each
    /// call reports its own failure and the next one tries again.
    pub fn new(
        url: &SecretString,
        key_prefix: &str,
        sealer: TokenSealer,
    ) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url.expose_secret()).map_err(StoreError::new)?;
        Ok(RedisStore {
            client,
            connection: Arc::new(OnceCell::new()),
            keys: Keys { prefix: key_prefix.to_owned() },
            sealer,
            enqueue: Script::new(ENQUEUE),
            forget: Script::new(FORGET),
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
                ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await
            .map_err(StoreError::new)?;
        Ok(manager.clone())
    }

    /// `HSET hash account value`: the per-account hashes (tokens, names, status, links).
    async fn hash_set(
        &self,
        hash: String,
        account: &AccountId,
        value: String,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let _: i64 =
            connection.hset(hash, account.as_str(), value).await.map_err(StoreError::new)?;
        Ok(())
    }

    /// `HGET hash account`.
    async fn hash_get(
        &self,
        hash: String,
        account: &AccountId,
    ) -> Result<Option<String>, StoreError> {
        let mut connection = self.connection().await?;
        connection.hget(hash, account.as_str()).await.map_err(StoreError::new)
    }

    pub(super) async fn enqueue(
        &self,
        accounts: &[AccountId],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let mut invocation = self.enqueue.prepare_invoke();
        invocation.key(self.keys.ready()).arg(now_ms);
        for account in accounts {
            invocation.key(self.keys.generation(account)).arg(account.as_str());
        }
        let mut connection = self.connection().await?;
        let _: i64 = invocation.invoke_async(&mut connection).await.map_err(StoreError::new)?;
        Ok(())
    }

    pub(super) async fn queued(&self) -> Result<Vec<AccountId>, StoreError> {
        let mut connection = self.connection().await?;
        let members: Vec<String> =
            connection.zrange(self.keys.ready(), 0, -1).await.map_err(StoreError::new)?;
        Ok(members.iter().filter_map(|member| AccountId::parse(member).ok()).collect())
    }

    pub(super) async fn save_tokens(
        &self,
        account: &AccountId,
        tokens: &AccountTokens,
    ) -> Result<(), StoreError> {
        let sealed = self.sealer.seal(account, tokens);
        self.hash_set(self.keys.tokens(), account, sealed).await
    }

    pub(super) async fn tokens(
        &self,
        account: &AccountId,
    ) -> Result<Option<AccountTokens>, StoreError> {
        let sealed: Option<String> = self.hash_get(self.keys.tokens(), account).await?;
        Ok(sealed.and_then(|sealed| match self.sealer.open(account, &sealed) {
            Ok(tokens) => Some(tokens),
            Err(error) => {
                tracing::warn!(%account, %error, "a stored token record does not open; the account must connect again");
                None
            }
        }))
    }

    pub(super) async fn save_display_name(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Result<(), StoreError> {
        self.hash_set(self.keys.names(), account, name.to_owned()).await
    }

    pub(super) async fn display_name(
        &self,
        account: &AccountId,
    ) -> Result<Option<String>, StoreError> {
        self.hash_get(self.keys.names(), account).await
    }

    pub(super) async fn save_status(
        &self,
        account: &AccountId,
        status: &AccountStatus,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(status).map_err(StoreError::new)?;
        self.hash_set(self.keys.status(), account, json).await
    }

    pub(super) async fn status(
        &self,
        account: &AccountId,
    ) -> Result<Option<AccountStatus>, StoreError> {
        let json: Option<String> = self.hash_get(self.keys.status(), account).await?;
        // A record that does not parse (written by another version, say) is no outage: the page
        // shows no status until the next pass writes one.
        Ok(json.and_then(|json| match serde_json::from_str(&json) {
            Ok(status) => Some(status),
            Err(error) => {
                tracing::warn!(%account, %error, "an account status does not parse; ignoring it");
                None
            }
        }))
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
            .await
            .map_err(StoreError::new)?;
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
        let score: Option<f64> = connection
            .zscore(self.keys.ready(), account.as_str())
            .await
            .map_err(StoreError::new)?;
        Ok(score.is_some())
    }

    pub(super) async fn forget_account(&self, account: &AccountId) -> Result<(), StoreError> {
        let mut invocation = self.forget.prepare_invoke();
        invocation
            .key(self.keys.tokens())
            .key(self.keys.cursors())
            .key(self.keys.ready())
            .key(self.keys.generation(account))
            .key(self.keys.lease(account))
            .key(self.keys.names())
            .key(self.keys.status())
            .key(self.keys.links())
            .arg(account.as_str());
        let mut connection = self.connection().await?;
        let _: i64 = invocation.invoke_async(&mut connection).await.map_err(StoreError::new)?;
        Ok(())
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection().await?;
        let _: String =
            redis::cmd("PING").query_async(&mut connection).await.map_err(StoreError::new)?;
        Ok(())
    }
}
