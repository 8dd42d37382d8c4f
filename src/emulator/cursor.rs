//! `list_folder` cursors: opaque strings that carry their own state.
//!
//! A cursor is a position in one account's change journal plus what the listing covers, so it is
//! encoded into the string itself (base64url of a compact binary form, with a truncated
//! HMAC-SHA256 tag under a key only this emulator knows): serving a cursor stores nothing, and a
//! garbled, truncated or foreign-made cursor fails the tag check and gets Dropbox's 400.
//!
//! Only a listing cut into pages (`has_more`) needs server-side state: the entries still to hand
//! out, a snapshot taken when the listing ran. Those are [`Listings`], held per account and
//! bounded; a cursor whose listing was pushed out is unknown, like any other bad cursor.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::state::{Entry, ListScope};

/// Dropbox's cursors start like this; keeping it makes the emulator's look familiar in logs.
const PREFIX: &str = "AAE";
/// Bytes of the HMAC kept in a cursor: plenty against guessing, short enough for a header.
const TAG_LENGTH: usize = 16;
/// Paged listings kept per account; a client paging through more listings at once than this is
/// not one markdrop will be, and the oldest are the ones least likely to be continued.
pub const MAX_LISTINGS_PER_ACCOUNT: usize = 32;

const VERSION: u8 = 1;
const RECURSIVE: u8 = 1;
const INCLUDE_DELETED: u8 = 1 << 1;
const INCLUDE_NON_DOWNLOADABLE: u8 = 1 << 2;
const PAGED: u8 = 1 << 3;

/// What a cursor says: whose journal, from where, covering what, in pages of what size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub account_id: String,
    /// The account's cursor epoch when the cursor was made; a reset bumps it.
    pub epoch: u64,
    pub scope: ListScope,
    pub limit: usize,
    /// The journal position after the listing this cursor continues.
    pub position: usize,
    /// Set while a paged listing has entries left: which listing, and where the next page starts.
    pub page: Option<Page>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub listing: u64,
    pub offset: usize,
}

/// A paged listing's entries, by listing id.
type Held = (u64, Arc<[Entry]>);

/// Signs and reads cursors, and holds the entries of paged listings.
pub struct Listings {
    key: [u8; 64],
    /// Per account, oldest first.
    held: HashMap<String, VecDeque<Held>>,
    next_id: u64,
}

impl Default for Listings {
    fn default() -> Self {
        use rand::RngCore;
        let mut key = [0; 64];
        rand::thread_rng().fill_bytes(&mut key);
        Listings { key, held: HashMap::new(), next_id: 0 }
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
        let flags = [
            (scope.recursive, RECURSIVE),
            (scope.include_deleted, INCLUDE_DELETED),
            (scope.include_non_downloadable, INCLUDE_NON_DOWNLOADABLE),
            (cursor.page.is_some(), PAGED),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |flags, (_, flag)| flags | flag);
        bytes.push(flags);
        put_text(&mut bytes, &scope.root);
        if let Some(page) = cursor.page {
            bytes.extend_from_slice(&page.listing.to_le_bytes());
            bytes.extend_from_slice(&(page.offset as u64).to_le_bytes());
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
        let page = if flags & PAGED == 0 {
            None
        } else {
            let listing = reader.number()?;
            Some(Page { listing, offset: usize::try_from(reader.number()?).ok()? })
        };
        let scope = ListScope {
            root,
            recursive: flags & RECURSIVE != 0,
            include_deleted: flags & INCLUDE_DELETED != 0,
            include_non_downloadable: flags & INCLUDE_NON_DOWNLOADABLE != 0,
        };
        reader.0.is_empty().then_some(Cursor { account_id, epoch, scope, limit, position, page })
    }

    /// Keeps a listing's entries for the cursors that page through it; the account's oldest
    /// listing goes once it holds more than [`MAX_LISTINGS_PER_ACCOUNT`].
    pub fn hold(&mut self, account_id: &str, entries: Arc<[Entry]>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let held = self.held.entry(account_id.to_owned()).or_default();
        held.push_back((id, entries));
        if held.len() > MAX_LISTINGS_PER_ACCOUNT {
            held.pop_front();
        }
        id
    }

    /// A held listing's entries, if it is still held.
    pub fn held(&self, account_id: &str, listing: u64) -> Option<Arc<[Entry]>> {
        let held = self.held.get(account_id)?;
        held.iter().find(|(id, _)| *id == listing).map(|(_, entries)| entries.clone())
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

    fn cursor(page: Option<Page>) -> Cursor {
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
        for page in [None, Some(Page { listing: 7, offset: 4000 })] {
            let text = listings.encode(&cursor(page));
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

    #[test]
    fn an_account_holds_only_its_newest_paged_listings() {
        let mut listings = Listings::default();
        let first = listings.hold("a", Arc::from(Vec::new()));
        let other = listings.hold("b", Arc::from(Vec::new()));
        let ids: Vec<u64> = (0..MAX_LISTINGS_PER_ACCOUNT)
            .map(|_| listings.hold("a", Arc::from(Vec::new())))
            .collect();
        assert!(listings.held("a", first).is_none());
        assert!(ids.iter().all(|id| listings.held("a", *id).is_some()));
        assert!(listings.held("b", other).is_some());
        assert!(listings.held("b", ids[0]).is_none(), "a listing is only its account's");
    }
}
