//! `list_folder` cursors: opaque strings that carry their own state.
//!
//! A cursor is a position in one account's change journal plus what the listing covers, so it is
//! encoded into the string itself (base64url of a compact binary form, with a truncated
//! HMAC-SHA256 tag under a key only this emulator knows): serving a cursor stores nothing, and a
//! garbled, truncated or foreign-made cursor fails the tag check and gets Dropbox's 400.
//!
//! A cursor in the middle of a paged answer says where the next page starts (the last path
//! handed out, or the last journal index), not which entries are left, so nothing is held for
//! it either. Dropbox's cursors stay valid until a reset, however many a client keeps; so do
//! these, for as long as the emulator runs, and its memory does not grow with them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::state::{ListScope, ListingPosition};

/// Dropbox's cursors start like this; keeping it makes the emulator's look familiar in logs.
const PREFIX: &str = "AAE";
/// Bytes of the HMAC kept in a cursor: plenty against guessing, short enough for a header.
const TAG_LENGTH: usize = 16;

const VERSION: u8 = 2;
const RECURSIVE: u8 = 1;
const INCLUDE_DELETED: u8 = 1 << 1;
const INCLUDE_NON_DOWNLOADABLE: u8 = 1 << 2;
const LISTING_PAGE: u8 = 1 << 3;
const CHANGES_PAGE: u8 = 1 << 4;
const IN_DELETED: u8 = 1 << 5;

/// What a cursor says: whose journal, from where, covering what, in pages of what size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub account_id: String,
    /// The account's cursor epoch when the cursor was made; a reset bumps it.
    pub epoch: u64,
    pub scope: ListScope,
    pub limit: usize,
    /// The journal position the changes after this cursor's answers start from.
    pub position: usize,
    /// Set while an answer has entries left: where its next page starts.
    pub page: Option<Resume>,
}

/// Where the next page of a paged answer starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Inside a fresh listing, after this path.
    Listing(ListingPosition),
    /// Inside the changes journaled in `position..until`, after the one at index `after`.
    Changes { until: usize, after: usize },
}

/// Signs and reads cursors.
pub struct Listings {
    key: [u8; 64],
}

impl Default for Listings {
    fn default() -> Self {
        use rand::RngCore;
        let mut key = [0; 64];
        rand::thread_rng().fill_bytes(&mut key);
        Listings { key }
    }
}

impl Listings {
    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new(&self.key.into())
    }

    /// The cursor as Dropbox would hand it out: an opaque string.
    pub fn encode(&self, cursor: &Cursor) -> String {
        let mut bytes = vec![VERSION];
        put_text(&mut bytes, &cursor.account_id);
        bytes.extend_from_slice(&cursor.epoch.to_le_bytes());
        bytes.extend_from_slice(&(cursor.position as u64).to_le_bytes());
        bytes.extend_from_slice(&(cursor.limit as u64).to_le_bytes());
        let scope = &cursor.scope;
        let in_deleted = matches!(&cursor.page, Some(Resume::Listing(at)) if at.in_deleted);
        let flags = [
            (scope.recursive, RECURSIVE),
            (scope.include_deleted, INCLUDE_DELETED),
            (scope.include_non_downloadable, INCLUDE_NON_DOWNLOADABLE),
            (matches!(cursor.page, Some(Resume::Listing(_))), LISTING_PAGE),
            (matches!(cursor.page, Some(Resume::Changes { .. })), CHANGES_PAGE),
            (in_deleted, IN_DELETED),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |flags, (_, flag)| flags | flag);
        bytes.push(flags);
        put_text(&mut bytes, &scope.root);
        match &cursor.page {
            None => {}
            Some(Resume::Listing(at)) => put_text(&mut bytes, &at.after),
            Some(Resume::Changes { until, after }) => {
                bytes.extend_from_slice(&(*until as u64).to_le_bytes());
                bytes.extend_from_slice(&(*after as u64).to_le_bytes());
            }
        }
        let mut mac = self.mac();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes()[..TAG_LENGTH]);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The cursor a string stands for; `None` unless this emulator made it, unaltered.
    pub fn decode(&self, text: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text.strip_prefix(PREFIX)?).ok()?;
        let (payload, tag) = bytes.split_at(bytes.len().checked_sub(TAG_LENGTH)?);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_truncated_left(tag).ok()?;
        let mut reader = Reader(payload);
        if reader.byte()? != VERSION {
            return None;
        }
        let account_id = reader.text()?;
        let epoch = reader.number()?;
        let position = usize::try_from(reader.number()?).ok()?;
        let limit = usize::try_from(reader.number()?).ok()?;
        let flags = reader.byte()?;
        let root = reader.text()?;
        let page = match (flags & LISTING_PAGE != 0, flags & CHANGES_PAGE != 0) {
            (false, false) => None,
            (true, false) => Some(Resume::Listing(ListingPosition {
                in_deleted: flags & IN_DELETED != 0,
                after: reader.text()?,
            })),
            (false, true) => Some(Resume::Changes {
                until: usize::try_from(reader.number()?).ok()?,
                after: usize::try_from(reader.number()?).ok()?,
            }),
            (true, true) => return None,
        };
        let scope = ListScope {
            root,
            recursive: flags & RECURSIVE != 0,
            include_deleted: flags & INCLUDE_DELETED != 0,
            include_non_downloadable: flags & INCLUDE_NON_DOWNLOADABLE != 0,
        };
        reader.0.is_empty().then_some(Cursor { account_id, epoch, scope, limit, position, page })
    }
}

fn put_text(bytes: &mut Vec<u8>, text: &str) {
    // Paths and account ids are far below 4 GiB; the length is what makes the form unambiguous.
    bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
}

/// Reads the fields [`Listings::encode`] wrote, in order.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Option<&[u8]> {
        if self.0.len() < count {
            return None;
        }
        let (taken, rest) = self.0.split_at(count);
        self.0 = rest;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn number(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }

    fn text(&mut self) -> Option<String> {
        let length = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        let bytes = self.take(usize::try_from(length).ok()?)?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(page: Option<Resume>) -> Cursor {
        Cursor {
            account_id: "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc".to_owned(),
            epoch: 3,
            scope: ListScope {
                root: "/notes/straße".to_owned(),
                recursive: true,
                include_deleted: false,
                include_non_downloadable: true,
            },
            limit: 2000,
            position: 42,
            page,
        }
    }

    #[test]
    fn a_cursor_reads_back_as_it_was_made_with_or_without_a_page() {
        let listings = Listings::default();
        let pages = [
            None,
            Some(Resume::Listing(ListingPosition {
                in_deleted: true,
                after: "/notes/straße/ä.md".to_owned(),
            })),
            Some(Resume::Listing(ListingPosition { in_deleted: false, after: "/b".to_owned() })),
            Some(Resume::Changes { until: 4000, after: 3999 }),
        ];
        for page in pages {
            let text = listings.encode(&cursor(page.clone()));
            assert!(text.starts_with(PREFIX), "{text}");
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)));
            assert_eq!(listings.decode(&text), Some(cursor(page)));
        }
    }

    #[test]
    fn a_garbled_truncated_or_foreign_made_cursor_reads_as_nothing() {
        let listings = Listings::default();
        let text = listings.encode(&cursor(None));
        let mut garbled = text.clone().into_bytes();
        let middle = garbled.len() / 2;
        garbled[middle] = if garbled[middle] == b'A' { b'B' } else { b'A' };
        let garbled = String::from_utf8(garbled).unwrap();
        for bad in [&garbled, &text[..text.len() - 1], "AAEnot-a-cursor", "", &text[3..]] {
            assert_eq!(listings.decode(bad), None, "{bad}");
        }
        assert_eq!(Listings::default().decode(&text), None, "another emulator's cursor");
    }
}
