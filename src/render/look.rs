//! How a page looks and what the renderer adds to it: the settings of the note's folder
//! ([`NoteSettings`], from its `markdrop.toml` files) and the person's own stylesheet, carried
//! into [`render_with`](super::render_with) as a [`Look`].
//!
//! Each theme's stylesheet is compiled in (`static/`), so a page stays self-contained; `serif`
//! is the default stylesheet with `static/serif.css` appended, so the two share every rule but
//! their fonts and colours.

use pulldown_cmark::Options;

use crate::settings::{NoteSettings, Theme};

use super::STYLESHEET;

/// The `serif` theme's stylesheet.
pub const SERIF_STYLESHEET: &str =
    concat!(include_str!("../../static/document.css"), include_str!("../../static/serif.css"));

/// A note's settings and the text of the stylesheet its `css` names, if any (already checked
/// with [`check_stylesheet`](crate::settings::check_stylesheet)).
#[derive(Debug, Clone, Copy)]
pub struct Look<'a> {
    pub settings: &'a NoteSettings,
    pub stylesheet: Option<&'a str>,
}

impl Look<'static> {
    /// Every page's look before settings files: the default theme, everything on.
    pub const DEFAULT: Look<'static> = Look { settings: &NoteSettings::DEFAULT, stylesheet: None };
}

impl Default for Look<'static> {
    fn default() -> Self {
        Look::DEFAULT
    }
}

/// The theme's stylesheet; `None` for `plain`, which has none.
pub fn theme_stylesheet(theme: Theme) -> Option<&'static str> {
    match theme {
        Theme::Default => Some(STYLESHEET),
        Theme::Serif => Some(SERIF_STYLESHEET),
        Theme::Plain => None,
    }
}

/// `options` without the syntax a switched-off feature would read: with wikilinks or math off,
/// `[[Note]]` and `$x$` are not even parsed, so they stay the text they are.
pub(super) fn parser_options(mut options: Options, settings: &NoteSettings) -> Options {
    if !settings.wikilinks {
        options.remove(Options::ENABLE_WIKILINKS);
    }
    if !settings.math {
        options.remove(Options::ENABLE_MATH);
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Page, render_note, render_with};

    const NOTE: &str =
        "# Plan\n\nSee [b](b.md), [[Other]] and $x^2$.\n\n```rust\nfn main() {}\n```\n";

    fn page_with(settings: &NoteSettings, stylesheet: Option<&str>, note: &str) -> String {
        let look = Look { settings, stylesheet };
        render_with(note.as_bytes(), &Page::alone("/plan.md"), &look).document
    }

    fn with(change: impl FnOnce(&mut NoteSettings)) -> NoteSettings {
        let mut settings = NoteSettings::DEFAULT;
        change(&mut settings);
        settings
    }

    #[test]
    fn the_default_look_is_the_page_markdrop_always_made() {
        let page = Page::alone("/plan.md");
        let default = render_with(NOTE.as_bytes(), &page, &Look::DEFAULT);
        assert_eq!(default, render_note(NOTE.as_bytes(), &page));
        assert_eq!(default.document.matches("<style>").count(), 1);
        assert!(default.document.contains(&format!("<style>\n{STYLESHEET}</style>\n</head>")));
    }

    #[test]
    fn the_serif_theme_has_a_serif_body_in_light_and_dark() {
        let document = page_with(&with(|s| s.theme = Theme::Serif), None, NOTE);
        assert!(document.contains(&format!("<style>\n{SERIF_STYLESHEET}</style>\n</head>")));
        let serif = include_str!("../../static/serif.css");
        assert!(serif.contains("serif;") && serif.contains("@media (prefers-color-scheme: dark)"));
        for colour in ["--background", "--hl-keyword", "--hl-string"] {
            assert_eq!(serif.matches(colour).count(), 2, "{colour} in light and dark");
        }
    }

    #[test]
    fn the_plain_theme_has_no_stylesheet_at_all() {
        let document = page_with(&with(|s| s.theme = Theme::Plain), None, NOTE);
        assert!(!document.contains("<style"), "{document}");
        assert!(document.contains("</title>\n</head>"), "{document}");
    }

    #[test]
    fn the_persons_stylesheet_comes_after_the_themes_in_its_own_element() {
        let document = page_with(&NoteSettings::DEFAULT, Some("body { color: teal }"), NOTE);
        let theme = document.find(STYLESHEET).expect("the theme");
        let own = document.find("<style>\nbody { color: teal }</style>\n</head>").expect("own");
        assert!(theme < own);
        let plain = page_with(&with(|s| s.theme = Theme::Plain), Some("p{}"), NOTE);
        assert_eq!(plain.matches("<style>").count(), 1);
        assert!(plain.contains("</title>\n<style>\np{}</style>\n</head>"), "{plain}");
    }

    #[test]
    fn with_links_off_links_to_notes_keep_their_md_targets() {
        assert!(page_with(&NoteSettings::DEFAULT, None, NOTE).contains("href=\"b.html\""));
        let document = page_with(&with(|s| s.links = false), None, NOTE);
        assert!(document.contains("<a href=\"b.md\">b</a>"), "{document}");
    }

    #[test]
    fn with_wikilinks_off_they_stay_text() {
        let settings = with(|s| s.wikilinks = false);
        let rendered = render_with(
            NOTE.as_bytes(),
            &Page::alone("/plan.md"),
            &Look { settings: &settings, stylesheet: None },
        );
        assert!(rendered.document.contains(", [[Other]] and"), "{}", rendered.document);
        assert!(rendered.wikilinks.is_empty());
    }

    #[test]
    fn with_highlight_off_code_is_plain() {
        let document = page_with(&with(|s| s.highlight = false), None, NOTE);
        assert!(
            document.contains("<pre><code class=\"language-rust\">fn main() {}\n</code></pre>"),
            "{document}"
        );
        assert!(page_with(&NoteSettings::DEFAULT, None, NOTE).contains("<a-k>fn</a-k>"));
    }

    #[test]
    fn with_math_off_formulas_stay_text() {
        let document = page_with(&with(|s| s.math = false), None, NOTE);
        assert!(document.contains(" and $x^2$.</p>"), "{document}");
        assert!(!document.contains("<math"));
    }

    #[test]
    fn the_folders_toc_and_lang_apply_unless_the_front_matter_says_otherwise() {
        let settings = with(|s| {
            s.toc = true;
            s.lang = Some("de".to_owned());
        });
        let document = page_with(&settings, None, NOTE);
        assert!(document.contains("<html lang=\"de\">") && document.contains("<nav class=\"toc\""));
        let own = page_with(&settings, None, &format!("---\ntoc: false\nlang: fr\n---\n{NOTE}"));
        assert!(own.contains("<html lang=\"fr\">") && !own.contains("<nav"), "{own}");
    }

    #[test]
    fn the_front_matter_theme_overrides_the_folders() {
        let note = format!("---\ntheme: plain\n---\n{NOTE}");
        assert!(!page_with(&with(|s| s.theme = Theme::Serif), None, &note).contains("<style"));
        let note = format!("---\ntheme: serif\n---\n{NOTE}");
        assert!(
            page_with(&with(|s| s.theme = Theme::Plain), None, &note).contains(SERIF_STYLESHEET)
        );
    }

    #[test]
    fn a_note_that_says_markdrop_false_is_reported_as_opted_out() {
        let note = b"---\nmarkdrop: false\n---\n# Private\n";
        assert!(render_note(note, &Page::alone("/p.md")).opted_out);
        assert!(crate::render::front_matter(note).opt_out);
        assert!(!render_note(NOTE.as_bytes(), &Page::alone("/p.md")).opted_out);
    }
}
