//! `download`, `upload` and `delete_v2`, and the rule that one write runs at a time per
//! account (`too_many_write_operations`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::emulator::path::{PathPattern, rev_problem};
use crate::emulator::state::{NodeKind, WriteMode, WriteRequest, Written};
use crate::emulator::tokens::Caller;
use crate::emulator::wire::{CallError, LookupError, RouteError, WriteError, header_safe_json};
use crate::emulator::{Emulator, World, clock};

use super::args::{ArgPlace, Argument, check_min_length, check_rev};
use super::{Target, account, account_mut, json_response, path_error, present, resolve};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteArg {
    path: String,
    parent_rev: Option<String>,
}

impl Argument for DeleteArg {
    fn check(&self) -> Result<(), String> {
        PathPattern::WritePathOrId.check(&self.path)?;
        check_rev("parent_rev", self.parent_rev.as_deref())
    }
}

pub(super) fn delete(
    emulator: &Emulator,
    caller: &Caller,
    arg: DeleteArg,
) -> Result<HttpResponse, CallError> {
    let lookup = |error| RouteError::lookup("path_lookup", error);
    let entry = {
        let mut world = emulator.world();
        let target =
            resolve(&world, caller, &arg.path, PathPattern::WritePathOrId, ArgPlace::Body, lookup)?;
        let path = match target {
            Target::Path(path) => path,
            Target::Root => {
                return Err(CallError::Route(RouteError::delete_write(WriteError::MalformedPath)));
            }
        };
        let files = &mut account_mut(&mut world.accounts, caller)?.files;
        if let Some(parent_rev) = &arg.parent_rev {
            let current = files.file_mut(&path.lower).map(|file| file.rev.clone());
            if current.as_ref() != Some(parent_rev) && files.get(&path.lower).is_some() {
                return Err(CallError::Route(RouteError::delete_write(WriteError::Conflict(
                    crate::emulator::wire::Conflict::File,
                ))));
            }
        }
        files.delete(&path.lower).ok_or(CallError::Route(lookup(LookupError::NotFound)))?
    };
    emulator.notify(&caller.account_id);
    tracing::debug!(account_id = %caller.account_id, "deleted by the app");
    Ok(json_response(&json!({"metadata": present(caller, entry.to_json(true))})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DownloadArg {
    path: String,
    /// Deprecated in the spec, still honoured: the revision to download. The emulator keeps
    /// only each file's latest, so any other is not found.
    rev: Option<String>,
}

impl Argument for DownloadArg {
    fn check(&self) -> Result<(), String> {
        PathPattern::ReadPath.check(&self.path)?;
        check_rev("rev", self.rev.as_deref())
    }
}

pub(super) fn download(
    emulator: &Emulator,
    caller: &Caller,
    arg: DownloadArg,
) -> Result<HttpResponse, CallError> {
    let world = emulator.world();
    let target =
        resolve(&world, caller, &arg.path, PathPattern::ReadPath, ArgPlace::Header, path_error)?;
    let Target::Path(path) = target else {
        return Err(CallError::Route(path_error(LookupError::NotFile)));
    };
    let files = &account(&world.accounts, caller)?.files;
    let node = files.get(&path.lower).ok_or(CallError::Route(path_error(LookupError::NotFound)))?;
    let NodeKind::File(file) = &node.kind else {
        return Err(CallError::Route(path_error(LookupError::NotFile)));
    };
    if arg.rev.as_ref().is_some_and(|rev| *rev != file.rev) {
        return Err(CallError::Route(path_error(LookupError::NotFound)));
    }
    if !file.downloadable {
        return Err(CallError::Route(RouteError::void("unsupported_file")));
    }
    let content = file.content.to_vec();
    let metadata = files
        .entry(&path.lower)
        .map(|entry| header_safe_json(&present(caller, entry.to_json(false))))
        .unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("Dropbox-API-Result", metadata))
        .body(content))
}

/// `PropertyGroup`: a template's fields attached to a file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PropertyGroup {
    template_id: String,
    #[allow(dead_code, reason = "declared so a valid argument is accepted")]
    fields: Vec<PropertyField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "declared so a valid argument is accepted")]
pub(super) struct PropertyField {
    name: String,
    value: String,
}

/// `CommitInfo`: where and how an upload or an upload session's content is written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommitInfo {
    path: String,
    mode: Option<Value>,
    #[serde(default)]
    autorename: bool,
    client_modified: Option<String>,
    /// Only spares the user a desktop notification; webhooks fire regardless.
    #[serde(default)]
    #[allow(dead_code, reason = "nothing here notifies a desktop")]
    mute: bool,
    property_groups: Option<Vec<PropertyGroup>>,
    #[serde(default)]
    strict_conflict: bool,
}

impl Argument for CommitInfo {
    fn check(&self) -> Result<(), String> {
        PathPattern::WritePathOrId.check(&self.path)?;
        write_mode(self.mode.as_ref())?;
        match &self.client_modified {
            Some(text) if clock::parse_timestamp(text).is_none() => {
                Err(format!("client_modified: bad timestamp {text:?}"))
            }
            _ => Ok(()),
        }
    }
}

/// `UploadArg`: a `CommitInfo` with the `content_hash` of the body. Stone's `extends` is a
/// struct with the parent's fields and its own, all flat; serde's `flatten` cannot refuse
/// unknown fields, so `content_hash` is taken out and the rest read as a `CommitInfo`.
pub(super) struct UploadArg {
    commit: CommitInfo,
    content_hash: Option<String>,
}

impl<'de> Deserialize<'de> for UploadArg {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut fields = serde_json::Map::deserialize(deserializer)?;
        let content_hash = match fields.remove("content_hash") {
            None | Some(Value::Null) => None,
            Some(Value::String(hash)) => Some(hash),
            Some(_) => return Err(D::Error::custom("content_hash: expected a string")),
        };
        let commit = CommitInfo::deserialize(Value::Object(fields)).map_err(D::Error::custom)?;
        Ok(UploadArg { commit, content_hash })
    }
}

impl Argument for UploadArg {
    fn check(&self) -> Result<(), String> {
        self.commit.check()?;
        check_content_hash("content_hash", self.content_hash.as_deref())
    }
}

/// An optional `Sha256HexHash`: `String(min_length=64, max_length=64)`.
pub(super) fn check_content_hash(field: &str, hash: Option<&str>) -> Result<(), String> {
    match hash {
        Some(hash) if hash.chars().count() > 64 => Err(format!(
            "{field}: '{hash}' must be at most 64 characters, got {}",
            hash.chars().count()
        )),
        Some(hash) => check_min_length(field, hash, 64),
        None => Ok(()),
    }
}

/// Whether `content` is what `expected` (a `content_hash` argument) says it is.
pub(super) fn hash_matches(expected: Option<&str>, content: &[u8]) -> bool {
    expected.is_none_or(|hash| hash.eq_ignore_ascii_case(&crate::emulator::content_hash(content)))
}

/// `WriteMode` in any of its forms: `"add"`, `{".tag": "overwrite"}`,
/// `{".tag": "update", "update": "<rev>"}` (the bare-string form is for void members only).
fn write_mode(mode: Option<&Value>) -> Result<WriteMode, String> {
    let (tag, object) = match mode {
        None | Some(Value::Null) => return Ok(WriteMode::Add),
        Some(Value::String(tag)) => (tag.as_str(), None),
        Some(Value::Object(object)) => {
            let tag = object.get(".tag").and_then(Value::as_str);
            (tag.ok_or("mode: missing '.tag' key")?, Some(object))
        }
        Some(_) => return Err("mode: expected a union".to_owned()),
    };
    let fields: &[&str] = match tag {
        "add" | "overwrite" => &[".tag"],
        "update" => &[".tag", "update"],
        _ => return Err(format!("mode: unknown tag '{tag}'")),
    };
    if let Some(field) = object.and_then(|o| o.keys().find(|key| !fields.contains(&key.as_str()))) {
        return Err(format!("mode: unknown field '{field}'"));
    }
    match tag {
        "add" => Ok(WriteMode::Add),
        "overwrite" => Ok(WriteMode::Overwrite),
        _ => {
            let rev = object.and_then(|o| o.get("update")).and_then(Value::as_str);
            let rev = rev.ok_or("mode: update: expected a rev")?;
            match rev_problem(rev) {
                Some(problem) => Err(format!("mode: update: {problem}")),
                None => Ok(WriteMode::Update(rev.to_owned())),
            }
        }
    }
}

pub(super) fn upload(
    emulator: &Emulator,
    caller: &Caller,
    arg: UploadArg,
    content: Vec<u8>,
) -> Result<HttpResponse, CallError> {
    if !hash_matches(arg.content_hash.as_deref(), &content) {
        return Err(CallError::Route(RouteError::void("content_hash_mismatch")));
    }
    let content = Arc::new(content);
    let written = {
        let mut world = emulator.world();
        match commit(&mut world, caller, &arg.commit, content.clone(), ArgPlace::Header) {
            Ok(written) => written,
            Err(error) => {
                let error = error.into_write_error()?;
                // `UploadWriteFailed.upload_session_id`: "data has already been uploaded to the
                // corresponding upload session and this ID may be used to retry the commit
                // with upload_session/finish" (docs/dropbox.md §13).
                let bytes = Arc::try_unwrap(content).unwrap_or_else(|shared| (*shared).clone());
                let session = world.sessions.keep(caller, bytes, clock::now_seconds());
                return Err(CallError::Route(RouteError::upload_write(error, &session)));
            }
        }
    };
    Ok(json_response(&committed(emulator, caller, written)))
}

/// Why a commit wrote nothing.
pub(super) enum CommitError {
    /// The write itself: each route wraps it in its own union (upload's flattened
    /// `UploadWriteFailed`, a session's nested `WriteError`).
    Write(WriteError),
    /// `properties_error/template_not_found`, the same in both.
    TemplateNotFound(String),
    /// The caller's account is gone, or the path argument is refused outright.
    Call(CallError),
}

impl CommitError {
    /// The write error, for the route to wrap its own way; or the call error this already is.
    pub(super) fn into_write_error(self) -> Result<WriteError, CallError> {
        match self {
            CommitError::Write(error) => Ok(error),
            CommitError::TemplateNotFound(id) => {
                Err(CallError::Route(RouteError::template_not_found("properties_error", &id)))
            }
            CommitError::Call(error) => Err(error),
        }
    }

    pub(super) fn into_call_error(self, write: impl FnOnce(WriteError) -> RouteError) -> CallError {
        match self.into_write_error() {
            Ok(error) => CallError::Route(write(error)),
            Err(error) => error,
        }
    }
}

/// Writes `content` as `commit` says, for `files/upload` and upload sessions alike: the same
/// mode, conflict and rev rules, content hash and journal entry. The caller holds the world
/// (so a session can be marked committed in the same step) and then calls [`committed`].
pub(super) fn commit(
    world: &mut World,
    caller: &Caller,
    commit: &CommitInfo,
    content: Arc<Vec<u8>>,
    place: ArgPlace,
) -> Result<Written, CommitError> {
    // Checked with the argument already; the spec's default is `add`.
    let mode = write_mode(commit.mode.as_ref())
        .map_err(|detail| CommitError::Call(place.refuse(detail)))?;
    if let Some(group) = commit.property_groups.as_ref().and_then(|groups| groups.first()) {
        // The emulator keeps no property templates, so none a group names exists.
        return Err(CommitError::TemplateNotFound(group.template_id.clone()));
    }
    let malformed = |_| RouteError::void("malformed_path");
    let target = resolve(world, caller, &commit.path, PathPattern::WritePathOrId, place, malformed)
        .map_err(|error| match error {
            CallError::Route(_) => CommitError::Write(WriteError::MalformedPath),
            other => CommitError::Call(other),
        })?;
    let Target::Path(path) = target else {
        return Err(CommitError::Write(WriteError::MalformedPath));
    };
    let World { accounts, mint, .. } = world;
    let files = &mut account_mut(accounts, caller).map_err(CommitError::Call)?.files;
    let request = WriteRequest {
        path,
        content,
        mode,
        autorename: commit.autorename,
        strict_conflict: commit.strict_conflict,
        client_modified: commit.client_modified.as_deref().and_then(clock::parse_timestamp),
    };
    files.write(request, clock::now_seconds(), mint).map_err(CommitError::Write)
}

/// After a [`commit`], with the world let go: the webhook for a change, and the file's
/// `FileMetadata` as the caller sees it.
pub(super) fn committed(emulator: &Emulator, caller: &Caller, written: Written) -> Value {
    if written.changed {
        // The app's own uploads notify too, as on Dropbox (mdwebhook relies on ignoring them).
        emulator.notify(&caller.account_id);
    }
    tracing::debug!(account_id = %caller.account_id, changed = written.changed, "file committed");
    present(caller, written.entry.to_json(false))
}

/// The namespaces with a write in progress. Dropbox takes a namespace's lock for each write, and
/// a write that finds it taken is refused with 429 `too_many_write_operations` (docs/dropbox.md
/// §11): a client that writes to one account in parallel must see that here too.
#[derive(Default, Clone)]
pub struct NamespaceWrites(Arc<Mutex<HashSet<String>>>);

/// A namespace's write lock, held from a write's checks to its answer.
pub struct WriteInProgress {
    writes: NamespaceWrites,
    account_id: String,
}

impl NamespaceWrites {
    fn busy(&self) -> MutexGuard<'_, HashSet<String>> {
        // Only inserts and removals happen under it; a poisoned set is still right.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for WriteInProgress {
    fn drop(&mut self) {
        self.writes.busy().remove(&self.account_id);
    }
}

/// Takes the caller's namespace for one write, or refuses the write as Dropbox does while
/// another is in progress. `None` when the emulator was told to let writes overlap.
pub(super) fn begin_write(
    emulator: &Emulator,
    caller: &Caller,
) -> Result<Option<WriteInProgress>, CallError> {
    if !emulator.config().refuse_overlapping_writes {
        return Ok(None);
    }
    let writes = emulator.world().writes.clone();
    if !writes.busy().insert(caller.account_id.clone()) {
        tracing::debug!(account_id = %caller.account_id, "overlapping write refused");
        return Err(CallError::TooManyWriteOperations);
    }
    Ok(Some(WriteInProgress { writes, account_id: caller.account_id.clone() }))
}
