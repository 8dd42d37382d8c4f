//! GitHub's alerts: a block quote whose first line is `[!NOTE]`, `[!TIP]`, `[!IMPORTANT]`,
//! `[!WARNING]` or `[!CAUTION]` (pulldown-cmark's GFM option recognises them) becomes a titled,
//! coloured box, with the markup GitHub gives it (`markdown-alert markdown-alert-note`, a
//! `markdown-alert-title` paragraph), so a stylesheet written for GitHub's alerts fits too.
//!
//! The icons are markdrop's own, drawn with the title's colour (`currentColor`), and hidden
//! from screen readers: the title says the same.

use pulldown_cmark::BlockQuoteKind;

/// A 16 × 16 line icon in the text's colour, from its shapes.
macro_rules! icon {
    ($($shape:literal),+) => {
        concat!(
            "<svg class=\"markdown-alert-icon\" viewBox=\"0 0 16 16\" width=\"16\" height=\"16\" ",
            "aria-hidden=\"true\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" ",
            "stroke-linecap=\"round\" stroke-linejoin=\"round\">",
            $($shape),+,
            "</svg>"
        )
    };
}

/// The markup that opens an alert of `kind`, title included.
pub(super) fn open(kind: BlockQuoteKind) -> &'static str {
    match kind {
        BlockQuoteKind::Note => concat!(
            "<div class=\"markdown-alert markdown-alert-note\">\n<p class=\"markdown-alert-title\">",
            icon!(
                "<circle cx=\"8\" cy=\"8\" r=\"6.75\"/><path d=\"M8 7.25v4\"/>",
                "<circle cx=\"8\" cy=\"4.75\" r=\".5\"/>"
            ),
            "Note</p>\n"
        ),
        BlockQuoteKind::Tip => concat!(
            "<div class=\"markdown-alert markdown-alert-tip\">\n<p class=\"markdown-alert-title\">",
            icon!(
                "<path d=\"M5.75 11.5c0-1.5-2.5-2.75-2.5-5.5a4.75 4.75 0 0 1 9.5 0c0 2.75-2.5 4-2.5 5.5z\"/>",
                "<path d=\"M6.25 14.25h3.5\"/>"
            ),
            "Tip</p>\n"
        ),
        BlockQuoteKind::Important => concat!(
            "<div class=\"markdown-alert markdown-alert-important\">\n<p class=\"markdown-alert-title\">",
            icon!(
                "<path d=\"M2.25 1.75h11.5a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1h-6.5l-3.5 3v-3h-1.5a1 1 0 0 1-1-1v-8a1 1 0 0 1 1-1z\"/>",
                "<path d=\"M8 4.25v3.5\"/><circle cx=\"8\" cy=\"9.75\" r=\".5\"/>"
            ),
            "Important</p>\n"
        ),
        BlockQuoteKind::Warning => concat!(
            "<div class=\"markdown-alert markdown-alert-warning\">\n<p class=\"markdown-alert-title\">",
            icon!(
                "<path d=\"M8 1.5l6.75 12.25H1.25z\"/>",
                "<path d=\"M8 6v3.75\"/><circle cx=\"8\" cy=\"11.75\" r=\".5\"/>"
            ),
            "Warning</p>\n"
        ),
        BlockQuoteKind::Caution => concat!(
            "<div class=\"markdown-alert markdown-alert-caution\">\n<p class=\"markdown-alert-title\">",
            icon!(
                "<path d=\"M5.25 1.25h5.5l4 4v5.5l-4 4h-5.5l-4-4v-5.5z\"/>",
                "<path d=\"M8 4.5v4\"/><circle cx=\"8\" cy=\"10.75\" r=\".5\"/>"
            ),
            "Caution</p>\n"
        ),
    }
}

/// The markup that closes an alert.
pub(super) const CLOSE: &str = "</div>\n";

#[cfg(test)]
mod tests {
    use crate::render::{Dialect, render_body};

    #[test]
    fn each_alert_kind_becomes_a_titled_box_with_githubs_classes() {
        for (marker, class, title) in [
            ("NOTE", "note", "Note"),
            ("TIP", "tip", "Tip"),
            ("IMPORTANT", "important", "Important"),
            ("WARNING", "warning", "Warning"),
            ("CAUTION", "caution", "Caution"),
        ] {
            let body = render_body(&format!("> [!{marker}]\n> Mind *this*.\n"), Dialect::Markdrop);
            let open = format!(
                "<div class=\"markdown-alert markdown-alert-{class}\">\n<p class=\"markdown-alert-title\"><svg "
            );
            assert!(body.starts_with(&open), "{body}");
            assert!(
                body.contains(&format!("</svg>{title}</p>\n<p>Mind <em>this</em>.</p>\n</div>\n")),
                "{body}"
            );
            assert!(!body.contains("blockquote") && !body.contains("[!"), "{body}");
        }
    }

    #[test]
    fn a_plain_block_quote_and_an_unknown_marker_stay_block_quotes() {
        assert_eq!(
            render_body("> quoted\n", Dialect::Markdrop),
            "<blockquote>\n<p>quoted</p>\n</blockquote>\n"
        );
        let body = render_body("> [!FOO]\n> text\n", Dialect::Markdrop);
        assert!(body.starts_with("<blockquote>") && body.contains("[!FOO]"), "{body}");
    }

    #[test]
    fn an_alert_inside_a_list_and_nested_quotes_close_where_they_open() {
        let body = render_body("- item\n\n  > [!TIP]\n  > > inner\n\nafter\n", Dialect::Markdrop);
        let div = body.find("<div class=\"markdown-alert markdown-alert-tip\">").expect("an alert");
        let inner = body.find("<blockquote>").expect("the inner quote");
        let inner_end = body.find("</blockquote>").expect("closed");
        let close = body.find("</div>").expect("the alert closes");
        assert!(div < inner && inner < inner_end && inner_end < close, "{body}");
        assert!(body.ends_with("<p>after</p>\n"), "{body}");
    }
}
