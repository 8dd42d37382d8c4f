//! The person's settings in force for an account (`markdrop.toml` files, [`crate::settings`]):
//! how each note is converted (here), and what a listing changes about them (`update.rs`).
//!
//! The store keeps each settings file's last valid version with the stylesheet it names
//! ([`SettingsRecord`]). A pass reads them, then, before it plans anything, reads the settings
//! files and stylesheets that the listing shows changed: a note converted in this pass already
//! gets the settings the listing leaves. The folders whose settings in force changed are
//! *resettled*: they are listed anew and every note below them is converted again, its page
//! rewritten only if it comes out different. A version that is not valid (a TOML error, an unknown key, a bad glob, a
//! missing or unusable stylesheet) changes nothing but the problem the account page shows: the
//! last good settings stay in force. The changes are committed with the cursor, like the
//! attachments, so a pass that fails leaves them to its retry, which resettles the same folders.

mod update;

use std::collections::HashMap;
use std::sync::Arc;

use crate::settings::{self, Governs, NoteSettings, SettingsFile, is_settings_file};
use crate::store::{SettingsRecord, SettingsShown};

use super::plan::{Direct, NotePath, Step};

pub(super) use self::update::{outermost, update};

/// The settings files in force for an account, ready to tell how each note is converted.
#[derive(Debug, Default)]
pub(super) struct InForce {
    /// The valid settings files, by lower-case folder (`""` for the root).
    files: HashMap<String, SettingsFile>,
    /// The stylesheets they name, by the lower-case folder of the settings file that names
    /// each: two files naming the same stylesheet may hold different versions of it for a
    /// while (one of them refused), and each governs with its own.
    stylesheets: HashMap<String, Arc<str>>,
    /// One of `files` excludes something.
    excludes: bool,
}

impl InForce {
    /// The settings in force from the records as a pass leaves them.
    pub(super) fn new(records: &HashMap<String, SettingsRecord>) -> InForce {
        let mut in_force = InForce::default();
        for record in records.values() {
            let Some(text) = &record.text else { continue };
            // Stored because it was valid; a newer markdrop that no longer takes it says so
            // once it is read again, when it changes.
            let Ok(file) = SettingsFile::parse(&record.path, text) else {
                tracing::warn!(path = %record.path, "a stored settings file no longer parses");
                continue;
            };
            let folder = file.folder().to_lowercase();
            if let Some(stylesheet) = &record.stylesheet {
                in_force.stylesheets.insert(folder.clone(), Arc::from(stylesheet.text.as_str()));
            }
            in_force.excludes |= !file.exclude.is_empty();
            in_force.files.insert(folder, file);
        }
        in_force
    }

    /// What the settings say to do with the note at `note` (its display path).
    pub(super) fn governs(&self, note: &str) -> Governs {
        if self.files.is_empty() {
            return Governs::Convert(NoteSettings::DEFAULT);
        }
        let files = settings::governing_folders(note)
            .into_iter()
            .filter_map(|folder| self.files.get(&folder.to_lowercase()));
        settings::resolve(note, files)
    }

    /// Whether the settings convert the note at `note` (its display path): not excluded.
    /// Asked of every note of the account when a pass renders, so settings that exclude
    /// nothing answer at once.
    pub(super) fn converts(&self, note: &str) -> bool {
        !self.excludes || !matches!(self.governs(note), Governs::Excluded { .. })
    }

    /// Whether these settings exclude anything at all.
    pub(super) fn excludes(&self) -> bool {
        self.excludes
    }

    /// Turns the conversions of notes the settings exclude into skips, which the account page
    /// reports when `worth_saying` (the note changed, or was not excluded before), and drops
    /// the others: a folder's settings changing again is no news about its excluded notes.
    /// Their pages, if any, are left as they are.
    pub(super) fn exclude(&self, steps: &mut Vec<Step>, worth_saying: impl Fn(&NotePath) -> bool) {
        if !self.excludes {
            return;
        }
        steps.retain_mut(|step| {
            let Step::Convert(conversion) = step else { return true };
            let Governs::Excluded { by, pattern } = self.governs(&conversion.note.display) else {
                return true;
            };
            if !worth_saying(&conversion.note) {
                return false;
            }
            let reason = format!(
                "{by} excludes it (\"{pattern}\"); its page, if it has one, is left as it is"
            );
            *step = Step::Direct(Direct::Skip { note: conversion.note.clone(), reason });
            true
        });
    }

    /// The note's settings and the text of the stylesheet they name, for a note the settings
    /// do not exclude (an excluded one gets the defaults; the plan does not convert it).
    pub(super) fn look(&self, note: &str) -> (NoteSettings, Option<Arc<str>>) {
        match self.governs(note) {
            Governs::Convert(settings) => {
                // The nearest file that names a stylesheet is the one whose `css` is in force.
                let named_by = settings::governing_folders(note)
                    .into_iter()
                    .rev()
                    .map(str::to_lowercase)
                    .find(|folder| self.files.get(folder).is_some_and(|file| file.css.is_some()));
                let stylesheet = named_by.and_then(|folder| self.stylesheets.get(&folder).cloned());
                (settings, stylesheet)
            }
            Governs::Excluded { .. } => (NoteSettings::DEFAULT, None),
        }
    }
}

/// Whether a file of this name may matter to the settings: a settings file, or a stylesheet
/// one of them may name.
pub(super) fn concerns(name: &str) -> bool {
    is_settings_file(name) || is_stylesheet(name)
}

/// The settings files for the account page, by path: each one's folder and problem.
pub(super) fn shown(records: &HashMap<String, SettingsRecord>) -> Vec<SettingsShown> {
    let mut shown: Vec<SettingsShown> = records
        .values()
        .map(|record| SettingsShown {
            path: record.path.clone(),
            in_force: record.text.is_some(),
            problem: record.problem.clone(),
        })
        .collect();
    shown.sort_by(|a, b| a.path.cmp(&b.path));
    shown
}

pub(super) fn is_stylesheet(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(stem, extension)| !stem.is_empty() && extension.eq_ignore_ascii_case("css"))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::StylesheetRecord;

    /// A settings record in force, with `css` (path, text) read with it.
    pub(super) fn record(path: &str, text: &str, css: Option<(&str, &str)>) -> SettingsRecord {
        SettingsRecord {
            path: path.to_owned(),
            hash: "h".to_owned(),
            text: Some(text.to_owned()),
            stylesheet: css.map(|(path, text)| StylesheetRecord {
                path: path.to_owned(),
                hash: "c".to_owned(),
                text: text.to_owned(),
            }),
            problem: None,
        }
    }

    #[test]
    fn a_stylesheet_is_a_css_file_of_any_case_and_any_name() {
        assert!(concerns("site.CSS") && concerns("Markdrop.toml") && concerns("été.css"));
        assert!(!concerns(".css") && !concerns("2026 🎉.md") && !concerns("css"));
    }

    #[test]
    fn the_nearest_settings_file_governs_and_its_stylesheet_comes_along() {
        let records = HashMap::from([
            ("/markdrop.toml".to_owned(), record("/markdrop.toml", "theme = \"serif\"", None)),
            (
                "/work/markdrop.toml".to_owned(),
                record(
                    "/Work/markdrop.toml",
                    "css = \"look.css\"\nexclude = [\"drafts\"]",
                    Some(("/Work/look.css", "p { color: red }")),
                ),
            ),
        ]);
        let in_force = InForce::new(&records);
        let (settings, stylesheet) = in_force.look("/work/Plans.md");
        assert_eq!(settings.theme, settings::Theme::Serif);
        assert_eq!(stylesheet.as_deref(), Some("p { color: red }"));
        let (elsewhere, none) = in_force.look("/Home/a.md");
        assert_eq!((elsewhere.css, none), (None, None));
        assert!(matches!(
            in_force.governs("/Work/Drafts/x.md"),
            Governs::Excluded { by, .. } if by == "/Work/markdrop.toml"
        ));
        assert_eq!(InForce::default().governs("/a.md"), Governs::Convert(NoteSettings::DEFAULT));
    }

    #[test]
    fn each_settings_file_governs_with_its_own_version_of_a_shared_stylesheet() {
        let records = HashMap::from([
            (
                "/markdrop.toml".to_owned(),
                record("/markdrop.toml", "css = \"/s.css\"", Some(("/s.css", "old {}"))),
            ),
            (
                "/work/markdrop.toml".to_owned(),
                record("/Work/markdrop.toml", "css = \"/s.css\"", Some(("/s.css", "new {}"))),
            ),
            (
                "/work/deep/markdrop.toml".to_owned(),
                record("/Work/Deep/markdrop.toml", "theme = \"plain\"", None),
            ),
        ]);
        let in_force = InForce::new(&records);
        assert_eq!(in_force.look("/a.md").1.as_deref(), Some("old {}"));
        assert_eq!(in_force.look("/Work/Deep/b.md").1.as_deref(), Some("new {}"));
    }
}
