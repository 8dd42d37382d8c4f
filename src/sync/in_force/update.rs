//! What a listing changes about the settings in force: the settings files and stylesheets it
//! shows changed are read before the pass plans anything, a version with a mistake keeps the
//! last good one in force, and the folders whose settings in force changed are resettled.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::dropbox::{AccountClient, DropboxError, Metadata};
use crate::settings::{STYLESHEET_CAP, SettingsFile, check_stylesheet, is_settings_file};
use crate::store::{SettingsRecord, StylesheetRecord};

use super::is_stylesheet;
use crate::sync::execute::{FileError, classify};
use crate::sync::plan::Resettled;
use crate::sync::{PassError, pass_error};

/// The largest settings file read: far more than any real one, and a bound on what a pass
/// holds for one.
const SETTINGS_CAP: u64 = 64 * 1024;

/// What a listing does to an account's settings.
#[derive(Debug, Default)]
pub(in crate::sync) struct Update {
    /// The records to commit with the cursor: lower-case path → record, or `None` to drop it.
    pub(in crate::sync) changes: BTreeMap<String, Option<SettingsRecord>>,
    /// The folders whose notes are converted again: the settings in force over them changed.
    pub(in crate::sync) resettled: Resettled,
    /// Every record as the pass leaves them.
    pub(in crate::sync) records: HashMap<String, SettingsRecord>,
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

/// Reads what the listing changes about the account's settings files (`recorded`, as stored)
/// and works out what is in force after it.
pub(in crate::sync) async fn update(
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
pub(in crate::sync) fn outermost(resettled: &[String]) -> Vec<&str> {
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
    use crate::sync::in_force::tests::record;
    use crate::sync::plan::tests::{deleted, file};

    fn seen(display: &str, hash: &str) -> Seen {
        Seen::File { display: display.to_owned(), hash: hash.to_owned() }
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
    fn a_recorded_file_not_listed_is_gone_with_its_folder_or_from_a_listing_of_everything() {
        let listed = Listed::of(&[deleted("/Work")], false);
        assert_eq!(listed.seen("/work/markdrop.toml"), Some(Seen::Gone));
        assert_eq!(listed.seen("/work/look/site.css"), Some(Seen::Gone));
        assert_eq!(listed.seen("/home/markdrop.toml"), None);
        assert_eq!(Listed::of(&[], true).seen("/home/markdrop.toml"), Some(Seen::Gone));
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
