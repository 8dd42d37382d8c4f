//! The renderer takes any bytes without panicking and always answers with a whole document.

use markdrop::render::{Dialect, Page, render, render_body};
use proptest::prelude::*;

fn is_whole_document(document: &str) -> bool {
    document.starts_with("<!DOCTYPE html>\n<html lang=\"")
        && document.contains("<meta charset=\"utf-8\">")
        && document.contains("<title>")
        && document.trim_end().ends_with("</html>")
}

/// Markdown-heavy text: arbitrary bytes rarely hit the parser's interesting paths.
fn markdownish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "# ",
        "## ",
        "---\n",
        "title: x\n",
        "...\n",
        "\n",
        "\r\n",
        "- [ ] ",
        "- [x] ",
        "* ",
        "1. ",
        "> ",
        "| a | b |\n",
        "|---|:-:|\n",
        "~~",
        "~",
        "**",
        "_",
        "`",
        "```\n",
        "[^1]",
        "[^1]: ",
        "[a](b)",
        "<div>",
        "</div>",
        "&amp;",
        "\u{FEFF}",
        "\t",
        "    ",
        "é",
        "😀",
        "\0",
        "\\",
    ]);
    prop::collection::vec(prop_oneof![pieces.prop_map(str::to_owned), "[a-z ]{0,8}"], 0..64)
        .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_render_to_a_whole_document(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(is_whole_document(&render(&bytes, &Page::alone("note"))));
    }

    #[test]
    fn any_markdownish_text_renders_to_a_whole_document(text in markdownish()) {
        let document = render(text.as_bytes(), &Page::alone("note"));
        prop_assert!(is_whole_document(&document));
        prop_assert_eq!(&document, &render(text.as_bytes(), &Page::alone("note")), "rendering is deterministic");
        render_body(&text, Dialect::CommonMark);
    }
}
