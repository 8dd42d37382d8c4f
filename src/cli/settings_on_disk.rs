//! `markdrop render`'s side of the person's settings: the `markdrop.toml` files above a note on
//! disk, read and merged by the same rules ([`crate::settings`]) the worker applies to a
//! Dropbox, so a person can preview a note as it will look before it syncs.
//!
//! The folder given as `--root` plays the part of the Dropbox's top folder (without it, the
//! file system's root does): settings files are looked for in it and every folder down to the
//! note's, and `css` paths cannot leave it.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use crate::render::Look;
use crate::settings::{self, Governs, NoteSettings, SettingsFile};

use super::display_path;

/// A note's merged settings and the text of the stylesheet they name.
pub(super) struct DiskLook {
    settings: NoteSettings,
    stylesheet: Option<String>,
}

impl DiskLook {
    pub(super) fn look(&self) -> Look<'_> {
        Look { settings: &self.settings, stylesheet: self.stylesheet.as_deref() }
    }
}

/// The settings of `file` from the settings files between `top` and its folder (both
/// canonical, `file` inside `top`); an error when one is invalid, names a stylesheet that
/// cannot be used, or excludes the note.
pub(super) fn read_settings(file: &Path, top: &Path) -> anyhow::Result<DiskLook> {
    let inside = file.strip_prefix(top).with_context(|| {
        format!("{} is not inside the folder {}", file.display(), top.display())
    })?;
    let note = display_path(inside);
    let mut files = Vec::new();
    for folder in settings::governing_folders(&note) {
        let Some(name) = settings_file_in(&on_disk(top, folder)) else { continue };
        let dropbox_path = format!("{folder}/{name}");
        let path = on_disk(top, &dropbox_path);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read the settings file {}", path.display()))?;
        let parsed = SettingsFile::parse_bytes(&dropbox_path, &bytes)
            .map_err(|error| anyhow!("invalid settings file {}: {error}", path.display()))?;
        files.push(parsed);
    }
    match settings::resolve(&note, &files) {
        Governs::Excluded { by, pattern } => bail!(
            "{} is excluded by {} (exclude pattern \"{pattern}\"); nothing rendered",
            file.display(),
            on_disk(top, &by).display()
        ),
        Governs::Convert(settings) => {
            let stylesheet = match &settings.css {
                Some(css) => Some(read_stylesheet(&on_disk(top, css))?),
                None => None,
            };
            Ok(DiskLook { settings, stylesheet })
        }
    }
}

/// The name of the settings file in `folder`, in whatever case it is written (the first in
/// byte order should a case-sensitive disk hold several). A folder that cannot be listed (an
/// ancestor the user may only pass through) is looked in for the usual name only.
fn settings_file_in(folder: &Path) -> Option<String> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return folder.join(settings::FILE_NAME).is_file().then(|| settings::FILE_NAME.to_owned());
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| settings::is_settings_file(name))
        .collect();
    names.sort();
    names.into_iter().next()
}

/// The stylesheet at `path`, checked as the worker checks one before inlining it.
fn read_stylesheet(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the stylesheet {} named by css", path.display()))?;
    let text = settings::check_stylesheet(&bytes)
        .with_context(|| format!("cannot use the stylesheet {}", path.display()))?;
    Ok(text.to_owned())
}

/// The disk path of the Dropbox-style `path` (`/Notes/style.css`, or `""` for the top).
fn on_disk(top: &Path, path: &str) -> PathBuf {
    path.split('/')
        .filter(|part| !part.is_empty())
        .fold(top.to_path_buf(), |disk, part| disk.join(part))
}
