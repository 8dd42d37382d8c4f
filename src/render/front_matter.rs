//! YAML front matter: the `---` block some editors (Obsidian, Jekyll, Hugo) put at the top of a
//! note. It is metadata, so it is never rendered as text; `title`, `lang`, `toc`, `theme` and
//! `markdrop` are used. Besides the title, each overrides the note's folder settings
//! (`markdrop.toml`) for this note alone; `markdrop: false` keeps the note from being converted.
//!
//! Only a block at the very top counts, and only when it reads as a YAML mapping (`key: value`
//! lines). pulldown-cmark's own metadata option would also swallow a `---` … `---` pair in the
//! middle of a note, deleting text a person wrote; a thematic break followed by a setext heading
//! must stay what CommonMark says it is.
//!
//! This is deliberately not a YAML parser: notes carry flat `key: value` pairs, and a full YAML
//! dependency would be a large price for two scalars. Values markdrop does not understand (block
//! scalars, flow collections) are ignored, and the title falls back to the first heading.

use crate::settings::Theme;

/// What markdrop uses from a note's front matter.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FrontMatter {
    /// `title:`, the document's `<title>`.
    pub title: Option<String>,
    /// `lang:`, the document's `<html lang>`, when it looks like a BCP 47 language tag.
    pub lang: Option<String>,
    /// `toc: true` or `toc: false`: whether the document opens with a table of contents,
    /// whatever its folder's settings say.
    pub toc: Option<bool>,
    /// `theme:`, a built-in theme's name (an unknown name is ignored).
    pub theme: Option<Theme>,
    /// `markdrop: false` (or `no`, `off`): the note asks not to be converted.
    pub opt_out: bool,
}

impl FrontMatter {
    /// Reads the keys markdrop knows from the text between the fences.
    pub fn parse(block: &str) -> FrontMatter {
        let mut front_matter = FrontMatter::default();
        for (key, value) in block.lines().filter_map(top_level_entry) {
            let Some(value) = scalar(value) else { continue };
            match key {
                "title" => front_matter.title = Some(value),
                "lang" if is_language_tag(&value) => front_matter.lang = Some(value),
                // Only `true` and `false`: `toc: yes` meant no table of contents before settings
                // existed, and pages must not change by themselves.
                "toc" if value.eq_ignore_ascii_case("true") => front_matter.toc = Some(true),
                "toc" if value.eq_ignore_ascii_case("false") => front_matter.toc = Some(false),
                "theme" => front_matter.theme = Theme::from_name(&value),
                "markdrop" => front_matter.opt_out = is_false(&value),
                _ => {}
            }
        }
        front_matter
    }
}

/// `false`, or YAML 1.1's `no` and `off`, which editors still write.
fn is_false(value: &str) -> bool {
    ["false", "no", "off"].iter().any(|no| value.eq_ignore_ascii_case(no))
}

/// Splits `source` into its front matter block (the text between the fences) and the Markdown
/// after it. Without front matter, the whole source is Markdown.
pub(super) fn split(source: &str) -> (Option<&str>, &str) {
    let Some(after_open) = strip_fence_line(source, "---") else {
        return (None, source);
    };
    let mut offset = 0;
    while offset < after_open.len() {
        let line_end = after_open[offset..].find('\n').map_or(after_open.len(), |i| offset + i + 1);
        let line = &after_open[offset..line_end];
        if is_fence(line, "---") || is_fence(line, "...") {
            let block = &after_open[..offset];
            return if looks_like_mapping(block) {
                (Some(block), &after_open[line_end..])
            } else {
                (None, source)
            };
        }
        offset = line_end;
    }
    (None, source)
}

/// The rest of `source` after a first line that is exactly `fence`, or `None`.
fn strip_fence_line<'a>(source: &'a str, fence: &str) -> Option<&'a str> {
    let line_end = source.find('\n')?;
    is_fence(&source[..=line_end], fence).then(|| &source[line_end + 1..])
}

fn is_fence(line: &str, fence: &str) -> bool {
    line.trim_end_matches(['\n', '\r', ' ', '\t']) == fence
}

/// A block is front matter when its first non-blank line is a `key:` entry and every other line
/// is an entry, an indented continuation, a list item or a comment.
fn looks_like_mapping(block: &str) -> bool {
    let mut lines = block.lines().filter(|line| !line.trim().is_empty());
    let Some(first) = lines.next() else { return false };
    top_level_entry(first).is_some()
        && lines
            .all(|line| line.starts_with([' ', '\t', '-', '#']) || top_level_entry(line).is_some())
}

/// `key: value` on an unindented line, with the value still raw.
fn top_level_entry(line: &str) -> Option<(&str, &str)> {
    if line.starts_with([' ', '\t', '-', '#']) {
        return None;
    }
    let line = line.trim_end_matches('\r');
    let colon = line.find(':')?;
    let (key, rest) = (line[..colon].trim_end(), &line[colon + 1..]);
    let separated = rest.is_empty() || rest.starts_with([' ', '\t']);
    (separated && !key.is_empty() && !key.contains(char::is_whitespace))
        .then_some((key, rest.trim()))
}

/// A plain, single-quoted or double-quoted YAML scalar; `None` for anything else.
fn scalar(raw: &str) -> Option<String> {
    let value = if let Some(quoted) = raw.strip_prefix('"') {
        double_quoted(quoted)?
    } else if let Some(quoted) = raw.strip_prefix('\'') {
        single_quoted(quoted)?
    } else {
        if raw.starts_with(['|', '>', '[', '{', '&', '*', '!']) {
            return None;
        }
        // A plain scalar ends where a comment starts (` #`).
        raw.split(" #").next().unwrap_or_default().trim_end().to_owned()
    };
    (!value.is_empty()).then_some(value)
}

/// The value up to the closing quote, where `''` stands for one `'`; `None` if unterminated.
fn single_quoted(quoted: &str) -> Option<String> {
    let mut value = String::with_capacity(quoted.len());
    let mut chars = quoted.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if chars.peek() == Some(&'\'') => {
                chars.next();
                value.push('\'');
            }
            '\'' => return Some(value),
            c => value.push(c),
        }
    }
    None
}

/// The value up to the closing quote, with `\n`, `\t`, `\uXXXX` and `\<char>` escapes.
fn double_quoted(quoted: &str) -> Option<String> {
    let mut value = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// Enough of BCP 47 to keep anything odd out of the `lang` attribute: `en`, `pt-BR`, `zh-Hant-TW`.
pub(crate) fn is_language_tag(value: &str) -> bool {
    (2..=35).contains(&value.len())
        && value.split('-').all(|part| {
            (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        && value.as_bytes()[0].is_ascii_alphabetic()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_at_the_top_is_split_off() {
        let (block, rest) = split("---\ntitle: A\ntags:\n  - x\n---\n# Body\n");
        assert_eq!(block, Some("title: A\ntags:\n  - x\n"));
        assert_eq!(rest, "# Body\n");
    }

    #[test]
    fn the_closing_fence_may_be_dots_and_carry_crlf() {
        assert_eq!(split("---\r\ntitle: A\r\n...\r\nx"), (Some("title: A\r\n"), "x"));
    }

    #[test]
    fn a_thematic_break_and_setext_heading_stay_markdown() {
        let source = "---\nSome heading\n---\ntext\n";
        assert_eq!(split(source), (None, source));
    }

    #[test]
    fn an_unclosed_fence_is_not_front_matter() {
        let source = "---\ntitle: A\n# Body\n";
        assert_eq!(split(source), (None, source));
    }

    #[test]
    fn a_block_later_in_the_note_is_not_front_matter() {
        let source = "Intro\n\n---\ntitle: A\n---\n";
        assert_eq!(split(source), (None, source));
    }

    #[test]
    fn title_and_lang_are_read_from_plain_and_quoted_scalars() {
        let parsed = FrontMatter::parse("title: 'It''s here' # why\nlang: de\n");
        assert_eq!(parsed.title.as_deref(), Some("It's here"));
        assert_eq!(parsed.lang.as_deref(), Some("de"));
        let parsed = FrontMatter::parse("title: \"Caf\\u00e9 \\\"menu\\\"\"\n");
        assert_eq!(parsed.title.as_deref(), Some("Café \"menu\""));
        let parsed = FrontMatter::parse("title: Plain words # a comment\n");
        assert_eq!(parsed.title.as_deref(), Some("Plain words"));
    }

    #[test]
    fn toc_theme_and_markdrop_override_the_folder_for_this_note() {
        let parsed = FrontMatter::parse("toc: false\ntheme: Serif\nmarkdrop: false\n");
        assert_eq!(
            (parsed.toc, parsed.theme, parsed.opt_out),
            (Some(false), Some(Theme::Serif), true)
        );
        let parsed = FrontMatter::parse("toc: TRUE\ntheme: neon\nmarkdrop: true\n");
        assert_eq!((parsed.toc, parsed.theme, parsed.opt_out), (Some(true), None, false));
        assert!(FrontMatter::parse("markdrop: off\n").opt_out);
        assert_eq!(FrontMatter::parse("toc: yes\n").toc, None);
    }

    #[test]
    fn values_markdrop_does_not_understand_are_ignored() {
        let parsed = FrontMatter::parse("title: |\n  multi\nlang: \"><script>\"\n");
        assert_eq!(parsed, FrontMatter::default());
        assert_eq!(FrontMatter::parse("title: \"unterminated\n").title, None);
    }
}
