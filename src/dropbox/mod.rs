//! The only code that speaks Dropbox HTTP: a typed client for the routes markdrop uses, OAuth,
//! the `Dropbox-API-Arg` encoding and the content hash.
//!
//! Everything here follows `docs/dropbox.md`, which records how Dropbox behaves on the wire,
//! with pointers to Dropbox's own documentation. The emulator (`crate::emulator`) implements the other side and shares none of this
//! code, so a misreading of the wire format cannot hide by living on both sides.

mod arg;
mod client;
mod concurrency;
mod content_hash;
mod error;
mod oauth;
mod types;

pub use arg::{escape_non_ascii, header_json};
pub use client::{
    AccountClient, BatchEntry, Download, DropboxClient, LONGEST_WAIT_IN_PLACE, MAX_BATCH_ENTRIES,
    RetryPolicy,
};
pub use concurrency::{CALLS_IN_FLIGHT_PER_ACCOUNT, MOST_CALLS_IN_FLIGHT_PER_ACCOUNT};
pub use content_hash::{ContentHasher, content_hash};
pub use error::{DropboxError, RateLimitReason, RouteError};
pub use oauth::{Grant, SCOPES, new_pkce};
pub use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
pub use types::{
    Account, AccountName, DeletedMetadata, FileMetadata, FolderMetadata, ListFolderPage, Metadata,
};

// The client takes and gives these; they belong to every layer (`crate::account`).
pub use crate::account::{AccountId, AccountTokens, InvalidAccountId};
