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
    /// `"/"`: a 400 telling the caller to use `""` (observed on list_folder, dropbox-api.md §0).
    SlashRoot,
    /// Does not match the argument's pattern at all: a 400.
    Pattern,
    /// Matches the pattern but is not a usable path (trailing `/` or whitespace, `//`, `.`): a
    /// 409 `malformed_path`.
    Malformed,
}

impl PathProblem {
    /// Dropbox's 400 text for the problems it reports as bad input.
    pub fn message(self, raw: &str) -> String {
        match self {
            PathProblem::SlashRoot => {
                "request body: path: Specify the root folder as an empty string rather than as \"/\"."
                    .to_owned()
            }
            PathProblem::Pattern | PathProblem::Malformed => format!(
                "request body: path: '{raw}' did not match pattern '(/(.|[\\r\\n])*)?|id:.*|(ns:[0-9]+(/.*)?)'"
            ),
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
}
