//! The person's own settings, kept in their Dropbox as `markdrop.toml` files (issue 16).
//!
//! A `markdrop.toml` applies to its folder and everything below it, so settings live next to the
//! notes they are about (the way Jekyll and Hugo read a configuration file from the folder they
//! publish) instead of on an account page full of switches. A nearer file overrides a farther
//! one key by key, except `exclude`, which accumulates: see [`resolve`].
//!
//! Everything here is pure, text in and values out, like [`crate::render`]: the worker and
//! `markdrop render` fetch the files (from Dropbox or a disk) and hand their text over, so the
//! rules are the same for both and tested without I/O.
//! - [`file`]: one file's text → a [`SettingsFile`], or a [`SettingsError`] with line and column;
//! - [`glob`]: the `exclude` patterns and their rules;
//! - [`resolve`]: the files governing a note → what to do with it, [`Governs`];
//! - [`stylesheet`]: the checks a `css` stylesheet passes before it is inlined.

mod file;
mod glob;
mod resolve;
mod stylesheet;

pub use file::{SettingsError, SettingsFile};
pub use glob::Glob;
pub use resolve::{Governs, resolve};
pub use stylesheet::{STYLESHEET_CAP, StylesheetError, check_stylesheet};

/// The settings file's name; any case, as Dropbox matches names.
pub const FILE_NAME: &str = "markdrop.toml";

/// One of the built-in looks of a page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Theme {
    /// markdrop's own look (`static/document.css`), light and dark.
    #[default]
    Default,
    /// A serif body and warmer colours (`static/serif.css` over the default), light and dark.
    Serif,
    /// No stylesheet at all: the browser's own look, or only the person's `css`.
    Plain,
}

impl Theme {
    /// Every theme, with the name a settings file or front matter uses for it.
    pub const NAMES: [(&str, Theme); 3] =
        [("default", Theme::Default), ("serif", Theme::Serif), ("plain", Theme::Plain)];

    /// The theme named `name` (any case).
    pub fn from_name(name: &str) -> Option<Theme> {
        Theme::NAMES.iter().find(|(known, _)| known.eq_ignore_ascii_case(name)).map(|&(_, t)| t)
    }
}

/// How one note is converted: its folder's settings, merged. Front matter is applied by the
/// renderer on top of these, for the note alone. Two notes with equal settings (and equal
/// stylesheet text) look alike; a note whose settings did not change need not be converted
/// again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NoteSettings {
    pub theme: Theme,
    /// The Dropbox path (`/Notes/style.css`) of a stylesheet inlined after the theme's.
    pub css: Option<String>,
    /// Links to `.md` files point at their `.html` pages.
    pub links: bool,
    /// `[[Note]]` is a link to the note's page; off, it stays text.
    pub wikilinks: bool,
    /// Fenced code in a known language is highlighted.
    pub highlight: bool,
    /// `$…$` and `$$…$$` become MathML; off, they stay text.
    pub math: bool,
    /// A table of contents opens each page unless its front matter says `toc: false`.
    pub toc: bool,
    /// `<html lang>` unless the front matter names one; `None` is English.
    pub lang: Option<String>,
}

impl NoteSettings {
    /// What every note had before settings files: the default theme, everything on, no table
    /// of contents, English.
    pub const DEFAULT: NoteSettings = NoteSettings {
        theme: Theme::Default,
        css: None,
        links: true,
        wikilinks: true,
        highlight: true,
        math: true,
        toc: false,
        lang: None,
    };
}

impl Default for NoteSettings {
    fn default() -> Self {
        NoteSettings::DEFAULT
    }
}

/// Whether the file at `path` (a Dropbox path or a bare name) is a settings file.
pub fn is_settings_file(path: &str) -> bool {
    file_name(path).eq_ignore_ascii_case(FILE_NAME)
}

/// The folders whose settings files govern the note at `path` (`/Notes/Work/a.md`), farthest
/// first: `["", "/Notes", "/Notes/Work"]`; the root is `""`. Look each folder's file up, keep
/// the ones that exist in this order, and pass them to [`resolve`].
pub fn governing_folders(path: &str) -> Vec<&str> {
    let mut folders = vec![""];
    folders.extend(
        path.char_indices().filter(|&(at, c)| c == '/' && at > 0).map(|(at, _)| &path[..at]),
    );
    folders
}

/// The folder of the file at `path`: `/Notes/a.md` → `/Notes`, `/a.md` → `""`.
fn folder_of(path: &str) -> &str {
    path.rfind('/').map_or("", |slash| &path[..slash])
}

fn file_name(path: &str) -> &str {
    path.rfind('/').map_or(path, |slash| &path[slash + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settings_file_is_markdrop_toml_in_any_case() {
        assert!(is_settings_file("/Notes/markdrop.toml"));
        assert!(is_settings_file("/Notes/MarkDrop.TOML"));
        assert!(is_settings_file("markdrop.toml"));
        assert!(!is_settings_file("/Notes/markdrop.toml.md"));
        assert!(!is_settings_file("/markdrop.toml/a.md"));
    }

    #[test]
    fn a_note_is_governed_by_the_root_and_each_folder_above_it_farthest_first() {
        assert_eq!(governing_folders("/Notes/Work/a.md"), ["", "/Notes", "/Notes/Work"]);
        assert_eq!(governing_folders("/a.md"), [""]);
    }

    #[test]
    fn theme_names_are_read_in_any_case() {
        assert_eq!(Theme::from_name("Serif"), Some(Theme::Serif));
        assert_eq!(Theme::from_name("plain"), Some(Theme::Plain));
        assert_eq!(Theme::from_name("dark"), None);
    }
}
