//! The store: where markdrop keeps what must outlive a process (Dropbox tokens, cursors) and the
//! queue of accounts with changes waiting.
//!
//! One contract, two backends: Redis for any number of `web` and `worker` processes, and (with
//! the single-machine work) an embedded store for one process. This is the web side of the
//! contract: enqueueing accounts from a webhook and telling whether the store answers. The
//! worker's side (claim, lease, cursors) arrives with the sync worker.

mod redis;

use std::time::{SystemTime, UNIX_EPOCH};

pub use self::redis::RedisStore;
use crate::dropbox::AccountId;

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
    /// for an account collapse into one pending pass; an account already due stays due.
    pub async fn enqueue(&self, accounts: &[AccountId]) -> Result<(), StoreError> {
        match self {
            Store::Redis(store) => store.enqueue(accounts, now_millis()).await,
        }
    }

    /// The accounts waiting for a pass, soonest first.
    pub async fn queued(&self) -> Result<Vec<AccountId>, StoreError> {
        match self {
            Store::Redis(store) => store.queued().await,
        }
    }

    /// Whether the store answers now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Redis(store) => store.ping().await,
        }
    }
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}
