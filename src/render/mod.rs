//! Markdown → complete HTML document: the exact bytes the worker uploads as a `.html` sibling.
//!
//! Everything here is pure: bytes in, a document out, no I/O and no clock. That makes the output
//! a function of the input alone, so a conversion can be repeated after a crash or a lost lease
//! and write the very same bytes (uploads cannot be fenced; idempotence is what makes them safe).
//!
//! The pipeline is one pass over pulldown-cmark's events:
//! 1. [`decode`]: lossy UTF-8, BOM stripped, front matter split off the top;
//! 2. [`annotate`]: heading ids, the first heading's text for the title, footnotes moved to the
//!    end, links to notes pointed at their pages ([`links`]), alerts made boxes ([`alerts`]),
//!    formulas made MathML ([`math`]), fenced code highlighted ([`highlight`]), wikilinks
//!    resolved against the account's files ([`wikilinks`]);
//! 3. the `head` block of `templates/document.html` (title, the theme's stylesheet and the
//!    person's own, inlined; see [`look`]) is written, then the table of contents when the front
//!    matter or the folder's settings ask for one ([`contents`]);
//! 4. `pulldown_cmark::html::push_html` streams the body into the same buffer;
//! 5. the template's `tail` block closes the document;
//! 6. [`seal`] writes the document's digest into its head, so markdrop can later tell a page it
//!    wrote, unchanged, from one a person made or edited.

mod alerts;
mod annotate;
mod contents;
mod decode;
mod front_matter;
mod highlight;
mod links;
mod look;
mod math;
mod seal;
mod wikilinks;

use askama::Template;
use pulldown_cmark::{Options, Parser, html};

use self::annotate::{Annotate, Lookahead};

pub use front_matter::FrontMatter;
pub(crate) use front_matter::is_language_tag;
pub use highlight::{
    CacheCounts, cache_counts as highlight_cache_counts, forget_highlighted_blocks,
};
pub use look::{Look, SERIF_STYLESHEET, theme_stylesheet};
pub use seal::{SealCheck, is_sealed};
pub use wikilinks::{FileIndex, Page, is_attachment, note_name};

/// The stylesheet every document carries inline, so a rendered file is self-contained: it looks
/// the same opened from Dropbox, a disk or an e-mail attachment, and makes no external requests.
pub const STYLESHEET: &str = include_str!("../../static/document.css");

/// The `lang` of a document whose front matter does not name one.
const DEFAULT_LANG: &str = "en";

/// The title of a document that has no front matter title, no heading and no file name.
const UNTITLED: &str = "Untitled";

/// Which Markdown a body is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// What markdrop uploads: CommonMark plus GFM tables, strikethrough, task lists, footnotes
    /// and alerts, math and Obsidian's wikilinks; with an `id` on every heading so sections can
    /// be linked, and links to notes pointing at their pages.
    Markdrop,
    /// Plain CommonMark 0.31.2 with nothing added; what the spec's examples are checked against.
    CommonMark,
}

impl Dialect {
    fn parser_options(self) -> Options {
        match self {
            Dialect::Markdrop => {
                Options::ENABLE_TABLES
                    | Options::ENABLE_STRIKETHROUGH
                    | Options::ENABLE_TASKLISTS
                    | Options::ENABLE_FOOTNOTES
                    | Options::ENABLE_GFM
                    | Options::ENABLE_MATH
                    | Options::ENABLE_WIKILINKS
            }
            Dialect::CommonMark => Options::empty(),
        }
    }
}

/// A note's page, and what it depends on besides the note's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The complete HTML5 document.
    pub document: String,
    /// The lower-cased names (file name without `.md`) of the notes its wikilinks mention,
    /// resolved or not, in byte order: a note of one of these names appearing or going away may
    /// change the page.
    pub wikilinks: Vec<String>,
    /// The front matter says `markdrop: false`: the note asks not to be converted, and the
    /// document should not be uploaded (see also [`front_matter`]).
    pub opted_out: bool,
}

/// Renders one Markdown file into the complete HTML5 document markdrop uploads next to it.
///
/// `page` says where the note is (its file name without `.md` is the title of last resort,
/// after a front matter `title:` and the first heading) and which files its wikilinks resolve
/// against.
///
/// Any bytes are accepted: invalid UTF-8 is replaced with U+FFFD rather than refused, because a
/// note with one bad byte is still worth converting.
pub fn render(markdown: &[u8], page: &Page) -> String {
    render_note(markdown, page).document
}

/// [`render`], also saying which note names the page depends on.
pub fn render_note(markdown: &[u8], page: &Page) -> Rendered {
    render_with(markdown, page, &Look::DEFAULT)
}

/// [`render_note`] with the note's folder settings and stylesheet. The front matter overrides
/// the settings' `toc`, `lang` and `theme` for this note.
pub fn render_with(markdown: &[u8], page: &Page, look: &Look) -> Rendered {
    let settings = look.settings;
    let file_stem = page.stem();
    let source = decode::decode(markdown);
    let (front_matter, body_source) = front_matter::split(&source);
    let front_matter = front_matter.map(FrontMatter::parse).unwrap_or_default();
    let lang = front_matter.lang.as_deref().or(settings.lang.as_deref()).unwrap_or(DEFAULT_LANG);
    let toc = front_matter.toc.unwrap_or(settings.toc);
    let theme = front_matter.theme.unwrap_or(settings.theme);
    let front_matter_title = front_matter.title.as_deref().filter(|title| !title.trim().is_empty());

    let options = look::parser_options(Dialect::Markdrop.parser_options(), settings);
    let events = Parser::new_ext(body_source, options);
    let mut body = Annotate::new(events, *page).switched(settings.links, settings.highlight);
    if toc {
        body = body.keeping_headings();
    }
    // The body is written straight into the document, after a `<head>` that needs the title:
    // with no front matter title, read ahead to the first heading. Rendering the body apart and
    // copying it in would cost a second large buffer and a copy, 10-15% of the whole render.
    // A table of contents needs every heading first, so its note is always rendered apart.
    let lookahead = match front_matter_title {
        _ if toc => Lookahead::GaveUp,
        Some(_) => Lookahead::Found,
        None => body.read_to_first_heading(TITLE_LOOKAHEAD_EVENTS),
    };
    let rendered_apart = (lookahead == Lookahead::GaveUp).then(|| {
        let mut html = String::with_capacity(body_source.len() * 2);
        html::push_html(&mut html, &mut body);
        html
    });
    let title = choose_title([front_matter_title, body.first_heading(), Some(file_stem)]);
    let stylesheet = theme_stylesheet(theme);
    let styles_len = stylesheet.map_or(0, str::len) + look.stylesheet.map_or(0, str::len);
    let mut document = String::with_capacity(body_source.len() * 2 + styles_len + 1024);
    let head = DocumentHead {
        lang,
        seal: seal::PLACEHOLDER,
        title,
        stylesheet,
        custom_stylesheet: look.stylesheet,
    };
    write_template(&mut document, &head);
    if let Some(contents) = contents::contents(&body.headings()) {
        write_template(&mut document, &contents);
        document.push('\n');
    }
    match rendered_apart {
        Some(html) => document.push_str(&html),
        None => html::push_html(&mut document, &mut body),
    }
    write_template(&mut document, &DocumentTail);
    seal::seal(&mut document);
    Rendered { document, wikilinks: body.wikilink_names(), opted_out: front_matter.opt_out }
}

/// What markdrop reads from a note's front matter, without rendering it: enough to tell that
/// the note opts out (`markdrop: false`) before spending a render on it.
pub fn front_matter(markdown: &[u8]) -> FrontMatter {
    let source = decode::decode(markdown);
    front_matter::split(&source).0.map(FrontMatter::parse).unwrap_or_default()
}

/// How many events the title may wait for before the body is rendered apart instead.
const TITLE_LOOKAHEAD_EVENTS: usize = 4096;

fn choose_title(candidates: [Option<&str>; 3]) -> &str {
    candidates
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|candidate| !candidate.is_empty())
        .unwrap_or(UNTITLED)
}

fn write_template(document: &mut String, template: &impl Template) {
    template
        .render_into(document)
        // Askama fails only when a field's `Display` fails; every field is a `&str` written into
        // a `String`, neither of which can.
        .expect("rendering &str fields into a String cannot fail");
}

/// Renders Markdown into the HTML that goes inside `<body>`, with nothing around it.
///
/// This is the part of [`render`] that the CommonMark and GFM spec examples are checked against;
/// its wikilinks resolve against nothing (see [`render_page_body`]).
pub fn render_body(markdown: &str, dialect: Dialect) -> String {
    render_page_body(markdown, dialect, &Page::alone(""))
}

/// [`render_body`] for the note of `page`.
pub fn render_page_body(markdown: &str, dialect: Dialect, page: &Page) -> String {
    let mut body = String::with_capacity(markdown.len() * 2);
    let events = Parser::new_ext(markdown, dialect.parser_options());
    match dialect {
        Dialect::Markdrop => html::push_html(&mut body, Annotate::new(events, *page)),
        Dialect::CommonMark => html::push_html(&mut body, events),
    }
    body
}

/// Everything before the body; `templates/document.html` holds both halves.
#[derive(Template)]
#[template(path = "document.html", block = "head")]
struct DocumentHead<'a> {
    lang: &'a str,
    seal: &'a str,
    title: &'a str,
    /// The theme's; none for `plain`.
    stylesheet: Option<&'a str>,
    /// The person's own, after the theme's so its rules win.
    custom_stylesheet: Option<&'a str>,
}

/// Everything after the body.
#[derive(Template)]
#[template(path = "document.html", block = "tail")]
struct DocumentTail;

#[cfg(test)]
mod tests {
    use super::*;

    fn title_of(document: &str) -> &str {
        let start = document.find("<title>").expect("a <title>") + "<title>".len();
        let end = document.find("</title>").expect("a </title>");
        &document[start..end]
    }

    #[test]
    fn a_document_has_doctype_charset_viewport_and_stylesheet() {
        let document = render(b"# Hello\n\nworld\n", &Page::alone("hello"));
        assert!(document.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(document.contains("<meta charset=\"utf-8\">"));
        assert!(
            document.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            )
        );
        assert!(document.contains(STYLESHEET));
        assert!(document.contains("<h1 id=\"hello\">Hello</h1>\n<p>world</p>"));
        assert!(document.trim_end().ends_with("</html>"));
    }

    #[test]
    fn the_title_comes_from_front_matter_before_the_first_heading() {
        let document =
            render(b"---\ntitle: \"Trip <2026>\"\n---\n# Packing list\n", &Page::alone("trip"));
        assert_eq!(title_of(&document), "Trip &#60;2026&#62;");
        assert!(!document.contains("title:"), "front matter must not be rendered as text");
    }

    #[test]
    fn the_title_is_the_first_headings_plain_text_without_front_matter() {
        let document =
            render(b"Intro\n\n## The *plan* for `main`\n\n# Later\n", &Page::alone("notes"));
        assert_eq!(title_of(&document), "The plan for main");
    }

    #[test]
    fn the_title_falls_back_to_the_file_stem_then_untitled() {
        assert_eq!(
            title_of(&render(b"just text\n", &Page::alone("Groceries & more"))),
            "Groceries &#38; more"
        );
        assert_eq!(title_of(&render(b"just text\n", &Page::alone(""))), "Untitled");
        assert_eq!(title_of(&render(b"#\n", &Page::alone("  "))), "Untitled");
    }

    #[test]
    fn a_late_first_heading_still_titles_a_long_note() {
        let mut note = "A paragraph.\n\n".repeat(TITLE_LOOKAHEAD_EVENTS);
        note.push_str("# Late title\n");
        let document = render(note.as_bytes(), &Page::alone("long"));
        assert_eq!(title_of(&document), "Late title");
        assert!(document.contains(&render_body(&note, Dialect::Markdrop)));
    }

    #[test]
    fn the_document_body_is_exactly_the_rendered_body() {
        let note = "Intro[^n]\n\n# Title\n\n| a |\n|---|\n| b |\n\n[^n]: Note.\n";
        let document = render(note.as_bytes(), &Page::alone("x"));
        let body = render_body(note, Dialect::Markdrop);
        let main = "<main class=\"markdown-body\">\n";
        let start = document.find(main).expect("a main") + main.len();
        assert_eq!(&document[start..document.len() - "</main>\n</body>\n</html>\n".len()], body);
    }

    #[test]
    fn front_matter_lang_sets_the_document_language() {
        let document = render(b"---\nlang: fr-CA\n---\nBonjour\n", &Page::alone("salut"));
        assert!(document.contains("<html lang=\"fr-CA\">"));
    }

    #[test]
    fn a_byte_order_mark_and_crlf_line_ends_change_nothing() {
        let plain = render(b"---\ntitle: T\n---\n# A\n\n```\ncode\n```\n", &Page::alone("x"));
        let windows = render(
            b"\xEF\xBB\xBF---\r\ntitle: T\r\n---\r\n# A\r\n\r\n```\r\ncode\r\n```\r\n",
            &Page::alone("x"),
        );
        assert_eq!(plain, windows);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let document = render(b"caf\xE9 \xFF\n", &Page::alone("x"));
        assert!(document.contains("<p>caf\u{FFFD} \u{FFFD}</p>"));
    }

    #[test]
    fn rendering_is_deterministic() {
        let source = b"# T\n\nA[^n] table:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[^n]: note\n";
        assert_eq!(render(source, &Page::alone("t")), render(source, &Page::alone("t")));
    }

    #[test]
    fn links_to_notes_point_at_their_pages_in_text_headings_and_footnotes() {
        let note = "See [b](b.md#setup), [ref] and [c][].\n\n\
            # Also [d](sub/d.md)\n\nx[^n]\n\n[^n]: Read [e](../e.MD).\n\n\
            [ref]: ./b.md\n[c]: <my notes/c.md>\n";
        let body = render_body(note, Dialect::Markdrop);
        for href in ["b.html#setup", "./b.html", "my%20notes/c.html", "sub/d.html", "../e.html"] {
            assert!(body.contains(&format!("href=\"{href}\"")), "{href} in {body}");
        }
        assert!(!body.contains(".md\""), "{body}");
    }

    #[test]
    fn autolinks_images_and_urls_keep_their_md_targets() {
        let note = "<https://example.com/a.md> ![pic](b.md) [web](https://example.com/c.md)\n";
        let body = render_body(note, Dialect::Markdrop);
        for kept in ["https://example.com/a.md", "src=\"b.md\"", "https://example.com/c.md"] {
            assert!(body.contains(kept), "{kept} in {body}");
        }
    }

    #[test]
    fn a_table_of_contents_opens_the_body_when_front_matter_asks_for_one() {
        let note = "---\ntoc: true\n---\n# Trip\n\n## Packing *list*\n\n## Trip\n";
        let document = render(note.as_bytes(), &Page::alone("trip"));
        let main = document.find("<main class=\"markdown-body\">\n").expect("a main");
        let nav = document.find("<nav class=\"toc\" aria-label=\"Contents\">").expect("a toc");
        let body = document.find("<h1 id=\"trip\">").expect("the body");
        assert!(main < nav && nav < body, "{document}");
        for (id, text) in [("trip", "Trip"), ("packing-list", "Packing list"), ("trip-1", "Trip")] {
            assert!(document.contains(&format!("<a href=\"#{id}\">{text}</a>")), "{id}");
            assert!(document.contains(&format!(" id=\"{id}\">")), "{id}");
        }
        assert_eq!(title_of(&document), "Trip");
        let without = render(b"---\ntoc: false\n---\n# Trip\n", &Page::alone("trip"));
        assert!(!without.contains("<nav"), "{without}");
    }

    #[test]
    fn the_commonmark_dialect_adds_no_ids_and_no_extensions() {
        let body = render_body("# A\n\n~~x~~ | y\n", Dialect::CommonMark);
        assert_eq!(body, "<h1>A</h1>\n<p>~~x~~ | y</p>\n");
    }
}
