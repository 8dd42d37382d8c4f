//! What every layer says about a linked account: its id and its token record. The store keeps
//! them, the web app and the worker pass them around, and the Dropbox client uses them to call
//! Dropbox; none of these depends on another for them.

use std::fmt;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// A Dropbox account id (`dbid:…`), checked once where it enters markdrop.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

/// Why a string is not an account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Dropbox account id (expected `dbid:` and up to 100 letters, digits, `-` or `_`)")]
pub struct InvalidAccountId;

impl AccountId {
    pub fn parse(raw: &str) -> Result<AccountId, InvalidAccountId> {
        let rest = raw.strip_prefix("dbid:").ok_or(InvalidAccountId)?;
        let valid = !rest.is_empty()
            && rest.len() <= 100
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| AccountId(raw.to_owned())).ok_or(InvalidAccountId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = InvalidAccountId;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        AccountId::parse(&raw)
    }
}

impl From<AccountId> for String {
    fn from(id: AccountId) -> String {
        id.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A linked account's tokens, and where its Dropbox starts.
#[derive(Debug, Clone)]
pub struct AccountTokens {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    /// When the access token dies; `None` when Dropbox did not say.
    pub expires_at: Option<SystemTime>,
    /// The team root namespace every files call is made from (`Dropbox-API-Path-Root`), when
    /// the person's Dropbox is a team space; `None`: their home namespace, as by default.
    pub path_root: Option<String>,
}

impl AccountTokens {
    /// Whether the access token dies within `margin` (never, when Dropbox did not say).
    pub(crate) fn expires_within(&self, margin: Duration) -> bool {
        self.expires_at.is_some_and(|at| at <= SystemTime::now() + margin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_checked_at_the_edge() {
        assert!(AccountId::parse("dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc").is_ok());
        for bad in ["", "dbid:", "AAH4f99T0", "dbid:a b", "dbid:é", "dbid:x\"y"] {
            assert_eq!(AccountId::parse(bad), Err(InvalidAccountId), "{bad:?}");
        }
        assert!(serde_json::from_str::<AccountId>("\"12345\"").is_err());
    }

    #[test]
    fn a_token_expiring_within_the_margin_counts_as_expiring() {
        let tokens = |expires_at| AccountTokens {
            access_token: "a".to_owned().into(),
            refresh_token: "r".to_owned().into(),
            expires_at,
            path_root: None,
        };
        assert!(
            tokens(Some(SystemTime::now() + Duration::from_secs(60)))
                .expires_within(Duration::from_secs(300))
        );
        assert!(
            !tokens(Some(SystemTime::now() + Duration::from_secs(3600)))
                .expires_within(Duration::from_secs(300))
        );
        assert!(!tokens(None).expires_within(Duration::from_secs(300)));
    }

    #[test]
    fn tokens_never_appear_in_debug_output() {
        let tokens = AccountTokens {
            access_token: "sl.secret-access".to_owned().into(),
            refresh_token: "secret-refresh".to_owned().into(),
            expires_at: None,
            path_root: None,
        };
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("secret-access") && !debug.contains("secret-refresh"), "{debug}");
    }
}
