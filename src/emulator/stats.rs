//! Call counts and peak concurrency, so tests can assert how a client used the API: how many
//! uploads a sync made, and that it never listed or wrote for one account in parallel.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;

/// A snapshot of what the emulator has served so far.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// route → account id (`""` when the caller presented no known token) → calls.
    calls: BTreeMap<String, BTreeMap<String, u64>>,
    /// route → account id → calls answered with a 2xx (for a write: calls that changed, or
    /// left as it was, the file), counted when the answer is made.
    succeeded: BTreeMap<String, BTreeMap<String, u64>>,
    /// account id → most `list_folder` + `list_folder/continue` calls in flight at once.
    peak_listings: BTreeMap<String, u32>,
    /// account id → most `upload` + `delete_v2` calls in flight at once.
    peak_writes: BTreeMap<String, u32>,
    /// Webhook POSTs the receiver answered with 200.
    webhooks_delivered: u64,
    /// Webhook POSTs made, retries included.
    webhook_attempts: u64,
    /// Changes whose notification is neither delivered nor given up yet (waiting in the batch
    /// window, in flight, or waiting to be retried).
    webhooks_pending: u64,
}

impl Stats {
    /// Calls to `route` (`"files/upload"`, `"oauth2/token"`, …) made with `account_id`'s tokens.
    pub fn calls(&self, route: &str, account_id: &str) -> u64 {
        self.calls
            .get(route)
            .and_then(|by_account| by_account.get(account_id))
            .copied()
            .unwrap_or(0)
    }

    /// Calls to `route` with `account_id`'s tokens that succeeded. An upload is counted when it
    /// has been applied, so this tells a test that an upload held in flight has landed.
    pub fn succeeded(&self, route: &str, account_id: &str) -> u64 {
        self.succeeded
            .get(route)
            .and_then(|by_account| by_account.get(account_id))
            .copied()
            .unwrap_or(0)
    }

    /// Calls to `route` from anyone.
    pub fn total_calls(&self, route: &str) -> u64 {
        self.calls.get(route).map_or(0, |by_account| by_account.values().sum())
    }

    pub fn peak_listings(&self, account_id: &str) -> u32 {
        self.peak_listings.get(account_id).copied().unwrap_or(0)
    }

    pub fn peak_writes(&self, account_id: &str) -> u32 {
        self.peak_writes.get(account_id).copied().unwrap_or(0)
    }

    pub fn webhooks_delivered(&self) -> u64 {
        self.webhooks_delivered
    }

    pub fn webhook_attempts(&self) -> u64 {
        self.webhook_attempts
    }

    /// Notifications still being delivered or waiting to retry; 0 once the emulator stopped.
    pub fn webhooks_pending(&self) -> u64 {
        self.webhooks_pending
    }
}

/// Which concurrency a call counts towards.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    Listing,
    Write,
    Untracked,
}

#[derive(Default)]
struct Live {
    stats: Stats,
    listings: HashMap<String, u32>,
    writes: HashMap<String, u32>,
}

/// The live counters behind [`Stats`].
#[derive(Default, Clone)]
pub struct Recorder {
    live: Arc<Mutex<Live>>,
}

impl Recorder {
    fn live(&self) -> MutexGuard<'_, Live> {
        // A panic elsewhere while counting leaves counters that are still meaningful.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Stats {
        self.live().stats.clone()
    }

    pub fn count(&self, route: &str, account_id: &str) {
        let mut live = self.live();
        *live
            .stats
            .calls
            .entry(route.to_owned())
            .or_default()
            .entry(account_id.to_owned())
            .or_default() += 1;
    }

    pub fn count_success(&self, route: &str, account_id: &str) {
        let mut live = self.live();
        *live
            .stats
            .succeeded
            .entry(route.to_owned())
            .or_default()
            .entry(account_id.to_owned())
            .or_default() += 1;
    }

    pub fn webhook_attempt(&self, delivered: bool) {
        let mut live = self.live();
        live.stats.webhook_attempts += 1;
        if delivered {
            live.stats.webhooks_delivered += 1;
        }
    }

    /// Uploads and deletions for the account being served right now.
    pub fn writes_in_flight(&self, account_id: &str) -> u32 {
        self.live().writes.get(account_id).copied().unwrap_or(0)
    }

    /// Counts a notification as pending until the returned guard drops.
    pub fn webhook_pending(&self) -> Pending {
        self.live().stats.webhooks_pending += 1;
        Pending { recorder: self.clone() }
    }

    /// Marks a call in flight until the returned guard drops.
    pub fn enter(&self, kind: Concurrency, account_id: &str) -> InFlight {
        if kind != Concurrency::Untracked && !account_id.is_empty() {
            let mut live = self.live();
            let live = &mut *live;
            let (now, peaks) = match kind {
                Concurrency::Listing => (&mut live.listings, &mut live.stats.peak_listings),
                _ => (&mut live.writes, &mut live.stats.peak_writes),
            };
            let current = now.entry(account_id.to_owned()).or_default();
            *current += 1;
            let peak = peaks.entry(account_id.to_owned()).or_default();
            *peak = (*peak).max(*current);
        }
        InFlight { recorder: self.clone(), kind, account_id: account_id.to_owned() }
    }
}

/// A call in flight; dropping it ends the call, whichever way the handler returns.
pub struct InFlight {
    recorder: Recorder,
    kind: Concurrency,
    account_id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.kind == Concurrency::Untracked || self.account_id.is_empty() {
            return;
        }
        let mut live = self.recorder.live();
        let now = match self.kind {
            Concurrency::Listing => &mut live.listings,
            _ => &mut live.writes,
        };
        if let Some(current) = now.get_mut(&self.account_id) {
            *current = current.saturating_sub(1);
        }
    }
}

/// A notification not yet delivered; dropping it (delivered, given up or cancelled) ends that.
pub struct Pending {
    recorder: Recorder,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut live = self.recorder.live();
        live.stats.webhooks_pending = live.stats.webhooks_pending.saturating_sub(1);
    }
}
