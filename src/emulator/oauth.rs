//! OAuth 2 as Dropbox does it: the browser-facing `/oauth2/authorize` with a consent page, and
//! the token endpoint `/oauth2/token` (docs/dropbox.md §2, checklist §12).
//!
//! Strict where Dropbox is: one-time codes, `redirect_uri` equal to the authorize call's, PKCE
//! S256 checked, the secret required again to refresh a grant made with the secret, and OAuth
//! errors as 400 JSON `{"error", "error_description"}`.
//!
//! Unlike Dropbox, "Allow" answers only to the owner's browser with the page it was shown
//! ([`super::guard`]): on a shared machine anyone can reach the emulator's port, and its consent
//! page signs whoever clicks in as the account signed in here.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Emulator;
use super::guard::refused_page;
use super::tokens::{
    ClientAuth, Code, PendingConsent, Tokens, all_scopes, join_scopes, parse_scopes, random_token,
};
use super::wire::{TEXT_PLAIN, form_decode};

const DECISION_PATH: &str = "/oauth2/authorize/decision";
const NO_AUTH_FUNCTION: &str = "No auth function available for given request";

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/oauth2/authorize", web::get().to(authorize))
        .route(DECISION_PATH, web::post().to(decide))
        .route("/oauth2/token", web::post().to(issue_token));
}

/// Parameters, first occurrence winning (the Rust SDK sends some twice, docs/dropbox.md §2).
fn parameters(encoded: &[u8], into: &mut HashMap<String, String>) {
    for (name, value) in url::form_urlencoded::parse(encoded) {
        into.entry(name.into_owned()).or_insert_with(|| value.into_owned());
    }
}

#[derive(Template)]
#[template(path = "emulator/error.html")]
struct ErrorPage<'a> {
    message: &'a str,
}

/// A browser-facing refusal: Dropbox shows an error page and redirects nowhere, since the
/// request is not to be trusted with a redirect.
fn refuse_page(message: &str) -> HttpResponse {
    match (ErrorPage { message }).render() {
        Ok(html) => HttpResponse::BadRequest().content_type(TEXT_HTML).body(html),
        Err(error) => {
            tracing::error!(%error, "error page failed to render");
            HttpResponse::BadRequest().content_type(TEXT_PLAIN).body(message.to_owned())
        }
    }
}

const TEXT_HTML: &str = "text/html; charset=utf-8";

#[derive(Template)]
#[template(path = "emulator/consent.html")]
struct ConsentPage<'a> {
    app_key: &'a str,
    account_name: &'a str,
    scopes: Vec<String>,
    action: &'a str,
    request_id: &'a str,
    /// The per-page token of the owner's browser; `None` elsewhere, where Allow is not offered.
    page_token: Option<String>,
}

async fn authorize(request: HttpRequest, emulator: web::Data<Emulator>) -> HttpResponse {
    let mut params = HashMap::new();
    parameters(request.query_string().as_bytes(), &mut params);
    let consent = match check_authorize(&emulator, &params) {
        Ok(consent) => consent,
        Err(message) => return refuse_page(message),
    };
    emulator.inner.stats.count("oauth2/authorize", &consent.account_id);
    if emulator.config().auto_approve {
        tracing::debug!(account_id = %consent.account_id, "authorize approved automatically");
        return approve(&emulator, consent);
    }
    let request_id = random_token(32);
    let guard = &emulator.inner.guard;
    let page_token = guard.is_owner_browser(&request).then(|| guard.page_token(&request_id));
    let account_name = emulator
        .world()
        .accounts
        .get(&consent.account_id)
        .map(|account| account.display_name.clone())
        .unwrap_or_default();
    let page = ConsentPage {
        app_key: &emulator.config().app_key,
        account_name: &account_name,
        scopes: consent.scopes.iter().cloned().collect(),
        action: DECISION_PATH,
        request_id: &request_id,
        page_token,
    };
    match page.render() {
        Ok(html) => {
            emulator.world().tokens.hold_consent(request_id, consent);
            HttpResponse::Ok().content_type(TEXT_HTML).body(html)
        }
        Err(error) => {
            tracing::error!(%error, "consent page failed to render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// Validates an authorize request the way Dropbox's page would, naming the first problem.
fn check_authorize(
    emulator: &Emulator,
    params: &HashMap<String, String>,
) -> Result<PendingConsent, &'static str> {
    let get = |name: &str| params.get(name).map(String::as_str);
    if get("client_id") != Some(emulator.config().app_key.as_str()) {
        return Err("Invalid client_id.");
    }
    if get("response_type") != Some("code") {
        return Err("Invalid response_type: the emulator supports only \"code\".");
    }
    let redirect_uri = get("redirect_uri").map(str::to_owned);
    if let Some(uri) = &redirect_uri {
        let parsed = url::Url::parse(uri).map_err(|_| "Invalid redirect_uri.")?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("Invalid redirect_uri.");
        }
        // Compared parsed, so `http://host` and `http://host/` are one URI; Dropbox requires
        // an exact match with a URI registered in the App Console.
        let registered = &emulator.config().redirect_uris;
        if !registered.is_empty() && !registered.contains(&parsed) {
            return Err("Invalid redirect_uri. It must exactly match one of the redirect URIs \
                        you've pre-configured for your app (including the path).");
        }
    }
    let state = get("state").map(str::to_owned);
    if state.as_ref().is_some_and(|state| state.len() > 500) {
        return Err("state is longer than 500 bytes.");
    }
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (Some(challenge), Some("S256")) if challenge.len() == 43 => Some(challenge.to_owned()),
        _ => return Err("Invalid PKCE parameters: expected a S256 code_challenge."),
    };
    let scopes = match get("scope") {
        None => all_scopes(),
        Some(scope) => parse_scopes(scope).ok_or("Invalid scope.")?,
    };
    // Omitted means the app default; the emulated app defaults to short-lived tokens only, so a
    // client that forgets `offline` gets no refresh token, as it would on a new Dropbox app.
    let offline = match get("token_access_type") {
        Some("offline") => true,
        None | Some("online") | Some("legacy") => false,
        Some(_) => return Err("Invalid token_access_type."),
    };
    let account_id = emulator
        .world()
        .signed_in
        .clone()
        .ok_or("Nobody is signed in at the emulated dropbox.com (Emulator::sign_in).")?;
    Ok(PendingConsent { account_id, scopes, redirect_uri, state, code_challenge, offline })
}

/// Issues a code and sends the browser back to the app (or shows the code without a
/// `redirect_uri`, as Dropbox does).
fn approve(emulator: &Emulator, consent: PendingConsent) -> HttpResponse {
    let code = emulator.world().tokens.issue_code(Code {
        account_id: consent.account_id,
        scopes: consent.scopes,
        redirect_uri: consent.redirect_uri.clone(),
        code_challenge: consent.code_challenge,
        offline: consent.offline,
        expires_at: Tokens::code_expiry(),
    });
    redirect_back(consent.redirect_uri.as_deref(), consent.state.as_deref(), &[("code", &code)])
        .unwrap_or_else(|| {
            HttpResponse::Ok()
                .content_type(TEXT_PLAIN)
                .body(format!("Enter this code into the app: {code}\n"))
        })
}

/// A 302 to `redirect_uri` with the given parameters and `state`; `None` without a URI.
fn redirect_back(
    redirect_uri: Option<&str>,
    state: Option<&str>,
    params: &[(&str, &str)],
) -> Option<HttpResponse> {
    let mut target = url::Url::parse(redirect_uri?).ok()?;
    {
        let mut query = target.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    Some(HttpResponse::Found().insert_header((header::LOCATION, target.as_str())).finish())
}

#[derive(Deserialize)]
struct Decision {
    request: String,
    decision: String,
    page_token: Option<String>,
}

async fn decide(
    request: HttpRequest,
    form: web::Form<Decision>,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    // Checked before the request is taken: a refused Allow must not spend the owner's page.
    // Deny needs nothing: it grants nothing.
    if form.decision == "allow" {
        let guard = &emulator.inner.guard;
        let owner = guard.is_owner_browser(&request)
            && form
                .page_token
                .as_deref()
                .is_some_and(|token| guard.is_page_token(&form.request, token));
        if !owner {
            tracing::info!("consent refused: Allow from a browser that is not the owner's");
            return refuse_allow();
        }
    }
    let consent = emulator.world().tokens.take_consent(&form.request);
    let Some(consent) = consent else {
        return refuse_page("This authorization request is unknown or was already answered.");
    };
    tracing::debug!(account_id = %consent.account_id, decision = %form.decision, "consent decided");
    if form.decision == "allow" {
        return approve(&emulator, consent);
    }
    let denied = [
        ("error", "access_denied"),
        (
            "error_description",
            "The user chose not to give your app access to their Dropbox account.",
        ),
    ];
    redirect_back(consent.redirect_uri.as_deref(), consent.state.as_deref(), &denied)
        .unwrap_or_else(|| refuse_page("Access denied."))
}

/// "Allow" from a browser that did not open the owner link, or from a page not shown to it.
fn refuse_allow() -> HttpResponse {
    refused_page(
        StatusCode::FORBIDDEN,
        "Only the owner of this emulator can allow access",
        "This browser has not opened the owner link of this run of the Dropbox emulator, so it \
         cannot give an app access to the Dropbox signed in here.",
        "If you started `markdrop demo`, open the link it printed in its terminal (it works \
         once), then click \"Connect Dropbox\" again. A script holding the control secret gets \
         a new link from POST /_emulator/owner_links.",
    )
}

/// An RFC 6749 error as Dropbox sends it: 400 JSON.
fn oauth_error(error: &str, description: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("application/json")
        .body(json!({"error": error, "error_description": description}).to_string())
}

/// The client as it authenticated: `Basic key:secret`, or `client_id` (+ `client_secret`).
struct Client {
    id: Option<String>,
    secret: Option<String>,
}

fn client(request: &HttpRequest, params: &HashMap<String, String>) -> Client {
    let basic = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|pair| basic_credentials(&pair));
    match basic {
        Some((id, secret)) => Client { id: Some(id), secret: Some(secret) },
        None => Client {
            id: params.get("client_id").cloned(),
            secret: params.get("client_secret").cloned(),
        },
    }
}

/// `id:secret` from a Basic header. RFC 6749 §2.3.1 form-urlencodes both before joining them
/// (the oauth2 crate does), so a `:` inside either is escaped and the first one splits.
fn basic_credentials(pair: &str) -> Option<(String, String)> {
    let (id, secret) = pair.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

async fn issue_token(
    request: HttpRequest,
    body: web::Bytes,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    // The JS SDK sends the parameters in the query string of the POST (docs/dropbox.md §2).
    let mut params = HashMap::new();
    parameters(request.query_string().as_bytes(), &mut params);
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|value| value.as_bytes().starts_with(b"application/x-www-form-urlencoded"));
    if form {
        parameters(&body, &mut params);
    }
    let account_id = {
        let world = emulator.world();
        params
            .get("code")
            .and_then(|code| world.tokens.peek_code(code).map(|code| code.account_id.clone()))
            .or_else(|| {
                let refresh = params.get("refresh_token")?;
                world.tokens.account_of_refresh(refresh).map(str::to_owned)
            })
            .unwrap_or_default()
    };
    emulator.inner.stats.count("oauth2/token", &account_id);
    if let Some(response) = emulator.intercept("oauth2/token", &account_id).await {
        return response;
    }
    let grant_type = params.get("grant_type").map(String::as_str).unwrap_or_default();
    tracing::debug!(%grant_type, %account_id, "token request");
    let client = client(&request, &params);
    let config = emulator.config();
    let Some(client_id) = client.id else {
        return oauth_error("invalid_request", NO_AUTH_FUNCTION);
    };
    if client_id != config.app_key {
        return oauth_error("invalid_client", "Invalid client_id or client_secret");
    }
    let with_secret = match client.secret {
        Some(secret) if secret == config.app_secret => true,
        Some(_) => return oauth_error("invalid_client", "Invalid client_id or client_secret"),
        None => false,
    };
    match grant_type {
        "authorization_code" => exchange_code(&emulator, &params, with_secret),
        "refresh_token" => refresh(&emulator, &params, with_secret),
        "" => oauth_error("invalid_request", "No grant_type given"),
        _ => oauth_error("unsupported_grant_type", "grant_type is not supported"),
    }
}

fn exchange_code(
    emulator: &Emulator,
    params: &HashMap<String, String>,
    with_secret: bool,
) -> HttpResponse {
    let Some(code) = params.get("code") else {
        return oauth_error("invalid_request", "No code given");
    };
    let mut world = emulator.world();
    // One-time: the code is gone whatever happens next.
    let Some(code) = world.tokens.take_code(code) else {
        return oauth_error("invalid_grant", "code doesn't exist or has expired");
    };
    if params.get("redirect_uri") != code.redirect_uri.as_ref() {
        return oauth_error("invalid_grant", "redirect_uri mismatch");
    }
    let client_auth = match (&code.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            let well_formed = (43..=128).contains(&verifier.len())
                && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let derived = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if !well_formed || derived != *challenge {
                return oauth_error("invalid_grant", "invalid code verifier");
            }
            if with_secret { ClientAuth::Secret } else { ClientAuth::Pkce }
        }
        (Some(_), None) => return oauth_error("invalid_grant", "invalid code verifier"),
        (None, _) if with_secret => ClientAuth::Secret,
        (None, _) => return oauth_error("invalid_request", NO_AUTH_FUNCTION),
    };
    let lifetime = emulator.config().access_token_lifetime;
    let issued =
        world.tokens.grant(&code.account_id, code.scopes, client_auth, code.offline, lifetime);
    let uid = world.accounts.get(&code.account_id).map(|account| account.uid).unwrap_or_default();
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": lifetime.as_secs(),
        "scope": join_scopes(&issued.scopes),
        "uid": uid.to_string(),
        "account_id": code.account_id,
    });
    if let Some(refresh_token) = issued.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    HttpResponse::Ok().content_type("application/json").body(body.to_string())
}

fn refresh(
    emulator: &Emulator,
    params: &HashMap<String, String>,
    with_secret: bool,
) -> HttpResponse {
    let Some(refresh_token) = params.get("refresh_token") else {
        return oauth_error("invalid_request", "No refresh_token given");
    };
    let mut world = emulator.world();
    let Some((grant, record)) = world.tokens.refresh_grant(refresh_token) else {
        return oauth_error("invalid_grant", "refresh token is invalid or revoked");
    };
    // A grant made with the secret needs it again (observed, Rust SDK issue #151).
    if record.client_auth == ClientAuth::Secret && !with_secret {
        return oauth_error("invalid_request", NO_AUTH_FUNCTION);
    }
    let scopes = match params.get("scope") {
        None => record.scopes.clone(),
        Some(scope) => match parse_scopes(scope) {
            Some(scopes) if scopes.is_subset(&record.scopes) => scopes,
            _ => {
                return oauth_error("invalid_scope", "scope is not a subset of the granted scopes");
            }
        },
    };
    let lifetime = emulator.config().access_token_lifetime;
    let access_token = world.tokens.refresh(grant, scopes.clone(), lifetime);
    // No new refresh token: Dropbox's refresh tokens do not rotate.
    let body = json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": lifetime.as_secs(),
        "scope": join_scopes(&scopes),
    });
    HttpResponse::Ok().content_type("application/json").body(body.to_string())
}
