//! What the account page shows about an account's syncing, written by the worker with each
//! commit and read by the web process: the state, recent outcomes, the pages markdrop leaves to
//! the person, and the notes waiting to be retried (which are also the worker's schedule for
//! them: a completed pass keeps the account due again when the soonest retry is).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many recent conversions are kept per account.
pub const RECENT_CONVERSIONS: usize = 20;

/// An account's sync, as last recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStatus {
    pub state: SyncState,
    /// When the last pass completed, in seconds since the Unix epoch.
    pub last_pass_at: Option<u64>,
    /// Newest first, at most [`RECENT_CONVERSIONS`].
    pub recent: Vec<Conversion>,
    /// Pages markdrop does not write because they are the person's (they made the `.html`
    /// themselves, or changed it after markdrop wrote it), by the note's lower-case path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kept: BTreeMap<String, KeptPage>,
    /// Notes whose conversion failed for a reason that may pass, by lower-case path: each is
    /// tried again on its own schedule until it converts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retrying: BTreeMap<String, RetryingNote>,
    /// The person's settings files (`markdrop.toml`), by path, as the last complete pass left
    /// them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingsShown>,
}

/// A settings file, for the account page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsShown {
    /// Its display path.
    pub path: String,
    /// A version of it is in force (the last valid one, if `problem` says the latest is not).
    pub in_force: bool,
    /// What is wrong with its latest version, with line and column where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A sibling `.html` that belongs to the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptPage {
    /// Display path of the `.html`.
    pub html: String,
    /// Seconds since the Unix epoch when markdrop first left it alone.
    pub since: u64,
}

/// A note waiting for another try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryingNote {
    /// Display path of the note.
    pub markdown: String,
    /// Why the last try failed, in words a person understands.
    pub reason: String,
    /// Tries that failed in a row.
    pub attempts: u32,
    /// When the next try is due, in milliseconds since the Unix epoch.
    pub next_at_ms: u64,
    /// What failed was removing the page of the deleted note, not converting it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removal: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SyncState {
    /// Nothing to do, or waiting for the next change.
    #[default]
    Idle,
    /// A pass is running.
    Syncing,
    /// Dropbox asked to wait; the next pass starts at `until` (seconds since the epoch).
    RateLimited { until: u64 },
    /// Passes keep failing; `message` says why in words a person understands.
    Failing { message: String },
    /// Dropbox no longer accepts markdrop's access; the person must connect again.
    Unlinked,
    /// Dropbox says the link lacks a permission markdrop needs: nothing more is tried with this
    /// link (`tokens`, a fingerprint of its token record) until the person connects again and
    /// grants `scope`.
    MissingPermission { scope: String, tokens: String },
}

/// One file's outcome in a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversion {
    /// The Markdown file's display path.
    pub path: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Converted,
    /// Its `.html` was removed along with it.
    Removed,
    /// Its page `html` is the person's, so markdrop left it as it is.
    Kept {
        html: String,
    },
    Skipped {
        reason: String,
    },
    Failed {
        message: String,
    },
}

impl AccountStatus {
    /// When the soonest note retry is due (ms since the epoch), if any note waits for one.
    pub fn next_retry_at_ms(&self) -> Option<u64> {
        self.retrying.values().map(|note| note.next_at_ms).min()
    }

    /// Forgets what is kept about notes under `folder` (lower-case, with its trailing slash).
    pub fn forget_under(&mut self, folder: &str) {
        self.kept.retain(|key, _| !key.starts_with(folder));
        self.retrying.retain(|key, _| !key.starts_with(folder));
    }

    /// Records `conversion` as the newest, dropping the oldest beyond the limit.
    pub fn record(&mut self, conversion: Conversion) {
        self.recent.insert(0, conversion);
        self.recent.truncate(RECENT_CONVERSIONS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_conversions_keep_the_newest_twenty() {
        let mut status = AccountStatus::default();
        for at in 0..25 {
            status.record(Conversion {
                path: format!("/{at}.md"),
                at,
                outcome: Outcome::Converted,
            });
        }
        assert_eq!(status.recent.len(), RECENT_CONVERSIONS);
        assert_eq!(status.recent[0].at, 24);
        assert_eq!(status.recent[19].at, 5);
    }

    #[test]
    fn a_status_is_stable_json() {
        let status = AccountStatus {
            state: SyncState::RateLimited { until: 7 },
            last_pass_at: Some(5),
            recent: vec![Conversion {
                path: "/a.md".into(),
                at: 5,
                outcome: Outcome::Skipped { reason: "over 10 MiB".into() },
            }],
            ..AccountStatus::default()
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            json,
            r#"{"state":{"state":"rate_limited","until":7},"last_pass_at":5,"recent":[{"path":"/a.md","at":5,"outcome":{"outcome":"skipped","reason":"over 10 MiB"}}]}"#
        );
        assert_eq!(serde_json::from_str::<AccountStatus>(&json).unwrap(), status);
    }

    #[test]
    fn the_next_retry_is_the_soonest_and_a_forgotten_folder_takes_its_notes_along() {
        let mut status = AccountStatus::default();
        assert_eq!(status.next_retry_at_ms(), None);
        for (key, at) in [("/a/x.md", 30), ("/b.md", 10), ("/a/y.md", 20)] {
            let note = RetryingNote {
                markdown: key.into(),
                reason: "Dropbox had a server error".into(),
                attempts: 1,
                next_at_ms: at,
                removal: false,
            };
            status.retrying.insert(key.into(), note);
            status
                .kept
                .insert(key.into(), KeptPage { html: key.replace(".md", ".html"), since: 1 });
        }
        assert_eq!(status.next_retry_at_ms(), Some(10));
        status.forget_under("/a/");
        assert_eq!(status.retrying.keys().collect::<Vec<_>>(), ["/b.md"]);
        assert_eq!(status.kept.keys().collect::<Vec<_>>(), ["/b.md"]);
    }
}
