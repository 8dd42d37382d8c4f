//! `list_folder`, `list_folder/continue` and `get_metadata`: reading the tree and its changes.

use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::emulator::cursor::{Cursor, Resume};
use crate::emulator::path::PathPattern;
use crate::emulator::state::{Entry, ListScope, NodeKind};
use crate::emulator::tokens::Caller;
use crate::emulator::wire::{CallError, LookupError, RouteError};
use crate::emulator::{Emulator, World};

use super::args::{ArgPlace, Argument, check_min_length};
use super::{DEFAULT_PAGE, Target, account, json_response, path_error, present, resolve, yes};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SharedLink {
    #[allow(dead_code, reason = "declared so a valid argument is accepted; no links exist here")]
    url: String,
    #[allow(dead_code, reason = "declared so a valid argument is accepted; no links exist here")]
    password: Option<String>,
}

/// `TemplateFilterBase`: which property templates to include.
#[derive(Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum TemplateFilter {
    FilterSome { filter_some: Vec<String> },
}

impl TemplateFilter {
    /// The first template named; the emulator keeps no templates, so it is not found.
    fn first_template(&self) -> Option<&str> {
        let TemplateFilter::FilterSome { filter_some } = self;
        filter_some.first().map(String::as_str)
    }
}

/// `ListFolderArg`. The fields the emulator has nothing to show for (media info, shared
/// members, mounted folders, restorable info) change nothing in its answers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "every spec field is declared; some change nothing here")]
pub(super) struct ListFolderArg {
    path: String,
    #[serde(default)]
    recursive: bool,
    #[serde(default)]
    include_media_info: bool,
    #[serde(default)]
    include_deleted: bool,
    #[serde(default)]
    include_has_explicit_shared_members: bool,
    #[serde(default = "yes")]
    include_mounted_folders: bool,
    limit: Option<u64>,
    shared_link: Option<SharedLink>,
    include_property_groups: Option<TemplateFilter>,
    #[serde(default = "yes")]
    include_non_downloadable_files: bool,
    #[serde(default)]
    include_restorable_info: bool,
}

impl Argument for ListFolderArg {
    fn check(&self) -> Result<(), String> {
        PathPattern::PathROrId.check(&self.path)?;
        match self.limit {
            None | Some(1..=2000) => Ok(()),
            Some(limit) => Err(format!("limit: {limit} is not within range [1, 2000]")),
        }
    }
}

pub(super) fn list_folder(
    emulator: &Emulator,
    caller: &Caller,
    arg: ListFolderArg,
) -> Result<HttpResponse, CallError> {
    let limit = arg.limit.and_then(|limit| usize::try_from(limit).ok()).unwrap_or(DEFAULT_PAGE);
    if arg.shared_link.is_some() {
        // The emulator has no shared links, so no link names anything.
        return Err(CallError::Route(path_error(LookupError::NotFound)));
    }
    if let Some(template) = arg.include_property_groups.as_ref().and_then(|f| f.first_template()) {
        return Err(CallError::Route(RouteError::template_not_found("template_error", template)));
    }
    let world = emulator.world();
    let target =
        resolve(&world, caller, &arg.path, PathPattern::PathROrId, ArgPlace::Body, path_error)?;
    let root = match target {
        Target::Root => String::new(),
        Target::Path(path) => path.lower,
    };
    let account = account(&world.accounts, caller)?;
    if !root.is_empty() {
        match account.files.get(&root) {
            None => return Err(CallError::Route(path_error(LookupError::NotFound))),
            Some(node) if !matches!(node.kind, NodeKind::Folder) => {
                return Err(CallError::Route(path_error(LookupError::NotFolder)));
            }
            Some(_) => {}
        }
    }
    let scope = ListScope {
        root,
        recursive: arg.recursive,
        include_deleted: arg.include_deleted,
        include_non_downloadable: arg.include_non_downloadable_files,
    };
    let (entries, next) = account.files.list_page(&scope, None, limit);
    let cursor = Cursor {
        account_id: caller.account_id.clone(),
        epoch: account.files.epoch,
        position: account.files.journal_len(),
        scope,
        limit,
        page: next.map(Resume::Listing),
    };
    Ok(listing_page(&world, caller, &cursor, &entries))
}

/// A `ListFolderResult`: the entries and the cursor that follows them.
fn listing_page(
    world: &World,
    caller: &Caller,
    cursor: &Cursor,
    entries: &[Entry],
) -> HttpResponse {
    let shown: Vec<Value> =
        entries.iter().map(|entry| present(caller, entry.to_json(true))).collect();
    json_response(&json!({
        "entries": shown,
        "cursor": world.listings.encode(cursor),
        "has_more": cursor.page.is_some(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ContinueArg {
    cursor: String,
}

impl Argument for ContinueArg {
    fn check(&self) -> Result<(), String> {
        check_min_length("cursor", &self.cursor, 1)
    }
}

pub(super) fn list_folder_continue(
    emulator: &Emulator,
    caller: &Caller,
    arg: ContinueArg,
) -> Result<HttpResponse, CallError> {
    // Unknown and foreign cursors are a 400 (observed; the exact text is unconfirmed).
    let invalid = || CallError::BadInput("request body: cursor: invalid cursor".to_owned());
    let world = emulator.world();
    let cursor = world
        .listings
        .decode(&arg.cursor)
        .filter(|cursor| cursor.account_id == caller.account_id)
        .ok_or_else(invalid)?;
    let files = &account(&world.accounts, caller)?.files;
    if cursor.epoch != files.epoch {
        return Err(CallError::Route(RouteError::void("reset")));
    }
    let (scope, limit) = (&cursor.scope, cursor.limit);
    // A paged listing hands out its rest first; after it, the journal from the listing's start.
    let (entries, next) = match &cursor.page {
        Some(Resume::Listing(at)) => {
            let (entries, next) = files.list_page(scope, Some(at), limit);
            (entries, Cursor { page: next.map(Resume::Listing), ..cursor.clone() })
        }
        Some(Resume::Changes { until, after }) => {
            let (until, after) = (*until, *after);
            let (entries, last) =
                files.changes_page(cursor.position, until, Some(after), scope, limit);
            (entries, changes_cursor(&cursor, until, last))
        }
        None => {
            let until = files.journal_len();
            let (entries, last) = files.changes_page(cursor.position, until, None, scope, limit);
            (entries, changes_cursor(&cursor, until, last))
        }
    };
    Ok(listing_page(&world, caller, &next, &entries))
}

/// The cursor after a page of changes up to `until`: the same window while `last` says more
/// are left, else the position `until`.
fn changes_cursor(cursor: &Cursor, until: usize, last: Option<usize>) -> Cursor {
    match last {
        Some(after) => Cursor { page: Some(Resume::Changes { until, after }), ..cursor.clone() },
        None => Cursor { position: until, page: None, ..cursor.clone() },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "every spec field is declared; some change nothing here")]
pub(super) struct GetMetadataArg {
    path: String,
    #[serde(default)]
    include_media_info: bool,
    #[serde(default)]
    include_deleted: bool,
    #[serde(default)]
    include_has_explicit_shared_members: bool,
    include_property_groups: Option<TemplateFilter>,
}

impl Argument for GetMetadataArg {
    fn check(&self) -> Result<(), String> {
        if self.path.is_empty() {
            // Observed: metadata for the root itself is not supported.
            return Err("path: The root folder is unsupported.".to_owned());
        }
        PathPattern::ReadPath.check(&self.path)
    }
}

pub(super) fn get_metadata(
    emulator: &Emulator,
    caller: &Caller,
    arg: GetMetadataArg,
) -> Result<HttpResponse, CallError> {
    let world = emulator.world();
    let target =
        resolve(&world, caller, &arg.path, PathPattern::ReadPath, ArgPlace::Body, path_error)?;
    let Target::Path(path) = target else {
        return Err(CallError::Route(path_error(LookupError::NotFound)));
    };
    let files = &account(&world.accounts, caller)?.files;
    let entry = files
        .entry(&path.lower)
        .or_else(|| arg.include_deleted.then(|| files.deleted_entry(&path.lower)).flatten())
        .ok_or(CallError::Route(path_error(LookupError::NotFound)))?;
    Ok(json_response(&present(caller, entry.to_json(true))))
}
