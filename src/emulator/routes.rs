//! The `/2/…` routes markdrop uses, answered like Dropbox: route styles (rpc, upload, download),
//! bearer-token checks, scopes, argument decoding and each route's results and errors.
//!
//! Every call goes through [`call`]: count it, hold it or apply a fault if a test asked for one,
//! then check the request in the order Dropbox reports problems (Content-Type, token, scope,
//! argument) and run the route. An upload's body is read only once those checks have passed.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::cursor::{Cursor, Page};
use super::path::{DropboxPath, PathArg, PathProblem, parse_arg};
use super::state::{Entry, ListScope, NodeKind, WriteMode, WriteRequest};
use super::stats::Concurrency;
use super::tokens::{Caller, random_token};
use super::wire::{
    AuthFailure, CallError, LookupError, RouteError, TEXT_PLAIN, WriteError, header_safe_json,
};
use super::{Account, Emulator, World, clock};

/// Dropbox's limit for a single `files/upload` (larger files need upload sessions).
const MAX_UPLOAD: usize = 150 * 1024 * 1024;
/// RPC arguments are small JSON; anything this big is not one.
const MAX_RPC_BODY: usize = 1024 * 1024;
/// Entries per page when `list_folder` names no `limit`.
const DEFAULT_PAGE: usize = 2000;

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(web::resource("/2/{route:.+}").route(web::post().to(call)));
}

/// 404 for anything the emulator does not serve, in Dropbox's plain-text style.
pub async fn unknown_route(request: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound()
        .content_type(TEXT_PLAIN)
        .body(format!("Unknown API function: {:?}", request.path()))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    GetCurrentAccount,
    ListFolder,
    ListFolderContinue,
    GetMetadata,
    DeleteV2,
    Download,
    Upload,
    Revoke,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Rpc,
    RpcVoid,
    Upload,
    Download,
}

impl Route {
    fn parse(name: &str) -> Option<Route> {
        Some(match name {
            "users/get_current_account" => Route::GetCurrentAccount,
            "files/list_folder" => Route::ListFolder,
            "files/list_folder/continue" => Route::ListFolderContinue,
            "files/get_metadata" => Route::GetMetadata,
            "files/delete_v2" => Route::DeleteV2,
            "files/download" => Route::Download,
            "files/upload" => Route::Upload,
            "auth/token/revoke" => Route::Revoke,
            _ => return None,
        })
    }

    fn style(self) -> Style {
        match self {
            Route::GetCurrentAccount | Route::Revoke => Style::RpcVoid,
            Route::Download => Style::Download,
            Route::Upload => Style::Upload,
            _ => Style::Rpc,
        }
    }

    /// The scope the route needs (dropbox-api.md §7); revoke needs none.
    fn scope(self) -> Option<&'static str> {
        match self {
            Route::GetCurrentAccount => Some("account_info.read"),
            Route::ListFolder | Route::ListFolderContinue | Route::GetMetadata => {
                Some("files.metadata.read")
            }
            Route::Download => Some("files.content.read"),
            Route::Upload | Route::DeleteV2 => Some("files.content.write"),
            Route::Revoke => None,
        }
    }

    fn concurrency(self) -> Concurrency {
        match self {
            Route::ListFolder | Route::ListFolderContinue => Concurrency::Listing,
            Route::Upload | Route::DeleteV2 => Concurrency::Write,
            _ => Concurrency::Untracked,
        }
    }
}

async fn call(
    request: HttpRequest,
    payload: web::Payload,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    let name = request.match_info().query("route").to_owned();
    let Some(route) = Route::parse(&name) else {
        return unknown_route(request).await;
    };
    let account_id = bearer(request.headers())
        .ok()
        .and_then(|token| emulator.world().tokens.account_of(token).map(str::to_owned))
        .unwrap_or_default();
    tracing::debug!(route = %name, %account_id, "api call");
    emulator.inner.stats.count(&name, &account_id);
    let _in_flight = emulator.inner.stats.enter(route.concurrency(), &account_id);
    if let Some(response) = emulator.intercept(&name, &account_id).await {
        return response;
    }
    let mut response = match serve(route, &request, payload, &emulator).await {
        Ok(response) => {
            emulator.inner.stats.count_success(&name, &account_id);
            response
        }
        Err(error) => error.into_response(&name),
    };
    if let Ok(id) = header::HeaderValue::from_str(&random_token(32)) {
        response.headers_mut().insert(header::HeaderName::from_static("x-dropbox-request-id"), id);
    }
    response
}

/// The bearer token, or why the `Authorization` header is unusable (a 400 message).
fn bearer(headers: &HeaderMap) -> Result<&str, &'static str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("Must provide HTTP header \"Authorization\" or URL parameter \"authorization\".")?;
    let value = value.to_str().map_err(|_| BAD_AUTHORIZATION)?;
    let token = value.strip_prefix("Bearer ").ok_or(BAD_AUTHORIZATION)?.trim();
    if token.is_empty() {
        return Err(BAD_AUTHORIZATION);
    }
    Ok(token)
}

// The value itself is left out: it is a credential.
const BAD_AUTHORIZATION: &str = "Invalid authorization value in HTTP header \"Authorization\". \
     Expecting \"Bearer <oauth2-access-token>\".";

fn authenticate(emulator: &Emulator, headers: &HeaderMap) -> Result<Caller, CallError> {
    let token = bearer(headers).map_err(|message| CallError::BadInput(message.to_owned()))?;
    if !token.starts_with("sl.") {
        return Err(CallError::BadInput("The given OAuth 2 access token is malformed.".to_owned()));
    }
    emulator.world().tokens.authenticate(token).map_err(CallError::Unauthorized)
}

async fn serve(
    route: Route,
    request: &HttpRequest,
    payload: web::Payload,
    emulator: &Emulator,
) -> Result<HttpResponse, CallError> {
    let headers = request.headers();
    if route == Route::Upload {
        // Up to 150 MiB: everything that can refuse the upload is checked before any of it is
        // read, so a refused one costs no buffering. Its argument is in a header, not the body.
        check_content_type(Style::Upload, headers, false)?;
        let caller = authenticate_for(route, emulator, headers)?;
        let arg = header_arg(headers)?;
        let content = match payload.to_bytes_limited(MAX_UPLOAD).await {
            Ok(Ok(content)) => content,
            Ok(Err(_)) => return Err(unreadable_body()),
            Err(_) => return Err(CallError::Route(RouteError::void("payload_too_large"))),
        };
        return upload(emulator, &caller, arg, content.to_vec());
    }
    // An RPC argument is the body itself (and at most a megabyte), so it is read first.
    let body = match payload.to_bytes_limited(MAX_RPC_BODY).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return Err(unreadable_body()),
        Err(_) => return Err(CallError::BadInput("request body is too large".to_owned())),
    };
    check_content_type(route.style(), headers, body.is_empty())?;
    let caller = authenticate_for(route, emulator, headers)?;
    match route {
        Route::GetCurrentAccount => {
            void_arg(headers, &body)?;
            get_current_account(emulator, &caller)
        }
        Route::Revoke => {
            void_arg(headers, &body)?;
            emulator.world().tokens.revoke_grant(caller.grant);
            tracing::debug!(account_id = %caller.account_id, "token revoked by its holder");
            Ok(json_response(&Value::Null))
        }
        Route::ListFolder => list_folder(emulator, &caller, rpc_arg(&body)?),
        Route::ListFolderContinue => list_folder_continue(emulator, &caller, rpc_arg(&body)?),
        Route::GetMetadata => get_metadata(emulator, &caller, rpc_arg(&body)?),
        Route::DeleteV2 => delete(emulator, &caller, rpc_arg(&body)?),
        Route::Download => download(emulator, &caller, header_arg(headers)?),
        // Served above, before its body was read; never reached.
        Route::Upload => Err(unreadable_body()),
    }
}

fn unreadable_body() -> CallError {
    CallError::BadInput("could not read request body".to_owned())
}

/// The caller behind the bearer token, if it may call `route`.
fn authenticate_for(
    route: Route,
    emulator: &Emulator,
    headers: &HeaderMap,
) -> Result<Caller, CallError> {
    let caller = authenticate(emulator, headers)?;
    match route.scope() {
        Some(scope) if !caller.scopes.contains(scope) => {
            Err(CallError::Unauthorized(AuthFailure::MissingScope(scope)))
        }
        _ => Ok(caller),
    }
}

const JSON_TYPES: &str = "\"application/json\", \"application/json; charset=utf-8\", \
     \"text/plain; charset=dropbox-cors-hack\"";
const OCTET_TYPES: &str = "\"application/octet-stream\", \"text/plain; charset=dropbox-cors-hack\"";

fn check_content_type(
    style: Style,
    headers: &HeaderMap,
    empty_body: bool,
) -> Result<(), CallError> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|value| value.as_bytes());
    let accepted = match (style, content_type) {
        // Void routes: no body and no Content-Type is how the JS SDK calls them (§0).
        (Style::RpcVoid, None) => empty_body,
        (Style::Rpc | Style::RpcVoid, Some(value)) => {
            value == b"application/json" || value == b"application/json; charset=utf-8"
        }
        (Style::Rpc, None) => false,
        // Exactly this; even `; charset=utf8` appended is refused (observed, §3.2).
        (Style::Upload, Some(value)) => value == b"application/octet-stream",
        (Style::Upload, None) => false,
        (Style::Download, None) => true,
        (Style::Download, Some(value)) => value == b"application/octet-stream",
    };
    if accepted {
        return Ok(());
    }
    let shown = content_type.map(String::from_utf8_lossy).unwrap_or_default();
    let expected =
        if matches!(style, Style::Upload | Style::Download) { OCTET_TYPES } else { JSON_TYPES };
    Err(CallError::BadInput(format!(
        "Bad HTTP \"Content-Type\" header: \"{shown}\".  Expecting one of {expected}."
    )))
}

const UNDECODABLE_BODY: &str = "request body: could not decode input as JSON";

/// A Void argument: no body at all, or exactly `null` (dropbox-api.md §0).
fn void_arg(headers: &HeaderMap, body: &[u8]) -> Result<(), CallError> {
    if headers.get(header::CONTENT_TYPE).is_none() && body.is_empty() {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Null) => Ok(()),
        Ok(_) => Err(CallError::BadInput("request body: expected null, got value".to_owned())),
        Err(_) => Err(CallError::BadInput(UNDECODABLE_BODY.to_owned())),
    }
}

fn rpc_arg<T: DeserializeOwned>(body: &[u8]) -> Result<T, CallError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| CallError::BadInput(UNDECODABLE_BODY.to_owned()))?;
    serde_json::from_value(value)
        .map_err(|error| CallError::BadInput(format!("request body: {error}")))
}

/// The `Dropbox-API-Arg` header: JSON that must be pure ASCII, non-ASCII written as `\u`
/// escapes (dropbox-api.md §3.3). Raw UTF-8 is refused to catch a client that forgets to escape.
fn header_arg<T: DeserializeOwned>(headers: &HeaderMap) -> Result<T, CallError> {
    const UNDECODABLE: &str = "HTTP header \"Dropbox-API-Arg\": could not decode input as JSON";
    let raw = headers.get("Dropbox-API-Arg").ok_or_else(|| {
        CallError::BadInput(
            "Must provide HTTP header \"Dropbox-API-Arg\" or URL parameter \"arg\".".to_owned(),
        )
    })?;
    let bytes = raw.as_bytes();
    if bytes.iter().any(|byte| *byte >= 0x7f) {
        return Err(CallError::BadInput(UNDECODABLE.to_owned()));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|_| CallError::BadInput(UNDECODABLE.to_owned()))?;
    serde_json::from_value(value)
        .map_err(|error| CallError::BadInput(format!("HTTP header \"Dropbox-API-Arg\": {error}")))
}

fn json_response(value: &Value) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(value.to_string())
}

/// The caller's account. A live token's account always exists; were it gone, the token would be
/// as good as revoked.
fn account<'a>(
    accounts: &'a BTreeMap<String, Account>,
    caller: &Caller,
) -> Result<&'a Account, CallError> {
    accounts.get(&caller.account_id).ok_or_else(account_gone)
}

fn account_mut<'a>(
    accounts: &'a mut BTreeMap<String, Account>,
    caller: &Caller,
) -> Result<&'a mut Account, CallError> {
    accounts.get_mut(&caller.account_id).ok_or_else(account_gone)
}

fn account_gone() -> CallError {
    CallError::Unauthorized(AuthFailure::InvalidAccessToken)
}

fn get_current_account(emulator: &Emulator, caller: &Caller) -> Result<HttpResponse, CallError> {
    let world = emulator.world();
    let account = account(&world.accounts, caller)?;
    let name = &account.display_name;
    let (given, surname) = name.split_once(' ').unwrap_or((name, ""));
    let abbreviated: String =
        name.split_whitespace().filter_map(|word| word.chars().next()).collect();
    let namespace = account.uid.to_string();
    Ok(json_response(&json!({
        "account_id": caller.account_id,
        "name": {
            "given_name": given,
            "surname": surname,
            "familiar_name": given,
            "display_name": name,
            "abbreviated_name": abbreviated,
        },
        "email": account.email,
        "email_verified": true,
        "disabled": false,
        "country": "US",
        "locale": "en",
        "referral_link": "https://db.tt/emulator",
        "is_paired": false,
        "account_type": {".tag": "basic"},
        "root_info": {".tag": "user", "root_namespace_id": namespace, "home_namespace_id": namespace},
    })))
}

/// Where a path argument points in the caller's tree.
enum Target {
    Root,
    /// An existing or missing path, by its lowercase key.
    Path(DropboxPath),
}

/// Resolves a path argument; ids are looked up, `/` and pattern mismatches are 400s, and a
/// malformed path is the route's 409 `malformed_path`.
fn resolve(
    world: &World,
    account_id: &str,
    raw: &str,
    malformed: impl Fn(LookupError) -> RouteError,
) -> Result<Target, CallError> {
    match parse_arg(raw) {
        Ok(PathArg::Root) => Ok(Target::Root),
        Ok(PathArg::Path(path)) => Ok(Target::Path(path)),
        Ok(PathArg::Id(id)) => world
            .accounts
            .get(account_id)
            .and_then(|account| {
                let lower = account.files.find_id(&id)?;
                let display = account.files.get(&lower)?.display.clone();
                Some(Target::Path(DropboxPath { display, lower }))
            })
            .ok_or_else(|| CallError::Route(malformed(LookupError::NotFound))),
        Err(PathProblem::Malformed) => Err(CallError::Route(malformed(LookupError::MalformedPath))),
        Err(problem) => Err(CallError::BadInput(problem.message(raw))),
    }
}

fn path_error(error: LookupError) -> RouteError {
    RouteError::lookup("path", error)
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct ListFolderArg {
    path: String,
    #[serde(default)]
    recursive: bool,
    #[serde(default)]
    include_deleted: bool,
    #[serde(default = "yes")]
    include_non_downloadable_files: bool,
    limit: Option<u64>,
}

fn list_folder(
    emulator: &Emulator,
    caller: &Caller,
    arg: ListFolderArg,
) -> Result<HttpResponse, CallError> {
    let limit = match arg.limit {
        None => DEFAULT_PAGE,
        Some(limit @ 1..=2000) => usize::try_from(limit).unwrap_or(DEFAULT_PAGE),
        Some(limit) => {
            return Err(CallError::BadInput(format!(
                "request body: limit: {limit} is not within range [1, 2000]"
            )));
        }
    };
    let mut world = emulator.world();
    let root = match resolve(&world, &caller.account_id, &arg.path, path_error)? {
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
    let cursor = Cursor {
        account_id: caller.account_id.clone(),
        epoch: account.files.epoch,
        position: account.files.journal_len(),
        scope: scope.clone(),
        limit,
        page: None,
    };
    let entries = account.files.list(&scope);
    Ok(page(&mut world, cursor, Pending::Fresh(entries)))
}

/// The entries a page is cut from.
enum Pending {
    /// Just computed: held for later pages only if they do not fit in this one.
    Fresh(Vec<Entry>),
    /// A listing already held, from the offset in the cursor's page on.
    Held(Arc<[Entry]>),
}

/// Hands out the next page and the cursor that follows it. Only a listing with entries left
/// over is kept here; every other cursor carries all it needs in its string.
fn page(world: &mut World, mut cursor: Cursor, pending: Pending) -> HttpResponse {
    let offset = cursor.page.map_or(0, |page| page.offset);
    let entries: Arc<[Entry]> = match pending {
        Pending::Fresh(entries) => Arc::from(entries),
        Pending::Held(entries) => entries,
    };
    let end = entries.len().min(offset.saturating_add(cursor.limit));
    let shown: Vec<Value> =
        entries.get(offset..end).unwrap_or_default().iter().map(|e| e.to_json(true)).collect();
    let has_more = end < entries.len();
    cursor.page = if has_more {
        let listing = match cursor.page {
            Some(page) => page.listing,
            None => world.listings.hold(&cursor.account_id, entries),
        };
        Some(Page { listing, offset: end })
    } else {
        None
    };
    let text = world.listings.encode(&cursor);
    json_response(&json!({"entries": shown, "cursor": text, "has_more": has_more}))
}

#[derive(Deserialize)]
struct ContinueArg {
    cursor: String,
}

fn list_folder_continue(
    emulator: &Emulator,
    caller: &Caller,
    arg: ContinueArg,
) -> Result<HttpResponse, CallError> {
    // Unknown, foreign and forgotten cursors are a 400 (observed; the exact text is unconfirmed).
    let invalid = || CallError::BadInput("request body: cursor: invalid cursor".to_owned());
    let mut world = emulator.world();
    let cursor = world
        .listings
        .decode(&arg.cursor)
        .filter(|cursor| cursor.account_id == caller.account_id)
        .ok_or_else(invalid)?;
    let files = &account(&world.accounts, caller)?.files;
    if cursor.epoch != files.epoch {
        return Err(CallError::Route(RouteError::void("reset")));
    }
    // A cursor inside a paged listing hands out its rest first; any other reads the journal.
    let (cursor, pending) = match cursor.page {
        Some(page) => {
            let held = world.listings.held(&cursor.account_id, page.listing).ok_or_else(invalid)?;
            (cursor, Pending::Held(held))
        }
        None => {
            let changes = files.changes_since(cursor.position, &cursor.scope);
            (Cursor { position: files.journal_len(), ..cursor }, Pending::Fresh(changes))
        }
    };
    Ok(page(&mut world, cursor, pending))
}

#[derive(Deserialize)]
struct GetMetadataArg {
    path: String,
    #[serde(default)]
    include_deleted: bool,
}

fn get_metadata(
    emulator: &Emulator,
    caller: &Caller,
    arg: GetMetadataArg,
) -> Result<HttpResponse, CallError> {
    let world = emulator.world();
    let Target::Path(path) = resolve(&world, &caller.account_id, &arg.path, path_error)? else {
        // Observed: metadata for the root itself is not supported.
        return Err(CallError::BadInput(
            "request body: path: The root folder is unsupported.".to_owned(),
        ));
    };
    let files = &account(&world.accounts, caller)?.files;
    let entry = files
        .entry(&path.lower)
        .or_else(|| arg.include_deleted.then(|| files.deleted_entry(&path.lower)).flatten())
        .ok_or(CallError::Route(path_error(LookupError::NotFound)))?;
    Ok(json_response(&entry.to_json(true)))
}

#[derive(Deserialize)]
struct DeleteArg {
    path: String,
    parent_rev: Option<String>,
}

fn delete(emulator: &Emulator, caller: &Caller, arg: DeleteArg) -> Result<HttpResponse, CallError> {
    let lookup = |error| RouteError::lookup("path_lookup", error);
    let entry = {
        let mut world = emulator.world();
        let path = match resolve(&world, &caller.account_id, &arg.path, lookup)? {
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
                    super::wire::Conflict::File,
                ))));
            }
        }
        files.delete(&path.lower).ok_or(CallError::Route(lookup(LookupError::NotFound)))?
    };
    emulator.notify(&caller.account_id);
    tracing::debug!(account_id = %caller.account_id, "deleted by the app");
    Ok(json_response(&json!({"metadata": entry.to_json(true)})))
}

#[derive(Deserialize)]
struct DownloadArg {
    path: String,
}

fn download(
    emulator: &Emulator,
    caller: &Caller,
    arg: DownloadArg,
) -> Result<HttpResponse, CallError> {
    let world = emulator.world();
    let Target::Path(path) = resolve(&world, &caller.account_id, &arg.path, path_error)? else {
        return Err(CallError::Route(path_error(LookupError::NotFile)));
    };
    let files = &account(&world.accounts, caller)?.files;
    let node = files.get(&path.lower).ok_or(CallError::Route(path_error(LookupError::NotFound)))?;
    let NodeKind::File(file) = &node.kind else {
        return Err(CallError::Route(path_error(LookupError::NotFile)));
    };
    if !file.downloadable {
        return Err(CallError::Route(RouteError::void("unsupported_file")));
    }
    let content = file.content.to_vec();
    let metadata = files
        .entry(&path.lower)
        .map(|entry| header_safe_json(&entry.to_json(false)))
        .unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("Dropbox-API-Result", metadata))
        .body(content))
}

#[derive(Deserialize)]
struct UploadArg {
    path: String,
    mode: Option<Value>,
    #[serde(default)]
    autorename: bool,
    client_modified: Option<String>,
    // `mute` only spares the user a desktop notification; webhooks fire regardless.
    #[serde(default)]
    strict_conflict: bool,
    content_hash: Option<String>,
}

/// `WriteMode` in any of its forms: `"add"`, `{".tag": "overwrite"}`,
/// `{".tag": "update", "update": "<rev>"}` (the bare-string form is for void members only).
fn write_mode(mode: Option<&Value>) -> Result<WriteMode, String> {
    let tag = match mode {
        None | Some(Value::Null) => return Ok(WriteMode::Add),
        Some(Value::String(tag)) => tag.as_str(),
        Some(Value::Object(object)) => object.get(".tag").and_then(Value::as_str).unwrap_or(""),
        Some(_) => "",
    };
    match tag {
        "add" => Ok(WriteMode::Add),
        "overwrite" => Ok(WriteMode::Overwrite),
        "update" => {
            let rev = mode.and_then(|mode| mode.get("update")).and_then(Value::as_str);
            match rev {
                Some(rev) if rev.len() >= 9 && rev.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Ok(WriteMode::Update(rev.to_owned()))
                }
                _ => Err("mode: update: expected a rev".to_owned()),
            }
        }
        _ => Err("mode: unknown tag".to_owned()),
    }
}

fn upload(
    emulator: &Emulator,
    caller: &Caller,
    arg: UploadArg,
    content: Vec<u8>,
) -> Result<HttpResponse, CallError> {
    let in_header = |message: String| {
        CallError::BadInput(format!("HTTP header \"Dropbox-API-Arg\": {message}"))
    };
    let mode = write_mode(arg.mode.as_ref()).map_err(in_header)?;
    let client_modified = match &arg.client_modified {
        None => None,
        Some(text) => Some(
            clock::parse_timestamp(text)
                .ok_or_else(|| in_header(format!("client_modified: bad timestamp {text:?}")))?,
        ),
    };
    let session = random_token(20);
    if let Some(expected) = &arg.content_hash {
        if expected.len() != 64 {
            return Err(in_header("content_hash: must be 64 characters".to_owned()));
        }
        if !expected.eq_ignore_ascii_case(&super::content_hash(&content)) {
            return Err(CallError::Route(RouteError::void("content_hash_mismatch")));
        }
    }
    let written = {
        let mut world = emulator.world();
        let malformed = || RouteError::upload_write(WriteError::MalformedPath, &session);
        let target =
            resolve(&world, &caller.account_id, &arg.path, |_| malformed()).map_err(|error| {
                match error {
                    // Upload's argument is a header, and its problems are reported as such.
                    CallError::BadInput(message) => in_header(message),
                    error => error,
                }
            })?;
        let Target::Path(path) = target else {
            return Err(CallError::Route(malformed()));
        };
        let World { accounts, mint, .. } = &mut *world;
        let files = &mut account_mut(accounts, caller)?.files;
        let request = WriteRequest {
            path,
            content,
            mode,
            autorename: arg.autorename,
            strict_conflict: arg.strict_conflict,
            client_modified,
        };
        files
            .write(request, clock::now_seconds(), mint)
            .map_err(|error| CallError::Route(RouteError::upload_write(error, &session)))?
    };
    if written.changed {
        // The app's own uploads notify too, as on Dropbox (mdwebhook relies on ignoring them).
        emulator.notify(&caller.account_id);
    }
    tracing::debug!(account_id = %caller.account_id, changed = written.changed, "uploaded");
    Ok(json_response(&written.entry.to_json(false)))
}
