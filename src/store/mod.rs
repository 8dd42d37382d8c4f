//! The store: where markdrop keeps what must outlive a process (Dropbox tokens, cursors) and the
//! queue of accounts with changes waiting.
//!
//! One contract, two backends: Redis for any number of `web` and `worker` processes, and (with
//! the single-machine work) an embedded store for one process. This is the web side of the
//! contract: enqueueing accounts from a webhook, keeping token records (sealed, see [`sealed`]),
//! forgetting an account, and telling whether the store answers. The worker's side (claim,
//! lease, cursors) arrives with the sync worker.

mod redis;
mod sealed;
mod status;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use self::redis::RedisStore;
pub use self::sealed::{TokenSealer, UnsealError};
pub use self::status::{AccountStatus, Conversion, Outcome, RECENT_CONVERSIONS, SyncState};
use crate::dropbox::{AccountId, AccountTokens};

/// The store is out of reach or failing; the caller answers 503 or retries, and loses nothing.
#[derive(Debug, thiserror::Error)]
#[error("the store is unavailable")]
pub struct StoreError(#[source] anyhow::Error);

impl StoreError {
    fn new(error: impl Into<anyhow::Error>) -> StoreError {
        StoreError(error.into())
    }
}

/// The store markdrop runs on.
#[derive(Clone)]
pub enum Store {
    Redis(RedisStore),
}

impl Store {
    /// Queues one sync pass for each account, in one round trip. Any number of notifications
    /// for an account collapse into one pending pass; an account already in the queue keeps its
    /// place and its due time (a rate-limit wait or a backoff is never cut short by a
    /// notification, our own uploads' included).
    pub async fn enqueue(&self, accounts: &[AccountId]) -> Result<(), StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.enqueue(accounts, now_millis())).await,
        }
    }

    /// The accounts waiting for a pass, soonest first.
    pub async fn queued(&self) -> Result<Vec<AccountId>, StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.queued()).await,
        }
    }

    /// Keeps the account's tokens, sealed with the key from `SECRET_KEY`.
    pub async fn save_tokens(
        &self,
        account: &AccountId,
        tokens: &AccountTokens,
    ) -> Result<(), StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.save_tokens(account, tokens)).await,
        }
    }

    /// The account's tokens, or `None` when it is not linked. A record that no longer opens
    /// (`SECRET_KEY` changed) counts as not linked: the person has to connect again.
    pub async fn tokens(&self, account: &AccountId) -> Result<Option<AccountTokens>, StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.tokens(account)).await,
        }
    }

    /// Keeps the name to show for the account.
    pub async fn save_display_name(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Result<(), StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.save_display_name(account, name)).await,
        }
    }

    /// The name to show for the account, if it was ever linked.
    pub async fn display_name(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.display_name(account)).await,
        }
    }

    /// Records the account's sync status for its page.
    pub async fn save_status(
        &self,
        account: &AccountId,
        status: &AccountStatus,
    ) -> Result<(), StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.save_status(account, status)).await,
        }
    }

    /// The account's sync status, if a pass ever recorded one.
    pub async fn status(&self, account: &AccountId) -> Result<Option<AccountStatus>, StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.status(account)).await,
        }
    }

    /// The account's link id, made now if it has none: it changes only when the account is
    /// forgotten and linked again, so a session signed in before an unlink stays signed out.
    pub async fn link_id(&self, account: &AccountId) -> Result<String, StoreError> {
        match self {
            Store::Redis(store) => {
                within_deadline(store.link_id(account, &crate::crypto::random_token())).await
            }
        }
    }

    /// The account's link id, `None` when the account is not linked.
    pub async fn current_link_id(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.current_link_id(account)).await,
        }
    }

    /// Whether the account has a pass waiting.
    pub async fn is_queued(&self, account: &AccountId) -> Result<bool, StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.is_queued(account)).await,
        }
    }

    /// Deletes everything kept for the account: tokens, name, status, cursor, queue entry and
    /// lease.
    pub async fn forget_account(&self, account: &AccountId) -> Result<(), StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.forget_account(account)).await,
        }
    }

    /// Whether the store answers now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Redis(store) => within_deadline(store.ping()).await,
        }
    }
}

/// No store call keeps a request waiting longer than this: a Redis that accepts connections but
/// never answers must turn into a quick 503 (Dropbox allows a webhook 10 s), not a hung request.
const CALL_DEADLINE: Duration = Duration::from_secs(2);

async fn within_deadline<T>(
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(CALL_DEADLINE, call).await.unwrap_or_else(|_| {
        Err(StoreError::new(anyhow::anyhow!("no answer within {CALL_DEADLINE:?}")))
    })
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}
