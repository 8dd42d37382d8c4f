//! Dropbox's JSON shapes, as markdrop reads and writes them (Stone encoding, docs/dropbox.md §1).
//!
//! Reading is forgiving: unknown fields are ignored and an unknown `.tag` becomes `Other`, so a
//! Dropbox that grows new fields or entry types never breaks a sync pass.

use serde::Deserialize;

use crate::account::AccountId;

/// One entry of a folder listing (`Metadata`, a struct with enumerated subtypes).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case")]
pub enum Metadata {
    File(FileMetadata),
    Folder(FolderMetadata),
    /// Something was removed at this path; Dropbox does not say whether a file or a folder.
    Deleted(DeletedMetadata),
    #[serde(other)]
    Other,
}

/// A file, as listings, uploads, downloads and `get_metadata` describe it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileMetadata {
    pub name: String,
    pub id: String,
    pub path_lower: Option<String>,
    pub path_display: Option<String>,
    pub rev: String,
    pub size: u64,
    pub server_modified: String,
    /// Absent for some files (e.g. while Dropbox computes it); never trust its absence to mean
    /// "unchanged".
    pub content_hash: Option<String>,
    #[serde(default = "downloadable_by_default")]
    pub is_downloadable: bool,
}

fn downloadable_by_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FolderMetadata {
    pub name: String,
    pub id: String,
    pub path_lower: Option<String>,
    pub path_display: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeletedMetadata {
    pub name: String,
    pub path_lower: Option<String>,
    pub path_display: Option<String>,
}

/// A page of `list_folder` or `list_folder/continue`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ListFolderPage {
    pub entries: Vec<Metadata>,
    pub cursor: String,
    pub has_more: bool,
}

/// The parts of `FullAccount` markdrop shows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Account {
    pub account_id: AccountId,
    pub name: AccountName,
    pub email: Option<String>,
    /// Where the person's Dropbox starts; absent in answers from before team spaces.
    pub root_info: Option<RootInfo>,
}

impl Account {
    /// The namespace to list from when it is not the person's home one: a Dropbox Business
    /// member in a team space sees team folders beside their home folder only from the team's
    /// root, reached by sending `Dropbox-API-Path-Root` with every files call.
    pub fn path_root(&self) -> Option<String> {
        let root = self.root_info.as_ref()?;
        (root.root_namespace_id != root.home_namespace_id).then(|| root.root_namespace_id.clone())
    }
}

/// `RootInfo` (`user` or `team`): the namespace a Dropbox starts at, and the person's own.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RootInfo {
    pub root_namespace_id: String,
    pub home_namespace_id: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AccountName {
    pub display_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_space_lists_from_its_root_and_a_personal_dropbox_from_home() {
        let account = |root: &str| -> Account {
            serde_json::from_str(&format!(
                r#"{{"account_id": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc",
                    "name": {{"display_name": "Ada"}}, "email": "ada@example.com",
                    "root_info": {root}}}"#
            ))
            .unwrap()
        };
        let team = account(
            r#"{".tag": "team", "root_namespace_id": "3235641", "home_namespace_id": "3235642", "home_path": "/Ada"}"#,
        );
        assert_eq!(team.path_root().as_deref(), Some("3235641"));
        let user =
            account(r#"{".tag": "user", "root_namespace_id": "7", "home_namespace_id": "7"}"#);
        assert_eq!(user.path_root(), None);
        assert_eq!(account("null").path_root(), None);
    }

    #[test]
    fn a_listing_parses_every_entry_type_and_tolerates_new_ones() {
        let page: ListFolderPage = serde_json::from_str(
            r#"{"entries":[
             {".tag":"file","name":"Prime_Numbers.txt","id":"id:a4ayc_80_OEAAAAAAAAAXw",
              "client_modified":"2015-05-12T15:50:38Z","server_modified":"2015-05-12T15:50:38Z",
              "rev":"a1c10ce0dd78","size":7212,"path_lower":"/homework/math/prime_numbers.txt",
              "path_display":"/Homework/math/Prime_Numbers.txt","is_downloadable":true,
              "content_hash":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "some_future_field":{"x":1}},
             {".tag":"folder","name":"math","id":"id:a4ayc_80_OEAAAAAAAAAXz","path_lower":"/homework/math","path_display":"/Homework/math"},
             {".tag":"deleted","name":"pi.txt","path_lower":"/homework/math/pi.txt","path_display":"/Homework/math/pi.txt"},
             {".tag":"hologram","name":"x"}],
             "cursor":"ZtkX9_EHj3x7","has_more":false}"#,
        )
        .unwrap();
        assert!(
            matches!(&page.entries[0], Metadata::File(f) if f.size == 7212 && f.is_downloadable)
        );
        assert!(matches!(&page.entries[1], Metadata::Folder(f) if f.name == "math"));
        assert!(
            matches!(&page.entries[2], Metadata::Deleted(d) if d.path_lower.as_deref() == Some("/homework/math/pi.txt"))
        );
        assert_eq!(page.entries[3], Metadata::Other);
    }
}
