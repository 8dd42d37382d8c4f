//! The store: where markdrop keeps what must outlive a process (Dropbox tokens, cursors) and the
//! queue of accounts with changes waiting.
//!
//! One contract, two backends: Redis for any number of `web` and `worker` processes, and an
//! embedded store for one process, chosen by the settings ([`Store::open`]). The front,
//! [`Store`], decides the form of what is kept (token records sealed by [`sealed`], statuses and
//! file records encoded by [`codec`]) and reads the time ([`crate::clock`]); the backends move
//! strings. The web side enqueues accounts from a webhook, keeps token records and forgets
//! accounts; the worker's side ([`work`]) claims an account under a lease, and every write it
//! makes is fenced by that lease.
//!
//! The queue's guarantees (docs/ARCHITECTURE.md §3): any number of notifications for an account
//! make one pending pass; at most one worker holds an account; a notification during a pass
//! makes one more pass; a worker that dies loses nothing, since another claims the account once
//! the lease expires and resumes from the last committed cursor.

mod codec;
mod embedded;
mod redis;
mod sealed;
mod status;
mod wake;
mod work;

use std::future::Future;
use std::time::Duration;

use secrecy::SecretString;

use self::embedded::EmbeddedStore;
use self::redis::RedisStore;
pub use self::redis::migrate::{MigrateError, MigrationReport};
use self::sealed::TokenSealer;
pub use self::sealed::UnsealError;
pub use self::status::{
    AccountStatus, Conversion, KeptPage, Outcome, RECENT_CONVERSIONS, RetryingNote, SettingsShown,
    SyncState,
};
pub use self::wake::Wakeups;
use self::work::StoredClaim;
pub use self::work::{
    Claim, ClaimOutcome, Completion, FileRecord, Lease, LeaseError, LeaseWindow, RecordChanges,
    SettingsRecord, StylesheetRecord, ancestors,
};
use crate::account::{AccountId, AccountTokens};
use crate::clock::Clock;
use crate::config::{RedisSettings, StoreSettings};

/// Why an account goes back to the queue ([`Store::reschedule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reschedule {
    /// The pass failed: counted towards the account's backoff.
    Failed,
    /// Dropbox asked to wait: no failure.
    RateLimited,
    /// A stopping worker hands the account back, due now: idle workers are told at once.
    HandedBack,
}

/// The queue's size, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Accounts with a pass waiting or running.
    pub queued: u64,
    /// Of those, the ones due now.
    pub due: u64,
}

/// The store is out of reach or failing; the caller answers 503 or retries, and loses nothing.
///
/// It reads `the store is unavailable: <cause>` (`…: no answer within 2s`, `…: Connection
/// refused (os error 111)`), so a log line tells one outage from another. The cause is part of
/// the message rather than a `source`, so it shows once however the error is printed; log it as
/// any error, `error = %error_chain(&error)` (`crate::telemetry`). Its text is for the log only:
/// pages and response bodies say the store is unavailable in words of their own.
///
/// One cause is no outage but a setting: a Redis whose keys are laid out for another
/// `REDIS_SHARDS`, or before shards. It reads `the store's keys are laid out otherwise: …`, and
/// `web` and `worker` stop at start with it rather than serve 503s that waiting will not cure.
#[derive(Debug, thiserror::Error)]
#[error("{}: {cause}", if *.laid_out_otherwise { "the store's keys are laid out otherwise" } else { "the store is unavailable" })]
pub struct StoreError {
    /// The whole chain of the cause, with any URL's credentials taken out.
    cause: String,
    laid_out_otherwise: bool,
}

impl StoreError {
    fn new(error: impl Into<anyhow::Error>) -> StoreError {
        let error = error.into();
        StoreError {
            cause: without_credentials(&crate::telemetry::error_chain(error.as_ref())),
            laid_out_otherwise: false,
        }
    }

    /// The keys in Redis are not laid out as this process lays them out.
    fn laid_out_otherwise(reason: String) -> StoreError {
        StoreError { cause: reason, laid_out_otherwise: true }
    }

    /// Whether this is a layout that waiting will not change (see [`StoreError`]).
    pub fn is_laid_out_otherwise(&self) -> bool {
        self.laid_out_otherwise
    }
}

/// `text` with the credentials of any URL in it (`redis://user:password@host`) replaced by
/// `***`. No error markdrop's libraries make today quotes `REDIS_URL`, but one that did would put
/// its password in every log line about the store.
fn without_credentials(text: &str) -> String {
    let mut redacted = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let (before, after) = rest.split_at(scheme_end + "://".len());
        redacted.push_str(before);
        // Credentials end at the authority's last `@`; a password may hold `/`, `?` or `#`
        // unescaped, so the URL is taken to run to the next space.
        let url_end = after.find(char::is_whitespace).unwrap_or(after.len());
        rest = match after[..url_end].rfind('@') {
            Some(at) => {
                redacted.push_str("***");
                &after[at..]
            }
            None => after,
        };
    }
    redacted.push_str(rest);
    redacted
}

/// Whatever the backends' libraries fail with means the store is unavailable, so `?` turns it
/// into a [`StoreError`] (or a [`LeaseError::Store`] in a fenced write).
macro_rules! unavailable_on {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for StoreError {
            fn from(error: $error) -> StoreError {
                StoreError::new(error)
            }
        }

        impl From<$error> for LeaseError {
            fn from(error: $error) -> LeaseError {
                LeaseError::Store(StoreError::new(error))
            }
        }
    )*};
}

unavailable_on!(
    ::redis::RedisError,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    std::io::Error,
    tokio::task::JoinError,
);

/// The store markdrop runs on: a backend, the key its token records are sealed with, and the
/// clock its queue is timed by.
///
/// The front owns what is stored in what form: it seals and opens token records and encodes
/// statuses and file records ([`codec`]), so the backends only move strings, and the formats
/// cannot drift apart between them. It also reads the time for every due time, backoff and
/// retry it schedules, and hands the backends (and Redis's scripts) the time as an argument:
/// neither asks a clock of its own.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    sealer: TokenSealer,
    clock: Clock,
}

#[derive(Clone)]
enum Backend {
    Redis(RedisStore),
    Embedded(EmbeddedStore),
}

/// Calls the same method on whichever backend this is (both have the same signatures), within
/// [`CALL_DEADLINE`].
macro_rules! on_backend {
    ($store:expr, $backend:ident => $call:expr) => {
        match &$store.backend {
            Backend::Redis($backend) => within_deadline($call).await,
            Backend::Embedded($backend) => within_deadline($call).await,
        }
    };
}

impl Store {
    /// Opens the store `settings` choose (`REDIS_URL`, else `DATA_DIR`), sealing token records
    /// with a key derived from `secret_key` (`SECRET_KEY`).
    ///
    /// On Redis only the URL is checked: a Redis that cannot be reached yet is no error, each
    /// call reports its own failure and the next one tries again. The embedded store is opened
    /// (or created) now, and fails when another process has it open. Time is the system's.
    pub fn open(settings: &StoreSettings, secret_key: &SecretString) -> Result<Store, StoreError> {
        let backend = match settings {
            StoreSettings::Redis(redis) => Backend::Redis(RedisStore::new(redis)?),
            StoreSettings::Embedded { data_dir } => {
                Backend::Embedded(EmbeddedStore::open(data_dir)?)
            }
        };
        Ok(Store { backend, sealer: TokenSealer::new(secret_key), clock: Clock::system() })
    }

    /// This store, timing its queue by `clock`: a test's [`crate::clock::ManualClock`], so a
    /// backoff is over when the test says so. Leases still run out in real time.
    pub fn with_clock(self, clock: Clock) -> Store {
        Store { clock, ..self }
    }

    /// The clock the queue is timed by; whatever schedules work with this store (the worker's
    /// backoffs, a pass's note retries) reads the time from it too.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Queues one sync pass for each account, in one round trip. Any number of notifications
    /// for an account collapse into one pending pass; an account already in the queue keeps its
    /// place and its due time (a rate-limit wait or a backoff is never cut short by a
    /// notification, our own uploads' included).
    pub async fn enqueue(&self, accounts: &[AccountId]) -> Result<(), StoreError> {
        on_backend!(self, store => store.enqueue(accounts, self.clock.now_millis()))
    }

    /// The accounts waiting for a pass, soonest first.
    pub async fn queued(&self) -> Result<Vec<AccountId>, StoreError> {
        on_backend!(self, store => store.queued())
    }

    /// Keeps the account's tokens, sealed with the key from `SECRET_KEY`.
    pub async fn save_tokens(
        &self,
        account: &AccountId,
        tokens: &AccountTokens,
    ) -> Result<(), StoreError> {
        let sealed = self.sealer.seal(account, tokens);
        on_backend!(self, store => store.save_tokens(account, &sealed))
    }

    /// The account's tokens, or `None` when it is not linked. A record that no longer opens
    /// (`SECRET_KEY` changed) counts as not linked: the person has to connect again.
    pub async fn tokens(&self, account: &AccountId) -> Result<Option<AccountTokens>, StoreError> {
        let sealed = on_backend!(self, store => store.tokens(account))?;
        Ok(sealed.and_then(|sealed| self.sealer.open_or_warn(account, &sealed)))
    }

    /// Keeps the name to show for the account.
    pub async fn save_display_name(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Result<(), StoreError> {
        on_backend!(self, store => store.save_display_name(account, name))
    }

    /// The name to show for the account, if it was ever linked.
    pub async fn display_name(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        on_backend!(self, store => store.display_name(account))
    }

    /// The account's sync status, if a pass ever recorded one.
    pub async fn status(&self, account: &AccountId) -> Result<Option<AccountStatus>, StoreError> {
        let stored = on_backend!(self, store => store.status(account))?;
        Ok(stored.and_then(|stored| codec::decode_status(account, &stored)))
    }

    /// The account's link id, made now if it has none: it changes only when the account is
    /// forgotten and linked again, so a session signed in before an unlink stays signed out.
    pub async fn link_id(&self, account: &AccountId) -> Result<String, StoreError> {
        let candidate = crate::crypto::random_token();
        on_backend!(self, store => store.link_id(account, &candidate))
    }

    /// The account's link id, `None` when the account is not linked.
    pub async fn current_link_id(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        on_backend!(self, store => store.current_link_id(account))
    }

    /// Whether the account has a pass waiting.
    pub async fn is_queued(&self, account: &AccountId) -> Result<bool, StoreError> {
        on_backend!(self, store => store.is_queued(account))
    }

    /// Deletes everything kept for the account: tokens, name, status, cursor, queue entry,
    /// lease, and the records of its notes, attachments and settings files.
    pub async fn forget_account(&self, account: &AccountId) -> Result<(), StoreError> {
        on_backend!(self, store => store.forget_account(account))
    }

    /// Makes the account's next pass start afresh, due now: forgets its cursor and the records
    /// of its notes, attachments and settings files, and takes the lease from a worker still on
    /// it (its writes are refused from then on). For a link whose Dropbox now starts elsewhere
    /// (a team space joined or left), where the old cursor and paths mean nothing.
    pub async fn restart_sync(&self, account: &AccountId) -> Result<(), StoreError> {
        on_backend!(self, store => store.restart_sync(account, self.clock.now_millis()))
    }

    /// Takes the first due account whose lease is free, leasing it for `lease_ttl`. An entry
    /// for an account that is not linked is dropped on the way.
    pub async fn claim(&self, lease_ttl: Duration) -> Result<ClaimOutcome, StoreError> {
        let now_ms = self.clock.now_millis();
        let outcome = on_backend!(self, store => store.claim(millis(lease_ttl), now_ms))?;
        Ok(match outcome {
            ClaimOutcome::Claimed(stored) => {
                ClaimOutcome::Claimed(Box::new(self.open_claim(stored)))
            }
            ClaimOutcome::NothingDue { next_due_in_ms } => {
                ClaimOutcome::NothingDue { next_due_in_ms }
            }
        })
    }

    /// A claim as the backend read it, with its token record opened and its status decoded.
    fn open_claim(&self, stored: StoredClaim) -> Claim {
        let account = &stored.lease.account;
        Claim {
            tokens: self.sealer.open_or_warn(account, &stored.sealed_tokens),
            status: stored
                .status
                .and_then(|status| codec::decode_status(account, &status))
                .unwrap_or_default(),
            leased_at: stored.leased_at,
            due_at_ms: stored.due_at_ms,
            sealed_tokens: stored.sealed_tokens,
            cursor: stored.cursor,
            generation: stored.generation,
            failures: stored.failures,
            lease: stored.lease,
        }
    }

    /// Extends the lease by `lease_ttl`; `false` when it is no longer ours.
    pub async fn renew(&self, lease: &Lease, lease_ttl: Duration) -> Result<bool, StoreError> {
        let now_ms = self.clock.now_millis();
        on_backend!(self, store => store.renew(lease, millis(lease_ttl), now_ms))
    }

    /// The records of the given `.md` files (lower-case paths), in the same order.
    pub async fn file_records(
        &self,
        account: &AccountId,
        paths: &[String],
    ) -> Result<Vec<Option<FileRecord>>, StoreError> {
        let stored = on_backend!(self, store => store.file_records(account, paths))?;
        Ok(stored
            .into_iter()
            .map(|record| record.and_then(|json| codec::decode_record(&json)))
            .collect())
    }

    /// The lower-case paths of every `.md` the account has a record for.
    pub async fn recorded_paths(&self, account: &AccountId) -> Result<Vec<String>, StoreError> {
        on_backend!(self, store => store.recorded_paths(account))
    }

    /// The display path of every note the account has a record for, by lower-case path: what
    /// the records say, without reading them. A store from before these were kept has none
    /// (or fewer than [`Store::recorded_paths`]); the records are then the truth.
    pub async fn note_paths(
        &self,
        account: &AccountId,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        on_backend!(self, store => store.note_paths(account))
    }

    /// How many notes the account has a record for.
    pub async fn record_count(&self, account: &AccountId) -> Result<usize, StoreError> {
        on_backend!(self, store => store.record_count(account))
    }

    /// The display paths of every attachment recorded for the account, by lower-case path.
    pub async fn attachments(
        &self,
        account: &AccountId,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        on_backend!(self, store => store.attachments(account))
    }

    /// The record of every settings file (`markdrop.toml`) recorded for the account, by
    /// lower-case path. A stored record that does not parse is left out, with a warning: the
    /// file then counts as not read yet.
    pub async fn settings_files(
        &self,
        account: &AccountId,
    ) -> Result<std::collections::HashMap<String, SettingsRecord>, StoreError> {
        let stored = on_backend!(self, store => store.settings_files(account))?;
        Ok(stored
            .into_iter()
            .filter_map(|(path, json)| {
                let record = codec::decode_settings(account, &path, &json)?;
                Some((path, record))
            })
            .collect())
    }

    /// Saves a pass's progress in one atomic step, if the lease is still ours: the record
    /// changes, then the cursor and the status when given.
    pub async fn commit(
        &self,
        lease: &Lease,
        changes: &RecordChanges,
        cursor: Option<&str>,
        status: Option<&AccountStatus>,
    ) -> Result<(), LeaseError> {
        let changes = codec::encode_changes(changes)?;
        let status = status.map(codec::encode_status).transpose()?;
        on_backend!(self, store => store.commit(lease, changes, cursor, status.as_deref()))
    }

    /// Ends a successful pass and gives up the lease: the account leaves the queue, or is due
    /// again at once if a notification arrived since the claim. Clears the failure count. With
    /// `retry_at` (ms since the epoch), the account is queued again then, for its notes waiting
    /// to be retried; a notification before then brings it back sooner.
    pub async fn complete(
        &self,
        lease: &Lease,
        generation: u64,
        status: &AccountStatus,
        retry_at: Option<u64>,
    ) -> Result<Completion, LeaseError> {
        let status = codec::encode_status(status)?;
        on_backend!(self, store => {
            store.complete(lease, generation, &status, retry_at, self.clock.now_millis())
        })
    }

    /// Gives the account back to the queue, due after `delay`, and gives up the lease; `why`
    /// decides whether it counts towards the backoff and whether idle workers are told at once.
    pub async fn reschedule(
        &self,
        lease: &Lease,
        delay: Duration,
        why: Reschedule,
        status: Option<&AccountStatus>,
    ) -> Result<(), LeaseError> {
        let status = status.map(codec::encode_status).transpose()?;
        let due_at = self.clock.now_millis() + millis(delay);
        let failure = why == Reschedule::Failed;
        // Work due now (a stopping worker's) is announced; a wait is not.
        let wake = why == Reschedule::HandedBack;
        on_backend!(self, store => {
            store.reschedule(lease, due_at, failure, status.as_deref(), wake)
        })
    }

    /// Dropbox refused the account's tokens for good: drops tokens, cursor, records (of notes,
    /// attachments and settings files) and queue entry, keeps the name and `status` for its
    /// page. `false` when the person connected again during the pass (the new tokens stay, and
    /// the account is due again).
    pub async fn unlink(
        &self,
        lease: &Lease,
        sealed_tokens: &str,
        status: &AccountStatus,
    ) -> Result<bool, LeaseError> {
        let status = codec::encode_status(status)?;
        let now_ms = self.clock.now_millis();
        on_backend!(self, store => store.unlink(lease, sealed_tokens, &status, now_ms))
    }

    /// Keeps refreshed tokens in place of `sealed_tokens`, if the lease is ours and nobody
    /// connected the account again meanwhile. Returns the new sealed record, `None` when
    /// nothing was written.
    pub async fn replace_tokens(
        &self,
        lease: &Lease,
        sealed_tokens: &str,
        tokens: &AccountTokens,
    ) -> Result<Option<String>, StoreError> {
        let sealed = self.sealer.seal(&lease.account, tokens);
        let replaced =
            on_backend!(self, store => store.replace_tokens(lease, sealed_tokens, &sealed))?;
        Ok(replaced.then_some(sealed))
    }

    /// Queues every linked account once (a starting worker does this, so notifications that
    /// came while no worker ran are not lost). Returns how many accounts are linked.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let mut linked = 0;
        let mut cursor = 0;
        loop {
            let (next, accounts) = on_backend!(self, store => store.linked_accounts_page(cursor))?;
            linked += accounts.len();
            self.enqueue(&accounts).await?;
            if next == 0 {
                return Ok(linked);
            }
            cursor = next;
        }
    }

    /// How many accounts are leased to a worker right now.
    pub async fn leases_held(&self) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Redis(store) => store.leases_held().await,
            Backend::Embedded(store) => store.leases_held().await,
        }
    }

    /// Wake-ups for an idle worker: a signal soon after an account becomes due now.
    pub fn wakeups(&self) -> Wakeups {
        match &self.backend {
            Backend::Redis(store) => Wakeups::subscribe(store.clone()),
            Backend::Embedded(store) => Wakeups::notified_by(store.wake()),
        }
    }

    /// Adds a process's counts to the deployment's (see `crate::metrics`).
    pub async fn add_metrics(
        &self,
        counts: &std::collections::BTreeMap<String, u64>,
    ) -> Result<(), StoreError> {
        on_backend!(self, store => store.add_metrics(counts))
    }

    /// The deployment's counts, series → count.
    pub async fn metrics(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        on_backend!(self, store => store.metrics())
    }

    /// How many accounts are queued, and how many of them are due now.
    pub async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        on_backend!(self, store => store.queue_depth(self.clock.now_millis()))
    }

    /// Refuses to go on with keys laid out otherwise (another `REDIS_SHARDS`, or before
    /// shards); a store out of reach is no reason to stop, so it passes.
    pub async fn check_layout(&self) -> Result<(), StoreError> {
        match self.ping().await {
            Err(error) if error.is_laid_out_otherwise() => Err(error),
            _ => Ok(()),
        }
    }

    /// Whether the store answers now (on a Redis Cluster, any one primary: the others serve
    /// their shards while one is down).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, store => store.ping())
    }
}

/// Moves the keys under `from_prefix`, laid out as before shards, to the layout `settings`
/// describe (`markdrop migrate`); with `delete_old`, then deletes the old keys. Every `web` and
/// `worker` process must be stopped; running it again is safe (`redis::migrate`).
pub async fn migrate_redis(
    settings: &RedisSettings,
    from_prefix: &str,
    delete_old: bool,
) -> Result<MigrationReport, MigrateError> {
    self::redis::migrate::migrate(settings, from_prefix, delete_old).await
}

/// No store call keeps a request waiting longer than this: a Redis that accepts connections but
/// never answers must turn into a quick 503 (Dropbox allows a webhook 10 s), not a hung request.
const CALL_DEADLINE: Duration = Duration::from_secs(2);

async fn within_deadline<T, E: From<StoreError>>(
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout(CALL_DEADLINE, call).await.unwrap_or_else(|_| {
        Err(StoreError::new(anyhow::anyhow!("no answer within {CALL_DEADLINE:?}")).into())
    })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "hunter2-secret";

    #[test]
    fn a_store_error_shows_its_whole_cause_once() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = StoreError::new(anyhow::Error::new(refused).context("cannot connect"));
        assert_eq!(error.to_string(), "the store is unavailable: cannot connect: refused");
        assert_eq!(crate::telemetry::error_chain(&error), error.to_string());
    }

    #[test]
    fn credentials_in_a_url_are_taken_out_and_the_rest_kept() {
        for (text, expected) in [
            (
                "cannot reach redis://default:hunter2-secret@db.example:6379/0: refused",
                "cannot reach redis://***@db.example:6379/0: refused",
            ),
            (
                "rediss://:hunter2-secret/x#y@db:1 then redis://db:2",
                "rediss://***@db:1 then redis://db:2",
            ),
            (
                "no url here: Connection refused (os error 111)",
                "no url here: Connection refused (os error 111)",
            ),
        ] {
            assert_eq!(without_credentials(text), expected);
        }
    }

    #[tokio::test]
    async fn a_redis_url_s_password_never_shows_in_a_store_error() {
        let secret_key = "0123456789abcdef0123456789abcdef".to_owned().into();
        // Nothing listens on port 1: the connection is refused.
        let url = format!("redis://default:{PASSWORD}@127.0.0.1:1/0");
        let store = Store::open(&StoreSettings::redis(&url, "t:"), &secret_key).expect("a URL");
        let refused = store.ping().await.expect_err("nothing listens there");
        let malformed = Store::open(
            &StoreSettings::redis(&format!("redis://default:{PASSWORD}@[::1"), "t:"),
            &secret_key,
        )
        .err()
        .expect("not a URL");
        for error in [refused, malformed, StoreError::new(anyhow::anyhow!("cannot reach {url}"))] {
            let shown = format!("{error} {error:?} {}", crate::telemetry::error_chain(&error));
            assert!(!shown.contains(PASSWORD), "{shown}");
        }
    }
}
