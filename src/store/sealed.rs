//! Token records sealed at rest: whoever reads the store (a backup, a shared Redis, a
//! `MONITOR`) sees no usable Dropbox token.
//!
//! Sealed by [`crate::crypto::Sealer`] with a key of their own, and bound to the account id, so a
//! record copied onto another account does not open.

use std::time::{Duration, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::account::{AccountId, AccountTokens};
use crate::crypto::Sealer;

/// Marks the format, so a later one can be told apart (and old records still opened).
const VERSION: &str = "v1.";
/// Separates this key from anything else derived from `SECRET_KEY`.
const PURPOSE: &[u8] = b"markdrop token records v1";

/// A record that does not open: another `SECRET_KEY`, another account, or damaged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the token record cannot be opened (a different SECRET_KEY, or damaged)")]
pub struct UnsealError;

/// Seals and opens token records with a key derived from `SECRET_KEY`.
#[derive(Clone)]
pub struct TokenSealer {
    sealer: Sealer,
}

/// What is sealed; only ever serialized to be encrypted.
#[derive(Serialize, Deserialize)]
struct Record {
    access_token: String,
    refresh_token: String,
    /// Seconds since the Unix epoch.
    expires_at: Option<u64>,
    /// A team space's root namespace (records sealed before team spaces have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_root: Option<String>,
}

impl TokenSealer {
    pub fn new(secret_key: &SecretString) -> TokenSealer {
        TokenSealer { sealer: Sealer::new(secret_key, PURPOSE) }
    }

    /// The account's tokens, encrypted and bound to the account.
    pub fn seal(&self, account: &AccountId, tokens: &AccountTokens) -> String {
        let record = Record {
            access_token: tokens.access_token.expose_secret().to_owned(),
            refresh_token: tokens.refresh_token.expose_secret().to_owned(),
            expires_at: tokens
                .expires_at
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok().map(|elapsed| elapsed.as_secs())),
            path_root: tokens.path_root.clone(),
        };
        let plaintext = serde_json::to_vec(&record).expect("a struct of strings always serializes");
        format!("{VERSION}{}", self.sealer.seal(&plaintext, account.as_str().as_bytes()))
    }

    /// The tokens sealed for `account`, or `None` (logged) when the record does not open: the
    /// account must connect again.
    pub fn open_or_warn(&self, account: &AccountId, sealed: &str) -> Option<AccountTokens> {
        match self.open(account, sealed) {
            Ok(tokens) => Some(tokens),
            Err(error) => {
                tracing::warn!(%account, %error, "a stored token record does not open; the account must connect again");
                None
            }
        }
    }

    /// The tokens sealed for `account`.
    pub fn open(&self, account: &AccountId, sealed: &str) -> Result<AccountTokens, UnsealError> {
        let encoded = sealed.strip_prefix(VERSION).ok_or(UnsealError)?;
        let plaintext =
            self.sealer.open(encoded, account.as_str().as_bytes()).ok_or(UnsealError)?;
        let record: Record = serde_json::from_slice(&plaintext).map_err(|_| UnsealError)?;
        Ok(AccountTokens {
            access_token: record.access_token.into(),
            refresh_token: record.refresh_token.into(),
            expires_at: record.expires_at.map(|secs| UNIX_EPOCH + Duration::from_secs(secs)),
            path_root: record.path_root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc";
    const BOB: &str = "dbid:AABob000000000000000000000000000000000";

    fn sealer(key: &str) -> TokenSealer {
        TokenSealer::new(&key.to_owned().into())
    }

    fn tokens() -> AccountTokens {
        AccountTokens {
            access_token: "sl.access-token-plaintext".to_owned().into(),
            refresh_token: "refresh-token-plaintext".to_owned().into(),
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
            path_root: None,
        }
    }

    #[test]
    fn a_sealed_record_opens_to_the_same_tokens_and_hides_them() {
        let (sealer, alice) =
            (sealer("0123456789abcdef0123456789abcdef"), AccountId::parse(ALICE).unwrap());
        let sealed = sealer.seal(&alice, &tokens());
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("plaintext") && !sealed.contains("access-token"), "{sealed}");
        let opened = sealer.open(&alice, &sealed).expect("opens");
        assert_eq!(opened.access_token.expose_secret(), "sl.access-token-plaintext");
        assert_eq!(opened.refresh_token.expose_secret(), "refresh-token-plaintext");
        assert_eq!(opened.expires_at, tokens().expires_at);
        assert_ne!(sealed, sealer.seal(&alice, &tokens()), "every seal has a fresh nonce");
    }

    #[test]
    fn a_record_opens_only_for_its_account_with_its_key_and_undamaged() {
        let key = "0123456789abcdef0123456789abcdef";
        let (alice, bob) = (AccountId::parse(ALICE).unwrap(), AccountId::parse(BOB).unwrap());
        let sealed = sealer(key).seal(&alice, &tokens());
        assert_eq!(sealer(key).open(&bob, &sealed).err(), Some(UnsealError));
        assert_eq!(
            sealer("another-secret-key-of-32-characters").open(&alice, &sealed).err(),
            Some(UnsealError)
        );
        let mut damaged = sealed.clone().into_bytes();
        let last = damaged.len() - 2;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(damaged).unwrap();
        assert_eq!(sealer(key).open(&alice, &damaged).err(), Some(UnsealError));
        for garbage in ["", "v1.", "v1.!!!", "v2.abc", "plain-token"] {
            assert_eq!(sealer(key).open(&alice, garbage).err(), Some(UnsealError), "{garbage}");
        }
    }
}
