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

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::{Emulator, EmulatorError};

/// How long a file must stay untouched before a scan takes it.
pub const SETTLE: Duration = Duration::from_millis(200);

/// How often both sides are compared.
pub const POLL: Duration = Duration::from_millis(150);

/// A running mirror; dropping it (or [`FolderMirror::stop`]) ends the polling.
pub struct FolderMirror {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FolderMirror {
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
        };
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
        Ok(FolderMirror { stop: Some(stop), thread: Some(thread) })
    }
}

impl Mirror {
    /// One comparison of the folder, the account and the last synced state.
    fn sync(&mut self, settle: Duration) -> io::Result<()> {
        let disk = self.scan()?;
        let account: HashMap<String, (String, String)> = self
            .emulator
            .file_revs(&self.account_id)
            .into_iter()
            .map(|(lower, display, rev)| (lower, (display, rev)))
            .collect();
        let paths: BTreeSet<&String> =
            disk.keys().chain(account.keys()).chain(self.synced.keys()).collect();
        let now = SystemTime::now();
        let mut updates = Vec::new();
        for lower in paths {
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

    /// Every mirrored file in the folder, by lowercased Dropbox path.
    fn scan(&self) -> io::Result<HashMap<String, DiskFile>> {
        let mut files = HashMap::new();
        let mut folders = vec![self.dir.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder)? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(name) = name.to_str().filter(|name| is_mirrored(name)) else { continue };
                let file_type = entry.file_type()?;
                if file_type.is_dir() {
                    folders.push(entry.path());
                    continue;
                }
                if !file_type.is_file() {
                    continue;
                }
                let metadata = entry.metadata()?;
                let relative = folder.strip_prefix(&self.dir).unwrap_or(Path::new(""));
                let mut dropbox_path = String::new();
                for part in relative.components() {
                    let Some(part) = part.as_os_str().to_str() else { continue };
                    dropbox_path.push('/');
                    dropbox_path.push_str(part);
                }
                dropbox_path.push('/');
                dropbox_path.push_str(name);
                let stamp = DiskStamp { len: metadata.len(), modified: metadata.modified()? };
                files.insert(dropbox_path.to_lowercase(), DiskFile { dropbox_path, stamp });
            }
        }
        Ok(files)
    }

    fn import(&self, lower: &str, file: &DiskFile) -> io::Result<(String, Option<Synced>)> {
        let content = std::fs::read(self.disk_path(&file.dropbox_path))?;
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
        let target = self.disk_path(display);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Write beside the target and rename over it, so an editor with the file open never
        // sees it half written.
        let staging = target.with_file_name(format!(
            ".{}.markdrop-emulator",
            target.file_name().and_then(|name| name.to_str()).unwrap_or("file")
        ));
        std::fs::write(&staging, content)?;
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
            match std::fs::remove_file(self.disk_path(&file.dropbox_path)) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
