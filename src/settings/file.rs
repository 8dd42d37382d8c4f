//! One `markdrop.toml`: its text read into a [`SettingsFile`], or refused with a
//! [`SettingsError`] that says where (line and column) and what is wrong.
//!
//! A person edits this file by hand and sees its errors on the account page or in a terminal,
//! so every mistake is refused, none is ignored: an unknown key is most often a misspelt one
//! (and the nearest known key is suggested), and a setting silently not applied would be worse
//! than an error. The file is read with `toml`'s spanned tables rather than serde, so each value
//! keeps its place in the text for the message.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::glob::Glob;
use super::{Theme, folder_of};

/// Every key a settings file may hold, in the order the messages list them.
const KEYS: [&str; 9] =
    ["exclude", "theme", "css", "links", "wikilinks", "highlight", "math", "toc", "lang"];

/// One settings file, read. Every key is optional: a key it does not set comes from a file
/// farther up, or from [`NoteSettings::DEFAULT`](super::NoteSettings::DEFAULT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsFile {
    /// Its Dropbox path (`/Notes/markdrop.toml`), as given to [`SettingsFile::parse`].
    pub path: String,
    pub exclude: Vec<Glob>,
    pub theme: Option<Theme>,
    /// The stylesheet's Dropbox path (`/Notes/style.css`), resolved from the file's folder.
    pub css: Option<String>,
    pub links: Option<bool>,
    pub wikilinks: Option<bool>,
    pub highlight: Option<bool>,
    pub math: Option<bool>,
    pub toc: Option<bool>,
    pub lang: Option<String>,
}

/// What is wrong with a settings file, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SettingsError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl SettingsFile {
    /// [`SettingsFile::parse`] for the file's bytes as they come from Dropbox or a disk: text
    /// that is not UTF-8 is an error at the first byte that is not.
    pub fn parse_bytes(path: &str, bytes: &[u8]) -> Result<SettingsFile, SettingsError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => SettingsFile::parse(path, text),
            Err(error) => {
                let text = std::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default();
                Err(located(text, text.len(), "not UTF-8 text; save the file as UTF-8".to_owned()))
            }
        }
    }

    /// Reads the settings file at the Dropbox path `path` (`/Notes/markdrop.toml`; its folder is
    /// what `exclude` and `css` are relative to) from its text.
    pub fn parse(path: &str, text: &str) -> Result<SettingsFile, SettingsError> {
        let error_at = |span: Range<usize>, message: String| located(text, span.start, message);
        let table = DeTable::parse(text).map_err(|error| {
            let message = error.message().lines().next().unwrap_or_default().trim();
            let span = error.span().unwrap_or_default();
            // toml says only "duplicate key"; the key is at the span.
            let key = text.get(span.clone()).map(str::trim).filter(|key| !key.is_empty());
            let message = match key {
                Some(key) if message == "duplicate key" => format!("duplicate key {key}"),
                _ => message.to_owned(),
            };
            located(text, span.start, format!("not valid TOML: {message}"))
        })?;
        let mut file = SettingsFile {
            path: path.to_owned(),
            exclude: Vec::new(),
            theme: None,
            css: None,
            links: None,
            wikilinks: None,
            highlight: None,
            math: None,
            toc: None,
            lang: None,
        };
        // The table is ordered by key; report the first mistake in the text instead.
        let mut entries: Vec<_> = table.get_ref().iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        for (key, value) in entries {
            file.set(key.get_ref(), value)
                .map_err(|(span, message)| error_at(span.unwrap_or_else(|| key.span()), message))?;
        }
        Ok(file)
    }

    /// The folder the file governs (`/Notes`, or `""` for the root).
    pub fn folder(&self) -> &str {
        folder_of(&self.path)
    }

    /// Sets `key` from `value`, or says what is wrong (at `value`'s span unless another given).
    fn set(
        &mut self,
        key: &str,
        value: &Spanned<DeValue>,
    ) -> Result<(), (Option<Range<usize>>, String)> {
        let at_value = |message: String| (Some(value.span()), message);
        let switch = |value: &Spanned<DeValue>| match value.get_ref() {
            DeValue::Boolean(on) => Ok(Some(*on)),
            other => {
                Err(at_value(format!("\"{key}\" must be true or false, not {}", a_type(other))))
            }
        };
        match key {
            "exclude" => self.exclude = exclude(value)?,
            "theme" => {
                let name = string(key, value, "\"serif\"").map_err(at_value)?;
                self.theme = Some(Theme::from_name(name).ok_or_else(|| {
                    at_value(format!(
                        "unknown theme \"{name}\"; the themes are \"default\", \"serif\" and \"plain\""
                    ))
                })?);
            }
            "css" => {
                let written = string(key, value, "\"style.css\"").map_err(at_value)?;
                self.css = Some(stylesheet_path(self.folder(), written).map_err(at_value)?);
            }
            "links" => self.links = switch(value)?,
            "wikilinks" => self.wikilinks = switch(value)?,
            "highlight" => self.highlight = switch(value)?,
            "math" => self.math = switch(value)?,
            "toc" => self.toc = switch(value)?,
            "lang" => {
                let tag = string(key, value, "\"en\"").map_err(at_value)?;
                if !crate::render::is_language_tag(tag) {
                    return Err(at_value(format!(
                        "\"lang\" = \"{tag}\" is not a language tag, like \"en\" or \"pt-BR\""
                    )));
                }
                self.lang = Some(tag.to_owned());
            }
            unknown => return Err((None, unknown_key(unknown))),
        }
        Ok(())
    }
}

/// `exclude`'s list of patterns, each compiled.
fn exclude(value: &Spanned<DeValue>) -> Result<Vec<Glob>, (Option<Range<usize>>, String)> {
    let DeValue::Array(patterns) = value.get_ref() else {
        return Err((
            Some(value.span()),
            format!(
                "\"exclude\" must be a list of patterns, like [\"drafts/**\"], not {}",
                a_type(value.get_ref())
            ),
        ));
    };
    patterns
        .iter()
        .map(|pattern| {
            let at = Some(pattern.span());
            let DeValue::String(written) = pattern.get_ref() else {
                return Err((
                    at,
                    format!(
                        "each pattern in \"exclude\" must be a string, like \"drafts/**\", not {}",
                        a_type(pattern.get_ref())
                    ),
                ));
            };
            Glob::new(written)
                .map_err(|why| (at, format!("the pattern \"{written}\" in \"exclude\": {why}")))
        })
        .collect()
}

/// The string `value` of `key`, or a message showing an `example` of one.
fn string<'v>(key: &str, value: &'v Spanned<DeValue>, example: &str) -> Result<&'v str, String> {
    match value.get_ref() {
        DeValue::String(text) => Ok(text),
        other => Err(format!("\"{key}\" must be a string, like {example}, not {}", a_type(other))),
    }
}

/// `css`'s Dropbox path: from the settings file's folder, or from the top of the Dropbox when
/// it starts with `/`; never a web address (the page must make no request) nor above the top.
fn stylesheet_path(folder: &str, written: &str) -> Result<String, String> {
    if written.trim().is_empty() {
        return Err("\"css\" cannot be empty; name a stylesheet, like \"style.css\"".to_owned());
    }
    let is_url = written.starts_with("//")
        || written.split('/').next().is_some_and(|first| first.contains(':'));
    if is_url {
        return Err(format!(
            "\"css\" = \"{written}\" is a web address; name a stylesheet in your Dropbox, like \"style.css\""
        ));
    }
    if written.contains('\\') {
        return Err("\"css\" uses / between folders, not \\".to_owned());
    }
    if !written.to_lowercase().ends_with(".css") {
        return Err(format!("\"css\" = \"{written}\" is not a .css file"));
    }
    let mut parts: Vec<&str> = match written.strip_prefix('/') {
        Some(_) => Vec::new(),
        None => folder.split('/').filter(|part| !part.is_empty()).collect(),
    };
    for part in written.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "\"css\" = \"{written}\" leads above the top folder of your Dropbox"
                    ));
                }
            }
            name => parts.push(name),
        }
    }
    Ok(parts.iter().map(|part| format!("/{part}")).collect())
}

/// "unknown key", with the known key nearest to it when there is a close one.
fn unknown_key(key: &str) -> String {
    let nearest = KEYS
        .iter()
        .map(|known| (edit_distance(&key.to_lowercase(), known), known))
        .min()
        .filter(|&(distance, _)| distance <= 2);
    match nearest {
        Some((_, known)) => format!("unknown key \"{key}\"; did you mean \"{known}\"?"),
        None => format!("unknown key \"{key}\"; the keys are {}", KEYS.join(", ")),
    }
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// "a string", "an integer"…: the kind of value found where another was expected.
fn a_type(value: &DeValue) -> &'static str {
    match value {
        DeValue::Table(_) => "a table",
        DeValue::Array(_) => "a list",
        DeValue::Integer(_) | DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "true or false",
        DeValue::Datetime(_) => "a date",
        DeValue::String(_) => "a string",
    }
}

/// The error `message` at byte `offset` of `text`, with its 1-based line and column.
fn located(text: &str, offset: usize, message: String) -> SettingsError {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    SettingsError {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
        message,
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
