//! The seal every document carries: a 128-bit XXH3 digest of the document itself, in a
//! `<meta>` near its top. Any edit breaks it, so a page that still verifies is one markdrop wrote and nobody has
//! changed since. That is how markdrop tells its own pages from a person's when it has no record
//! of them (a folder linked for the first time, or linked again after an unlink), and how it
//! recognizes one of its own older pages that landed late.
//!
//! The digest covers the whole document with the digest's own 32 hex digits written as zeros,
//! so writing it in does not change what it covers. It is no signature: anyone can make a page
//! that verifies, and the only thing that earns them is markdrop replacing that page with the
//! rendering of its note, which is what such a page already claims to be. So the hash only has
//! to make an accidental match hopeless (one in 2^128), not a forged one hard, and XXH3 does
//! that at memory speed: a SHA-256 here made rendering 20% slower (BENCHMARKS.md).

use xxhash_rust::xxh3::{Xxh3, xxh3_128};

/// What precedes the digest in the document's head (`templates/document.html`).
const PREFIX: &[u8] = b"<meta name=\"markdrop-seal\" content=\"xxh3-128:";
/// The digest's length in hex digits.
const DIGITS: usize = 32;
/// Written where the digest goes, then replaced by it.
pub(super) const PLACEHOLDER: &str = "00000000000000000000000000000000";
/// The seal sits before the title and the stylesheet, so it is found within this many bytes
/// (after the doctype, `<html lang=…>` and three short `<meta>`s; `lang` is capped).
const SEARCH_WINDOW: usize = 1024;

/// Writes the seal into a document whose head carries [`PLACEHOLDER`] after [`PREFIX`].
pub(super) fn seal(document: &mut String) {
    let Some(at) = digest_offset(document.as_bytes()) else {
        debug_assert!(false, "the document template has no seal placeholder");
        return;
    };
    let digest = format!("{:032x}", xxh3_128(document.as_bytes()));
    document.replace_range(at..at + DIGITS, &digest);
}

/// Whether `document` carries an intact seal: markdrop wrote it, and not a byte has changed.
pub fn is_sealed(document: &[u8]) -> bool {
    let mut check = SealCheck::default();
    check.update(document);
    check.is_sealed()
}

/// [`is_sealed`] for a document that arrives in pieces (a download): only its first kilobyte
/// is held, however large it is.
#[derive(Default)]
pub struct SealCheck {
    /// The document's beginning, until the seal is found or known to be missing.
    head: Vec<u8>,
    /// Once the seal is found: the digest it claims, and the hash of what came so far.
    hashing: Option<([u8; DIGITS], Xxh3)>,
    /// The beginning has been read and holds no seal.
    unsealed: bool,
}

impl SealCheck {
    pub fn update(&mut self, piece: &[u8]) {
        if let Some((_, hasher)) = &mut self.hashing {
            hasher.update(piece);
        } else if !self.unsealed {
            self.head.extend_from_slice(piece);
            if self.head.len() >= SEARCH_WINDOW + DIGITS {
                self.read_head();
            }
        }
    }

    pub fn is_sealed(mut self) -> bool {
        if self.hashing.is_none() && !self.unsealed {
            self.read_head();
        }
        match self.hashing {
            Some((claimed, hasher)) => {
                format!("{:032x}", hasher.digest128()).as_bytes() == claimed.as_slice()
            }
            None => false,
        }
    }

    /// Finds the seal in the beginning held so far, and starts hashing from there.
    fn read_head(&mut self) {
        let head = std::mem::take(&mut self.head);
        let Some(at) = digest_offset(&head) else {
            self.unsealed = true;
            return;
        };
        let mut claimed = [0; DIGITS];
        claimed.copy_from_slice(&head[at..at + DIGITS]);
        let mut hasher = Xxh3::new();
        hasher.update(&head[..at]);
        hasher.update(PLACEHOLDER.as_bytes());
        hasher.update(&head[at + DIGITS..]);
        self.hashing = Some((claimed, hasher));
    }
}

/// Where the digest's hex digits start, if the document has a seal in its head.
fn digest_offset(document: &[u8]) -> Option<usize> {
    let window = &document[..document.len().min(SEARCH_WINDOW)];
    let start = window.windows(PREFIX.len()).position(|candidate| candidate == PREFIX)?;
    let at = start + PREFIX.len();
    let digits = document.get(at..at + DIGITS)?;
    digits.iter().all(u8::is_ascii_hexdigit).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_document_carries_a_seal_that_verifies() {
        let document =
            crate::render::render(b"# Plans\n\nShip it.\n", &crate::render::Page::alone("Plans"));
        assert!(document.contains("<meta name=\"markdrop-seal\" content=\"xxh3-128:"));
        assert!(!document.contains(PLACEHOLDER), "the placeholder is replaced");
        assert!(is_sealed(document.as_bytes()));
    }

    #[test]
    fn any_edit_breaks_the_seal() {
        let document =
            crate::render::render(b"# Plans\n\nShip it.\n", &crate::render::Page::alone("Plans"));
        let edits = [
            document.replace("Ship it.", "Ship it!"),
            document.replace("</main>", "<p>Added by hand.</p>\n</main>"),
            document.replace("<title>Plans</title>", "<title>Mine</title>"),
            format!("{document}\n"),
            document[..document.len() - 1].to_owned(),
        ];
        for edited in edits {
            assert_ne!(edited, document);
            assert!(!is_sealed(edited.as_bytes()), "{edited}");
        }
    }

    #[test]
    fn a_page_without_a_seal_or_with_a_garbled_one_is_not_markdrops() {
        for page in [
            &b""[..],
            b"<!DOCTYPE html><p>my own page</p>",
            b"<meta name=\"markdrop-seal\" content=\"xxh3-128:",
            b"<meta name=\"markdrop-seal\" content=\"xxh3-128:zz000000000000000000000000000000\">",
        ] {
            assert!(!is_sealed(page));
        }
    }

    #[test]
    fn a_seal_checked_piece_by_piece_says_what_a_whole_check_says() {
        let note = "# Big\n\n".to_owned() + &"A line of text.\n\n".repeat(5000);
        let document = crate::render::render(note.as_bytes(), &crate::render::Page::alone("Big"));
        let edited = document.replace("</main>", "<p>Mine.</p>\n</main>");
        assert_ne!(edited, document);
        for (page, sealed) in [(&document, true), (&edited, false)] {
            for piece in [1, 7, 1000, 1056, 65536] {
                let mut check = SealCheck::default();
                page.as_bytes().chunks(piece).for_each(|chunk| check.update(chunk));
                assert_eq!(check.is_sealed(), sealed, "pieces of {piece}");
            }
        }
    }

    #[test]
    fn a_copy_of_the_digest_into_another_page_does_not_verify() {
        let one = crate::render::render(b"one", &crate::render::Page::alone("a"));
        let two = crate::render::render(b"two", &crate::render::Page::alone("a"));
        let at = digest_offset(one.as_bytes()).unwrap();
        let mut forged = two.clone();
        forged.replace_range(at..at + DIGITS, &one[at..at + DIGITS]);
        assert!(!is_sealed(forged.as_bytes()));
    }
}
