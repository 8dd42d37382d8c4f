//! The folder backing: a directory on disk that *is* one account's Dropbox, for `markdrop demo`
//! and `markdrop emulator --dir`. A person saving a file in the folder is a change in Dropbox
//! (journal entry, webhook); markdrop's uploads through the API appear in the folder.
//!
//! Both sides are compared with the state last synced, on a short poll rather than through
//! file-system events: it needs no platform-specific watcher, sees changes made while nothing
//! watched, and a demo folder is small enough that a scan costs nothing. A file modified within
//! the last [`SETTLE`] is left for the next scan, so an editor's save burst (truncate, write,
//! rename) becomes one change rather than several.
//!
//! Only files are mirrored; folders exist as their files' parents. Hidden names (`.DS_Store`,
//! `.notes.md.swp`) and backups ending in `~` are left alone: they are editors' business.
//!
//! What Dropbox could not hold, or what would take the mirror out of the folder, is left alone
//! and reported ([`FolderProblem`]: a warning in the log when it appears, a line when it is
//! resolved, and [`FolderMirror::problems`]); its path is *held*: neither imported, deleted nor
//! written, on either side, so the account keeps what it had until the person sorts it out.
//!
//! - Names that differ only in case (`Notes.md` and `notes.md`, or two such folders): Dropbox is
//!   case-insensitive and can hold one of them only; mirroring either would hide the other.
//! - Symlinks are followed only to a file inside the folder. One that leaves the folder would
//!   have the demo read, overwrite or delete files the person never put in their "Dropbox"; a
//!   symlinked folder, even inside, would show its files twice and can loop. Writes and
//!   deletions check again that no folder on the way is a symlink, and reads that the file is
//!   still inside, since the folder can change between a scan and the next step.
//! - Names with `\` or `:` (so any drive prefix such as `C:`), from either side: on Windows they
//!   would reach outside the folder or a stream of another file, and Dropbox refuses them there.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::{Emulator, EmulatorError};

/// How long a file must stay untouched before a scan takes it.
pub const SETTLE: Duration = Duration::from_millis(200);

/// How often both sides are compared.
pub const POLL: Duration = Duration::from_millis(150);

/// Something the mirror leaves alone and reports, by Dropbox path (`/Notes/a.md`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FolderProblem {
    /// Two or more names in one folder that differ only in case.
    CaseCollision { paths: Vec<String> },
    /// A symlink the mirror does not follow.
    Symlink { path: String, why: SymlinkProblem },
    /// A name with `\` or `:`, in the folder or in the account.
    UnusableName { path: String },
}

/// Why a symlink is not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SymlinkProblem {
    /// Its target is outside the folder.
    LeavesFolder,
    /// Its target is a folder (inside the folder).
    Folder,
    /// Its target does not exist.
    Broken,
}

impl fmt::Display for FolderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FolderProblem::CaseCollision { paths } => write!(
                f,
                "{} differ only in case; Dropbox can hold only one of them, so none is mirrored \
                 until all but one are renamed",
                paths.join(" and ")
            ),
            FolderProblem::Symlink { path, why } => {
                let why = match why {
                    SymlinkProblem::LeavesFolder => "points outside the folder",
                    SymlinkProblem::Folder => "points to a folder",
                    SymlinkProblem::Broken => "points to nothing",
                };
                write!(f, "{path} is a symlink that {why}; it is not followed")
            }
            FolderProblem::UnusableName { path } => write!(
                f,
                "{path} has `\\` or `:` in a name, which Dropbox refuses on Windows; it is not \
                 mirrored"
            ),
        }
    }
}

/// A running mirror; dropping it (or [`FolderMirror::stop`]) ends the polling.
pub struct FolderMirror {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    problems: Arc<Mutex<Vec<FolderProblem>>>,
}

impl FolderMirror {
    /// What the last comparison left alone, sorted.
    pub fn problems(&self) -> Vec<FolderProblem> {
        self.problems.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FolderMirror {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// What was last seen identical on both sides, per lowercased path.
#[derive(Debug, Clone, PartialEq)]
struct Synced {
    rev: String,
    disk: DiskStamp,
}

/// Enough of a file's metadata to notice that it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DiskStamp {
    len: u64,
    modified: SystemTime,
}

struct DiskFile {
    /// `/Notes/ReadMe.md`
    dropbox_path: String,
    stamp: DiskStamp,
}

struct Mirror {
    emulator: Emulator,
    account_id: String,
    dir: PathBuf,
    synced: HashMap<String, Synced>,
    /// The problems of the last comparison, shared with [`FolderMirror::problems`].
    problems: Arc<Mutex<Vec<FolderProblem>>>,
}

/// What a scan of the folder found.
#[derive(Default)]
struct Scan {
    /// Every mirrored file, by lowercased Dropbox path.
    files: HashMap<String, DiskFile>,
    /// Lowercased paths (and everything below them) left alone, and why.
    held: Vec<(String, FolderProblem)>,
}

/// Whether `lower` is one of the `held` paths or below one.
fn is_held(held: &[(String, FolderProblem)], lower: &str) -> bool {
    held.iter().any(|(prefix, _)| {
        lower
            .strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

impl Emulator {
    /// Makes `dir` (created if missing) the account's Dropbox: what the folder holds is imported
    /// now, files only in the account are written out, and from then on every change on either
    /// side shows on the other within a fraction of a second.
    pub fn mirror_folder(&self, account_id: &str, dir: &Path) -> io::Result<FolderMirror> {
        std::fs::create_dir_all(dir)?;
        let mut mirror = Mirror {
            emulator: self.clone(),
            account_id: account_id.to_owned(),
            dir: dir.canonicalize()?,
            synced: HashMap::new(),
            problems: Arc::default(),
        };
        let problems = mirror.problems.clone();
        // The first pass takes every file, settled or not: nobody is mid-save at start-up.
        mirror.sync(Duration::ZERO)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("emulator-folder".into()).spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(POLL) {
                if let Err(error) = mirror.sync(SETTLE) {
                    tracing::warn!(%error, dir = %mirror.dir.display(), "folder sync failed; retrying");
                }
            }
        })?;
        Ok(FolderMirror { stop: Some(stop), thread: Some(thread), problems })
    }
}

impl Mirror {
    /// One comparison of the folder, the account and the last synced state.
    fn sync(&mut self, settle: Duration) -> io::Result<()> {
        let Scan { files: disk, mut held } = self.scan()?;
        let account: HashMap<String, (String, String)> = self
            .emulator
            .file_revs(&self.account_id)
            .into_iter()
            .map(|(lower, display, rev)| (lower, (display, rev)))
            .collect();
        for (lower, (display, _)) in &account {
            if display.split('/').any(|name| !name.is_empty() && !is_usable_name(name)) {
                held.push((lower.clone(), FolderProblem::UnusableName { path: display.clone() }));
            }
        }
        self.report(&held);
        let paths: BTreeSet<&String> =
            disk.keys().chain(account.keys()).chain(self.synced.keys()).collect();
        let now = SystemTime::now();
        let mut updates = Vec::new();
        for lower in paths {
            if is_held(&held, lower) {
                continue;
            }
            let synced = self.synced.get(lower);
            let on_disk = disk.get(lower);
            let in_account = account.get(lower);
            let disk_changed = on_disk.map(|file| file.stamp) != synced.map(|s| s.disk);
            let account_changed = in_account.map(|(_, rev)| rev) != synced.map(|s| &s.rev);
            if disk_changed {
                let settling = on_disk.is_some_and(|file| {
                    now.duration_since(file.stamp.modified).unwrap_or_default() < settle
                });
                if settling {
                    continue;
                }
                // The person's edit wins over a change in the account at the same time.
                updates.push(match on_disk {
                    Some(file) => self.import(lower, file)?,
                    None => self.delete_in_account(lower, in_account.map(|(d, _)| d.as_str()))?,
                });
            } else if account_changed {
                updates.push(match in_account {
                    Some((display, _)) => self.export(lower, display)?,
                    None => self.delete_on_disk(lower, on_disk)?,
                });
            }
        }
        for (lower, synced) in updates {
            match synced {
                Some(synced) => self.synced.insert(lower, synced),
                None => self.synced.remove(&lower),
            };
        }
        Ok(())
    }

    /// Logs problems that appeared or went since the last comparison, and shares the list.
    fn report(&self, held: &[(String, FolderProblem)]) {
        let now: BTreeSet<&FolderProblem> = held.iter().map(|(_, problem)| problem).collect();
        let mut shared = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
        for problem in &now {
            if !shared.contains(problem) {
                tracing::warn!(dir = %self.dir.display(), "not mirrored: {problem}");
            }
        }
        for problem in shared.iter() {
            if !now.contains(problem) {
                tracing::info!(dir = %self.dir.display(), "resolved, mirrored again: {problem}");
            }
        }
        *shared = now.into_iter().cloned().collect();
    }

    /// Every mirrored file in the folder, and what is held.
    fn scan(&self) -> io::Result<Scan> {
        let mut scan = Scan::default();
        let mut folders = vec![(self.dir.clone(), String::new())];
        while let Some((folder, parent)) = folders.pop() {
            // Grouped by lowercased name, so names that differ only in case are seen together.
            let mut names: BTreeMap<String, Vec<(String, std::fs::DirEntry)>> = BTreeMap::new();
            for entry in std::fs::read_dir(&folder)? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(name) = name.to_str().filter(|name| is_mirrored(name)) else { continue };
                names.entry(name.to_lowercase()).or_default().push((name.to_owned(), entry));
            }
            for (lower_name, mut entries) in names {
                let lower = format!("{}/{lower_name}", parent.to_lowercase());
                if entries.len() > 1 {
                    let mut paths: Vec<String> =
                        entries.iter().map(|(name, _)| format!("{parent}/{name}")).collect();
                    paths.sort();
                    scan.held.push((lower, FolderProblem::CaseCollision { paths }));
                    continue;
                }
                let Some((name, entry)) = entries.pop() else { continue };
                let dropbox_path = format!("{parent}/{name}");
                if !is_usable_name(&name) {
                    scan.held.push((lower, FolderProblem::UnusableName { path: dropbox_path }));
                    continue;
                }
                let file_type = entry.file_type()?;
                if file_type.is_dir() {
                    folders.push((entry.path(), dropbox_path));
                    continue;
                }
                let metadata = if file_type.is_symlink() {
                    match self.follow(&entry.path()) {
                        Ok(metadata) => metadata,
                        Err(why) => {
                            let problem = FolderProblem::Symlink { path: dropbox_path, why };
                            scan.held.push((lower, problem));
                            continue;
                        }
                    }
                } else if file_type.is_file() {
                    entry.metadata()?
                } else {
                    continue;
                };
                let stamp = DiskStamp { len: metadata.len(), modified: metadata.modified()? };
                scan.files.insert(lower, DiskFile { dropbox_path, stamp });
            }
        }
        Ok(scan)
    }

    /// The metadata of what a symlink points to, if it is a file inside the folder.
    fn follow(&self, link: &Path) -> Result<std::fs::Metadata, SymlinkProblem> {
        let target = link.canonicalize().map_err(|_| SymlinkProblem::Broken)?;
        if !target.starts_with(&self.dir) {
            return Err(SymlinkProblem::LeavesFolder);
        }
        let metadata = std::fs::metadata(&target).map_err(|_| SymlinkProblem::Broken)?;
        if metadata.is_dir() {
            return Err(SymlinkProblem::Folder);
        }
        Ok(metadata)
    }

    fn import(&self, lower: &str, file: &DiskFile) -> io::Result<(String, Option<Synced>)> {
        let on_disk = self.disk_path(&file.dropbox_path);
        // A file swapped for a symlink out of the folder since the scan is not read.
        if !on_disk.canonicalize()?.starts_with(&self.dir) {
            tracing::debug!(path = %file.dropbox_path, "not read: it leads outside the folder now");
            return Ok((lower.to_owned(), self.synced.get(lower).cloned()));
        }
        let content = std::fs::read(on_disk)?;
        match self.emulator.put_file(&self.account_id, &file.dropbox_path, content) {
            Ok(()) => {}
            // A file where the account has a folder (or the reverse): leave both as they are.
            Err(error) => {
                tracing::warn!(%error, path = %file.dropbox_path, "cannot mirror a file");
                return Ok((lower.to_owned(), None));
            }
        }
        let rev = self.rev_of(lower);
        Ok((lower.to_owned(), rev.map(|rev| Synced { rev, disk: file.stamp })))
    }

    fn delete_in_account(
        &self,
        lower: &str,
        path: Option<&str>,
    ) -> io::Result<(String, Option<Synced>)> {
        if let Some(path) = path {
            match self.emulator.delete_path(&self.account_id, path) {
                Ok(()) | Err(EmulatorError::NotFound(_)) => {}
                Err(error) => tracing::warn!(%error, path, "cannot mirror a deletion"),
            }
        }
        Ok((lower.to_owned(), None))
    }

    fn export(&self, lower: &str, display: &str) -> io::Result<(String, Option<Synced>)> {
        let Some(content) = self.emulator.read_file(&self.account_id, display) else {
            return Ok((lower.to_owned(), None));
        };
        let Some(target) = self.writable_path(display)? else {
            return Ok((lower.to_owned(), self.synced.get(lower).cloned()));
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Write beside the target and rename over it, so an editor with the file open never
        // sees it half written. The staging name is created new, never opened through whatever
        // (a symlink) might sit there; a rename replaces a symlink at the target, not its target.
        let staging = target.with_file_name(format!(
            ".{}.markdrop-emulator",
            target.file_name().and_then(|name| name.to_str()).unwrap_or("file")
        ));
        match std::fs::remove_file(&staging) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)?
            .write_all(&content)?;
        std::fs::rename(&staging, &target)?;
        let metadata = std::fs::metadata(&target)?;
        let disk = DiskStamp { len: metadata.len(), modified: metadata.modified()? };
        Ok((lower.to_owned(), self.rev_of(lower).map(|rev| Synced { rev, disk })))
    }

    fn delete_on_disk(
        &self,
        lower: &str,
        on_disk: Option<&DiskFile>,
    ) -> io::Result<(String, Option<Synced>)> {
        if let Some(file) = on_disk {
            let Some(path) = self.writable_path(&file.dropbox_path)? else {
                return Ok((lower.to_owned(), self.synced.get(lower).cloned()));
            };
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        Ok((lower.to_owned(), None))
    }

    fn rev_of(&self, lower: &str) -> Option<String> {
        self.emulator.file_rev(&self.account_id, lower)
    }

    /// Where `dropbox_path` is on disk, if every folder on the way that exists is a real folder
    /// (not a symlink, not a file): `None`, with a warning, otherwise.
    fn writable_path(&self, dropbox_path: &str) -> io::Result<Option<PathBuf>> {
        let names: Vec<&str> = dropbox_path.split('/').filter(|name| !name.is_empty()).collect();
        // Held and reported by the comparison already; checked again here as the last step.
        if !names.iter().all(|name| is_usable_name(name)) {
            tracing::debug!(path = dropbox_path, "not written: a name Dropbox refuses on Windows");
            return Ok(None);
        }
        let mut folder = self.dir.clone();
        for name in names.iter().take(names.len().saturating_sub(1)) {
            folder.push(name);
            match std::fs::symlink_metadata(&folder) {
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => {
                    tracing::debug!(
                        path = dropbox_path,
                        "not written: a symlink or file is in the way"
                    );
                    return Ok(None);
                }
                // Nothing below exists either: the folders are created, as real folders.
                Err(error) if error.kind() == io::ErrorKind::NotFound => break,
                Err(error) => return Err(error),
            }
        }
        Ok(Some(self.disk_path(dropbox_path)))
    }

    fn disk_path(&self, dropbox_path: &str) -> PathBuf {
        let mut path = self.dir.clone();
        path.extend(dropbox_path.split('/').filter(|part| !part.is_empty()));
        path
    }
}

/// Whether a file or folder name takes part in the mirror.
fn is_mirrored(name: &str) -> bool {
    !name.starts_with('.') && !name.ends_with('~')
}

/// Whether a name can be a file or folder of the mirror on every platform: one plain path
/// component, without `\` or `:` (and so without a drive prefix).
fn is_usable_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    !name.contains(['\\', ':'])
        && matches!(components.next(), Some(Component::Normal(_)))
        && components.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_a_backslash_a_colon_or_a_drive_are_unusable() {
        for name in ["a\\b.md", "C:", "C:notes.md", "notes.md:stream", "..", ".", "a/b"] {
            assert!(!is_usable_name(name), "{name}");
        }
        for name in ["notes.md", "Read Me (1).html", "😀.md", "a;b.md"] {
            assert!(is_usable_name(name), "{name}");
        }
    }

    #[test]
    fn a_held_path_holds_what_is_below_it_and_nothing_beside_it() {
        let problem = FolderProblem::UnusableName { path: "/x".to_owned() };
        let held = [("/notes".to_owned(), problem)];
        assert!(is_held(&held, "/notes"));
        assert!(is_held(&held, "/notes/a.md"));
        assert!(!is_held(&held, "/notes.md"));
        assert!(!is_held(&held, "/other/notes"));
    }

    #[test]
    fn editor_droppings_are_not_mirrored() {
        for name in [".DS_Store", ".notes.md.swp", "notes.md~", ".git"] {
            assert!(!is_mirrored(name), "{name}");
        }
        for name in ["notes.md", "Read Me.html", "😀.md"] {
            assert!(is_mirrored(name), "{name}");
        }
    }
}
