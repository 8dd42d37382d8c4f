//! The embedded backend, for `markdrop serve` on one machine without Redis: a redb database in
//! `DATA_DIR`, with the same guarantees as the Redis backend inside one process.
//!
//! Why redb: pure Rust (no C library to build), one file, ACID transactions whose commits are
//! fsynced before they return, so the queue, tokens, cursors and file records survive `kill -9`
//! and power loss; it takes an exclusive lock on its file, so a second process cannot open the
//! same store by mistake; and it is actively maintained with a small dependency tree (libc).
//! sled (unmaintained beta) and SQLite (a C library) were the alternatives.
//!
//! Leases live in memory: only this process can hold one, and none outlives it. A claim leaves
//! the account's due time as it was (a held account is simply stepped over), so after a crash
//! the restarted process resumes it at once instead of waiting out a lease.
//!
//! Every call runs its transaction on a blocking thread. A fenced write checks the lease inside
//! its write transaction, whose writer lock keeps every other claim, forget and fenced write out
//! until it commits, so the check and the write are one atomic step, as the Redis backend's Lua
//! scripts are. The lease map's own lock is only ever held for an in-memory look or change.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use tokio::sync::Notify;

use super::codec::EncodedChanges;
use super::work::{ClaimOutcome, Completion, Lease, LeaseError, StoredClaim};
use super::{QueueDepth, StoreError};
use crate::account::AccountId;

/// account → when it is due (ms since the epoch).
const READY: TableDefinition<&str, u64> = TableDefinition::new("ready");
/// (due ms, account): the queue in due order.
const DUE: TableDefinition<(u64, &str), ()> = TableDefinition::new("due");
const GENERATIONS: TableDefinition<&str, u64> = TableDefinition::new("generations");
const FAILURES: TableDefinition<&str, u64> = TableDefinition::new("failures");
/// account → when its soonest note retry is due (ms since the epoch).
const RETRIES: TableDefinition<&str, u64> = TableDefinition::new("retries");
const TOKENS: TableDefinition<&str, &str> = TableDefinition::new("tokens");
const CURSORS: TableDefinition<&str, &str> = TableDefinition::new("cursors");
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("names");
const STATUS: TableDefinition<&str, &str> = TableDefinition::new("status");
const LINKS: TableDefinition<&str, &str> = TableDefinition::new("links");
/// series → count (`crate::metrics`).
const METRICS: TableDefinition<&str, u64> = TableDefinition::new("metrics");
/// (account, `.md` lower-case path) → its file record as JSON.
const FILES: TableDefinition<(&str, &str), &str> = TableDefinition::new("files");
/// (account, lower-case path) → display path of an attachment (an image, a PDF…).
const ATTACHMENTS: TableDefinition<(&str, &str), &str> = TableDefinition::new("attachments");
/// (account, `.md` lower-case path) → the note's display path, beside its record in FILES.
const NOTES: TableDefinition<(&str, &str), &str> = TableDefinition::new("notes");
/// (account, `markdrop.toml` lower-case path) → its settings record as JSON.
const SETTINGS: TableDefinition<(&str, &str), &str> = TableDefinition::new("settings");
/// What a pass's forgotten folders drop: records and their notes' paths. Attachments and
/// settings records are dropped one by one, with the cursor.
const FORGOTTEN_WITH_FOLDERS: [TableDefinition<(&str, &str), &str>; 2] = [FILES, NOTES];
/// Everything kept per file of an account.
const EVERY_FILE_TABLE: [TableDefinition<(&str, &str), &str>; 4] =
    [FILES, NOTES, ATTACHMENTS, SETTINGS];

/// Due accounts looked at per claim (as on Redis), so a claim's cost does not grow with the
/// queue.
const CLAIM_LOOKAHEAD: usize = 16;

/// Accounts queued per step of the start-up sweep.
const SWEEP_PAGE: usize = 500;

/// The file in `DATA_DIR`.
const FILE_NAME: &str = "markdrop.redb";

#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    leases: Mutex<HashMap<AccountId, Held>>,
    wake: Arc<Notify>,
}

struct Held {
    token: String,
    /// Real time, as a Redis lease's expiry is, not the store's clock: a worker's writes are
    /// bounded by real time ([`super::LeaseWindow`]).
    expires: Instant,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `data_dir`. Fails when another process has it open.
    pub(super) fn open(data_dir: &Path) -> Result<EmbeddedStore, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let db = Database::create(data_dir.join(FILE_NAME))?;
        let txn = db.begin_write()?;
        {
            // Tables exist from the start, so reads never meet a missing one.
            txn.open_table(READY)?;
            txn.open_table(DUE)?;
            txn.open_table(GENERATIONS)?;
            txn.open_table(FAILURES)?;
            txn.open_table(RETRIES)?;
            txn.open_table(METRICS)?;
            for table in [TOKENS, CURSORS, NAMES, STATUS, LINKS] {
                txn.open_table(table)?;
            }
            for table in EVERY_FILE_TABLE {
                txn.open_table(table)?;
            }
        }
        txn.commit()?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner { db, leases: Mutex::default(), wake: Arc::new(Notify::new()) }),
        })
    }

    pub(super) fn wake(&self) -> Arc<Notify> {
        self.inner.wake.clone()
    }

    /// Runs `work` on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner)).await?
    }

    /// Runs `work` in one write transaction on a blocking thread, committing if it succeeds.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner, &WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.blocking(move |inner| inner.write(|txn| work(inner, txn))).await
    }

    /// Like [`EmbeddedStore::write`], for a lease holder: the lease is checked inside the write
    /// transaction, whose writer lock keeps every other claim, forget or fenced write out until
    /// the commit, so the check and the write are one atomic step. With `release`, the lease is
    /// given up once the commit has succeeded (a failed commit leaves it held, so the account is
    /// not claimed again before its lease runs out).
    async fn fenced<T: Send + 'static>(
        &self,
        lease: &Lease,
        release: bool,
        work: impl FnOnce(&WriteTransaction, &Lease) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, LeaseError> {
        let lease = lease.clone();
        let outcome = self
            .blocking(move |inner| {
                let txn = inner.db.begin_write()?;
                if !holds(&inner.leases(), &lease) {
                    return Ok(None);
                }
                let value = work(&txn, &lease)?;
                txn.commit()?;
                if release {
                    let mut leases = inner.leases();
                    if holds(&leases, &lease) {
                        leases.remove(&lease.account);
                    }
                }
                Ok(Some(value))
            })
            .await?;
        outcome.ok_or(LeaseError::Lost)
    }

    pub(super) async fn enqueue(
        &self,
        accounts: &[AccountId],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let accounts = accounts.to_vec();
        let added = self
            .write(move |_, txn| {
                let mut added = false;
                for account in &accounts {
                    bump(txn, GENERATIONS, account)?;
                    if get_u64(txn, READY, account)?.is_none() {
                        set_due(txn, account, now_ms)?;
                        added = true;
                    }
                }
                Ok(added)
            })
            .await?;
        if added {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    pub(super) async fn queued(&self) -> Result<Vec<AccountId>, StoreError> {
        self.blocking(|inner| {
            let txn = inner.db.begin_read()?;
            let due = txn.open_table(DUE)?;
            let mut accounts = Vec::new();
            for entry in due.iter()? {
                let (key, _) = entry?;
                accounts.extend(AccountId::parse(key.value().1).ok());
            }
            Ok(accounts)
        })
        .await
    }

    pub(super) async fn save_tokens(
        &self,
        account: &AccountId,
        sealed: &str,
    ) -> Result<(), StoreError> {
        self.put(TOKENS, account, sealed).await
    }

    pub(super) async fn tokens(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        self.get(TOKENS, account).await
    }

    pub(super) async fn save_display_name(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Result<(), StoreError> {
        self.put(NAMES, account, name).await
    }

    pub(super) async fn display_name(
        &self,
        account: &AccountId,
    ) -> Result<Option<String>, StoreError> {
        self.get(NAMES, account).await
    }

    pub(super) async fn status(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        self.get(STATUS, account).await
    }

    pub(super) async fn link_id(
        &self,
        account: &AccountId,
        candidate: &str,
    ) -> Result<String, StoreError> {
        let (account, candidate) = (account.clone(), candidate.to_owned());
        self.write(move |_, txn| {
            let mut links = txn.open_table(LINKS)?;
            let existing = links.get(account.as_str())?.map(|value| value.value().to_owned());
            if let Some(existing) = existing {
                return Ok(existing);
            }
            links.insert(account.as_str(), candidate.as_str())?;
            Ok(candidate)
        })
        .await
    }

    pub(super) async fn current_link_id(
        &self,
        account: &AccountId,
    ) -> Result<Option<String>, StoreError> {
        self.get(LINKS, account).await
    }

    pub(super) async fn is_queued(&self, account: &AccountId) -> Result<bool, StoreError> {
        let account = account.clone();
        self.blocking(move |inner| {
            let txn = inner.db.begin_read()?;
            let ready = txn.open_table(READY)?;
            Ok(ready.get(account.as_str())?.is_some())
        })
        .await
    }

    pub(super) async fn forget_account(&self, account: &AccountId) -> Result<(), StoreError> {
        let account = account.clone();
        self.blocking(move |inner| {
            inner.write(|txn| {
                // Inside the transaction: its writer lock keeps the holder's fenced writes out
                // until everything is gone.
                inner.leases().remove(&account);
                for table in [TOKENS, CURSORS, NAMES, STATUS, LINKS] {
                    remove(txn, table, &account)?;
                }
                remove_from_queue(txn, &account)?;
                remove_u64(txn, GENERATIONS, &account)?;
                remove_u64(txn, FAILURES, &account)?;
                remove_u64(txn, RETRIES, &account)?;
                forget_files(txn, &account, &EVERY_FILE_TABLE, |_| true)
            })
        })
        .await
    }

    pub(super) async fn restart_sync(
        &self,
        account: &AccountId,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let account = account.clone();
        self.blocking(move |inner| {
            inner.write(|txn| {
                // Inside the transaction, as in `forget_account`.
                inner.leases().remove(&account);
                remove(txn, CURSORS, &account)?;
                set_due(txn, &account, now_ms)?;
                forget_files(txn, &account, &EVERY_FILE_TABLE, |_| true)
            })
        })
        .await?;
        self.inner.wake.notify_one();
        Ok(())
    }

    pub(super) async fn add_metrics(
        &self,
        counts: &std::collections::BTreeMap<String, u64>,
    ) -> Result<(), StoreError> {
        let counts = counts.clone();
        self.write(move |_, txn| {
            let mut table = txn.open_table(METRICS)?;
            for (series, count) in &counts {
                let current = table.get(series.as_str())?.map_or(0, |v| v.value());
                table.insert(series.as_str(), current + count)?;
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn metrics(
        &self,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        self.blocking(|inner| {
            let txn = inner.db.begin_read()?;
            let table = txn.open_table(METRICS)?;
            let mut counts = std::collections::BTreeMap::new();
            for entry in table.iter()? {
                let (series, count) = entry?;
                counts.insert(series.value().to_owned(), count.value());
            }
            Ok(counts)
        })
        .await
    }

    pub(super) async fn queue_depth(&self, now_ms: u64) -> Result<QueueDepth, StoreError> {
        self.blocking(move |inner| {
            let txn = inner.db.begin_read()?;
            let due = txn.open_table(DUE)?;
            let held: Vec<AccountId> = inner.leases().keys().cloned().collect();
            let (mut queued, mut due_now) = (0, 0);
            for entry in due.iter()? {
                let (key, _) = entry?;
                queued += 1;
                // A held account keeps its past due time here, but it is being synced.
                let (at, account) = key.value();
                if at <= now_ms && !held.iter().any(|held| held.as_str() == account) {
                    due_now += 1;
                }
            }
            Ok(QueueDepth { queued, due: due_now })
        })
        .await
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|inner| Ok(inner.db.begin_read().map(drop)?)).await
    }

    pub(super) async fn claim(
        &self,
        lease_ttl_ms: u64,
        now_ms: u64,
    ) -> Result<ClaimOutcome<StoredClaim>, StoreError> {
        let lease_ttl = Duration::from_millis(lease_ttl_ms);
        let token = crate::crypto::random_token();
        self.blocking(move |inner| {
            // The writer lock first: no other claim, forget or fenced write runs meanwhile.
            let txn = inner.db.begin_write()?;
            let now = Instant::now();
            let held: Vec<AccountId> = {
                let mut leases = inner.leases();
                leases.retain(|_, held| held.expires > now);
                leases.keys().cloned().collect()
            };
            // A due retry joins the queue due now; an account queued already keeps its place.
            let (promoted, next_retry_at) = promote_due_retries(&txn, now_ms)?;
            // Held accounts keep their due time and are stepped over; there are at most as
            // many as accounts being synced. The first due one that is linked is taken.
            let mut candidates = Vec::new();
            let mut next_due_in_ms = None;
            {
                let table = txn.open_table(DUE)?;
                for entry in table.iter()? {
                    let (key, _) = entry?;
                    let (at, account) = key.value();
                    if held.iter().any(|held| held.as_str() == account) {
                        continue;
                    }
                    if at > now_ms {
                        next_due_in_ms = Some(at - now_ms);
                        break;
                    }
                    candidates.push((account.to_owned(), at));
                    if candidates.len() == CLAIM_LOOKAHEAD {
                        break;
                    }
                }
            }
            if let Some(at) = next_retry_at {
                let retry_in = at.saturating_sub(now_ms);
                next_due_in_ms =
                    Some(next_due_in_ms.map_or(retry_in, |due: u64| due.min(retry_in)));
            }
            let mut dropped = promoted;
            for (raw, due_at_ms) in candidates {
                let Ok(account) = AccountId::parse(&raw) else {
                    remove_from_queue_raw(&txn, &raw)?;
                    dropped = true;
                    continue;
                };
                let Some(sealed_tokens) = get(&txn, TOKENS, &account)? else {
                    // Not linked: a webhook for an account that never connected.
                    remove_from_queue(&txn, &account)?;
                    remove_u64(&txn, GENERATIONS, &account)?;
                    dropped = true;
                    continue;
                };
                let claim = StoredClaim {
                    leased_at: now,
                    due_at_ms,
                    sealed_tokens,
                    cursor: get(&txn, CURSORS, &account)?,
                    generation: get_u64(&txn, GENERATIONS, &account)?.unwrap_or(0),
                    failures: get_u64(&txn, FAILURES, &account)?
                        .unwrap_or(0)
                        .try_into()
                        .unwrap_or(u32::MAX),
                    status: get(&txn, STATUS, &account)?,
                    lease: Lease { account: account.clone(), token: token.clone() },
                };
                if dropped {
                    txn.commit()?;
                }
                inner.leases().insert(account, Held { token, expires: now + lease_ttl });
                return Ok(ClaimOutcome::Claimed(claim));
            }
            if dropped {
                txn.commit()?;
                // Dropped entries may have hidden more: say so, and the caller looks again.
                next_due_in_ms = Some(0);
            }
            // Nothing written otherwise: the transaction is dropped, no fsync for an idle look.
            Ok(ClaimOutcome::NothingDue { next_due_in_ms })
        })
        .await
    }

    pub(super) async fn renew(
        &self,
        lease: &Lease,
        lease_ttl_ms: u64,
        _now_ms: u64,
    ) -> Result<bool, StoreError> {
        let lease = lease.clone();
        // Only the in-memory lease changes; its lock is never held across a commit, so this
        // waits microseconds at most.
        let mut leases = self.inner.leases();
        if !holds(&leases, &lease) {
            return Ok(false);
        }
        if let Some(held) = leases.get_mut(&lease.account) {
            held.expires = Instant::now() + Duration::from_millis(lease_ttl_ms);
        }
        Ok(true)
    }

    pub(super) async fn recorded_paths(
        &self,
        account: &AccountId,
    ) -> Result<Vec<String>, StoreError> {
        let account = account.clone();
        self.blocking(move |inner| {
            let txn = inner.db.begin_read()?;
            let files = txn.open_table(FILES)?;
            let owner = account.as_str();
            let mut paths = Vec::new();
            for entry in files.range((owner, "")..)? {
                let (key, _) = entry?;
                let (record_owner, path) = key.value();
                if record_owner != owner {
                    break;
                }
                paths.push(path.to_owned());
            }
            Ok(paths)
        })
        .await
    }

    pub(super) async fn note_paths(
        &self,
        account: &AccountId,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        self.entries_in(NOTES, account).await
    }

    pub(super) async fn record_count(&self, account: &AccountId) -> Result<usize, StoreError> {
        Ok(self.recorded_paths(account).await?.len())
    }

    pub(super) async fn attachments(
        &self,
        account: &AccountId,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        self.entries_in(ATTACHMENTS, account).await
    }

    pub(super) async fn settings_files(
        &self,
        account: &AccountId,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        self.entries_in(SETTINGS, account).await
    }

    /// Every (lower-case path → what is kept for it) of the account in `table`.
    async fn entries_in(
        &self,
        table: TableDefinition<'static, (&'static str, &'static str), &'static str>,
        account: &AccountId,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let account = account.clone();
        self.blocking(move |inner| {
            let txn = inner.db.begin_read()?;
            let table = txn.open_table(table)?;
            let owner = account.as_str();
            let mut entries = std::collections::HashMap::new();
            for entry in table.range((owner, "")..=(owner, "\u{10FFFF}"))? {
                let (key, value) = entry?;
                entries.insert(key.value().1.to_owned(), value.value().to_owned());
            }
            Ok(entries)
        })
        .await
    }

    pub(super) async fn file_records(
        &self,
        account: &AccountId,
        paths: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let (account, paths) = (account.clone(), paths.to_vec());
        self.blocking(move |inner| {
            let txn = inner.db.begin_read()?;
            let files = txn.open_table(FILES)?;
            paths
                .iter()
                .map(|path| {
                    let record = files.get((account.as_str(), path.as_str()))?;
                    Ok(record.map(|record| record.value().to_owned()))
                })
                .collect()
        })
        .await
    }

    pub(super) async fn commit(
        &self,
        lease: &Lease,
        changes: EncodedChanges,
        cursor: Option<&str>,
        status: Option<&str>,
    ) -> Result<(), LeaseError> {
        let cursor = cursor.map(str::to_owned);
        let status = status.map(str::to_owned);
        self.fenced(lease, false, move |txn, lease| {
            let account = &lease.account;
            if !changes.forget_under.is_empty() {
                let forgotten: std::collections::HashSet<&str> =
                    changes.forget_under.iter().map(String::as_str).collect();
                forget_files(txn, account, &FORGOTTEN_WITH_FOLDERS, |path| {
                    super::work::ancestors(path).any(|folder| forgotten.contains(folder))
                })?;
            }
            let changed_tables = [
                (FILES, &changes.files),
                (ATTACHMENTS, &changes.attachments),
                (NOTES, &changes.note_paths),
                (SETTINGS, &changes.settings),
            ];
            for (table, changed) in changed_tables {
                let mut table = txn.open_table(table)?;
                for (path, value) in changed {
                    let key = (account.as_str(), path.as_str());
                    match value {
                        Some(value) => {
                            table.insert(key, value.as_str())?;
                        }
                        None => {
                            table.remove(key)?;
                        }
                    }
                }
            }
            if let Some(cursor) = &cursor {
                put(txn, CURSORS, account, cursor)?;
            }
            if let Some(status) = &status {
                put(txn, STATUS, account, status)?;
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn complete(
        &self,
        lease: &Lease,
        generation: u64,
        status: &str,
        retry_at: Option<u64>,
        now_ms: u64,
    ) -> Result<Completion, LeaseError> {
        let status = status.to_owned();
        let completion = self
            .fenced(lease, true, move |txn, lease| {
                let account = &lease.account;
                remove_u64(txn, FAILURES, account)?;
                put(txn, STATUS, account, &status)?;
                match retry_at {
                    Some(at) => {
                        let mut retries = txn.open_table(RETRIES)?;
                        retries.insert(account.as_str(), at)?;
                    }
                    None => remove_u64(txn, RETRIES, account)?,
                }
                if get_u64(txn, GENERATIONS, account)?.unwrap_or(0) != generation {
                    set_due(txn, account, now_ms)?;
                    return Ok(Completion::Again);
                }
                remove_from_queue(txn, account)?;
                remove_u64(txn, GENERATIONS, account)?;
                Ok(Completion::Done)
            })
            .await?;
        if completion == Completion::Again {
            self.inner.wake.notify_one();
        }
        Ok(completion)
    }

    pub(super) async fn reschedule(
        &self,
        lease: &Lease,
        due_at_ms: u64,
        count_failure: bool,
        status: Option<&str>,
        wake: bool,
    ) -> Result<(), LeaseError> {
        let status = status.map(str::to_owned);
        self.fenced(lease, true, move |txn, lease| {
            let account = &lease.account;
            if count_failure {
                bump(txn, FAILURES, account)?;
            }
            if let Some(status) = &status {
                put(txn, STATUS, account, status)?;
            }
            set_due(txn, account, due_at_ms)
        })
        .await?;
        if wake {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    pub(super) async fn unlink(
        &self,
        lease: &Lease,
        sealed_tokens: &str,
        status: &str,
        now_ms: u64,
    ) -> Result<bool, LeaseError> {
        let sealed_tokens = sealed_tokens.to_owned();
        let status = status.to_owned();
        let unlinked = self
            .fenced(lease, true, move |txn, lease| {
                let account = &lease.account;
                if get(txn, TOKENS, account)?.as_deref() != Some(sealed_tokens.as_str()) {
                    // Connected again during the pass: the new link stays, and is due again.
                    set_due(txn, account, now_ms)?;
                    return Ok(false);
                }
                remove(txn, TOKENS, account)?;
                remove(txn, CURSORS, account)?;
                remove_from_queue(txn, account)?;
                remove_u64(txn, GENERATIONS, account)?;
                remove_u64(txn, FAILURES, account)?;
                remove_u64(txn, RETRIES, account)?;
                forget_files(txn, account, &EVERY_FILE_TABLE, |_| true)?;
                put(txn, STATUS, account, &status)?;
                Ok(true)
            })
            .await?;
        if !unlinked {
            self.inner.wake.notify_one();
        }
        Ok(unlinked)
    }

    pub(super) async fn replace_tokens(
        &self,
        lease: &Lease,
        sealed_tokens: &str,
        sealed: &str,
    ) -> Result<bool, StoreError> {
        let (expected, sealed) = (sealed_tokens.to_owned(), sealed.to_owned());
        let replaced = self
            .fenced(lease, false, move |txn, lease| {
                if get(txn, TOKENS, &lease.account)?.as_deref() != Some(expected.as_str()) {
                    return Ok(false);
                }
                put(txn, TOKENS, &lease.account, &sealed)?;
                Ok(true)
            })
            .await;
        match replaced {
            Ok(replaced) => Ok(replaced),
            Err(LeaseError::Lost) => Ok(false),
            Err(LeaseError::Store(error)) => Err(error),
        }
    }

    /// Linked accounts, a page at a time; the cursor is how many came before (0 = start, and
    /// 0 again once there are no more).
    pub(super) async fn linked_accounts_page(
        &self,
        cursor: u64,
    ) -> Result<(u64, Vec<AccountId>), StoreError> {
        self.blocking(move |inner| {
            let txn = inner.db.begin_read()?;
            let tokens = txn.open_table(TOKENS)?;
            let mut accounts = Vec::new();
            let skip = usize::try_from(cursor).unwrap_or(usize::MAX);
            for entry in tokens.iter()?.skip(skip).take(SWEEP_PAGE) {
                let (key, _) = entry?;
                accounts.extend(AccountId::parse(key.value()).ok());
            }
            let next = if accounts.len() < SWEEP_PAGE { 0 } else { cursor + SWEEP_PAGE as u64 };
            Ok((next, accounts))
        })
        .await
    }

    pub(super) async fn leases_held(&self) -> Result<usize, StoreError> {
        let now = Instant::now();
        Ok(self.inner.leases().values().filter(|held| held.expires > now).count())
    }

    async fn get(
        &self,
        table: TableDefinition<'static, &'static str, &'static str>,
        account: &AccountId,
    ) -> Result<Option<String>, StoreError> {
        let account = account.clone();
        self.blocking(move |inner| {
            let txn = inner.db.begin_read()?;
            let table = txn.open_table(table)?;
            let value = table.get(account.as_str())?;
            Ok(value.map(|value| value.value().to_owned()))
        })
        .await
    }

    async fn put(
        &self,
        table: TableDefinition<'static, &'static str, &'static str>,
        account: &AccountId,
        value: &str,
    ) -> Result<(), StoreError> {
        let (account, value) = (account.clone(), value.to_owned());
        self.write(move |_, txn| put(txn, table, &account, &value)).await
    }
}

impl Inner {
    fn leases(&self) -> MutexGuard<'_, HashMap<AccountId, Held>> {
        // Every change to the map is a single insert or remove: a panic elsewhere cannot leave
        // it half-changed.
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write<T>(
        &self,
        work: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write()?;
        let value = work(&txn)?;
        txn.commit()?;
        Ok(value)
    }
}

fn holds(leases: &HashMap<AccountId, Held>, lease: &Lease) -> bool {
    leases
        .get(&lease.account)
        .is_some_and(|held| held.token == lease.token && held.expires > Instant::now())
}

fn get(
    txn: &WriteTransaction,
    table: TableDefinition<&str, &str>,
    account: &AccountId,
) -> Result<Option<String>, StoreError> {
    let table = txn.open_table(table)?;
    let value = table.get(account.as_str())?;
    Ok(value.map(|value| value.value().to_owned()))
}

fn put(
    txn: &WriteTransaction,
    table: TableDefinition<&str, &str>,
    account: &AccountId,
    value: &str,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(table)?;
    table.insert(account.as_str(), value)?;
    Ok(())
}

fn remove(
    txn: &WriteTransaction,
    table: TableDefinition<&str, &str>,
    account: &AccountId,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(table)?;
    table.remove(account.as_str())?;
    Ok(())
}

fn get_u64(
    txn: &WriteTransaction,
    table: TableDefinition<&str, u64>,
    account: &AccountId,
) -> Result<Option<u64>, StoreError> {
    let table = txn.open_table(table)?;
    let value = table.get(account.as_str())?;
    Ok(value.map(|value| value.value()))
}

/// Adds one to the account's counter in `table`.
fn bump(
    txn: &WriteTransaction,
    table: TableDefinition<&str, u64>,
    account: &AccountId,
) -> Result<(), StoreError> {
    let current = get_u64(txn, table, account)?.unwrap_or(0);
    let mut table = txn.open_table(table)?;
    table.insert(account.as_str(), current + 1)?;
    Ok(())
}

fn remove_u64(
    txn: &WriteTransaction,
    table: TableDefinition<&str, u64>,
    account: &AccountId,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(table)?;
    table.remove(account.as_str())?;
    Ok(())
}

/// Queues, due now, every account whose soonest note retry is due and that is not queued
/// already. Returns whether anything changed, and when the soonest retry still waiting is due.
fn promote_due_retries(
    txn: &WriteTransaction,
    now_ms: u64,
) -> Result<(bool, Option<u64>), StoreError> {
    let (mut due, mut next) = (Vec::new(), None::<u64>);
    {
        let retries = txn.open_table(RETRIES)?;
        // One entry per account with a note waiting: as many as the accounts with trouble.
        for entry in retries.iter()? {
            let (account, at) = entry?;
            if at.value() <= now_ms {
                due.push(account.value().to_owned());
            } else {
                next = Some(next.map_or(at.value(), |next| next.min(at.value())));
            }
        }
    }
    let mut retries = txn.open_table(RETRIES)?;
    let ready = txn.open_table(READY)?;
    let mut queue = Vec::new();
    for account in &due {
        retries.remove(account.as_str())?;
        if ready.get(account.as_str())?.is_none() {
            queue.push(account.clone());
        }
    }
    drop((retries, ready));
    for account in queue {
        set_due_raw(txn, &account, now_ms)?;
    }
    Ok((!due.is_empty(), next))
}

/// Queues the account (or moves it) to be due at `due_ms`.
fn set_due(txn: &WriteTransaction, account: &AccountId, due_ms: u64) -> Result<(), StoreError> {
    set_due_raw(txn, account.as_str(), due_ms)
}

fn set_due_raw(txn: &WriteTransaction, account: &str, due_ms: u64) -> Result<(), StoreError> {
    remove_from_queue_raw(txn, account)?;
    let mut ready = txn.open_table(READY)?;
    ready.insert(account, due_ms)?;
    let mut due = txn.open_table(DUE)?;
    due.insert((due_ms, account), ())?;
    Ok(())
}

fn remove_from_queue(txn: &WriteTransaction, account: &AccountId) -> Result<(), StoreError> {
    remove_from_queue_raw(txn, account.as_str())
}

fn remove_from_queue_raw(txn: &WriteTransaction, account: &str) -> Result<(), StoreError> {
    let mut ready = txn.open_table(READY)?;
    let previous = ready.remove(account)?.map(|due| due.value());
    if let Some(previous) = previous {
        let mut due = txn.open_table(DUE)?;
        due.remove((previous, account))?;
    }
    Ok(())
}

/// Drops the account's entries in `tables` whose path is `doomed`.
fn forget_files(
    txn: &WriteTransaction,
    account: &AccountId,
    tables: &[TableDefinition<(&str, &str), &str>],
    doomed: impl Fn(&str) -> bool,
) -> Result<(), StoreError> {
    let account = account.as_str();
    for &table in tables {
        let mut files = txn.open_table(table)?;
        // Every key of the account sorts after (account, "") and before the next account's.
        files.retain_in((account, "")..=(account, "\u{10FFFF}"), |(owner, path), _| {
            owner != account || !doomed(path)
        })?;
    }
    Ok(())
}
