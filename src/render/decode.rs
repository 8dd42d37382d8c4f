//! Raw file bytes → text the parser accepts, without ever refusing a file.

use std::borrow::Cow;

const BYTE_ORDER_MARK: char = '\u{FEFF}';

/// Decodes a file's bytes as UTF-8, replacing invalid sequences with U+FFFD and dropping a leading
/// byte order mark (editors on Windows add one; left in, it would hide front matter and show up
/// as a stray character before the first heading).
///
/// Valid input, the common case, is borrowed rather than copied.
pub(super) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    // `from_utf8` first: it validates several times faster than the lossy decoder walks chunks,
    // and nearly every note is valid.
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text.strip_prefix(BYTE_ORDER_MARK).unwrap_or(text)),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            match text.strip_prefix(BYTE_ORDER_MARK) {
                Some(rest) => Cow::Owned(rest.to_owned()),
                None => Cow::Owned(text.into_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_utf8_is_borrowed() {
        assert!(matches!(decode("héllo".as_bytes()), Cow::Borrowed("héllo")));
    }

    #[test]
    fn a_byte_order_mark_is_dropped_once() {
        assert_eq!(decode(b"\xEF\xBB\xBF# A"), "# A");
        assert_eq!(decode(b"\xEF\xBB\xBF\xEF\xBB\xBFx"), "\u{FEFF}x");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(decode(b"\xEF\xBB\xBFa\xFFb"), "a\u{FFFD}b");
    }
}
