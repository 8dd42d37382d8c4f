//! The `/2/…` routes markdrop uses, answered like Dropbox: route styles (rpc, upload, download),
//! bearer-token checks, scopes, argument decoding and each route's results and errors.
//!
//! Every call goes through [`call`]: count it, hold it or apply a fault if a test asked for one,
//! then check the request in the order Dropbox reports problems (Content-Type, token, scope,
//! argument) and run the route. An upload's body is read only once those checks have passed.
//!
//! As strict as Dropbox where leniency would hide a client's bug: every argument declares all of
//! its spec's fields and refuses any other ([`Argument`]), paths and revs must match the spec's
//! patterns, and a write to an account while another is in progress gets 429
//! `too_many_write_operations` ([`NamespaceWrites`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::cursor::{Cursor, Resume};
use super::path::{DropboxPath, PathArg, PathPattern, PathProblem, parse_arg, rev_problem};
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

    /// The scope the route needs (docs/dropbox.md §9); revoke needs none.
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

    /// A `files/…` route, whose paths a path root changes.
    fn is_files(self) -> bool {
        matches!(
            self,
            Route::ListFolder
                | Route::ListFolderContinue
                | Route::GetMetadata
                | Route::DeleteV2
                | Route::Download
                | Route::Upload
        )
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
        // Held while the body streams in: Dropbox's write is in progress from here.
        let _writing = begin_write(emulator, &caller)?;
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
        Route::DeleteV2 => {
            let arg = rpc_arg(&body)?;
            let _writing = begin_write(emulator, &caller)?;
            delete(emulator, &caller, arg)
        }
        Route::Download => download(emulator, &caller, header_arg(headers)?),
        // Served above, before its body was read; never reached.
        Route::Upload => Err(unreadable_body()),
    }
}

fn unreadable_body() -> CallError {
    CallError::BadInput("could not read request body".to_owned())
}

/// The caller behind the bearer token, if it may call `route`, with where its paths start.
fn authenticate_for(
    route: Route,
    emulator: &Emulator,
    headers: &HeaderMap,
) -> Result<Caller, CallError> {
    let mut caller = authenticate(emulator, headers)?;
    if let Some(scope) = route.scope().filter(|scope| !caller.scopes.contains(*scope)) {
        return Err(CallError::Unauthorized(AuthFailure::MissingScope(scope)));
    }
    if route.is_files() {
        caller.home = home_of(emulator, &caller, headers)?;
    }
    Ok(caller)
}

/// Where a files call's paths start (`Dropbox-API-Path-Root`): the root of the account's tree,
/// or a team member's home folder in it, which is where they start without the header.
fn home_of(
    emulator: &Emulator,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<Option<DropboxPath>, CallError> {
    let world = emulator.world();
    let account = account(&world.accounts, caller)?;
    let home_namespace = account.uid.to_string();
    let (root_namespace, home) = match &account.team {
        Some(team) => (team.root_namespace.to_string(), Some(team.home.clone())),
        None => (home_namespace.clone(), None),
    };
    let Some(value) = headers.get(PATH_ROOT) else { return Ok(home) };
    let undecodable = || {
        CallError::BadInput(format!("HTTP header \"{PATH_ROOT}\": could not decode input as JSON"))
    };
    let root: PathRoot = value
        .to_str()
        .ok()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(undecodable)?;
    let root_info = || {
        json!({
            ".tag": if account.team.is_some() { "team" } else { "user" },
            "root_namespace_id": root_namespace,
            "home_namespace_id": home_namespace,
        })
    };
    match root {
        PathRoot::Home => Ok(home),
        PathRoot::Root { root } if root == root_namespace => Ok(None),
        // The root the app asked for is not the account's: Dropbox says which it is.
        PathRoot::Root { .. } => Err(CallError::PathRoot(json!({
            ".tag": "invalid_root",
            "invalid_root": root_info(),
        }))),
        PathRoot::NamespaceId { namespace_id } if namespace_id == root_namespace => Ok(None),
        PathRoot::NamespaceId { namespace_id } if namespace_id == home_namespace => Ok(home),
        PathRoot::NamespaceId { .. } => Err(CallError::PathRoot(json!({".tag": "no_permission"}))),
    }
}

const PATH_ROOT: &str = "Dropbox-API-Path-Root";

/// `PathRoot`, the value of `Dropbox-API-Path-Root`.
#[derive(Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
enum PathRoot {
    Home,
    Root { root: String },
    NamespaceId { namespace_id: String },
}

/// A files call's metadata as the caller sees it: a team member calling without a path root
/// sees paths from their home folder.
fn present(caller: &Caller, mut value: Value) -> Value {
    if let Some(home) = &caller.home {
        within(&mut value, home);
    }
    value
}

fn within(value: &mut Value, home: &DropboxPath) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                let prefix = match key.as_str() {
                    "path_lower" => &home.lower,
                    "path_display" => &home.display,
                    _ => {
                        within(field, home);
                        continue;
                    }
                };
                // Only the home folder itself and what is under it: `/Team Folder` is not
                // under `/Team`.
                let under = field.as_str().and_then(|path| path.strip_prefix(prefix.as_str()));
                if let Some(rest) = under.filter(|rest| rest.is_empty() || rest.starts_with('/')) {
                    *field = Value::String(rest.to_owned());
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| within(item, home)),
        _ => {}
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
        // Void routes: no body and no Content-Type is how the JS SDK calls them (docs/dropbox.md §1).
        (Style::RpcVoid, None) => empty_body,
        (Style::Rpc | Style::RpcVoid, Some(value)) => {
            value == b"application/json" || value == b"application/json; charset=utf-8"
        }
        (Style::Rpc, None) => false,
        // Exactly this; even `; charset=utf8` appended is refused (observed, docs/dropbox.md §3.5).
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

/// A Void argument: no body at all, or exactly `null` (docs/dropbox.md §1).
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

/// Where a route's argument travels, which is how Dropbox names it in a 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArgPlace {
    Body,
    Header,
}

impl ArgPlace {
    /// A 400 for the argument: `request body: <detail>` or `HTTP header "Dropbox-API-Arg": …`.
    fn refuse(self, detail: impl std::fmt::Display) -> CallError {
        CallError::BadInput(match self {
            ArgPlace::Body => format!("request body: {detail}"),
            ArgPlace::Header => format!("HTTP header \"Dropbox-API-Arg\": {detail}"),
        })
    }
}

/// A route's argument as `files.stone` declares it. Every field of the spec is declared and
/// unknown ones are refused (`deny_unknown_fields`), as Dropbox refuses them: a misspelled
/// optional field must not pass as if it were absent (a `parent_revv` would make a guarded
/// delete unconditional). [`Argument::check`] then applies the spec's patterns and ranges.
trait Argument: DeserializeOwned {
    /// The detail of the 400 for a value the spec's patterns or ranges refuse.
    fn check(&self) -> Result<(), String>;
}

fn argument<T: Argument>(value: Value, place: ArgPlace) -> Result<T, CallError> {
    let arg: T =
        serde_json::from_value(value).map_err(|error| place.refuse(serde_detail(&error)))?;
    arg.check().map_err(|detail| place.refuse(detail))?;
    Ok(arg)
}

/// serde's message in Dropbox's words where they differ: for an unknown field Dropbox says
/// `unknown field 'parent_revv'` where serde says ``unknown field `parent_revv`, expected …``,
/// and a union's unknown member is an unknown tag.
fn serde_detail(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let named = |prefix: &str| {
        let rest = message.strip_prefix(prefix)?;
        let end = rest.rfind("`, expected").or_else(|| rest.rfind("`, there are no "))?;
        Some(rest[..end].to_owned())
    };
    if let Some(field) = named("unknown field `") {
        format!("unknown field '{field}'")
    } else if let Some(tag) = named("unknown variant `") {
        format!("unknown tag '{tag}'")
    } else {
        message
    }
}

fn rpc_arg<T: Argument>(body: &[u8]) -> Result<T, CallError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| CallError::BadInput(UNDECODABLE_BODY.to_owned()))?;
    argument(value, ArgPlace::Body)
}

/// The `Dropbox-API-Arg` header: JSON that must be pure ASCII, non-ASCII written as `\u`
/// escapes (docs/dropbox.md §4). Raw UTF-8 is refused to catch a client that forgets to escape.
fn header_arg<T: Argument>(headers: &HeaderMap) -> Result<T, CallError> {
    let raw = headers.get("Dropbox-API-Arg").ok_or_else(|| {
        CallError::BadInput(
            "Must provide HTTP header \"Dropbox-API-Arg\" or URL parameter \"arg\".".to_owned(),
        )
    })?;
    let bytes = raw.as_bytes();
    let undecodable = || ArgPlace::Header.refuse("could not decode input as JSON");
    if bytes.iter().any(|byte| *byte >= 0x7f) {
        return Err(undecodable());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|_| undecodable())?;
    argument(value, ArgPlace::Header)
}

/// A string field's `min_length`, in Dropbox's words.
fn check_min_length(field: &str, value: &str, min: usize) -> Result<(), String> {
    let length = value.chars().count();
    if length < min {
        return Err(format!("{field}: '{value}' must be at least {min} characters, got {length}"));
    }
    Ok(())
}

/// An optional `Rev` field.
fn check_rev(field: &str, rev: Option<&str>) -> Result<(), String> {
    match rev.and_then(rev_problem) {
        Some(problem) => Err(format!("{field}: {problem}")),
        None => Ok(()),
    }
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
    let home_namespace = account.uid.to_string();
    let root_info = match &account.team {
        Some(team) => json!({
            ".tag": "team",
            "root_namespace_id": team.root_namespace.to_string(),
            "home_namespace_id": home_namespace,
            "home_path": team.home.display,
        }),
        None => json!({
            ".tag": "user",
            "root_namespace_id": home_namespace,
            "home_namespace_id": home_namespace,
        }),
    };
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
        "root_info": root_info,
    })))
}

/// Where a path argument points in the caller's tree.
enum Target {
    Root,
    /// An existing or missing path, by its lowercase key.
    Path(DropboxPath),
}

/// Resolves a path argument its [`Argument::check`] let through: ids are looked up, and a
/// malformed path is the route's 409 `malformed_path`.
fn resolve(
    world: &World,
    caller: &Caller,
    raw: &str,
    pattern: PathPattern,
    place: ArgPlace,
    malformed: impl Fn(LookupError) -> RouteError,
) -> Result<Target, CallError> {
    // A team member's paths without a path root start at their home folder.
    let within_home = |target| match (&caller.home, target) {
        (Some(home), Target::Root) => Target::Path(home.clone()),
        (Some(home), Target::Path(path)) => Target::Path(home.join(&path)),
        (None, target) => target,
    };
    match parse_arg(raw) {
        Ok(PathArg::Root) => Ok(within_home(Target::Root)),
        Ok(PathArg::Path(path)) => Ok(within_home(Target::Path(path))),
        Ok(PathArg::Id(id)) => world
            .accounts
            .get(&caller.account_id)
            .and_then(|account| {
                let lower = account.files.find_id(&id)?;
                let display = account.files.get(&lower)?.display.clone();
                Some(Target::Path(DropboxPath { display, lower }))
            })
            .ok_or_else(|| CallError::Route(malformed(LookupError::NotFound))),
        Err(PathProblem::Malformed) => Err(CallError::Route(malformed(LookupError::MalformedPath))),
        Err(problem) => Err(place.refuse(problem.message(raw, pattern))),
    }
}

fn path_error(error: LookupError) -> RouteError {
    RouteError::lookup("path", error)
}

fn yes() -> bool {
    true
}

/// `SharedLink`: a link's URL and its password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SharedLink {
    #[allow(dead_code, reason = "declared so a valid argument is accepted; no links exist here")]
    url: String,
    #[allow(dead_code, reason = "declared so a valid argument is accepted; no links exist here")]
    password: Option<String>,
}

/// `TemplateFilterBase`: which property templates to include.
#[derive(Deserialize)]
#[serde(tag = ".tag", rename_all = "snake_case", deny_unknown_fields)]
enum TemplateFilter {
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
struct ListFolderArg {
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

fn list_folder(
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
struct ContinueArg {
    cursor: String,
}

impl Argument for ContinueArg {
    fn check(&self) -> Result<(), String> {
        check_min_length("cursor", &self.cursor, 1)
    }
}

fn list_folder_continue(
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
struct GetMetadataArg {
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

fn get_metadata(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteArg {
    path: String,
    parent_rev: Option<String>,
}

impl Argument for DeleteArg {
    fn check(&self) -> Result<(), String> {
        PathPattern::WritePathOrId.check(&self.path)?;
        check_rev("parent_rev", self.parent_rev.as_deref())
    }
}

fn delete(emulator: &Emulator, caller: &Caller, arg: DeleteArg) -> Result<HttpResponse, CallError> {
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
                    super::wire::Conflict::File,
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
struct DownloadArg {
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

fn download(
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
struct PropertyGroup {
    template_id: String,
    #[allow(dead_code, reason = "declared so a valid argument is accepted")]
    fields: Vec<PropertyField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "declared so a valid argument is accepted")]
struct PropertyField {
    name: String,
    value: String,
}

/// `UploadArg` (`CommitInfo`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadArg {
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
    content_hash: Option<String>,
}

impl Argument for UploadArg {
    fn check(&self) -> Result<(), String> {
        PathPattern::WritePathOrId.check(&self.path)?;
        write_mode(self.mode.as_ref())?;
        if let Some(text) = &self.client_modified
            && clock::parse_timestamp(text).is_none()
        {
            return Err(format!("client_modified: bad timestamp {text:?}"));
        }
        // `Sha256HexHash`: `String(min_length=64, max_length=64)`.
        match &self.content_hash {
            Some(hash) if hash.chars().count() > 64 => Err(format!(
                "content_hash: '{hash}' must be at most 64 characters, got {}",
                hash.chars().count()
            )),
            Some(hash) => check_min_length("content_hash", hash, 64),
            None => Ok(()),
        }
    }
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

fn upload(
    emulator: &Emulator,
    caller: &Caller,
    arg: UploadArg,
    content: Vec<u8>,
) -> Result<HttpResponse, CallError> {
    // Checked with the argument already; the spec's default is `add`.
    let mode = write_mode(arg.mode.as_ref()).map_err(|detail| ArgPlace::Header.refuse(detail))?;
    let client_modified = arg.client_modified.as_deref().and_then(clock::parse_timestamp);
    let session = random_token(20);
    if let Some(group) = arg.property_groups.as_ref().and_then(|groups| groups.first()) {
        // The emulator keeps no property templates, so none a group names exists.
        return Err(CallError::Route(RouteError::template_not_found(
            "properties_error",
            &group.template_id,
        )));
    }
    if let Some(expected) = &arg.content_hash
        && !expected.eq_ignore_ascii_case(&super::content_hash(&content))
    {
        return Err(CallError::Route(RouteError::void("content_hash_mismatch")));
    }
    let written = {
        let mut world = emulator.world();
        let malformed = || RouteError::upload_write(WriteError::MalformedPath, &session);
        let target = resolve(
            &world,
            caller,
            &arg.path,
            PathPattern::WritePathOrId,
            ArgPlace::Header,
            |_| malformed(),
        )?;
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
    Ok(json_response(&present(caller, written.entry.to_json(false))))
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
fn begin_write(emulator: &Emulator, caller: &Caller) -> Result<Option<WriteInProgress>, CallError> {
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
