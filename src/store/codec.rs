//! The form records take in the store, decided here once for both backends, which only move
//! the strings: an account's status, a file record and a settings file's record are JSON (token
//! records are sealed by [`super::sealed`]). Existing stores hold these forms, so a change must
//! still read the old one.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{AccountStatus, FileRecord, RecordChanges, SettingsRecord, StoreError};
use crate::account::AccountId;

pub(super) fn encode_status(status: &AccountStatus) -> Result<String, StoreError> {
    serde_json::to_string(status).map_err(StoreError::new)
}

/// A stored status; one that does not parse (written by another version, say) is no outage:
/// the page shows none until the next pass writes one.
pub(super) fn decode_status(account: &AccountId, stored: &str) -> Option<AccountStatus> {
    match serde_json::from_str(stored) {
        Ok(status) => Some(status),
        Err(error) => {
            tracing::warn!(%account, %error, "an account status does not parse; ignoring it");
            None
        }
    }
}

/// A stored file record; one that does not parse is treated as none: the file is converted
/// again.
pub(super) fn decode_record(stored: &str) -> Option<FileRecord> {
    serde_json::from_str(stored).ok()
}

/// A stored settings file's record; one that does not parse (written by another version, say)
/// is no outage: it is left out, as if the file had not been read yet, with a warning that names
/// the file, never its text.
pub(super) fn decode_settings(
    account: &AccountId,
    path: &str,
    stored: &str,
) -> Option<SettingsRecord> {
    match serde_json::from_str(stored) {
        Ok(record) => Some(record),
        Err(error) => {
            tracing::warn!(%account, path, %error, "a settings record does not parse; ignoring it");
            None
        }
    }
}

/// A commit's record changes as the backends write them.
pub(super) struct EncodedChanges {
    /// Folders (lower-case, with a trailing `/`) whose records are all dropped; applied first.
    pub(super) forget_under: Vec<String>,
    /// `.md` lower-case path → its record as stored, or `None` to drop it; in path order.
    pub(super) files: Vec<(String, Option<String>)>,
    /// An attachment's lower-case path → its display path, or `None` to drop it.
    pub(super) attachments: Vec<(String, Option<String>)>,
    /// A note's lower-case path → its display path, or `None` to drop it: the records'
    /// notes, kept beside them so a pass can know every note without reading every record.
    pub(super) note_paths: Vec<(String, Option<String>)>,
    /// A settings file's lower-case path → its record as stored, or `None` to drop it.
    pub(super) settings: Vec<(String, Option<String>)>,
}

pub(super) fn encode_changes(changes: &RecordChanges) -> Result<EncodedChanges, StoreError> {
    let files = encode_records(&changes.files)?;
    let attachments = changes.attachments.clone().into_iter().collect();
    let mut note_paths: BTreeMap<String, Option<String>> = changes
        .note_paths
        .iter()
        .map(|(key, display)| (key.clone(), Some(display.clone())))
        .collect();
    for (key, record) in &changes.files {
        note_paths.insert(key.clone(), record.as_ref().map(|record| record.note_display(key)));
    }
    let note_paths = note_paths.into_iter().collect();
    Ok(EncodedChanges {
        forget_under: changes.forget_under.clone(),
        files,
        attachments,
        note_paths,
        settings: encode_records(&changes.settings)?,
    })
}

/// Records by lower-case path as JSON, `None` (a drop) kept as it is.
fn encode_records<T: Serialize>(
    records: &BTreeMap<String, Option<T>>,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    records
        .iter()
        .map(|(path, record)| {
            let stored = record.as_ref().map(serde_json::to_string).transpose();
            Ok((path.clone(), stored.map_err(StoreError::new)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StylesheetRecord;

    #[test]
    fn a_file_record_is_stable_json_and_one_that_does_not_parse_is_none() {
        let record = FileRecord {
            source_hash: "s".into(),
            html_path: "/A.html".into(),
            html_hash: "h".into(),
            pending_html_hash: None,
            kept_html_hash: Some("k".into()),
            links: Vec::new(),
        };
        let mut changes = RecordChanges::default();
        changes.files.insert("/a.md".into(), Some(record.clone()));
        changes.files.insert("/b.md".into(), None);
        changes.forget_under("/old");
        let encoded = encode_changes(&changes).expect("encodes");
        let stored =
            r#"{"source_hash":"s","html_path":"/A.html","html_hash":"h","kept_html_hash":"k"}"#;
        assert_eq!(
            encoded.files,
            [("/a.md".to_owned(), Some(stored.to_owned())), ("/b.md".to_owned(), None)]
        );
        assert_eq!(encoded.forget_under, ["/old/"]);
        assert_eq!(decode_record(stored), Some(record));
        assert_eq!(decode_record("{not json"), None);
    }

    #[test]
    fn a_file_records_wikilink_names_are_kept_and_an_older_record_reads_with_none() {
        let record = FileRecord {
            source_hash: "s".into(),
            html_path: "/A.html".into(),
            html_hash: "h".into(),
            pending_html_hash: None,
            kept_html_hash: None,
            links: vec!["b".into(), "trip ideas".into()],
        };
        let mut changes = RecordChanges::default();
        changes.files.insert("/a.md".into(), Some(record.clone()));
        let encoded = encode_changes(&changes).expect("encodes");
        let stored = r#"{"source_hash":"s","html_path":"/A.html","html_hash":"h","links":["b","trip ideas"]}"#;
        assert_eq!(encoded.files, [("/a.md".to_owned(), Some(stored.to_owned()))]);
        assert_eq!(decode_record(stored), Some(record.clone()));
        let older = r#"{"source_hash":"s","html_path":"/A.html","html_hash":"h"}"#;
        assert_eq!(decode_record(older), Some(FileRecord { links: Vec::new(), ..record }));
    }

    #[test]
    fn a_settings_record_is_json_a_drop_stays_none_and_one_that_does_not_parse_is_left_out() {
        let account = AccountId::parse("dbid:abc").expect("an account id");
        let record = SettingsRecord {
            path: "/Blog/markdrop.toml".into(),
            hash: "t".into(),
            text: Some("css = \"site.css\"".into()),
            stylesheet: Some(StylesheetRecord {
                path: "/Blog/site.css".into(),
                hash: "c".into(),
                text: "body { margin: 0 }".into(),
            }),
            problem: None,
        };
        let mut changes = RecordChanges::default();
        changes.settings.insert("/blog/markdrop.toml".into(), Some(record.clone()));
        changes.settings.insert("/old/markdrop.toml".into(), None);
        let encoded = encode_changes(&changes).expect("encodes");
        let [(path, Some(stored)), dropped] = &encoded.settings[..] else {
            panic!("one record and one drop: {:?}", encoded.settings);
        };
        assert_eq!(path, "/blog/markdrop.toml");
        assert_eq!(dropped, &("/old/markdrop.toml".to_owned(), None));
        assert!(!stored.contains("problem"), "an absent problem is not stored: {stored}");
        assert_eq!(decode_settings(&account, path, stored), Some(record));
        assert_eq!(decode_settings(&account, path, r#"{"path":"/a"}"#), None);
        assert!(encoded.files.is_empty() && encoded.attachments.is_empty());
    }

    #[test]
    fn a_status_that_does_not_parse_is_none() {
        let account = AccountId::parse("dbid:abc").expect("an account id");
        let status = AccountStatus { last_pass_at: Some(5), ..AccountStatus::default() };
        let stored = encode_status(&status).expect("encodes");
        assert_eq!(decode_status(&account, &stored), Some(status));
        assert_eq!(decode_status(&account, r#"{"state":"gone"}"#), None);
    }
}
