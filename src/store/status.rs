//! What the account page shows about an account's syncing: written by the worker after each
//! pass, read by the web process.

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
    Skipped {
        reason: String,
    },
    Failed {
        message: String,
    },
}

impl AccountStatus {
    /// The form both backends store.
    pub(super) fn to_stored(&self) -> Result<String, super::StoreError> {
        serde_json::to_string(self).map_err(super::StoreError::new)
    }

    /// A stored status; one that does not parse (written by another version, say) is no
    /// outage: the page shows none until the next pass writes one.
    pub(super) fn from_stored(account: &crate::dropbox::AccountId, json: &str) -> Option<Self> {
        match serde_json::from_str(json) {
            Ok(status) => Some(status),
            Err(error) => {
                tracing::warn!(%account, %error, "an account status does not parse; ignoring it");
                None
            }
        }
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
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            json,
            r#"{"state":{"state":"rate_limited","until":7},"last_pass_at":5,"recent":[{"path":"/a.md","at":5,"outcome":{"outcome":"skipped","reason":"over 10 MiB"}}]}"#
        );
        assert_eq!(serde_json::from_str::<AccountStatus>(&json).unwrap(), status);
    }
}
