//! The worker's side of the store contract: what a claim hands over, the lease that fences every
//! write a worker makes, and the per-file records that make conversions idempotent.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{AccountStatus, StoreError};
use crate::dropbox::{AccountId, AccountTokens};

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

/// What [`super::Store::claim`] found.
#[derive(Debug)]
pub enum ClaimOutcome {
    Claimed(Box<Claim>),
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
}

/// Record changes a pass commits together with its cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordChanges {
    /// Folders (lower-case, with a trailing `/`) whose records are all dropped; applied first.
    pub forget_under: Vec<String>,
    /// `.md` lower-case path → its new record, or `None` to drop it.
    pub files: BTreeMap<String, Option<FileRecord>>,
}

impl RecordChanges {
    pub fn is_empty(&self) -> bool {
        self.forget_under.is_empty() && self.files.is_empty()
    }

    /// Drops every record under `folder` (lower-case, no trailing slash), those changed
    /// earlier in this batch included.
    pub fn forget_under(&mut self, folder: &str) {
        let prefix = format!("{folder}/");
        self.files.retain(|path, _| !path.starts_with(&prefix));
        self.forget_under.push(prefix);
    }

    /// Whether `path` lies under a folder this batch forgets.
    pub fn forgets(&self, path: &str) -> bool {
        ancestors(path).any(|folder| self.forget_under.iter().any(|prefix| prefix == folder))
    }

    /// The record for `path` as this batch leaves it: `Some(None)` when the batch dropped it,
    /// `None` when the batch does not know (ask the store).
    pub fn get(&self, path: &str) -> Option<Option<&FileRecord>> {
        if let Some(record) = self.files.get(path) {
            return Some(record.as_ref());
        }
        self.forgets(path).then_some(None)
    }
}

/// The folders above `path`, each with its trailing slash: `/a/b/c.md` → `/a/`, `/a/b/`.
pub(super) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
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
        }
    }

    #[test]
    fn forgetting_a_folder_drops_what_the_batch_wrote_under_it_and_nothing_beside_it() {
        let mut changes = RecordChanges::default();
        changes.files.insert("/notes/a.md".into(), Some(record("1")));
        changes.files.insert("/notes-old/b.md".into(), Some(record("2")));
        changes.forget_under("/notes");
        assert_eq!(changes.get("/notes/a.md"), Some(None));
        assert_eq!(changes.get("/notes/deep/c.md"), Some(None));
        assert_eq!(changes.get("/notes-old/b.md"), Some(Some(&record("2"))));
        assert_eq!(changes.get("/other.md"), None);
        changes.files.insert("/notes/a.md".into(), Some(record("3")));
        assert_eq!(changes.get("/notes/a.md"), Some(Some(&record("3"))), "written after");
    }

    #[test]
    fn a_path_s_ancestors_are_its_folders_with_their_slash() {
        assert_eq!(ancestors("/a/b/c.md").collect::<Vec<_>>(), ["/a/", "/a/b/"]);
        assert_eq!(ancestors("/c.md").count(), 0);
        assert_eq!(ancestors("/é/ü.md").collect::<Vec<_>>(), ["/é/"]);
    }

    #[test]
    fn a_lease_never_shows_its_token() {
        let lease =
            Lease { account: AccountId::parse("dbid:abc").unwrap(), token: "secret-token".into() };
        assert!(!format!("{lease:?}").contains("secret-token"));
    }
}
