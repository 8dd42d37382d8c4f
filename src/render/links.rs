//! Links between notes: a link to a note points at the note's page, so the converted folder
//! reads like a small website, in a browser and in Dropbox's preview alike.
//!
//! Only a relative link whose file name is a note (`.md` in any case, percent-encoded or not) is
//! changed, and only its file name: `../b.md#setup` becomes `../b.html#setup`, keeping the
//! folders, the `?query` and the `#fragment` exactly as written. Everything else is left as
//! written: URLs with a scheme (`https:`, `mailto:`, any other), protocol-relative (`//host`)
//! and root-relative (`/x.md`, whose root depends on where the folder is served from) links,
//! fragment-only links, links to other files (images, PDFs) and links to folders.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// What a file name needs encoded to stay one path segment of a URL: `push_html` escapes the
/// rest of the href itself.
pub(super) const SEGMENT: &AsciiSet =
    &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'/').add(b'?').add(b'<').add(b'>');

/// The href of the page of the note `dest` links to, or `None` when `dest` is not a relative
/// link to a note.
pub(super) fn note_page_href(dest: &str) -> Option<String> {
    if dest.is_empty() || dest.starts_with(['#', '/', '?']) || has_scheme(dest) {
        return None;
    }
    let path_end = dest.find(['?', '#']).unwrap_or(dest.len());
    let (path, rest) = dest.split_at(path_end);
    let name_start = path.rfind('/').map_or(0, |slash| slash + 1);
    let (folders, name) = path.split_at(name_start);
    let page_name = page_name(name)?;
    let mut href = String::with_capacity(dest.len() + 2);
    href.push_str(folders);
    href.push_str(&page_name);
    href.push_str(rest);
    Some(href)
}

/// `b.md` → `b.html`, keeping the stem as written; a name that is a note only once decoded
/// (`b%2Emd`) gets its stem encoded afresh. `None` when the name is not a note's.
fn page_name(name: &str) -> Option<String> {
    if is_note_name(name) {
        return Some(format!("{}.html", &name[..name.len() - 3]));
    }
    if !name.contains('%') {
        return None;
    }
    let decoded = percent_decode_str(name).decode_utf8().ok()?;
    if !is_note_name(&decoded) {
        return None;
    }
    let stem = &decoded[..decoded.len() - 3];
    Some(format!("{}.html", utf8_percent_encode(stem, SEGMENT)))
}

/// A note's file name: a non-empty stem and `.md` in any case (as the sync pass decides).
fn is_note_name(name: &str) -> bool {
    name.len() > 3 && name.as_bytes()[name.len() - 3..].eq_ignore_ascii_case(b".md")
}

/// Whether `dest` starts with a URL scheme (`scheme:`, RFC 3986 §3.1) before any `/`, `?` or
/// `#`: such a link leaves the folder, whatever follows.
fn has_scheme(dest: &str) -> bool {
    let Some(colon) = dest.find(':') else { return false };
    let scheme = &dest[..colon];
    !scheme.contains(['/', '?', '#'])
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::note_page_href;

    #[test]
    fn a_relative_link_to_a_note_points_at_its_page_keeping_fragment_and_query() {
        let cases = [
            ("b.md", "b.html"),
            ("./b.md", "./b.html"),
            ("../notes/b.md#setup", "../notes/b.html#setup"),
            ("b.md?plain=1#l-2", "b.html?plain=1#l-2"),
            ("ReadMe.MD", "ReadMe.html"),
            ("x.Md#", "x.html#"),
            ("my%20notes/Caf%C3%A9.md", "my%20notes/Caf%C3%A9.html"),
            ("a.b.md", "a.b.html"),
            ("folder/📝 Journal.md", "folder/📝 Journal.html"),
        ];
        for (dest, href) in cases {
            assert_eq!(note_page_href(dest).as_deref(), Some(href), "{dest}");
        }
    }

    #[test]
    fn a_note_name_that_is_percent_encoded_is_recognised_and_its_stem_encoded_again() {
        assert_eq!(note_page_href("b%2Emd").as_deref(), Some("b.html"));
        assert_eq!(note_page_href("my%20b%2eMD#x").as_deref(), Some("my%20b.html#x"));
        assert_eq!(note_page_href("d/%3F%2Emd").as_deref(), Some("d/%3F.html"));
    }

    #[test]
    fn absolute_urls_other_files_folders_and_fragments_are_left_as_written() {
        for dest in [
            "https://example.com/b.md",
            "mailto:someone@example.com?subject=a.md",
            "dropbox:b.md",
            "C:b.md",
            "//example.com/b.md",
            "/notes/b.md",
            "#b.md",
            "?b.md",
            "",
            ".md",
            "b.markdown",
            "picture.png",
            "report.pdf#page=2",
            "notes/",
            "notes/b.md/",
            "b.md.txt",
            "b%ZZ.md.txt",
            "b%FF%2Emd",
        ] {
            assert_eq!(note_page_href(dest), None, "{dest}");
        }
    }

    #[test]
    fn a_colon_after_a_slash_is_a_path_not_a_scheme() {
        assert_eq!(
            note_page_href("notes/10:30 standup.md").as_deref(),
            Some("notes/10:30 standup.html")
        );
        assert_eq!(note_page_href("a/b:c.md").as_deref(), Some("a/b:c.html"));
    }
}
