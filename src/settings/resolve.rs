//! The settings files that govern a note, merged into what to do with it.
//!
//! Scalar keys: the nearest file that sets a key wins, key by key, so a folder can change the
//! theme and keep its parent's `lang`. `exclude` is different: every governing file's patterns
//! apply, each within its own folder, and a nearer file cannot bring back a note a farther one
//! excluded. Otherwise a `markdrop.toml` added deep down (perhaps by someone sharing the folder)
//! could publish drafts the person had excluded at the top; and a setting never causes a
//! deletion, so the safe way to be wrong is to convert less.

use super::{NoteSettings, SettingsFile};

/// What the settings say to do with one note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Governs {
    /// Not converted: `by` (a settings file's Dropbox path) excludes it with `pattern`.
    Excluded { by: String, pattern: String },
    /// Converted with these settings (the note's front matter may still change some, or opt it
    /// out with `markdrop: false`).
    Convert(NoteSettings),
}

/// What the settings `files` (farthest first, as [`governing_folders`](super::governing_folders)
/// lists their folders) say to do with the note at the Dropbox path `note`. A file whose folder
/// is not above the note is ignored. Folders are compared ignoring case, as Dropbox does.
pub fn resolve<'a>(note: &str, files: impl IntoIterator<Item = &'a SettingsFile>) -> Governs {
    let mut settings = NoteSettings::DEFAULT;
    for file in files {
        let Some(relative) = file.below(note) else { continue };
        if let Some(glob) = file.exclude.iter().find(|glob| glob.matches(relative)) {
            return Governs::Excluded { by: file.path.clone(), pattern: glob.pattern().to_owned() };
        }
        settings.theme = file.theme.unwrap_or(settings.theme);
        settings.css = file.css.clone().or(settings.css);
        settings.links = file.links.unwrap_or(settings.links);
        settings.wikilinks = file.wikilinks.unwrap_or(settings.wikilinks);
        settings.highlight = file.highlight.unwrap_or(settings.highlight);
        settings.math = file.math.unwrap_or(settings.math);
        settings.toc = file.toc.unwrap_or(settings.toc);
        settings.lang = file.lang.clone().or(settings.lang);
    }
    Governs::Convert(settings)
}

impl SettingsFile {
    /// Whether this file governs the note (or any file) at the Dropbox path `note`: whether
    /// `note` is in its folder or below. When the file changes, these are the notes to convert
    /// again.
    pub fn governs(&self, note: &str) -> bool {
        self.below(note).is_some()
    }

    /// `note`'s path below the file's folder (`/A`, `/a/b.md` → `b.md`), if it is below it;
    /// folder names compared one by one, ignoring case.
    fn below<'n>(&self, note: &'n str) -> Option<&'n str> {
        let mut rest = note;
        for name in self.folder().split('/').filter(|name| !name.is_empty()) {
            let after = rest.strip_prefix('/')?;
            // A folder's name is followed by a `/`: the note is inside it, not the folder.
            let end = after.find('/')?;
            if after[..end].to_lowercase() != name.to_lowercase() {
                return None;
            }
            rest = &after[end..];
        }
        rest.strip_prefix('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Theme;

    fn file(path: &str, text: &str) -> SettingsFile {
        SettingsFile::parse(path, text).expect(text)
    }

    fn convert(governs: Governs) -> NoteSettings {
        match governs {
            Governs::Convert(settings) => settings,
            excluded => panic!("expected to convert, got {excluded:?}"),
        }
    }

    #[test]
    fn without_settings_files_a_note_gets_todays_defaults() {
        assert_eq!(resolve("/a.md", []), Governs::Convert(NoteSettings::DEFAULT));
    }

    #[test]
    fn a_nearer_file_overrides_a_farther_one_key_by_key() {
        let top =
            file("/markdrop.toml", "theme = \"serif\"\nlang = \"de\"\ntoc = true\nmath = false");
        let work = file("/Work/markdrop.toml", "theme = \"plain\"\ntoc = false");
        let settings = convert(resolve("/Work/Plans/a.md", [&top, &work]));
        assert_eq!(settings.theme, Theme::Plain);
        assert!(!settings.toc);
        assert_eq!(settings.lang.as_deref(), Some("de"));
        assert!(!settings.math);
        assert!(settings.links && settings.wikilinks && settings.highlight);
    }

    #[test]
    fn a_file_applies_to_its_folder_and_below_only() {
        let work = file("/Work/markdrop.toml", "theme = \"plain\"");
        assert!(work.governs("/work/a.md") && work.governs("/Work/x/y.md"));
        assert!(!work.governs("/Work") && !work.governs("/Workshop/a.md"));
        assert!(file("/markdrop.toml", "").governs("/a.md"));
        assert_eq!(convert(resolve("/Home/a.md", [&work])).theme, Theme::Default);
        assert_eq!(convert(resolve("/Workshop/a.md", [&work])).theme, Theme::Default);
        assert_eq!(convert(resolve("/work/deep/a.md", [&work])).theme, Theme::Plain);
    }

    #[test]
    fn css_keeps_the_path_resolved_from_the_file_that_set_it() {
        let top = file("/markdrop.toml", "css = \"look/site.css\"");
        let work = file("/Work/markdrop.toml", "theme = \"serif\"");
        assert_eq!(
            convert(resolve("/Work/a.md", [&top, &work])).css.as_deref(),
            Some("/look/site.css")
        );
        let nearer = file("/Work/markdrop.toml", "css = \"work.css\"");
        assert_eq!(
            convert(resolve("/Work/a.md", [&top, &nearer])).css.as_deref(),
            Some("/Work/work.css")
        );
    }

    #[test]
    fn exclude_patterns_are_relative_to_their_own_files_folder() {
        let top = file("/markdrop.toml", "exclude = [\"drafts\"]");
        let work = file("/Work/markdrop.toml", "exclude = [\"*.tmp.md\"]");
        assert_eq!(
            resolve("/Drafts/x.md", [&top, &work]),
            Governs::Excluded { by: "/markdrop.toml".into(), pattern: "drafts".into() }
        );
        assert!(matches!(resolve("/Work/drafts/x.md", [&top, &work]), Governs::Convert(_)));
        assert_eq!(
            resolve("/work/a.tmp.md", [&top, &work]),
            Governs::Excluded { by: "/Work/markdrop.toml".into(), pattern: "*.tmp.md".into() }
        );
    }

    #[test]
    fn a_nearer_file_cannot_bring_back_what_a_farther_one_excluded() {
        let top = file("/markdrop.toml", "exclude = [\"Private/**\"]");
        let private = file("/Private/markdrop.toml", "exclude = []\ntheme = \"serif\"");
        assert_eq!(
            resolve("/Private/a.md", [&top, &private]),
            Governs::Excluded { by: "/markdrop.toml".into(), pattern: "Private/**".into() }
        );
    }
}
