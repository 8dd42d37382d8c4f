//! Call counts and peak concurrency, so tests can assert how a client used the API: how many
//! uploads a sync made, and that it never listed or wrote for one account in parallel; and what
//! the calls cost on Dropbox's side: 429 refusals by reason, content-host calls, files committed
//! in batches. A benchmark reads the same figures from the serialized form (`/_emulator/stats`).

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
    /// reason (`too_many_write_operations`, `too_many_requests`) → account id → calls the
    /// emulator itself answered with that 429 (injected faults are not counted).
    refusals: BTreeMap<String, BTreeMap<String, u64>>,
    /// account id → files committed by `upload_session/finish_batch` and `finish_batch_v2`.
    batch_commits: BTreeMap<String, u64>,
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

    /// Calls from `account_id` the emulator refused with 429 for `reason`
    /// (`too_many_write_operations` or `too_many_requests`).
    pub fn refusals(&self, reason: &str, account_id: &str) -> u64 {
        self.refusals.get(reason).and_then(|by| by.get(account_id)).copied().unwrap_or(0)
    }

    /// Calls from anyone the emulator refused with 429 for `reason`.
    pub fn total_refusals(&self, reason: &str) -> u64 {
        self.refusals.get(reason).map_or(0, |by_account| by_account.values().sum())
    }

    /// Calls to the content host (`download`, `upload`, `upload_session/start`, `append_v2`,
    /// `finish`): the ones that move file bytes, and what Dropbox's data transport limit
    /// counts. `""` for everyone.
    pub fn content_calls(&self, account_id: &str) -> u64 {
        CONTENT_ROUTES
            .iter()
            .map(|route| {
                if account_id.is_empty() {
                    self.total_calls(route)
                } else {
                    self.calls(route, account_id)
                }
            })
            .sum()
    }

    /// Calls to any `files/upload_session/…` route with `account_id`'s tokens.
    pub fn upload_session_calls(&self, account_id: &str) -> u64 {
        self.calls
            .iter()
            .filter(|(route, _)| route.starts_with("files/upload_session/"))
            .filter_map(|(_, by_account)| by_account.get(account_id))
            .sum()
    }

    /// Files `account_id` committed through `finish_batch` and `finish_batch_v2`.
    pub fn batch_commits(&self, account_id: &str) -> u64 {
        self.batch_commits.get(account_id).copied().unwrap_or(0)
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

/// The routes served on the content host (docs/dropbox.md §1, §13).
pub const CONTENT_ROUTES: [&str; 5] = [
    "files/download",
    "files/upload",
    "files/upload_session/start",
    "files/upload_session/append_v2",
    "files/upload_session/finish",
];

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

    /// A 429 the emulator answered itself, by its `reason` tag.
    pub fn count_refusal(&self, reason: &str, account_id: &str) {
        let mut live = self.live();
        *live
            .stats
            .refusals
            .entry(reason.to_owned())
            .or_default()
            .entry(account_id.to_owned())
            .or_default() += 1;
    }

    /// Files committed by one batch.
    pub fn count_batch_commits(&self, account_id: &str, files: u64) {
        *self.live().stats.batch_commits.entry(account_id.to_owned()).or_default() += files;
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
