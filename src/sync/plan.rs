//! What a pass does about a listing, decided without any I/O: which notes to convert, which
//! pages to leave to the person, which to remove, which records to forget.
//!
//! The plan sees a whole listing at once (every page of it), so a note and its sibling page are
//! judged together wherever Dropbox lists them, and each note is judged by its final state in
//! the listing: a note edited, deleted and made again within one listing is simply a note.
//!
//! The rules, for a note and its sibling `.html` ("the page"):
//! - A page is **markdrop's** when its `content_hash` is the one markdrop last uploaded for the
//!   note (or was about to), per the note's record. markdrop writes it when the note changes.
//! - A page the record does not know (a folder linked for the first time or again, a person's
//!   edit, one of markdrop's older pages landing late) is read before anything is written: it
//!   is markdrop's only if its seal is intact (`crate::render::is_sealed`), and then it is
//!   rewritten with the latest rendering; otherwise it is **the person's** and kept.
//! - A kept page is never written. Deleting or renaming it, or restoring markdrop's latest
//!   page, ends that.
//! - A page that was deleted while its note stayed is written again.
//! - A note without a record whose page the listing does not show may still have one (an
//!   incremental listing shows only changes): the page is looked up before it is written. A
//!   listing from the start shows every file, so there, no page listed means no page.
//! - When a note appears or goes away (a rename is both), every recorded note whose wikilinks
//!   mention its name (`FileRecord::links`) is converted again, whatever its content, since
//!   they may now resolve differently. The rules above still decide about its page: a kept page
//!   stays the person's, and one the listing does not show is markdrop's as recorded, rewritten
//!   only when the new rendering differs. This needs every record of the account
//!   ([`Plan::needs_every_record`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::dropbox::Metadata;
use crate::render::{FileIndex, is_attachment, note_name};
use crate::store::{FileRecord, ancestors};

/// A note's path: as Dropbox displays it, and lower-cased (the key of its record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotePath {
    pub display: String,
    pub key: String,
}

impl NotePath {
    /// A note path as a listing gives it; `None` for anything that is not a `.md` file name.
    pub fn new(display: &str, key: &str) -> Option<NotePath> {
        let name = display.rsplit('/').next().unwrap_or(display);
        is_markdown(name).then(|| NotePath { display: display.to_owned(), key: key.to_owned() })
    }

    /// The note a record is about, when the listing does not name it: its display path is the
    /// page's, with `.md` for `.html`.
    fn from_record(key: &str, record: &FileRecord) -> NotePath {
        NotePath { display: record.note_display(key), key: key.to_owned() }
    }

    /// The sibling page's display path, keeping the casing of folder and stem:
    /// `/Notes/ReadMe.MD` → `/Notes/ReadMe.html`.
    pub fn html(&self) -> String {
        // `.md` is ASCII, so cutting three bytes lands on a character boundary.
        format!("{}.html", &self.display[..self.display.len() - 3])
    }

    /// The file name without `.md`: the title of last resort.
    pub fn stem(&self) -> &str {
        let name = self.display.rsplit('/').next().unwrap_or(&self.display);
        &name[..name.len() - 3]
    }
}

/// Whether a file name is Markdown: a non-empty stem and the extension `.md` in any case.
pub fn is_markdown(name: &str) -> bool {
    name.len() > 3 && name.as_bytes()[name.len() - 3..].eq_ignore_ascii_case(b".md")
}

/// Whether a file name is a page's: the extension `.html` in any case.
pub fn is_page(name: &str) -> bool {
    name.len() > 5 && name.as_bytes()[name.len() - 5..].eq_ignore_ascii_case(b".html")
}

/// The record key of the note whose page `html_key` (lower-case) would be, if it is a page.
fn note_key_of_page(html_key: &str) -> Option<String> {
    let stem = html_key.strip_suffix(".html")?;
    let name = stem.rsplit('/').next()?;
    (!name.is_empty()).then(|| format!("{stem}.md"))
}

/// What the pass knows of a page before reading anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sibling {
    /// No page, or markdrop's unchanged page: write freely.
    Free,
    /// markdrop's page, listed with this `content_hash`: written unless it already is the
    /// rendering (after a crash between an upload and its commit, it often is).
    Ours { hash: String },
    /// The listing shows a page the record does not know as markdrop's, with this
    /// `content_hash` (empty when Dropbox gave none): read its seal before writing.
    Unknown { hash: String },
    /// Nothing says whether a page exists: look it up before writing.
    Unlisted,
}

/// A note to download and render, and maybe to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub note: NotePath,
    /// Display path of the page to write.
    pub html: String,
    /// The `content_hash` converted last time: a download with this hash needs no new page.
    /// `None` when the page must be written whatever the note's content (it was deleted, may be
    /// one of markdrop's older pages, or a retry is due).
    pub last_hash: Option<String>,
    pub sibling: Sibling,
    /// The hashes of markdrop's pages for this note as its record knows them: a page looked up
    /// with one of these is markdrop's without reading it.
    pub ours: Vec<String>,
    /// The note's size as listed (0 when not listed), for the memory budget.
    pub size: u64,
}

/// One thing to do, in listing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read the note, then write or record its page.
    Convert(Conversion),
    /// Nothing to read: carried out as planned.
    Direct(Direct),
}

/// A step with nothing to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direct {
    /// The page is the person's and stays as it is; `report` says so on the account page (the
    /// note changed, so a person may wonder why its page did not).
    Keep { note: NotePath, html: String, hash: String, report: bool },
    /// A note left alone for good (until it changes): too large, or not downloadable.
    Skip { note: NotePath, reason: String },
    /// The note is gone: forget it, and remove its page if it is still markdrop's. `record` is
    /// `None` when there is nothing to remove (never converted, or the page went first).
    Remove { note: NotePath, record: Option<FileRecord> },
}

/// The folders over which the person's settings in force changed (`super::in_force`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resettled {
    /// Lower-case, each with a trailing `/` (`/` for the whole Dropbox): every note under one
    /// is converted again.
    pub folders: Vec<String>,
    /// What the settings exclude there changed: a note under them may have become a page or
    /// stopped being one, so the wikilinks naming it, anywhere, may resolve differently.
    pub exclusions: bool,
}

/// What a pass does about a listing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Folders (lower-case, with a trailing `/`) whose records are dropped: anything deleted may
    /// have been a folder, and its files went with it.
    pub forget: Vec<String>,
    pub steps: Vec<Step>,
    /// Attachments (images, PDFs… that wikilinks may point at) that appear, change their
    /// display path, or go away: lower-case path → display path, or `None` to drop it.
    pub attachments: BTreeMap<String, Option<String>>,
    /// A note or an attachment appears or goes away in the listing: the notes whose wikilinks
    /// mention its name are converted again, and finding them takes every record.
    pub names_moved: bool,
    /// The settings in force over some folders changed: their notes are converted again, and
    /// finding them takes every record.
    pub resettled: bool,
}

impl Plan {
    /// Whether the pass needs every record of the account, not only those of [`record_keys`]:
    /// a note or an attachment may have appeared or gone away (whose linkers, which any record
    /// may be, are converted again), a folder did, or the settings over a folder changed. Plan
    /// again with them all.
    pub fn needs_every_record(&self) -> bool {
        !self.forget.is_empty() || self.names_moved || self.resettled
    }

    /// Whether the pass renders, and so needs every note's path for wikilinks to resolve
    /// against (not every record: `Store::note_paths` has the paths alone).
    pub fn needs_index(&self) -> bool {
        self.steps.iter().any(|step| matches!(step, Step::Convert(_)))
    }

    /// Every file in the account as the pass leaves it, by display path, for wikilinks to
    /// resolve against: the notes recorded (`notes`: every record's note, lower-case path →
    /// display path) that the plan does not remove or forget, and the notes it converts, keeps
    /// or skips, each if `has_page` says its page is one (the person's settings exclude some);
    /// the attachments recorded (`attachments`, all of them), with the plan's changes to them.
    pub fn index(
        &self,
        notes: &HashMap<String, String>,
        attachments: &HashMap<String, String>,
        has_page: impl Fn(&str) -> bool,
    ) -> FileIndex {
        let forgotten: HashSet<&str> = self.forget.iter().map(String::as_str).collect();
        let kept = |key: &&String| !ancestors(key).any(|folder| forgotten.contains(folder));
        let mut files: BTreeMap<&str, String> = notes
            .iter()
            .filter(|(key, _)| kept(key))
            .map(|(key, display)| (key.as_str(), display.clone()))
            .collect();
        // Attachments under a deleted folder are among the plan's own changes.
        files.extend(attachments.iter().map(|(key, display)| (key.as_str(), display.clone())));
        for (key, display) in &self.attachments {
            match display {
                Some(display) => files.insert(key, display.clone()),
                None => files.remove(key.as_str()),
            };
        }
        for step in &self.steps {
            match step {
                Step::Convert(Conversion { note, .. })
                | Step::Direct(Direct::Keep { note, .. } | Direct::Skip { note, .. }) => {
                    files.insert(&note.key, note.display.clone());
                }
                Step::Direct(Direct::Remove { note, .. }) => {
                    files.remove(note.key.as_str());
                }
            }
        }
        files.retain(|_, display| !is_markdown(display) || has_page(display));
        FileIndex::new(files.into_values())
    }
}

/// What the listing says of a note, as its last entry left it.
#[derive(Debug, Clone)]
enum NoteSeen {
    File {
        display: String,
        hash: Option<String>,
        size: u64,
        downloadable: bool,
    },
    /// With the display path Dropbox gave, if any.
    Deleted(Option<String>),
}

/// What the listing says of a page, as its last entry left it.
#[derive(Debug, Clone)]
enum PageSeen {
    /// With its `content_hash`, if Dropbox gave one.
    File(Option<String>),
    Deleted,
}

/// The lower-case paths whose records the plan needs: every note in the listing, every note
/// whose page is in it, and `also` (notes due for a retry).
pub fn record_keys<'a>(entries: &[Metadata], also: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut keys: Vec<String> = entries
        .iter()
        .filter_map(|entry| {
            let (name, key) = match entry {
                Metadata::File(file) => (&file.name, file.path_lower.as_deref()?),
                Metadata::Deleted(deleted) => (&deleted.name, deleted.path_lower.as_deref()?),
                _ => return None,
            };
            if is_markdown(name) { Some(key.to_owned()) } else { note_key_of_page(key) }
        })
        .chain(also.map(str::to_owned))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A note whose retry is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryDue {
    /// Display path of the note.
    pub display: String,
    /// What failed was removing the page of the deleted note, not converting it.
    pub removal: bool,
}

/// Plans a pass over `entries` (a whole listing; `from_start` when it lists every file rather
/// than the changes since a cursor), given the records of [`record_keys`], the notes whose
/// retry is due and the recorded attachments (all of them when the listing names an
/// attachment, deletes anything, or is from the start), by lower-case path; and the folders
/// over which the settings in force changed, whose notes are converted again.
pub fn plan(
    entries: &[Metadata],
    from_start: bool,
    records: &HashMap<String, FileRecord>,
    retries_due: &HashMap<String, RetryDue>,
    attachments: &HashMap<String, String>,
    resettled: &Resettled,
    max_markdown_bytes: u64,
) -> Plan {
    // The last entry for each note and each page, with its place in the listing.
    let mut notes: HashMap<&str, (NoteSeen, usize)> = HashMap::new();
    let mut pages: HashMap<String, (PageSeen, usize)> = HashMap::new();
    // Keys in the order the listing first names them (a note or its page), for stable steps.
    let mut order: Vec<String> = Vec::new();
    let mut named: HashSet<String> = HashSet::new();
    let mut name = |key: &str, order: &mut Vec<String>| {
        if named.insert(key.to_owned()) {
            order.push(key.to_owned());
        }
    };
    // Anything deleted may have been a folder (Dropbox does not say): its path with a trailing
    // `/`, and the place in the listing of its last deletion.
    let mut deleted_folders: HashMap<String, usize> = HashMap::new();
    let mut forget: Vec<String> = Vec::new();
    // The last entry for each attachment: its display path, or `None` when deleted.
    let mut attachments_seen: HashMap<&str, (Option<&str>, usize)> = HashMap::new();
    for (at, entry) in entries.iter().enumerate() {
        match entry {
            Metadata::File(file) => {
                let Some(key) = file.path_lower.as_deref() else { continue };
                if is_markdown(&file.name) {
                    let display = file.path_display.clone().unwrap_or_else(|| key.to_owned());
                    let seen = NoteSeen::File {
                        display,
                        hash: file.content_hash.clone(),
                        size: file.size,
                        downloadable: file.is_downloadable,
                    };
                    notes.insert(key, (seen, at));
                    name(key, &mut order);
                } else if let Some(note) = note_key_of_page(key) {
                    name(&note, &mut order);
                    pages.insert(note, (PageSeen::File(file.content_hash.clone()), at));
                } else if is_attachment(&file.name) {
                    attachments_seen
                        .insert(key, (Some(file.path_display.as_deref().unwrap_or(key)), at));
                }
            }
            Metadata::Deleted(deleted) => {
                let Some(key) = deleted.path_lower.as_deref() else { continue };
                if is_markdown(&deleted.name) {
                    notes.insert(key, (NoteSeen::Deleted(deleted.path_display.clone()), at));
                    name(key, &mut order);
                } else if let Some(note) = note_key_of_page(key) {
                    name(&note, &mut order);
                    pages.insert(note, (PageSeen::Deleted, at));
                } else if is_attachment(&deleted.name) {
                    attachments_seen.insert(key, (None, at));
                }
                let folder = format!("{key}/");
                if deleted_folders.insert(folder.clone(), at).is_none() {
                    forget.push(folder);
                }
            }
            Metadata::Folder(_) | Metadata::Other => {}
        }
    }
    // What was listed under a folder deleted later in the listing went with it; a record under
    // a deleted folder is gone with it, whatever came after. (Each looks up its own ancestors:
    // the cost grows with the entries and their depth, never with entries times deletions.)
    let deleted_after = |key: &str, at: usize| {
        ancestors(key).any(|folder| deleted_folders.get(folder).is_some_and(|&gone| gone > at))
    };
    let record = |key: &str| {
        records.get(key).filter(|_| !ancestors(key).any(|f| deleted_folders.contains_key(f)))
    };
    let under_deleted =
        |key: &str| ancestors(key).any(|folder| deleted_folders.contains_key(folder));
    let (attachments, moved) = attachment_changes(
        attachments,
        &attachments_seen,
        from_start,
        &under_deleted,
        &deleted_after,
    );
    let resettled_here = |key: &str| {
        record(key).is_some()
            && resettled.folders.iter().any(|folder| key.starts_with(folder.as_str()))
    };
    let mut moved = moved;
    if resettled.exclusions {
        let names = records.iter().filter(|(key, _)| resettled_here(key));
        moved.extend(
            names.map(|(key, known)| note_name(&NotePath::from_record(key, known).display)),
        );
    }
    let (mut relinked, names_moved) = relinked(records, &notes, moved, &deleted_after, &record);
    // Notes under settings that changed are converted again, as linkers are: whatever their
    // content, their pages written only if they come out different.
    relinked.extend(records.keys().map(String::as_str).filter(|key| resettled_here(key)));
    let mut due: Vec<&String> = retries_due.keys().filter(|key| !named.contains(*key)).collect();
    due.sort_unstable();
    let mut steps = Vec::new();
    for key in order.iter().chain(due) {
        let page = pages.get(key).map(|(page, at)| match page {
            PageSeen::File(_) if deleted_after(key, *at) => &PageSeen::Deleted,
            page => page,
        });
        let retry = retries_due.get(key);
        let listed = notes.get(key.as_str()).map(|(note, at)| match note {
            NoteSeen::File { .. } if deleted_after(key, *at) => &NoteSeen::Deleted(None),
            note => note,
        });
        let judged = |note, changed| Judged {
            note,
            record: record(key),
            page,
            changed,
            retry: retry.is_some(),
            relink: relinked.contains(key.as_str()),
            from_start,
        };
        let step = match listed {
            Some(NoteSeen::File { display, hash, size, downloadable }) => {
                let note = NotePath { display: display.clone(), key: key.clone() };
                if !downloadable {
                    Some(Step::Direct(Direct::Skip {
                        note,
                        reason: "Dropbox cannot download it".to_owned(),
                    }))
                } else if *size > max_markdown_bytes {
                    let reason = format!(
                        "it is {}, over the {} limit",
                        human_bytes(*size),
                        human_bytes(max_markdown_bytes)
                    );
                    Some(Step::Direct(Direct::Skip { note, reason }))
                } else {
                    let changed = hash.is_none()
                        || record(key)
                            .is_none_or(|record| Some(&record.source_hash) != hash.as_ref());
                    judge(judged(note, changed), *size)
                }
            }
            Some(NoteSeen::Deleted(_)) => Some(remove(key, record(key), page)),
            // The note is not listed: its page changed, or its retry is due.
            None => match (record(key), retry) {
                (record, Some(RetryDue { removal: true, .. })) => Some(remove(key, record, page)),
                (Some(known), _) => judge(judged(NotePath::from_record(key, known), false), 0),
                (None, Some(RetryDue { display, .. })) => {
                    let note = NotePath { display: display.clone(), key: key.clone() };
                    judge(judged(note, true), 0)
                }
                // A page whose note markdrop never converted: not its business.
                (None, None) => None,
            },
        };
        steps.extend(step);
    }
    // Linkers the listing does not name: judged as they are, converted for their links alone.
    let mut unnamed: Vec<&str> = relinked
        .into_iter()
        .filter(|key| !named.contains(*key) && !retries_due.contains_key(*key))
        .collect();
    unnamed.sort_unstable();
    for key in unnamed {
        let Some(known) = record(key) else { continue };
        let judged = Judged {
            note: NotePath::from_record(key, known),
            record: Some(known),
            page: None,
            changed: false,
            retry: false,
            relink: true,
            from_start,
        };
        steps.extend(judge(judged, 0));
    }
    Plan { forget, steps, attachments, names_moved, resettled: !resettled.folders.is_empty() }
}

/// The changes to the recorded attachments (`known`) that the listing makes, and the names of
/// the attachments that appear, go away or change their display path: wikilinks naming them
/// may now resolve differently. A recorded attachment under a deleted folder went with it,
/// unless listed after the deletion; one that a listing from the start does not show is gone.
/// Each is dropped by name, never by folder, so that a pass that fails leaves them to its retry.
fn attachment_changes(
    known: &HashMap<String, String>,
    seen: &HashMap<&str, (Option<&str>, usize)>,
    from_start: bool,
    under_deleted: &impl Fn(&str) -> bool,
    deleted_after: &impl Fn(&str, usize) -> bool,
) -> (BTreeMap<String, Option<String>>, HashSet<String>) {
    let mut changes = BTreeMap::new();
    let mut names = HashSet::new();
    for (key, display) in known {
        // Listed ones are judged below, by their last entry.
        if !seen.contains_key(key.as_str()) && (under_deleted(key) || from_start) {
            names.insert(note_name(display));
            changes.insert(key.clone(), None);
        }
    }
    for (&key, &(display, at)) in seen {
        let display = display.filter(|_| !deleted_after(key, at));
        let was = known.get(key).map(String::as_str);
        if display == was {
            continue;
        }
        names.extend(display.or(was).map(note_name));
        if display.is_some() || was.is_some() {
            changes.insert(key.to_owned(), display.map(str::to_owned));
        }
    }
    (changes, names)
}

/// The recorded notes whose wikilinks mention a note that appears or goes away in the listing
/// (a note listed that has no record, a recorded note deleted, or under a deleted folder), or
/// one of the names in `moved` (attachments that appear, go away or move); and whether any
/// name moved at all.
fn relinked<'r>(
    records: &'r HashMap<String, FileRecord>,
    notes: &HashMap<&str, (NoteSeen, usize)>,
    moved: HashSet<String>,
    deleted_after: &impl Fn(&str, usize) -> bool,
    record: &impl Fn(&str) -> Option<&'r FileRecord>,
) -> (HashSet<&'r str>, bool) {
    let mut names = moved;
    for (key, (seen, at)) in notes {
        let known = record(key);
        let display = match seen {
            NoteSeen::File { display, .. } if !deleted_after(key, *at) => {
                if known.is_some() {
                    continue;
                }
                Some(display.clone())
            }
            NoteSeen::File { .. } | NoteSeen::Deleted(_) if known.is_none() => continue,
            NoteSeen::File { .. } => None,
            NoteSeen::Deleted(display) => display.clone(),
        };
        let display = display
            .or_else(|| known.map(|known| NotePath::from_record(key, known).display))
            .unwrap_or_else(|| (*key).to_owned());
        names.insert(note_name(&display));
    }
    for (key, known) in records {
        if record(key).is_none() {
            names.insert(note_name(&NotePath::from_record(key, known).display));
        }
    }
    if names.is_empty() {
        return (HashSet::new(), false);
    }
    let linkers = records
        .iter()
        .filter(|(key, known)| {
            record(key).is_some() && known.links.iter().any(|name| names.contains(name))
        })
        .map(|(key, _)| key.as_str())
        .collect();
    (linkers, true)
}

/// The note is gone: its record and what the account page says of it go too, and its page if
/// that is still there and still markdrop's.
fn remove(key: &str, record: Option<&FileRecord>, page: Option<&PageSeen>) -> Step {
    let note = match record {
        Some(record) => NotePath::from_record(key, record),
        None => NotePath { display: key.to_owned(), key: key.to_owned() },
    };
    let page_left = !matches!(page, Some(PageSeen::Deleted));
    Step::Direct(Direct::Remove { note, record: record.filter(|_| page_left).cloned() })
}

/// What [`judge`] looks at for a note that exists.
struct Judged<'a> {
    note: NotePath,
    record: Option<&'a FileRecord>,
    /// What the listing says of its page.
    page: Option<&'a PageSeen>,
    /// Its content changed since it was last converted.
    changed: bool,
    /// A retry is due: an earlier try failed, maybe before it could tell whose the page is.
    retry: bool,
    /// Its wikilinks may resolve differently now: convert it whatever its content.
    relink: bool,
    /// The listing shows every file, so a page it does not show is not there.
    from_start: bool,
}

/// What to do about a note that exists.
fn judge(judged: Judged<'_>, size: u64) -> Option<Step> {
    let Judged { note, record, page, changed, retry, relink, from_start } = judged;
    let changed = changed || retry;
    let html = record.map_or_else(|| note.html(), |record| record.html_path.clone());
    let kept = record.and_then(|record| record.kept_html_hash.clone());
    let keep = |note, html, hash| {
        changed.then_some(Step::Direct(Direct::Keep { note, html, hash, report: true }))
    };
    let (sibling, rewrite) = match (record, page) {
        (_, Some(PageSeen::Deleted)) => (Sibling::Free, true),
        // markdrop's latest page: free to write; if the person had kept the page, putting
        // markdrop's back ends that, and the page is brought up to date.
        (Some(record), Some(PageSeen::File(Some(hash)))) if record.is_ours(hash) => {
            (Sibling::Ours { hash: hash.clone() }, kept.is_some() || relink)
        }
        (_, Some(PageSeen::File(Some(hash)))) if Some(hash) == kept.as_ref() => {
            return keep(note, html, hash.clone());
        }
        (_, Some(PageSeen::File(hash))) => {
            (Sibling::Unknown { hash: hash.clone().unwrap_or_default() }, true)
        }
        // Not listed in a listing of every file: there is no page.
        (_, None) if from_start => (Sibling::Free, true),
        (Some(record), None) => match kept {
            Some(hash) => return keep(note, html, hash),
            // An earlier try may have failed before it could tell whose the page is: look.
            None if retry => (Sibling::Unlisted, true),
            // Unlisted in an incremental listing, the page is as recorded: markdrop's, written
            // only if the new rendering differs. Not while an upload may have landed unrecorded.
            None if relink
                && record.pending_html_hash.is_none()
                && !record.html_hash.is_empty() =>
            {
                (Sibling::Ours { hash: record.html_hash.clone() }, true)
            }
            None if relink => (Sibling::Free, true),
            None => (Sibling::Free, false),
        },
        (None, None) => (Sibling::Unlisted, false),
    };
    if !changed && !rewrite {
        return None;
    }
    let last_hash = if rewrite { None } else { record.map(|record| record.source_hash.clone()) };
    let ours = record.map_or_else(Vec::new, |record| {
        [Some(&record.html_hash), record.pending_html_hash.as_ref()]
            .into_iter()
            .flatten()
            .filter(|hash| !hash.is_empty())
            .cloned()
            .collect()
    });
    Some(Step::Convert(Conversion { note, html, last_hash, sibling, ours, size }))
}

pub(super) fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::dropbox::{DeletedMetadata, FileMetadata, FolderMetadata};

    const CAP: u64 = 10 * 1024 * 1024;

    /// A file as a listing shows it (also for the other modules' tests of listings).
    pub(in crate::sync) fn file(display: &str, hash: &str) -> Metadata {
        Metadata::File(FileMetadata {
            name: display.rsplit('/').next().unwrap().to_owned(),
            id: format!("id:{display}"),
            path_lower: Some(display.to_lowercase()),
            path_display: Some(display.to_owned()),
            rev: "0123456789".to_owned(),
            size: 10,
            server_modified: "2026-11-27T10:00:00Z".to_owned(),
            content_hash: Some(hash.to_owned()),
            is_downloadable: true,
        })
    }

    /// A deletion as a listing shows it.
    pub(in crate::sync) fn deleted(display: &str) -> Metadata {
        Metadata::Deleted(DeletedMetadata {
            name: display.rsplit('/').next().unwrap().to_owned(),
            path_lower: Some(display.to_lowercase()),
            path_display: Some(display.to_owned()),
        })
    }

    fn record(source_hash: &str) -> FileRecord {
        FileRecord {
            source_hash: source_hash.to_owned(),
            html_path: "/a.html".to_owned(),
            html_hash: "ours".to_owned(),
            pending_html_hash: None,
            kept_html_hash: None,
            links: Vec::new(),
        }
    }

    fn note(display: &str) -> NotePath {
        NotePath { display: display.to_owned(), key: display.to_lowercase() }
    }

    /// A conversion of a note without a record.
    fn convert(display: &str, last_hash: Option<&str>, sibling: Sibling) -> Step {
        let note = note(display);
        Step::Convert(Conversion {
            html: note.html(),
            note,
            last_hash: last_hash.map(str::to_owned),
            sibling,
            ours: vec![],
            size: 10,
        })
    }

    fn retry(display: &str, removal: bool) -> (String, RetryDue) {
        (display.to_lowercase(), RetryDue { display: display.to_owned(), removal })
    }

    /// A listing from the start, no retries due.
    fn plan_from_start(entries: &[Metadata], records: &HashMap<String, FileRecord>) -> Plan {
        plan(entries, true, records, &HashMap::new(), &HashMap::new(), &Resettled::default(), CAP)
    }

    /// An incremental listing (from a cursor), no retries due.
    fn plan_of(entries: &[Metadata], records: &[(&str, FileRecord)]) -> Plan {
        let records = records.iter().map(|(k, r)| ((*k).to_owned(), r.clone())).collect();
        plan(entries, false, &records, &HashMap::new(), &HashMap::new(), &Resettled::default(), CAP)
    }

    #[test]
    fn notes_under_resettled_folders_are_converted_again_their_pages_written_if_different() {
        let mut work = record("1");
        work.html_path = "/Work/Plans.html".to_owned();
        let mut kept = record("2");
        kept.html_path = "/Work/Kept.html".to_owned();
        kept.kept_html_hash = Some("theirs".to_owned());
        let records: HashMap<String, FileRecord> = [
            ("/work/plans.md".to_owned(), work),
            ("/work/kept.md".to_owned(), kept),
            ("/home.md".to_owned(), record("3")),
        ]
        .into();
        let resettled = Resettled { folders: vec!["/work/".to_owned()], exclusions: false };
        let plan = plan(&[], false, &records, &HashMap::new(), &HashMap::new(), &resettled, CAP);
        assert!(plan.resettled && plan.needs_every_record());
        assert_eq!(
            plan.steps,
            [Step::Convert(Conversion {
                note: note("/Work/Plans.md"),
                html: "/Work/Plans.html".to_owned(),
                last_hash: None,
                sibling: Sibling::Ours { hash: "ours".to_owned() },
                ours: vec!["ours".to_owned()],
                size: 0,
            })],
            "the person's page stays theirs, and notes elsewhere are left alone"
        );
    }

    #[test]
    fn markdown_is_any_case_of_dot_md_with_a_name_before_it() {
        for name in ["a.md", "ReadMe.MD", "x.Md", "📝.md", "a.b.md"] {
            assert!(is_markdown(name), "{name}");
        }
        for name in [".md", "md", "a.markdown", "a.html", "a.mdx", "a.md.txt", "é"] {
            assert!(!is_markdown(name), "{name}");
        }
    }

    #[test]
    fn the_page_keeps_the_display_casing_of_folder_and_stem() {
        assert_eq!(note("/Notes/ReadMe.md").html(), "/Notes/ReadMe.html");
        assert_eq!(note("/Notes/ReadMe.MD").html(), "/Notes/ReadMe.html");
        assert_eq!(note("/📝 Journal/Café.md").html(), "/📝 Journal/Café.html");
        assert_eq!(note("/📝 Journal/Café.md").stem(), "Café");
        assert_eq!(note_key_of_page("/notes/readme.html").as_deref(), Some("/notes/readme.md"));
        assert_eq!(note_key_of_page("/notes/.html"), None);
        assert_eq!(note_key_of_page("/notes/readme.htm"), None);
    }

    #[test]
    fn changed_notes_are_converted_and_everything_else_is_left_alone() {
        let entries = [
            file("/Notes/ReadMe.md", "new"),
            file("/same.md", "old"),
            file("/cat.jpg", "c"),
            Metadata::Folder(FolderMetadata {
                name: "Notes".into(),
                id: "id:n".into(),
                path_lower: Some("/notes".into()),
                path_display: Some("/Notes".into()),
            }),
            Metadata::Other,
        ];
        let records = [("/notes/readme.md", record("older")), ("/same.md", record("old"))];
        let steps = plan_of(&entries, &records).steps;
        let Step::Convert(conversion) = &steps[0] else { panic!("{steps:?}") };
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert_eq!(conversion.note, note("/Notes/ReadMe.md"));
        assert_eq!(conversion.html, "/a.html", "the page the record knows");
        assert_eq!(conversion.last_hash.as_deref(), Some("older"));
        assert_eq!(conversion.sibling, Sibling::Free);
    }

    #[test]
    fn a_note_without_a_content_hash_is_converted_since_nothing_says_it_is_unchanged() {
        let Metadata::File(mut unhashed) = file("/a.md", "x") else { unreachable!() };
        unhashed.content_hash = None;
        let steps = plan_of(&[Metadata::File(unhashed)], &[("/a.md", record("x"))]).steps;
        assert!(matches!(&steps[..], [Step::Convert(c)] if c.last_hash.as_deref() == Some("x")));
    }

    #[test]
    fn a_new_note_s_page_is_looked_up_unless_the_listing_shows_every_file() {
        let entries = [file("/new.md", "n")];
        assert_eq!(plan_of(&entries, &[]).steps, vec![convert("/new.md", None, Sibling::Unlisted)]);
        let from_start = plan_from_start(&entries, &HashMap::new());
        assert_eq!(from_start.steps, vec![convert("/new.md", None, Sibling::Free)]);
    }

    #[test]
    fn a_page_the_record_does_not_know_is_read_before_it_is_written_wherever_it_is_listed() {
        // A folder linked for the first time: the page may be listed before or after its note,
        // on another page of the listing even.
        for entries in [
            vec![file("/q3.html", "hers"), file("/q3.md", "n")],
            vec![file("/q3.md", "n"), file("/other.md", "o"), file("/Q3.HTML", "hers")],
        ] {
            let steps = plan_from_start(&entries, &HashMap::new()).steps;
            assert_eq!(
                steps[0],
                convert("/q3.md", None, Sibling::Unknown { hash: "hers".into() }),
                "{entries:?}"
            );
        }
    }

    #[test]
    fn a_changed_note_whose_page_is_listed_as_markdrops_is_written_unless_it_is_current() {
        let steps =
            plan_of(&[file("/a.md", "2"), file("/a.html", "ours")], &[("/a.md", record("1"))])
                .steps;
        assert_eq!(
            steps,
            vec![Step::Convert(Conversion {
                note: note("/a.md"),
                html: "/a.html".into(),
                last_hash: Some("1".into()),
                sibling: Sibling::Ours { hash: "ours".into() },
                ours: vec!["ours".into()],
                size: 10,
            })]
        );
    }

    #[test]
    fn markdrops_own_page_in_the_listing_changes_nothing() {
        let mut pending = record("1");
        pending.pending_html_hash = Some("landed".into());
        let entries = [file("/a.html", "ours"), file("/b.html", "landed")];
        let records = [("/a.md", record("1")), ("/b.md", pending)];
        assert_eq!(plan_of(&entries, &records).steps, vec![]);
    }

    #[test]
    fn a_page_changed_behind_markdrops_back_is_read_even_if_its_note_did_not_change() {
        // A person's edit, or one of markdrop's older pages landing late: the seal tells.
        let steps = plan_of(&[file("/a.html", "edited")], &[("/a.md", record("1"))]).steps;
        assert_eq!(
            steps,
            vec![Step::Convert(Conversion {
                note: note("/a.md"),
                html: "/a.html".into(),
                last_hash: None,
                sibling: Sibling::Unknown { hash: "edited".into() },
                ours: vec!["ours".into()],
                size: 0,
            })]
        );
    }

    #[test]
    fn a_kept_page_is_never_written_and_its_note_s_changes_are_reported() {
        let mut kept = record("1");
        kept.kept_html_hash = Some("hers".into());
        let records = [("/a.md", kept.clone())];
        assert_eq!(plan_of(&[file("/a.md", "1")], &records).steps, vec![], "nothing new");
        let keep = Step::Direct(Direct::Keep {
            note: note("/a.md"),
            html: "/a.html".into(),
            hash: "hers".into(),
            report: true,
        });
        assert_eq!(plan_of(&[file("/a.md", "2")], &records).steps, vec![keep.clone()]);
        // Listed again unchanged (after a reset, say): still hers.
        let entries = [file("/a.md", "2"), file("/a.html", "hers")];
        assert_eq!(plan_of(&entries, &records).steps, vec![keep]);
    }

    #[test]
    fn a_kept_page_deleted_renamed_or_put_back_is_written_again() {
        let mut kept = record("1");
        kept.kept_html_hash = Some("hers".into());
        let records = [("/a.md", kept)];
        for entries in [
            vec![deleted("/a.html")],
            vec![deleted("/a.html"), file("/a (mine).html", "hers")],
            vec![file("/a.html", "ours")],
        ] {
            let steps = plan_of(&entries, &records).steps;
            assert!(
                matches!(&steps[..], [Step::Convert(c)] if c.last_hash.is_none()
                    && matches!(c.sibling, Sibling::Free | Sibling::Ours { .. })),
                "{entries:?}: {steps:?}"
            );
        }
    }

    #[test]
    fn a_deleted_page_of_a_note_that_stays_is_written_again() {
        let steps = plan_of(&[deleted("/a.html")], &[("/a.md", record("1"))]).steps;
        assert!(matches!(&steps[..], [Step::Convert(c)] if c.last_hash.is_none()), "{steps:?}");
    }

    #[test]
    fn oversized_and_undownloadable_notes_are_skipped_with_a_reason() {
        let Metadata::File(mut big) = file("/big.md", "b") else { unreachable!() };
        big.size = 23 * 512 * 1024;
        let Metadata::File(mut doc) = file("/doc.md", "d") else { unreachable!() };
        doc.is_downloadable = false;
        let steps = plan_of(&[Metadata::File(big), Metadata::File(doc)], &[]).steps;
        assert_eq!(
            steps,
            vec![
                Step::Direct(Direct::Skip {
                    note: note("/big.md"),
                    reason: "it is 11.5 MiB, over the 10 MiB limit".into()
                }),
                Step::Direct(Direct::Skip {
                    note: note("/doc.md"),
                    reason: "Dropbox cannot download it".into()
                }),
            ]
        );
    }

    #[test]
    fn a_deleted_note_removes_its_page_only_when_there_is_one_to_remove() {
        let b = FileRecord { html_path: "/b.html".into(), ..record("y") };
        let records = [("/a.md", record("x")), ("/b.md", b)];
        let entries =
            [deleted("/A.md"), deleted("/b.md"), deleted("/b.html"), deleted("/never.md")];
        let plan = plan_of(&entries, &records);
        assert_eq!(
            plan.steps,
            vec![
                Step::Direct(Direct::Remove { note: note("/a.md"), record: Some(record("x")) }),
                // Its page went first: nothing to remove, only the record to forget.
                Step::Direct(Direct::Remove { note: note("/b.md"), record: None }),
                Step::Direct(Direct::Remove { note: note("/never.md"), record: None }),
            ]
        );
        // Either might have been a folder named like a note.
        assert_eq!(plan.forget, ["/a.md/", "/b.md/", "/b.html/", "/never.md/"]);
    }

    #[test]
    fn a_deleted_folder_takes_the_notes_and_records_under_it_along() {
        let records = [("/old/a.md", record("1")), ("/old/deep/b.md", record("2"))];
        let entries = [file("/old/deep/b.md", "3"), deleted("/Old"), file("/old/c.md", "4")];
        let plan = plan_of(&entries, &records);
        assert_eq!(plan.forget, ["/old/"]);
        // b went with its folder (its page too); c is a new note in a folder made again.
        assert_eq!(
            plan.steps,
            vec![
                Step::Direct(Direct::Remove { note: note("/old/deep/b.md"), record: None }),
                convert("/old/c.md", None, Sibling::Unlisted),
            ]
        );
    }

    #[test]
    fn a_note_edited_deleted_and_made_again_in_one_listing_is_judged_as_it_ends() {
        let entries = [file("/a.md", "1"), deleted("/a.md"), file("/a.md", "2")];
        let steps = plan_of(&entries, &[("/a.md", record("0"))]).steps;
        assert!(
            matches!(&steps[..], [Step::Convert(c)] if c.last_hash.as_deref() == Some("0")),
            "{steps:?}"
        );
    }

    #[test]
    fn a_due_retry_looks_at_the_page_again_since_the_failed_try_may_not_have() {
        let retries = HashMap::from([retry("/Stuck.md", false), retry("/Known.md", false)]);
        let known = FileRecord { html_path: "/Known.html".into(), ..record("1") };
        let records = HashMap::from([("/known.md".to_owned(), known)]);
        let steps =
            plan(&[], false, &records, &retries, &HashMap::new(), &Resettled::default(), CAP).steps;
        assert_eq!(
            steps,
            vec![
                Step::Convert(Conversion {
                    note: note("/Known.md"),
                    html: "/Known.html".into(),
                    last_hash: None,
                    sibling: Sibling::Unlisted,
                    ours: vec!["ours".into()],
                    size: 0,
                }),
                Step::Convert(Conversion {
                    note: note("/Stuck.md"),
                    html: "/Stuck.html".into(),
                    last_hash: None,
                    sibling: Sibling::Unlisted,
                    ours: vec![],
                    size: 0,
                }),
            ]
        );
    }

    #[test]
    fn a_due_retry_of_a_removal_removes_again() {
        let b = FileRecord { html_path: "/b.html".into(), ..record("1") };
        let retries = HashMap::from([retry("/b.md", true)]);
        let records = HashMap::from([("/b.md".to_owned(), b.clone())]);
        let steps =
            plan(&[], false, &records, &retries, &HashMap::new(), &Resettled::default(), CAP).steps;
        assert_eq!(
            steps,
            vec![Step::Direct(Direct::Remove { note: note("/b.md"), record: Some(b) })]
        );
    }

    #[test]
    fn in_a_listing_from_the_start_a_page_not_listed_is_not_there_and_is_written() {
        let mut kept = record("1");
        kept.kept_html_hash = Some("hers".into());
        for record in [record("1"), kept] {
            let records = HashMap::from([("/a.md".to_owned(), record)]);
            let steps = plan_from_start(&[file("/a.md", "1")], &records).steps;
            assert!(
                matches!(&steps[..], [Step::Convert(c)] if c.last_hash.is_none() && c.sibling == Sibling::Free),
                "{steps:?}"
            );
        }
    }

    #[test]
    fn a_folder_deleted_after_a_note_in_it_was_listed_takes_the_note_along_but_not_one_made_after()
    {
        let entries = [file("/f/a.md", "1"), deleted("/f"), file("/f/b.md", "2")];
        let steps = plan_of(&entries, &[]).steps;
        assert_eq!(
            steps,
            vec![
                Step::Direct(Direct::Remove { note: note("/f/a.md"), record: None }),
                convert("/f/b.md", None, Sibling::Unlisted),
            ]
        );
    }

    #[test]
    fn the_records_asked_for_are_the_listed_notes_the_listed_pages_notes_and_the_retries() {
        let entries =
            [file("/a.md", "1"), file("/B.html", "2"), deleted("/c.md"), file("/d.txt", "3")];
        assert_eq!(
            record_keys(&entries, ["/e.md"].into_iter()),
            ["/a.md", "/b.md", "/c.md", "/e.md"]
        );
    }

    /// The notes of `records` by lower-case path, as `Store::note_paths` keeps them.
    fn notes_of(records: &[(String, FileRecord)]) -> HashMap<String, String> {
        records.iter().map(|(key, record)| (key.clone(), record.note_display(key))).collect()
    }

    /// The record of a note at `display` whose wikilinks mention `links`.
    fn linker(display: &str, links: &[&str]) -> (String, FileRecord) {
        let html_path = format!("{}.html", &display[..display.len() - 3]);
        let links = links.iter().map(|name| (*name).to_owned()).collect();
        (display.to_lowercase(), FileRecord { html_path, links, ..record("1") })
    }

    /// `display`'s page converted again for its links: the page is markdrop's as recorded.
    fn relinked(display: &str) -> Step {
        forced(display, 0)
    }

    /// `display` converted whatever its content (listed with `size`), onto markdrop's page.
    fn forced(display: &str, size: u64) -> Step {
        let note = note(display);
        Step::Convert(Conversion {
            html: note.html(),
            note,
            last_hash: None,
            sibling: Sibling::Ours { hash: "ours".into() },
            ours: vec!["ours".into()],
            size,
        })
    }

    fn plan_with(entries: &[Metadata], records: &[(String, FileRecord)]) -> Plan {
        let records = records.iter().cloned().collect();
        plan(entries, false, &records, &HashMap::new(), &HashMap::new(), &Resettled::default(), CAP)
    }

    #[test]
    fn a_new_note_sends_the_notes_whose_wikilinks_mention_its_name_to_be_converted_again() {
        let records =
            [linker("/a.md", &["trip"]), linker("/b.md", &["other"]), linker("/c.md", &[])];
        let steps = plan_with(&[file("/Notes/Trip.md", "t")], &records).steps;
        assert_eq!(
            steps,
            vec![convert("/Notes/Trip.md", None, Sibling::Unlisted), relinked("/a.md")]
        );
    }

    #[test]
    fn a_deleted_or_renamed_note_sends_its_linkers_to_be_converted_again() {
        let records = [
            linker("/Trip.md", &[]),
            linker("/a.md", &["trip"]),
            linker("/b.md", &["journey"]),
            linker("/c.md", &["elsewhere"]),
        ];
        let steps = plan_with(&[deleted("/Trip.md")], &records).steps;
        let removed = Step::Direct(Direct::Remove {
            note: note("/Trip.md"),
            record: Some(records[0].1.clone()),
        });
        assert_eq!(steps, vec![removed.clone(), relinked("/a.md")]);
        let renamed = [deleted("/Trip.md"), file("/Journey.md", "t")];
        let steps = plan_with(&renamed, &records).steps;
        assert_eq!(
            steps,
            vec![
                removed,
                convert("/Journey.md", None, Sibling::Unlisted),
                relinked("/a.md"),
                relinked("/b.md"),
            ]
        );
    }

    #[test]
    fn a_note_gone_with_its_folder_sends_its_linkers_to_be_converted_again() {
        let records =
            [linker("/f/Trip.md", &[]), linker("/a.md", &["trip"]), linker("/f/b.md", &["trip"])];
        let steps = plan_with(&[deleted("/f")], &records).steps;
        assert_eq!(steps, vec![relinked("/a.md")]);
    }

    #[test]
    fn a_linker_whose_page_is_the_persons_is_not_written_for_its_links() {
        let (key, mut kept) = linker("/a.md", &["trip"]);
        kept.kept_html_hash = Some("hers".into());
        let records = [(key, kept)];
        assert_eq!(
            plan_with(&[file("/Trip.md", "t")], &records).steps,
            vec![convert("/Trip.md", None, Sibling::Unlisted)]
        );
        // Listed with the person's page, it is still hers.
        let entries = [file("/Trip.md", "t"), file("/a.html", "hers")];
        assert_eq!(plan_with(&entries, &records).steps[1..], []);
    }

    #[test]
    fn a_linker_in_the_listing_is_converted_again_whatever_its_content_and_a_changed_one_once() {
        let records = [linker("/a.md", &["trip"]), linker("/b.md", &["trip"])];
        // a's page is markdrop's own upload coming back; b changed.
        let entries = [file("/a.html", "ours"), file("/b.md", "2"), file("/Trip.md", "t")];
        let steps = plan_with(&entries, &records).steps;
        assert_eq!(
            steps,
            vec![
                forced("/a.md", 0),
                forced("/b.md", 10),
                convert("/Trip.md", None, Sibling::Unlisted),
            ]
        );
    }

    #[test]
    fn an_edited_note_changes_no_other_page_and_an_upload_in_flight_is_looked_up() {
        let records = [linker("/Trip.md", &[]), linker("/a.md", &["trip"])];
        let steps = plan_with(&[file("/Trip.md", "2")], &records).steps;
        assert_eq!(steps.len(), 1, "{steps:?}");
        let (key, mut pending) = linker("/a.md", &["trip"]);
        pending.pending_html_hash = Some("landed?".into());
        let steps = plan_with(&[file("/Trip.md", "t")], &[(key, pending)]).steps;
        assert!(
            matches!(&steps[1], Step::Convert(c) if c.sibling == Sibling::Free && c.last_hash.is_none()),
            "{steps:?}"
        );
    }

    #[test]
    fn the_index_is_every_note_the_pass_leaves_and_every_record_is_needed_when_names_move() {
        let records = [linker("/Old.md", &[]), linker("/f/x.md", &[]), linker("/Keep.md", &[])];
        let entries = [deleted("/Old.md"), deleted("/f"), file("/New.md", "n")];
        let plan = plan_with(&entries, &records);
        assert!(plan.needs_every_record() && plan.needs_index());
        let index = plan.index(&notes_of(&records), &HashMap::new(), |_| true);
        assert_eq!(index.len(), 2);
        assert_eq!(index.resolve("/a.md", "keep"), Some("/Keep.md"));
        assert_eq!(index.resolve("/a.md", "new"), Some("/New.md"));
        assert_eq!(index.resolve("/a.md", "old"), None);
        // markdrop's own upload coming back: nothing to read at all.
        let own = plan_of(&[file("/a.html", "ours")], &[("/a.md", record("1"))]);
        assert!(!own.needs_every_record() && !own.needs_index());
        // An edit of a note already recorded renders (every note's path), but no name moved
        // (no record's links).
        let records = [linker("/a.md", &["b"]), linker("/b.md", &[])];
        let edit = plan_with(&[file("/b.md", "2")], &records);
        assert!(edit.needs_index() && !edit.needs_every_record(), "{edit:?}");
    }

    fn plan_knowing(
        entries: &[Metadata],
        records: &[(String, FileRecord)],
        attachments: &[&str],
        from_start: bool,
    ) -> Plan {
        let records = records.iter().cloned().collect();
        let attachments = attachments
            .iter()
            .map(|display| (display.to_lowercase(), (*display).to_owned()))
            .collect();
        plan(
            entries,
            from_start,
            &records,
            &HashMap::new(),
            &attachments,
            &Resettled::default(),
            CAP,
        )
    }

    #[test]
    fn an_attachment_that_appears_is_recorded_and_sends_the_notes_naming_it_to_be_converted_again()
    {
        let records = [linker("/a.md", &["pic.png"]), linker("/b.md", &["pic"])];
        let plan =
            plan_knowing(&[file("/Media/Pic.PNG", "p"), file("/x.zip", "z")], &records, &[], false);
        assert_eq!(
            plan.attachments,
            BTreeMap::from([("/media/pic.png".into(), Some("/Media/Pic.PNG".into()))])
        );
        assert_eq!(plan.steps, vec![relinked("/a.md")]);
        assert!(plan.needs_every_record(), "its linkers may be any note");
        // Listed again unchanged (its content edited), it changes nothing.
        let plan =
            plan_knowing(&[file("/Media/Pic.PNG", "q")], &records, &["/Media/Pic.PNG"], false);
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn a_deleted_attachment_is_dropped_and_one_never_recorded_is_no_change() {
        let records = [linker("/a.md", &["pic.png"])];
        let plan = plan_knowing(&[deleted("/Media/pic.png")], &records, &["/Media/Pic.png"], false);
        assert_eq!(plan.attachments, BTreeMap::from([("/media/pic.png".into(), None)]));
        assert_eq!(plan.steps, vec![relinked("/a.md")]);
        let plan =
            plan_knowing(&[deleted("/Media/other.png")], &records, &["/Media/Pic.png"], false);
        assert!(plan.attachments.is_empty() && plan.steps.is_empty(), "{plan:?}");
    }

    #[test]
    fn attachments_go_with_their_folder_unless_listed_after_its_deletion() {
        let records = [linker("/a.md", &["pic.png"]), linker("/b.md", &["new.png"])];
        let entries = [deleted("/media"), file("/Media/new.png", "n")];
        let known = ["/Media/pic.png", "/Media/new.png"];
        let plan = plan_knowing(&entries, &records, &known, false);
        assert_eq!(plan.forget, ["/media/"]);
        assert_eq!(
            plan.attachments,
            BTreeMap::from([("/media/pic.png".into(), None)]),
            "dropped by name; the one listed after the deletion stays"
        );
        assert_eq!(plan.steps, vec![relinked("/a.md")], "only pic.png's linkers");
        let known = known.map(|display| (display.to_lowercase(), display.to_owned())).into();
        let index = plan.index(&notes_of(&records), &known, |_| true);
        assert_eq!(index.resolve("/a.md", "pic.png"), None);
        assert_eq!(index.resolve("/a.md", "new.png"), Some("/Media/new.png"));
    }

    #[test]
    fn a_listing_from_the_start_drops_the_attachments_it_does_not_show() {
        let entries = [file("/kept.png", "k")];
        let plan = plan_knowing(&entries, &[], &["/kept.png", "/gone.pdf"], true);
        assert_eq!(plan.attachments, BTreeMap::from([("/gone.pdf".into(), None)]));
    }

    #[test]
    fn the_index_holds_the_recorded_attachments_with_the_plans_changes() {
        let plan = plan_knowing(
            &[file("/b/new.pdf", "n"), deleted("/a/old.png")],
            &[],
            &["/a/old.png", "/a/pic.png"],
            false,
        );
        let known: HashMap<String, String> =
            ["/a/old.png", "/a/pic.png"].iter().map(|p| (p.to_string(), p.to_string())).collect();
        let index = plan.index(&HashMap::new(), &known, |_| true);
        assert_eq!(index.len(), 2);
        assert_eq!(index.resolve("/n.md", "pic.png"), Some("/a/pic.png"));
        assert_eq!(index.resolve("/n.md", "new.pdf"), Some("/b/new.pdf"));
        assert_eq!(index.resolve("/n.md", "old.png"), None);
    }
}
