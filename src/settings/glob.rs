//! The globs of `exclude`, matched against a note's path below the settings file's folder.
//!
//! Written here rather than taken from the `glob` or `regex` crates because the rules are
//! Dropbox's, not a file system's or a shell's, and small enough to state in full:
//! - a pattern is relative to the folder of the file that holds it, always: `drafts` is that
//!   folder's `drafts`, not every `drafts` below it (write `**/drafts` for that). A leading `/`
//!   changes nothing, so `/drafts` reads as it does in a `.gitignore`;
//! - matching ignores case, as Dropbox does (Rust's `to_lowercase` on both sides);
//! - `*` is any run of characters and `?` any one character, never crossing a `/`; `[abc]`,
//!   `[a-z]` and `[!abc]` are classes of one character; `**` as a whole segment is any number of
//!   folders, none included;
//! - a pattern that matches a folder matches everything below it, so `drafts` and `drafts/`
//!   exclude the whole folder, as they would in a `.gitignore`.
//!
//! A pattern that could only be a mistake (empty, `.` or `..` segments, `\`, an unclosed `[`,
//! `**` glued to other characters) is refused with a message, not quietly matched against
//! nothing.

use std::iter::Peekable;
use std::str::Chars;

/// One compiled `exclude` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of whole folders.
    AnyFolders,
    Name(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Run,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    /// Compiles `pattern`, or says in a sentence what is wrong with it.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        let trimmed = pattern.strip_prefix('/').unwrap_or(pattern);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        if trimmed.trim().is_empty() {
            return Err("an empty pattern would match nothing".to_owned());
        }
        if trimmed.contains('\\') {
            return Err("use / between folders, not \\".to_owned());
        }
        let segments = trimmed
            .split('/')
            .map(|segment| match segment {
                "" => Err("a pattern cannot have an empty folder name (//)".to_owned()),
                "." | ".." => Err(format!("a pattern cannot use \"{segment}\"; patterns are relative to the settings file's folder and cannot leave it")),
                "**" => Ok(Segment::AnyFolders),
                _ if segment.contains("**") => Err(
                    "** must be a whole folder name, like \"drafts/**\" or \"**/old\"".to_owned(),
                ),
                _ => tokens(&segment.to_lowercase()).map(Segment::Name),
            })
            .collect::<Result<_, _>>()?;
        Ok(Glob { pattern: pattern.to_owned(), segments })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the path `relative` (below the settings file's folder, `/`-separated, no leading
    /// `/`) or a folder it is in matches.
    pub fn matches(&self, relative: &str) -> bool {
        let lowered = relative.to_lowercase();
        let names: Vec<&str> = lowered.split('/').filter(|name| !name.is_empty()).collect();
        // A folder matching excludes what is below it: try the path and each folder above it.
        (1..=names.len()).any(|len| segments_match(&self.segments, &names[..len]))
    }
}

fn tokens(segment: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = segment.chars().peekable();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::Run,
            '?' => Token::One,
            '[' => class(&mut chars)?,
            c => Token::Char(c),
        });
    }
    Ok(tokens)
}

/// The class after its `[`, up to its `]`.
fn class(chars: &mut Peekable<Chars>) -> Result<Token, String> {
    let unclosed = || "a [ has no closing ], like \"[abc]\"".to_owned();
    let negated = chars.next_if_eq(&'!').is_some();
    let mut ranges = Vec::new();
    loop {
        let start = chars.next().ok_or_else(unclosed)?;
        // A `]` first in the class is itself, as in shells.
        if start == ']' && !ranges.is_empty() {
            return Ok(Token::Class { negated, ranges });
        }
        if chars.next_if_eq(&'-').is_none() {
            ranges.push((start, start));
            continue;
        }
        match chars.next() {
            Some(']') => {
                ranges.extend([(start, start), ('-', '-')]);
                return Ok(Token::Class { negated, ranges });
            }
            Some(end) if end >= start => ranges.push((start, end)),
            Some(end) => return Err(format!("the range [{start}-{end}] is backwards")),
            None => return Err(unclosed()),
        }
    }
}

fn segments_match(pattern: &[Segment], names: &[&str]) -> bool {
    wildcard(
        pattern,
        names,
        |segment| *segment == Segment::AnyFolders,
        |segment, name| {
            let Segment::Name(tokens) = segment else { return false };
            let name: Vec<char> = name.chars().collect();
            wildcard(tokens, &name, |token| *token == Token::Run, token_matches)
        },
    )
}

/// Whether `items` match `pattern`, where a star (`*` in a name, `**` in a path) matches any
/// run of items and every other element exactly one. The classic greedy match that retries
/// from the last star only: time proportional to pattern × items, where trying every split
/// would take exponential time on a pattern like `*a*a*a*a*b`, and stall a worker.
fn wildcard<P, I>(
    pattern: &[P],
    items: &[I],
    is_star: impl Fn(&P) -> bool,
    matches_one: impl Fn(&P, &I) -> bool,
) -> bool {
    let (mut p, mut i) = (0, 0);
    // After the last star seen: where its pattern continues, and the first item it has not
    // swallowed yet.
    let mut retry: Option<(usize, usize)> = None;
    while i < items.len() {
        match pattern.get(p) {
            Some(star) if is_star(star) => {
                retry = Some((p + 1, i));
                p += 1;
            }
            Some(one) if matches_one(one, &items[i]) => {
                p += 1;
                i += 1;
            }
            _ => match retry {
                Some((after_star, swallowed)) => {
                    retry = Some((after_star, swallowed + 1));
                    p = after_star;
                    i = swallowed + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(is_star)
}

fn token_matches(token: &Token, &c: &char) -> bool {
    match token {
        Token::Char(expected) => *expected == c,
        Token::One => true,
        // `wildcard` handles runs itself; a run never stands for exactly one character.
        Token::Run => false,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|&(start, end)| (start..=end).contains(&c)) != *negated
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> bool {
        Glob::new(pattern).expect("a valid pattern").matches(path)
    }

    #[test]
    fn a_star_matches_within_one_folder_only() {
        assert!(matches("templates/*", "templates/Meeting.md"));
        assert!(!matches("*.md", "sub/x.md"));
        assert!(matches("*.md", "x.md"));
        assert!(matches("draft-*", "draft-1.md"));
    }

    #[test]
    fn a_question_mark_is_one_character_but_never_a_slash() {
        assert!(matches("day?.md", "day1.md"));
        assert!(!matches("day?.md", "day10.md"));
        assert!(!matches("a?b.md", "a/b.md"));
    }

    #[test]
    fn a_double_star_crosses_any_number_of_folders_including_none() {
        assert!(matches("drafts/**", "drafts/a/b/c.md"));
        assert!(matches("**/old", "x/y/old/z.md"));
        assert!(matches("**/old", "old/z.md"));
        assert!(matches("a/**/b.md", "a/b.md"));
        assert!(matches("a/**/b.md", "a/x/y/b.md"));
        assert!(!matches("a/**/b.md", "c/a/b.md"));
    }

    #[test]
    fn matching_ignores_case_as_dropbox_does() {
        assert!(matches("Drafts/**", "drafts/x.md"));
        assert!(matches("drafts", "DRAFTS/Ünïcode.md"));
        assert!(matches("ÉTÉ/*", "été/a.md"));
        assert!(matches("[A-C]*.md", "b.md"));
    }

    #[test]
    fn a_pattern_matching_a_folder_excludes_everything_below_it() {
        assert!(matches("drafts", "drafts/a/b.md"));
        assert!(matches("drafts/", "drafts/b.md"));
        assert!(matches("/drafts", "drafts/b.md"));
        assert!(!matches("drafts", "drafts-old/b.md"));
    }

    #[test]
    fn a_pattern_is_anchored_to_the_settings_files_folder() {
        assert!(!matches("drafts", "notes/drafts/a.md"));
        assert!(matches("**/drafts", "notes/drafts/a.md"));
    }

    #[test]
    fn classes_match_one_character_from_a_set_a_range_or_outside_one() {
        assert!(matches("[abc].md", "b.md"));
        assert!(!matches("[abc].md", "d.md"));
        assert!(matches("[0-9]*", "2026-notes.md"));
        assert!(matches("[!0-9]*", "notes.md"));
        assert!(!matches("[!0-9]*", "2026.md"));
        assert!(matches("[]]x", "]x"));
        assert!(matches("[a-]x", "-x"));
    }

    #[test]
    fn a_pattern_with_many_stars_is_matched_in_linear_time() {
        let name = "a".repeat(250);
        assert!(!matches(&format!("{}b", "*a".repeat(30)), &name));
        let deep = ["x"; 200].join("/");
        assert!(!matches(&format!("{}y", "**/x/".repeat(20)), &deep));
        assert!(matches(&format!("{}a", "*a".repeat(30)), &name));
    }

    #[test]
    fn every_refused_pattern_says_why() {
        let refusal = |pattern: &str| Glob::new(pattern).expect_err(pattern);
        assert_eq!(refusal(""), "an empty pattern would match nothing");
        assert_eq!(refusal("/"), "an empty pattern would match nothing");
        assert_eq!(refusal("a\\b"), "use / between folders, not \\");
        assert_eq!(refusal("a//b"), "a pattern cannot have an empty folder name (//)");
        assert_eq!(
            refusal("../x"),
            "a pattern cannot use \"..\"; patterns are relative to the settings file's folder and cannot leave it"
        );
        assert_eq!(
            refusal("a**"),
            "** must be a whole folder name, like \"drafts/**\" or \"**/old\""
        );
        assert_eq!(refusal("[ab"), "a [ has no closing ], like \"[abc]\"");
        assert_eq!(refusal("[z-a]"), "the range [z-a] is backwards");
    }
}
