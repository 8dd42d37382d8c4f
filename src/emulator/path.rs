//! Path arguments as Dropbox reads them: `""` is the root, `/…` a path, `id:…` a file id.
//!
//! Matching is case-insensitive: a path is kept as `lower` (the key) and `display` (the casing the
//! caller gave, Dropbox's "best effort" `path_display`).

/// A parsed path argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathArg {
    /// `""`.
    Root,
    Path(DropboxPath),
    /// `id:…`; also `rev:…` and `ns:…`, which the emulator never issues, so they find nothing.
    Id(String),
}

/// An absolute path below the root, with its lowercase key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropboxPath {
    pub display: String,
    pub lower: String,
}

/// Why a path argument is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathProblem {
    /// `"/"`: a 400 telling the caller to use `""` (observed on list_folder, docs/dropbox.md §1).
    SlashRoot,
    /// Does not match the argument's pattern at all: a 400.
    Pattern,
    /// Matches the pattern but is not a usable path (trailing `/` or whitespace, `//`, `.`): a
    /// 409 `malformed_path`.
    Malformed,
}

/// The path patterns of `files.stone`, one per alias a route's argument uses. Dropbox refuses a
/// path outside its route's pattern with a 400 before looking anything up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathPattern {
    /// `PathROrId` (`list_folder`): the root `""`, a path, an id or a namespace.
    PathROrId,
    /// `ReadPath` (`get_metadata`, `download`): a path, an id, a rev or a namespace; no root.
    ReadPath,
    /// `WritePathOrId` (`upload`, `delete_v2`): a path, a namespace or an id; no root, no rev.
    WritePathOrId,
}

impl PathPattern {
    /// The pattern as the spec writes it, which is how Dropbox quotes it in its 400s.
    pub fn source(self) -> &'static str {
        match self {
            PathPattern::PathROrId => "(/(.|[\\r\\n])*)?|id:.*|(ns:[0-9]+(/.*)?)",
            PathPattern::ReadPath => "(/(.|[\\r\\n])*|id:.*)|(rev:[0-9a-f]{9,})|(ns:[0-9]+(/.*)?)",
            PathPattern::WritePathOrId => "(/(.|[\\r\\n])*)|(ns:[0-9]+(/.*)?)|(id:.*)",
        }
    }

    /// Whether `raw` matches the pattern as a whole. `.` in the spec's regexes is any character
    /// but a newline; only the `/…` branch allows newlines.
    pub fn matches(self, raw: &str) -> bool {
        let no_newline = |text: &str| !text.contains('\n');
        let namespace = |raw: &str| {
            raw.strip_prefix("ns:").is_some_and(|rest| {
                let (digits, tail) = rest.split_once('/').unwrap_or((rest, ""));
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && no_newline(tail)
            })
        };
        let id = |raw: &str| raw.strip_prefix("id:").is_some_and(no_newline);
        let rev =
            |raw: &str| raw.strip_prefix("rev:").is_some_and(|rev| rev_problem(rev).is_none());
        let path = raw.starts_with('/');
        match self {
            PathPattern::PathROrId => raw.is_empty() || path || id(raw) || namespace(raw),
            PathPattern::ReadPath => path || id(raw) || rev(raw) || namespace(raw),
            PathPattern::WritePathOrId => path || namespace(raw) || id(raw),
        }
    }

    /// The detail of Dropbox's 400 for a `path` field this pattern refuses, if it does.
    pub fn check(self, raw: &str) -> Result<(), String> {
        if raw == "/" {
            return Err(PathProblem::SlashRoot.message(raw, self));
        }
        if self.matches(raw) { Ok(()) } else { Err(PathProblem::Pattern.message(raw, self)) }
    }
}

/// `Rev` is `String(min_length=9, pattern="[0-9a-f]+")`: why `rev` is not one, in Dropbox's
/// words, or `None` if it is.
pub fn rev_problem(rev: &str) -> Option<String> {
    if !rev.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) || rev.is_empty() {
        return Some(format!("'{rev}' did not match pattern '[0-9a-f]+'"));
    }
    let length = rev.chars().count();
    (length < 9).then(|| format!("'{rev}' must be at least 9 characters, got {length}"))
}

impl PathProblem {
    /// Dropbox's 400 detail (after `request body: ` or the header's name) for the problems it
    /// reports as bad input.
    pub fn message(self, raw: &str, pattern: PathPattern) -> String {
        match self {
            PathProblem::SlashRoot => {
                "path: Specify the root folder as an empty string rather than as \"/\".".to_owned()
            }
            PathProblem::Pattern | PathProblem::Malformed => {
                format!("path: '{raw}' did not match pattern '{}'", pattern.source())
            }
        }
    }
}

impl DropboxPath {
    /// Parses an absolute path (`/a/b.md`), refusing what Dropbox calls malformed.
    pub fn parse(raw: &str) -> Result<DropboxPath, PathProblem> {
        if raw == "/" {
            return Err(PathProblem::SlashRoot);
        }
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(PathProblem::Pattern);
        };
        let malformed = raw.ends_with('/')
            || raw.ends_with(char::is_whitespace)
            || rest.split('/').any(|part| part.is_empty() || part == "." || part == "..")
            || raw.chars().any(char::is_control);
        if malformed {
            return Err(PathProblem::Malformed);
        }
        Ok(DropboxPath { display: raw.to_owned(), lower: raw.to_lowercase() })
    }

    /// `path` taken as relative to this folder: `/Ada` and `/notes/a.md` → `/Ada/notes/a.md`.
    pub fn join(&self, path: &DropboxPath) -> DropboxPath {
        DropboxPath {
            display: format!("{}{}", self.display, path.display),
            lower: format!("{}{}", self.lower, path.lower),
        }
    }

    /// The last component.
    pub fn name(&self) -> &str {
        name_of(&self.display)
    }

    /// The parent's path, or `None` for a child of the root.
    pub fn parent(&self) -> Option<DropboxPath> {
        let cut = self.display.rfind('/')?;
        (cut > 0).then(|| DropboxPath {
            display: self.display[..cut].to_owned(),
            lower: self.display[..cut].to_lowercase(),
        })
    }

    /// Every ancestor, outermost first (not the root, not the path itself).
    pub fn ancestors(&self) -> Vec<DropboxPath> {
        let mut ancestors = Vec::new();
        let mut current = self.parent();
        while let Some(path) = current {
            current = path.parent();
            ancestors.push(path);
        }
        ancestors.reverse();
        ancestors
    }
}

/// The last component of a display or lower path.
pub fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// True when `path` is `ancestor` itself or lies below it (both lowercase).
pub fn is_within(path: &str, ancestor: &str) -> bool {
    path == ancestor || (path.starts_with(ancestor) && path[ancestor.len()..].starts_with('/'))
}

/// Parses a path argument that may be the root, a path or an id.
pub fn parse_arg(raw: &str) -> Result<PathArg, PathProblem> {
    if raw.is_empty() {
        return Ok(PathArg::Root);
    }
    for prefix in ["id:", "rev:", "ns:"] {
        if raw.starts_with(prefix) {
            return Ok(PathArg::Id(raw.to_owned()));
        }
    }
    DropboxPath::parse(raw).map(PathArg::Path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_keyed_by_their_lowercase_form() {
        let path = DropboxPath::parse("/Notes/Straße/ÄB.md").unwrap();
        assert_eq!(path.lower, "/notes/straße/äb.md");
        assert_eq!(path.name(), "ÄB.md");
        let ancestors: Vec<_> = path.ancestors().into_iter().map(|p| p.display).collect();
        assert_eq!(ancestors, ["/Notes", "/Notes/Straße"]);
    }

    #[test]
    fn the_root_as_a_slash_and_malformed_paths_are_refused() {
        assert_eq!(parse_arg("/"), Err(PathProblem::SlashRoot));
        assert_eq!(parse_arg("notes"), Err(PathProblem::Pattern));
        for bad in ["/a/", "/a ", "/a//b", "/a/./b", "/a/../b"] {
            assert_eq!(parse_arg(bad), Err(PathProblem::Malformed), "{bad}");
        }
        assert_eq!(parse_arg(""), Ok(PathArg::Root));
    }

    #[test]
    fn within_means_the_path_itself_or_below_it() {
        assert!(is_within("/a/b", "/a"));
        assert!(is_within("/a", "/a"));
        assert!(!is_within("/ab", "/a"));
    }

    #[test]
    fn each_route_pattern_takes_only_its_own_forms_of_path() {
        use PathPattern::*;
        let cases = [
            ("", [true, false, false]),
            ("/a.md", [true, true, true]),
            ("/a\nb", [true, true, true]),
            ("id:abc", [true, true, true]),
            ("id:a\nb", [false, false, false]),
            ("rev:0123456789abcdef", [false, true, false]),
            ("rev:0123", [false, false, false]),
            ("rev:0123456789ABCDEF", [false, false, false]),
            ("ns:123/a.md", [true, true, true]),
            ("ns:/a.md", [false, false, false]),
            ("a.md", [false, false, false]),
        ];
        for (raw, expected) in cases {
            let got = [PathROrId, ReadPath, WritePathOrId].map(|pattern| pattern.matches(raw));
            assert_eq!(got, expected, "{raw:?}");
        }
    }

    #[test]
    fn a_rev_is_nine_or_more_lowercase_hex_digits() {
        assert_eq!(rev_problem("0123456789abcdef"), None);
        assert!(rev_problem("0123456789ABCDEF").unwrap().contains("did not match pattern"));
        assert!(rev_problem("abc").unwrap().contains("must be at least 9 characters, got 3"));
        assert!(rev_problem("").is_some());
    }
}
