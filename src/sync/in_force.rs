//! The person's settings in force for an account (`markdrop.toml` files, [`crate::settings`]),
//! and what a listing changes about them.
//!
//! The store keeps each settings file's last valid version with the stylesheet it names
//! ([`SettingsRecord`]). A pass reads them, then, before it plans anything, reads the settings
//! files and stylesheets that the listing shows changed: a note converted in this pass already
//! gets the settings the listing leaves. The folders whose settings in force changed are
//! *resettled*: every note below them is converted again, and its page rewritten only if it
//! comes out different. A version that is not valid (a TOML error, an unknown key, a bad glob, a
//! missing or unusable stylesheet) changes nothing but the problem the account page shows: the
//! last good settings stay in force. The changes are committed with the cursor, like the
//! attachments, so a pass that fails leaves them to its retry, which resettles the same folders.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::dropbox::{AccountClient, DropboxError, Metadata};
use crate::settings::{
    self, Governs, NoteSettings, STYLESHEET_CAP, SettingsFile, check_stylesheet, is_settings_file,
};
use crate::store::{SettingsRecord, SettingsShown, StylesheetRecord};

use super::execute::{FileError, classify};
use super::plan::{Direct, Resettled, Step};
use super::{PassError, pass_error};

/// The largest settings file read: far more than any real one, and a bound on what a pass
/// holds for one.
const SETTINGS_CAP: u64 = 64 * 1024;

/// The settings files in force for an account, ready to tell how each note is converted.
#[derive(Debug, Default)]
pub(super) struct InForce {
    /// The valid settings files, by lower-case folder (`""` for the root).
    files: HashMap<String, SettingsFile>,
    /// The stylesheets they name, by the lower-case folder of the settings file that names
    /// each: two files naming the same stylesheet may hold different versions of it for a
    /// while (one of them refused), and each governs with its own.
    stylesheets: HashMap<String, Arc<str>>,
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
        !self.files.values().any(|file| !file.exclude.is_empty())
            || !matches!(self.governs(note), Governs::Excluded { .. })
    }

    /// Turns the conversions of notes the settings exclude into skips, which the account page
    /// reports; their pages, if any, are left as they are.
    pub(super) fn exclude(&self, steps: &mut [Step]) {
        if self.files.is_empty() {
            return;
        }
        for step in steps {
            let Step::Convert(conversion) = step else { continue };
            if let Governs::Excluded { by, pattern } = self.governs(&conversion.note.display) {
                let reason = format!(
                    "{by} excludes it (\"{pattern}\"); its page, if it has one, is left as it is"
                );
                *step = Step::Direct(Direct::Skip { note: conversion.note.clone(), reason });
            }
        }
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

/// What a listing does to an account's settings.
#[derive(Debug, Default)]
pub(super) struct Update {
    /// The records to commit with the cursor: lower-case path → record, or `None` to drop it.
    pub(super) changes: BTreeMap<String, Option<SettingsRecord>>,
    /// The folders whose notes are converted again: the settings in force over them changed.
    pub(super) resettled: Resettled,
    /// Every record as the pass leaves them.
    pub(super) records: HashMap<String, SettingsRecord>,
}

/// What the listing says of a file, as its last entry left it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    File { display: String, hash: String },
    Gone,
}

/// The settings files and stylesheets the listing says something about, as it leaves them.
#[derive(Debug, Default, PartialEq, Eq)]
struct Listed {
    settings: BTreeMap<String, Seen>,
    /// Any `.css` file, by lower-case path: which ones the settings name is known later.
    stylesheets: HashMap<String, Seen>,
    /// Deleted paths (any of which may have been a folder), with their last place.
    deleted: HashMap<String, usize>,
    /// The listing shows every file: one it does not show is not there.
    from_start: bool,
}

impl Listed {
    fn of(entries: &[Metadata], from_start: bool) -> Listed {
        let mut listed = Listed { from_start, ..Listed::default() };
        let mut files: Vec<(&str, Seen, usize)> = Vec::new();
        for (at, entry) in entries.iter().enumerate() {
            match entry {
                Metadata::File(file) => {
                    let Some(key) = file.path_lower.as_deref() else { continue };
                    if is_settings_file(&file.name) || is_stylesheet(&file.name) {
                        let display = file.path_display.clone().unwrap_or_else(|| key.to_owned());
                        let hash = file.content_hash.clone().unwrap_or_default();
                        files.push((key, Seen::File { display, hash }, at));
                    }
                }
                Metadata::Deleted(deleted) => {
                    if let Some(key) = deleted.path_lower.as_deref() {
                        listed.deleted.insert(key.to_owned(), at);
                    }
                }
                Metadata::Folder(_) | Metadata::Other => {}
            }
        }
        for (key, seen, at) in files {
            let seen = if listed.deleted_after(key, at) { Seen::Gone } else { seen };
            let name = key.rsplit('/').next().unwrap_or(key);
            match is_settings_file(name) {
                true => listed.settings.insert(key.to_owned(), seen),
                false => listed.stylesheets.insert(key.to_owned(), seen),
            };
        }
        listed
    }

    /// The place in the listing of the last deletion of `key` or of a folder above it.
    fn deletion(&self, key: &str) -> Option<usize> {
        let mut path = key;
        let mut last = self.deleted.get(path).copied();
        while let Some(slash) = path.rfind('/').filter(|&slash| slash > 0) {
            path = &path[..slash];
            last = last.max(self.deleted.get(path).copied());
        }
        last
    }

    /// Whether `key`, or a folder above it, was deleted after place `at` in the listing.
    fn deleted_after(&self, key: &str, at: usize) -> bool {
        self.deletion(key).is_some_and(|gone| gone > at)
    }

    /// What the listing leaves of a file: its last entry, else gone with a deleted folder, or
    /// by not being there in a listing of every file; `None` if it says nothing.
    fn seen(&self, key: &str) -> Option<Seen> {
        match self.settings.get(key).or_else(|| self.stylesheets.get(key)) {
            Some(seen) => Some(seen.clone()),
            None if self.from_start || self.deletion(key).is_some() => Some(Seen::Gone),
            None => None,
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

fn is_stylesheet(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(stem, extension)| !stem.is_empty() && extension.eq_ignore_ascii_case("css"))
}

/// Reads what the listing changes about the account's settings files (`recorded`, as stored)
/// and works out what is in force after it.
pub(super) async fn update(
    client: &AccountClient,
    entries: &[Metadata],
    from_start: bool,
    recorded: HashMap<String, SettingsRecord>,
) -> Result<Update, PassError> {
    let listed = Listed::of(entries, from_start);
    let says_nothing =
        listed.settings.is_empty() && listed.stylesheets.is_empty() && listed.deleted.is_empty();
    if says_nothing && !from_start {
        return Ok(Update { records: recorded, ..Update::default() });
    }
    let keys: BTreeSet<String> = recorded.keys().chain(listed.settings.keys()).cloned().collect();
    let mut update = Update::default();
    for key in keys {
        let before = recorded.get(&key);
        let after = match listed.seen(&key) {
            Some(Seen::Gone) => None,
            Some(Seen::File { display, hash })
                if before.is_none_or(|record| record.hash != hash) =>
            {
                read(client, &display, before, &listed).await?
            }
            // Unchanged, or not listed: a version refused (perhaps for a stylesheet that was
            // missing) is read again when stylesheets change.
            _ => match before {
                Some(record) if record.problem.is_some() && !listed.stylesheets.is_empty() => {
                    read(client, &record.path, before, &listed).await?
                }
                before => before.cloned(),
            },
        };
        // Whatever became of the version read, the stylesheet in force follows its changes.
        let after = match after {
            Some(record) => Some(restyled(client, record, &listed).await?),
            None => None,
        };
        if after.as_ref() != before {
            if in_force(before) != in_force(after.as_ref()) {
                update.resettled.folders.push(format!("{}/", folder_of(&key)));
                update.resettled.exclusions |= excludes(before) != excludes(after.as_ref());
            }
            update.changes.insert(key.clone(), after.clone());
        }
        if let Some(record) = after {
            update.records.insert(key, record);
        }
    }
    Ok(update)
}

/// The resettled folders that are not inside another one, as Dropbox paths to list (`""` for
/// the whole Dropbox).
pub(super) fn outermost(resettled: &[String]) -> Vec<&str> {
    let mut folders: Vec<&str> = resettled.iter().map(String::as_str).collect();
    folders.sort_unstable();
    folders.dedup();
    let mut outermost: Vec<&str> = Vec::new();
    for folder in folders {
        if !outermost.iter().any(|outer| folder.starts_with(outer)) {
            outermost.push(folder);
        }
    }
    outermost.into_iter().map(|folder| folder.trim_end_matches('/')).collect()
}

/// The `exclude` patterns of the version of a record in force.
fn excludes(record: Option<&SettingsRecord>) -> Vec<String> {
    let file =
        record.and_then(|record| SettingsFile::parse(&record.path, record.text.as_deref()?).ok());
    file.map_or_else(Vec::new, |file| {
        file.exclude.iter().map(|glob| glob.pattern().to_owned()).collect()
    })
}

/// What of a record is in force: its last valid text and the stylesheet read with it.
fn in_force(record: Option<&SettingsRecord>) -> Option<(&str, Option<&str>)> {
    let record = record?;
    let text = record.text.as_deref()?;
    Some((text, record.stylesheet.as_ref().map(|stylesheet| stylesheet.text.as_str())))
}

fn folder_of(path: &str) -> &str {
    path.rfind('/').map_or("", |slash| &path[..slash])
}

/// Reads the settings file at `display` as it is now: in force if it is valid and its
/// stylesheet can be read, else the last good version stays, with the problem. `None` when it
/// was never recorded and is gone by now (the next listing says so).
async fn read(
    client: &AccountClient,
    display: &str,
    before: Option<&SettingsRecord>,
    listed: &Listed,
) -> Result<Option<SettingsRecord>, PassError> {
    let mut record = before.cloned().unwrap_or_else(|| SettingsRecord {
        path: display.to_owned(),
        hash: String::new(),
        text: None,
        stylesheet: None,
        problem: None,
    });
    let download = match client.download(display, SETTINGS_CAP).await {
        Ok(download) => download,
        Err(DropboxError::TooLarge { .. }) => {
            record.problem = Some(format!(
                "it is larger than {} KiB; markdrop reads settings files up to that size",
                SETTINGS_CAP / 1024
            ));
            return Ok(Some(record));
        }
        Err(error) => match problem(error, "it")? {
            None => return Ok(before.cloned()),
            Some(problem) => {
                record.problem = Some(problem);
                return Ok(Some(record));
            }
        },
    };
    // The version read, which may be newer than the one listed.
    record.path = download.metadata.path_display.clone().unwrap_or_else(|| display.to_owned());
    record.hash = download.metadata.content_hash.clone().unwrap_or_default();
    let file = match SettingsFile::parse_bytes(&record.path, &download.content) {
        Ok(file) => file,
        Err(error) => {
            record.problem = Some(error.to_string());
            return Ok(Some(record));
        }
    };
    let stylesheet = match &file.css {
        None => None,
        Some(css) => {
            let known = before
                .and_then(|record| record.stylesheet.as_ref())
                .filter(|known| known.path.eq_ignore_ascii_case(css));
            match stylesheet(client, css, known, listed).await? {
                Ok(stylesheet) => Some(stylesheet),
                Err(problem) => {
                    record.problem = Some(problem);
                    return Ok(Some(record));
                }
            }
        }
    };
    record.text = Some(String::from_utf8_lossy(&download.content).into_owned());
    record.stylesheet = stylesheet;
    record.problem = None;
    Ok(Some(record))
}

/// What to show for a file that could not be read, or `None` if it is simply gone. A failure
/// that may pass (Dropbox busy, the network) ends the pass instead, which is tried again: the
/// settings must not be judged on a read that did not happen.
fn problem(error: DropboxError, what: &str) -> Result<Option<String>, PassError> {
    if error.is_transient() {
        return Err(pass_error(error));
    }
    match classify(error) {
        FileError::Pass(error) => Err(error),
        FileError::Gone => Ok(None),
        FileError::Lasting(reason) | FileError::Passing(reason) => {
            Ok(Some(format!("{what} cannot be read: {reason}")))
        }
    }
}

/// `record` with its stylesheet read again if the listing changed it; a stylesheet that is
/// gone or no longer usable leaves the last one read in force, and says so.
async fn restyled(
    client: &AccountClient,
    mut record: SettingsRecord,
    listed: &Listed,
) -> Result<SettingsRecord, PassError> {
    let Some(known) = &record.stylesheet else { return Ok(record) };
    let changed = match listed.seen(&known.path.to_lowercase()) {
        Some(Seen::File { hash, .. }) => hash != known.hash,
        Some(Seen::Gone) => true,
        None => false,
    };
    if !changed {
        return Ok(record);
    }
    let path = known.path.clone();
    match stylesheet(client, &path, None, listed).await? {
        Ok(stylesheet) => {
            record.stylesheet = Some(stylesheet);
            record.problem = None;
        }
        Err(problem) => record.problem = Some(problem),
    }
    Ok(record)
}

/// The stylesheet at `css` (a Dropbox path): `known` again if the listing says it did not
/// change, else read and checked. The error is the problem to show.
async fn stylesheet(
    client: &AccountClient,
    css: &str,
    known: Option<&StylesheetRecord>,
    listed: &Listed,
) -> Result<Result<StylesheetRecord, String>, PassError> {
    let unchanged = match listed.seen(&css.to_lowercase()) {
        Some(Seen::File { hash, .. }) => known.filter(|known| known.hash == hash),
        Some(Seen::Gone) => return Ok(Err(missing(css))),
        None => known,
    };
    if let Some(known) = unchanged {
        return Ok(Ok(known.clone()));
    }
    let download = match client.download(css, STYLESHEET_CAP as u64).await {
        Ok(download) => download,
        Err(DropboxError::TooLarge { .. }) => {
            return Ok(Err(format!(
                "its stylesheet {css} is larger than {} KiB",
                STYLESHEET_CAP / 1024
            )));
        }
        Err(error) => {
            let what = format!("its stylesheet {css}");
            return Ok(Err(problem(error, &what)?.unwrap_or_else(|| missing(css))));
        }
    };
    match check_stylesheet(&download.content) {
        Ok(text) => Ok(Ok(StylesheetRecord {
            path: download.metadata.path_display.unwrap_or_else(|| css.to_owned()),
            hash: download.metadata.content_hash.unwrap_or_default(),
            text: text.to_owned(),
        })),
        Err(error) => Ok(Err(format!("its stylesheet {css}: {error}"))),
    }
}

fn missing(css: &str) -> String {
    format!("its stylesheet {css} is not in your Dropbox")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::tests::{deleted, file};

    fn seen(display: &str, hash: &str) -> Seen {
        Seen::File { display: display.to_owned(), hash: hash.to_owned() }
    }

    fn record(path: &str, text: &str, css: Option<(&str, &str)>) -> SettingsRecord {
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
    fn the_listing_names_settings_files_and_stylesheets_as_their_last_entry_leaves_them() {
        let entries = [
            file("/Notes/markdrop.toml", "1"),
            file("/Notes/MarkDrop.TOML", "2"),
            file("/look/site.css", "3"),
            file("/a.md", "4"),
            file("/Old/markdrop.toml", "5"),
            deleted("/Old"),
        ];
        let listed = Listed::of(&entries, false);
        assert_eq!(
            listed.settings,
            BTreeMap::from([
                ("/notes/markdrop.toml".to_owned(), seen("/Notes/MarkDrop.TOML", "2")),
                ("/old/markdrop.toml".to_owned(), Seen::Gone),
            ])
        );
        assert_eq!(
            listed.stylesheets,
            HashMap::from([("/look/site.css".to_owned(), seen("/look/site.css", "3"))])
        );
    }

    #[test]
    fn a_stylesheet_is_a_css_file_of_any_case_and_any_name() {
        assert!(concerns("site.CSS") && concerns("Markdrop.toml") && concerns("été.css"));
        assert!(!concerns(".css") && !concerns("2026 🎉.md") && !concerns("css"));
    }

    #[test]
    fn a_recorded_file_not_listed_is_gone_with_its_folder_or_from_a_listing_of_everything() {
        let listed = Listed::of(&[deleted("/Work")], false);
        assert_eq!(listed.seen("/work/markdrop.toml"), Some(Seen::Gone));
        assert_eq!(listed.seen("/work/look/site.css"), Some(Seen::Gone));
        assert_eq!(listed.seen("/home/markdrop.toml"), None);
        assert_eq!(Listed::of(&[], true).seen("/home/markdrop.toml"), Some(Seen::Gone));
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

    #[test]
    fn the_outermost_resettled_folders_are_listed_again() {
        let resettled = ["/work/deep/".to_owned(), "/work/".to_owned(), "/home/".to_owned()];
        assert_eq!(outermost(&resettled), ["/home", "/work"]);
        assert_eq!(outermost(&["/a/".to_owned(), "/".to_owned()]), [""]);
    }

    #[test]
    fn only_a_change_to_what_is_in_force_resettles_a_folder() {
        let good = record("/markdrop.toml", "theme = \"serif\"", None);
        let mut refused = good.clone();
        refused.hash = "new".to_owned();
        refused.problem = Some("line 1, column 1: …".to_owned());
        assert_eq!(in_force(Some(&good)), in_force(Some(&refused)));
        let restyled = record("/markdrop.toml", "theme = \"serif\"", Some(("/a.css", "p {}")));
        assert_ne!(in_force(Some(&good)), in_force(Some(&restyled)));
        assert_eq!(in_force(Some(&SettingsRecord { text: None, ..good.clone() })), None);
    }
}
