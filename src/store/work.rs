//! The worker's side of the store contract: what a claim hands over, the lease that fences every
//! write a worker makes, and the per-file records that make conversions idempotent.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::{AccountStatus, StoreError};
use crate::account::{AccountId, AccountTokens};

/// A worker's hold on one account. Every write the worker makes for the account names it, and
/// the store refuses the write once the lease is gone (expired, or the account forgotten).
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    pub(super) account: AccountId,
    pub(super) token: String,
}

impl Lease {
    pub fn account(&self) -> &AccountId {
        &self.account
    }
}

impl fmt::Debug for Lease {
    /// The token is a capability: whoever knows it can move the account's cursor.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease").field("account", &self.account).finish_non_exhaustive()
    }
}

/// How long the holder of a lease can count on it: moved on by each renewal, read before each
/// write and watched while it runs. It runs out a margin before the lease could expire, counted
/// from when the claim or renewal was sent, so a write bounded by it ends while the lease is
/// surely held. It is read from the clocks, not from a flag another task sets, so a process
/// frozen and resumed finds it gone at once; and from both the monotonic clock and the wall
/// clock, since a paused virtual machine's monotonic clock may not count the pause while Redis's
/// does. Never from the store's [`crate::clock::Clock`]: the lease runs out in real time whatever
/// that clock says (Redis expires it), so a window a test's clock could hold open would let a
/// write outlive the lease.
#[derive(Clone, Debug)]
pub struct LeaseWindow {
    until: Arc<Mutex<Option<(Instant, SystemTime)>>>,
}

impl LeaseWindow {
    /// A window that closes at `until`.
    pub fn new(until: Instant) -> LeaseWindow {
        LeaseWindow { until: Arc::new(Mutex::new(Some(Self::both(until)))) }
    }

    /// `until` on both clocks.
    fn both(until: Instant) -> (Instant, SystemTime) {
        let now = Instant::now();
        let wall = SystemTime::now();
        match until.checked_duration_since(now) {
            Some(ahead) => (until, wall + ahead),
            None => (until, wall - now.duration_since(until)),
        }
    }

    /// Moves the end of the window (a renewal went through).
    pub fn extend_to(&self, until: Instant) {
        let mut current = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        if current.is_some() {
            *current = Some(Self::both(until));
        }
    }

    /// Closes the window for good (the store says the lease is gone).
    pub fn close(&self) {
        *self.until.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// How long a write may still take; `None` once the lease may have run out.
    pub fn left(&self) -> Option<Duration> {
        let (until, wall) = (*self.until.lock().unwrap_or_else(PoisonError::into_inner))?;
        let left = until.checked_duration_since(Instant::now())?;
        let wall_left = wall.duration_since(SystemTime::now()).ok()?;
        let left = left.min(wall_left);
        (!left.is_zero()).then_some(left)
    }

    /// Resolves once the window closes; renewals meanwhile keep it open.
    pub async fn closed(&self) {
        // Looked at again at least every second, so a wall clock that jumps (a resumed virtual
        // machine catching up) is noticed within one.
        while let Some(left) = self.left() {
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
    }
}

/// What claiming an account hands the worker: everything a pass starts from, read in the same
/// atomic step that took the lease.
pub struct Claim {
    pub lease: Lease,
    /// When the claim was sent: the lease runs for its TTL from some moment after this.
    pub leased_at: std::time::Instant,
    /// When the account became due (ms since the epoch): the notification's time, or the end
    /// of a backoff.
    pub due_at_ms: u64,
    /// `None` when the token record no longer opens (`SECRET_KEY` changed): the account must
    /// connect again.
    pub tokens: Option<AccountTokens>,
    /// The token record exactly as stored, so refreshed tokens replace it only if nobody
    /// re-linked the account meanwhile.
    pub sealed_tokens: String,
    /// Where the last pass stopped; `None` before the first pass and after a `reset`.
    pub cursor: Option<String>,
    /// The notification count seen at the claim: a different count at completion means a
    /// change arrived during the pass.
    pub generation: u64,
    /// Passes that failed in a row, for the backoff.
    pub failures: u32,
    pub status: AccountStatus,
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("lease", &self.lease)
            .field("has_cursor", &self.cursor.is_some())
            .field("generation", &self.generation)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// A claim as a backend reads it: the token record still sealed and the status still encoded,
/// for the store's front to open ([`super::Store::claim`]).
pub(super) struct StoredClaim {
    pub(super) lease: Lease,
    pub(super) leased_at: Instant,
    pub(super) due_at_ms: u64,
    pub(super) sealed_tokens: String,
    pub(super) cursor: Option<String>,
    pub(super) generation: u64,
    pub(super) failures: u32,
    pub(super) status: Option<String>,
}

/// What [`super::Store::claim`] found (`C`: what a claim hands over; a backend's is a
/// [`StoredClaim`], which the front opens).
#[derive(Debug)]
pub enum ClaimOutcome<C = Box<Claim>> {
    Claimed(C),
    /// Nothing is due now; the soonest entry is due in this many milliseconds (`None`: nothing
    /// queued that a worker could take; a lease being held may hide an entry).
    NothingDue {
        next_due_in_ms: Option<u64>,
    },
}

/// How a pass ended, for [`super::Store::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// No notification arrived during the pass: the account left the queue.
    Done,
    /// A notification arrived during the pass: the account is due again at once.
    Again,
}

/// A write for an account whose lease is no longer this worker's, or a store that failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another worker may own the account now; this one must stop touching it.
    #[error("the lease on the account was lost")]
    Lost,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What markdrop remembers about one converted Markdown file, keyed by the `.md`'s lower-case
/// path: enough to skip unchanged content and to delete only an `.html` it wrote itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// `content_hash` of the Markdown that was converted.
    pub source_hash: String,
    /// Display path of the uploaded `.html`.
    pub html_path: String,
    /// `content_hash` of the uploaded `.html`: it is still markdrop's only while this matches.
    pub html_hash: String,
    /// `content_hash` of an `.html` being uploaded, set just before the upload and cleared with
    /// the page's commit: an `.html` with this hash is markdrop's too (its upload may have
    /// landed before the worker died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_html_hash: Option<String>,
    /// The sibling is the person's (they made it, or changed it after markdrop wrote it): its
    /// `content_hash` when markdrop last saw it. markdrop does not write it while this is set;
    /// deleting or renaming it, or restoring markdrop's latest page, ends that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_html_hash: Option<String>,
    /// The note names (lower-cased, without `.md`) its wikilinks mention, resolved or not, as
    /// its last rendering found them: a note of one of these names appearing or going away may
    /// change its page (`crate::render::Rendered::wikilinks`). Empty in records from before
    /// wikilinks, until the note is converted again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
}

impl FileRecord {
    /// The display path of the note this record (kept under the note's lower-case `key`) is
    /// about: the page's, with `.md` for `.html`.
    pub fn note_display(&self, key: &str) -> String {
        match self.html_path.strip_suffix(".html") {
            Some(stem) => format!("{stem}.md"),
            None => key.to_owned(),
        }
    }

    /// Whether a sibling with `content_hash` is one of markdrop's pages for this note as the
    /// record knows them: the latest one, or the one being uploaded.
    pub fn is_ours(&self, content_hash: &str) -> bool {
        (!self.html_hash.is_empty() && self.html_hash == content_hash)
            || self.pending_html_hash.as_deref() == Some(content_hash)
    }
}

/// A settings file (`markdrop.toml`, `crate::settings`) as the worker last read it, and what of
/// it is in force: the last version that was valid, with the stylesheet it names. An invalid
/// version changes nothing but `hash` and `problem`, so the last good settings stay in force.
/// Keyed by the file's lower-case path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsRecord {
    /// The file's display path.
    pub path: String,
    /// `content_hash` of the version last read, valid or not.
    pub hash: String,
    /// The text of the last valid version; `None` when no version has been valid yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The stylesheet that `text` names (`css = …`), as last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stylesheet: Option<StylesheetRecord>,
    /// What is wrong with the version last read or its stylesheet, for the account page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A person's stylesheet as last read for the settings file that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StylesheetRecord {
    /// Its display path.
    pub path: String,
    /// Its `content_hash`.
    pub hash: String,
    /// Its text, checked (`crate::settings::check_stylesheet`).
    pub text: String,
}

/// Record changes a pass commits together with its cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordChanges {
    /// Folders (lower-case, with a trailing `/`) whose records are all dropped; applied first.
    pub forget_under: Vec<String>,
    /// `.md` lower-case path → its new record, or `None` to drop it.
    pub files: BTreeMap<String, Option<FileRecord>>,
    /// An attachment's lower-case path → its display path, or `None` to drop it: the files
    /// other than notes that wikilinks can point at (`crate::render::is_attachment`). Not
    /// touched by `forget_under`: a pass drops those under a deleted folder one by one, with its
    /// cursor, so a pass that fails leaves them for its retry to see go (and convert their
    /// linkers).
    pub attachments: BTreeMap<String, Option<String>>,
    /// Notes' display paths to record without a record change (`Store::note_paths`), for a
    /// store written before they were kept: lower-case path → display path.
    pub note_paths: BTreeMap<String, String>,
    /// A settings file's lower-case path → its record, or `None` to drop it. Like
    /// `attachments`, committed only with the cursor and never dropped by `forget_under`: a
    /// pass that fails leaves the listing's settings changes to its retry, which converts the
    /// notes they govern again.
    pub settings: BTreeMap<String, Option<SettingsRecord>>,
}

impl RecordChanges {
    pub fn is_empty(&self) -> bool {
        self.forget_under.is_empty()
            && self.files.is_empty()
            && self.attachments.is_empty()
            && self.note_paths.is_empty()
            && self.settings.is_empty()
    }

    /// Drops every record under `folder` (lower-case, no trailing slash), those changed
    /// earlier in this batch included.
    pub fn forget_under(&mut self, folder: &str) {
        let prefix = format!("{folder}/");
        self.files.retain(|path, _| !path.starts_with(&prefix));
        self.forget_under.push(prefix);
    }
}

/// The folders above `path`, each with its trailing slash: `/a/b/c.md` → `/a/`, `/a/b/`.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices().skip(1).filter(|&(_, c)| c == '/').map(move |(at, _)| &path[..=at])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hash: &str) -> FileRecord {
        FileRecord {
            source_hash: hash.into(),
            html_path: "/a.html".into(),
            html_hash: "h".into(),
            pending_html_hash: None,
            kept_html_hash: None,
            links: Vec::new(),
        }
    }

    #[test]
    fn forgetting_a_folder_drops_what_the_batch_wrote_under_it_and_nothing_beside_it() {
        let mut changes = RecordChanges::default();
        changes.files.insert("/notes/a.md".into(), Some(record("1")));
        changes.files.insert("/notes-old/b.md".into(), Some(record("2")));
        changes.forget_under("/notes");
        assert_eq!(changes.files.get("/notes/a.md"), None, "dropped from the batch");
        assert_eq!(changes.files.get("/notes-old/b.md"), Some(&Some(record("2"))));
        assert_eq!(changes.forget_under, ["/notes/"], "and forgotten in the store");
    }

    #[test]
    fn a_path_s_ancestors_are_its_folders_with_their_slash() {
        assert_eq!(ancestors("/a/b/c.md").collect::<Vec<_>>(), ["/a/", "/a/b/"]);
        assert_eq!(ancestors("/c.md").count(), 0);
        assert_eq!(ancestors("/é/ü.md").collect::<Vec<_>>(), ["/é/"]);
    }

    #[test]
    fn a_lease_window_closes_when_its_time_is_up_or_it_is_closed() {
        let window = LeaseWindow::new(Instant::now() + Duration::from_secs(60));
        assert!(window.left().is_some_and(|left| left > Duration::from_secs(59)));
        window.extend_to(Instant::now() - Duration::from_millis(1));
        assert_eq!(window.left(), None, "past its end");
        window.extend_to(Instant::now() + Duration::from_secs(60));
        assert!(window.left().is_some());
        window.close();
        window.extend_to(Instant::now() + Duration::from_secs(60));
        assert_eq!(window.left(), None, "a closed window stays closed");
    }

    #[tokio::test]
    async fn a_window_renewed_while_a_write_runs_stays_open_and_closes_when_renewals_stop() {
        let ttl = Duration::from_millis(300);
        let window = LeaseWindow::new(Instant::now() + ttl);
        let watched = tokio::spawn({
            let window = window.clone();
            async move { window.closed().await }
        });
        // Renewed twice per lifetime, as a heartbeat does: open well past the first end.
        for _ in 0..4 {
            tokio::time::sleep(ttl / 2).await;
            window.extend_to(Instant::now() + ttl);
            assert!(!watched.is_finished(), "open while renewed");
        }
        tokio::time::timeout(ttl * 4, watched)
            .await
            .expect("closed once the renewals stop")
            .expect("the watcher");
        assert_eq!(window.left(), None);
    }

    #[test]
    fn a_lease_never_shows_its_token() {
        let lease =
            Lease { account: AccountId::parse("dbid:abc").unwrap(), token: "secret-token".into() };
        assert!(!format!("{lease:?}").contains("secret-token"));
    }
}
