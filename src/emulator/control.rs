//! The HTTP control surface under `/_emulator/`: the Rust test controls, for scripts in any
//! language (`markdrop emulator` runs the emulator alone).
//!
//! It lets its caller read and write every account's files and tokens, and real Dropbox has
//! nothing like it, so every route but the owner link needs the run's control secret as
//! `Authorization: Bearer <secret>` ([`super::guard`] says why and how).
//!
//! - `POST /_emulator/accounts` `{"name": …}` → `{"account_id", "access_token", "refresh_token"}`
//! - `PUT`/`GET`/`DELETE /_emulator/files/{account_id}/{path…}`: write, read, delete as the user
//! - `GET /_emulator/accounts/{account_id}/files`: every file's `path_display`, sorted
//! - `POST /_emulator/accounts/{account_id}/{sign_in|expire_tokens|revoke_tokens|reset_cursors}`
//! - `POST /_emulator/accounts/{account_id}/move` `{"from", "to"}`
//! - `POST /_emulator/accounts/{account_id}/non_downloadable` `{"path"}`
//! - `GET /_emulator/stats`, `POST /_emulator/faults` (a [`FaultRule`] as JSON, `delay_ms`)
//! - `POST /_emulator/owner_links` `{"then"?}` → `{"link"}`: a one-time owner link for a browser
//! - `GET /_emulator/owner?ticket=…`: that link (no secret: the ticket is the credential)

use std::time::Duration;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::wire::{TEXT_PLAIN, percent_decode};
use super::{Emulator, EmulatorError, FaultRule, guard};

/// Control writes are files of any size a test may want, up to Dropbox's own upload limit.
const MAX_FILE: usize = 150 * 1024 * 1024;

pub fn configure(config: &mut web::ServiceConfig) {
    // Before the scope, which would otherwise take this path and ask it for the secret.
    config.route(guard::OWNER_LINK_PATH, web::get().to(guard::open_owner_link));
    config.service(
        web::scope("/_emulator")
            .wrap(from_fn(guard::require_secret))
            .configure(secret_routes)
            .default_service(web::to(unknown_control)),
    );
}

/// The routes behind the secret, relative to `/_emulator`.
fn secret_routes(config: &mut web::ServiceConfig) {
    config
        .route("/owner_links", web::post().to(guard::mint_owner_link))
        .route("/accounts", web::post().to(create_account))
        .route("/stats", web::get().to(stats))
        .route("/faults", web::post().to(add_fault))
        .route("/accounts/{account_id}/files", web::get().to(list_files))
        .route("/accounts/{account_id}/move", web::post().to(move_path))
        .route("/accounts/{account_id}/non_downloadable", web::post().to(non_downloadable))
        .route("/accounts/{account_id}/{action}", web::post().to(account_action))
        .route("/files/{rest:.+}", web::route().to(file));
}

async fn unknown_control(request: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound()
        .content_type(TEXT_PLAIN)
        .body(format!("No emulator control at {:?}", request.path()))
}

fn problem(error: &EmulatorError) -> HttpResponse {
    let mut response = match error {
        EmulatorError::UnknownAccount(_) | EmulatorError::NotFound(_) => HttpResponse::NotFound(),
        EmulatorError::MalformedPath(_) => HttpResponse::BadRequest(),
        EmulatorError::Conflict(_) | EmulatorError::NotAFile(_) => HttpResponse::Conflict(),
    };
    response.content_type(TEXT_PLAIN).body(error.to_string())
}

fn done(result: Result<(), EmulatorError>) -> HttpResponse {
    match result {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(error) => problem(&error),
    }
}

#[derive(Deserialize)]
struct NewAccount {
    name: String,
}

async fn create_account(
    body: web::Json<NewAccount>,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    let linked = emulator.create_account(&body.name);
    HttpResponse::Ok().json(json!({
        "account_id": linked.account_id,
        "access_token": linked.access_token,
        "refresh_token": linked.refresh_token,
    }))
}

async fn stats(emulator: web::Data<Emulator>) -> HttpResponse {
    HttpResponse::Ok().json(emulator.stats())
}

/// A [`FaultRule`] as JSON; only `route` is required.
#[derive(Deserialize)]
struct FaultJson {
    route: String,
    account_id: Option<String>,
    #[serde(default = "one")]
    times: u32,
    #[serde(default)]
    status: u16,
    #[serde(default)]
    body: String,
    #[serde(default)]
    content_type: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    delay_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

async fn add_fault(body: web::Json<FaultJson>, emulator: web::Data<Emulator>) -> HttpResponse {
    let fault = body.into_inner();
    emulator.add_fault(FaultRule {
        route: fault.route,
        account_id: fault.account_id,
        times: fault.times,
        status: fault.status,
        body: fault.body,
        content_type: fault.content_type,
        headers: fault.headers,
        delay: fault.delay_ms.map(Duration::from_millis),
        // A gate is opened from Rust; over HTTP, a delay stands in for it.
        gate: None,
    });
    HttpResponse::NoContent().finish()
}

async fn list_files(account_id: web::Path<String>, emulator: web::Data<Emulator>) -> HttpResponse {
    if !emulator.world().accounts.contains_key(account_id.as_str()) {
        return problem(&EmulatorError::UnknownAccount(account_id.into_inner()));
    }
    HttpResponse::Ok().json(emulator.file_paths(&account_id))
}

#[derive(Deserialize)]
struct Move {
    from: String,
    to: String,
}

async fn move_path(
    account_id: web::Path<String>,
    body: web::Json<Move>,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    done(emulator.move_path(&account_id, &body.from, &body.to))
}

#[derive(Deserialize)]
struct PathBody {
    path: String,
}

async fn non_downloadable(
    account_id: web::Path<String>,
    body: web::Json<PathBody>,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    done(emulator.mark_non_downloadable(&account_id, &body.path))
}

async fn account_action(
    path: web::Path<(String, String)>,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    let (account_id, action) = path.into_inner();
    if !emulator.world().accounts.contains_key(&account_id) {
        return problem(&EmulatorError::UnknownAccount(account_id));
    }
    match action.as_str() {
        "sign_in" => emulator.sign_in(&account_id),
        "expire_tokens" => emulator.expire_access_tokens(&account_id),
        "revoke_tokens" => emulator.revoke_tokens(&account_id),
        "reset_cursors" => emulator.reset_cursors(&account_id),
        _ => return HttpResponse::NotFound().content_type(TEXT_PLAIN).body("unknown action"),
    }
    HttpResponse::NoContent().finish()
}

/// `/_emulator/files/{account_id}/{path…}`, read from the raw URI so `%2F`, `+` and `%25` in
/// names mean what the caller encoded.
async fn file(
    request: HttpRequest,
    payload: web::Payload,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    let raw = request.uri().path().strip_prefix("/_emulator/files/").unwrap_or_default();
    let (account, path) = raw.split_once('/').unwrap_or((raw, ""));
    let (Some(account_id), Some(path)) = (percent_decode(account), percent_decode(path)) else {
        return HttpResponse::BadRequest().content_type(TEXT_PLAIN).body("bad percent-encoding");
    };
    let path = format!("/{path}");
    match *request.method() {
        Method::GET => match emulator.read_file(&account_id, &path) {
            Some(content) => {
                HttpResponse::Ok().content_type("application/octet-stream").body(content)
            }
            None => HttpResponse::NotFound().content_type(TEXT_PLAIN).body("no such file"),
        },
        Method::PUT => match payload.to_bytes_limited(MAX_FILE).await {
            Ok(Ok(content)) => done(emulator.put_file(&account_id, &path, content.to_vec())),
            _ => HttpResponse::PayloadTooLarge().finish(),
        },
        Method::DELETE => done(emulator.delete_path(&account_id, &path)),
        _ => HttpResponse::MethodNotAllowed().finish(),
    }
}
