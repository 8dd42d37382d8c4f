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
//!
//! Before any of that, a call for an account that has `max_concurrent_calls_per_user` calls in
//! flight already is refused with 429 `too_many_requests` ([`crate::emulator::rate_limit`]).
//!
//! Here: the pipeline, tokens, scopes, path roots and the caller's account. The checks of a
//! request's type and argument are in `args`, the routes that read the tree in `listing`, those
//! that move file contents in `files`, upload sessions in `sessions`.

use std::collections::BTreeMap;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::emulator::path::{DropboxPath, PathArg, PathPattern, PathProblem, parse_arg};
use crate::emulator::rate_limit::{CallInFlight, RETRY_AFTER_SECONDS};
use crate::emulator::stats::Concurrency;
use crate::emulator::tokens::{Caller, random_token};
use crate::emulator::wire::{AuthFailure, CallError, LookupError, RouteError, TEXT_PLAIN};
use crate::emulator::{Account, Emulator, World};

mod args;
mod files;
mod listing;
mod sessions;

use self::args::{ArgPlace, check_content_type, header_arg, rpc_arg, void_arg};
pub use self::files::NamespaceWrites;
use self::files::{begin_write, delete, download, upload};
use self::listing::{get_metadata, list_folder, list_folder_continue};
pub use self::sessions::UploadSessions;

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
    SessionStart,
    SessionAppend,
    SessionFinish,
    SessionFinishBatch,
    SessionFinishBatchV2,
    SessionFinishBatchCheck,
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
            "files/upload_session/start" => Route::SessionStart,
            "files/upload_session/append_v2" => Route::SessionAppend,
            "files/upload_session/finish" => Route::SessionFinish,
            "files/upload_session/finish_batch" => Route::SessionFinishBatch,
            "files/upload_session/finish_batch_v2" => Route::SessionFinishBatchV2,
            "files/upload_session/finish_batch/check" => Route::SessionFinishBatchCheck,
            _ => return None,
        })
    }

    fn style(self) -> Style {
        match self {
            Route::GetCurrentAccount | Route::Revoke => Style::RpcVoid,
            Route::Download => Style::Download,
            Route::Upload | Route::SessionStart | Route::SessionAppend | Route::SessionFinish => {
                Style::Upload
            }
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
            Route::Upload
            | Route::DeleteV2
            | Route::SessionStart
            | Route::SessionAppend
            | Route::SessionFinish
            | Route::SessionFinishBatch
            | Route::SessionFinishBatchV2
            | Route::SessionFinishBatchCheck => Some("files.content.write"),
            Route::Revoke => None,
        }
    }

    /// A `files/…` route, whose paths a path root changes.
    fn is_files(self) -> bool {
        !matches!(self, Route::GetCurrentAccount | Route::Revoke)
    }

    /// Which concurrency the stats count the call towards: the routes that take the namespace's
    /// write lock are writes; sending bytes to a session is not.
    fn concurrency(self) -> Concurrency {
        match self {
            Route::ListFolder | Route::ListFolderContinue => Concurrency::Listing,
            Route::Upload
            | Route::DeleteV2
            | Route::SessionFinish
            | Route::SessionFinishBatch
            | Route::SessionFinishBatchV2 => Concurrency::Write,
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
    // Held until the answer is made, through the `latency` wait and any hold or fault.
    let _counted = match admit(&emulator, &account_id) {
        Ok(counted) => counted,
        Err(refusal) => return with_request_id(refusal.into_response(&name)),
    };
    let _in_flight = emulator.inner.stats.enter(route.concurrency(), &account_id);
    if let Some(response) = emulator.intercept(&name, &account_id).await {
        return response;
    }
    let response = match serve(route, &request, payload, &emulator).await {
        Ok(response) => {
            emulator.inner.stats.count_success(&name, &account_id);
            response
        }
        Err(error) => {
            if matches!(error, CallError::TooManyWriteOperations) {
                emulator.inner.stats.count_refusal("too_many_write_operations", &account_id);
            }
            error.into_response(&name)
        }
    };
    with_request_id(response)
}

/// Counts the call against its account's limit of calls in flight, or refuses it as Dropbox's
/// rate limit does (docs/dropbox.md §14). Calls without a known token are not counted: they
/// are refused before they cost anything.
fn admit(emulator: &Emulator, account_id: &str) -> Result<Option<CallInFlight>, CallError> {
    let Some(limit) = emulator.config().max_concurrent_calls_per_user else {
        return Ok(None);
    };
    if account_id.is_empty() {
        return Ok(None);
    }
    match emulator.inner.calls_in_flight.enter(account_id, limit) {
        Some(counted) => Ok(Some(counted)),
        None => {
            tracing::debug!(%account_id, limit, "call past the rate limit refused");
            emulator.inner.stats.count_refusal("too_many_requests", account_id);
            Err(CallError::TooManyRequests { retry_after_seconds: RETRY_AFTER_SECONDS })
        }
    }
}

fn with_request_id(mut response: HttpResponse) -> HttpResponse {
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
    if route.style() == Style::Upload {
        // Up to 150 MiB: everything that can refuse the upload is checked before any of it is
        // read, so a refused one costs no buffering. Its argument is in a header, not the body.
        check_content_type(Style::Upload, headers, false)?;
        let caller = authenticate_for(route, emulator, headers)?;
        return match route {
            Route::Upload => {
                let arg = header_arg(headers)?;
                // Held while the body streams in: Dropbox's write is in progress from here.
                let _writing = begin_write(emulator, &caller)?;
                upload(emulator, &caller, arg, read_content(payload).await?)
            }
            // Sending bytes to a session writes nothing yet: no lock (docs/dropbox.md §13).
            Route::SessionStart => {
                let arg = header_arg(headers)?;
                sessions::start(emulator, &caller, arg, read_content(payload).await?)
            }
            Route::SessionAppend => {
                let arg = header_arg(headers)?;
                sessions::append(emulator, &caller, arg, read_content(payload).await?)
            }
            _ => {
                let arg = header_arg(headers)?;
                let _writing = begin_write(emulator, &caller)?;
                sessions::finish(emulator, &caller, arg, read_content(payload).await?)
            }
        };
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
        Route::SessionFinishBatchV2 => {
            let arg = rpc_arg(&body)?;
            // Once for the whole batch, as Dropbox takes it (docs/dropbox.md §13).
            let _writing = begin_write(emulator, &caller)?;
            sessions::finish_batch_v2(emulator, &caller, arg)
        }
        Route::SessionFinishBatch => {
            let arg = rpc_arg(&body)?;
            let writing = begin_write(emulator, &caller)?;
            sessions::finish_batch(emulator, &caller, arg, writing)
        }
        Route::SessionFinishBatchCheck => {
            sessions::finish_batch_check(emulator, &caller, rpc_arg(&body)?)
        }
        // Served above, before their bodies were read; never reached.
        Route::Upload | Route::SessionStart | Route::SessionAppend | Route::SessionFinish => {
            Err(unreadable_body())
        }
    }
}

/// The body of an upload-style call: at most 150 MiB, or the route's `payload_too_large`.
async fn read_content(payload: web::Payload) -> Result<Vec<u8>, CallError> {
    match payload.to_bytes_limited(MAX_UPLOAD).await {
        Ok(Ok(content)) => Ok(content.to_vec()),
        Ok(Err(_)) => Err(unreadable_body()),
        Err(_) => Err(CallError::Route(RouteError::void("payload_too_large"))),
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
