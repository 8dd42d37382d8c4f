//! Who may drive the emulator: the holder of the control secret, the owner's browser, and only
//! under the address it listens on.
//!
//! The emulator holds every account's files and tokens, and its consent page signs the account
//! signed in at its "dropbox.com" in to whatever app asks. On a shared machine any local user can
//! connect to 127.0.0.1, and any web page the owner opens can make their browser send requests to
//! it, so three rules stand in front of it:
//!
//! - **The control routes** under `/_emulator/` need `Authorization: Bearer <control secret>`.
//!   The secret is made for the run (or given to `markdrop emulator`), handed to tests and `demo`
//!   in process, compared in constant time and never logged. It never goes into a cookie: a
//!   browser sends 127.0.0.1's cookies to every port of 127.0.0.1, another user's server included.
//! - **"Allow" on the consent page** needs the owner's browser: one that opened a one-time link
//!   (minted with the secret: `demo` prints one) and so holds the owner cookie. The cookie is
//!   `HttpOnly`, `SameSite=Strict` and scoped to the consent page's path; its value is an HMAC of
//!   the secret, so even a leaked cookie allows consent only, never the control routes. The
//!   consent form also carries a per-page token (an HMAC of the request's id), put in only when
//!   the page is shown to the owner's browser: a page elsewhere that starts its own authorization
//!   cannot have the owner's browser post "Allow" for it.
//! - **Every request must name the emulator as `127.0.0.1:<port>`** in `Host`: a web page whose
//!   DNS name is rebound to 127.0.0.1 reaches the port but still sends its own name, and gets a
//!   421. `localhost:<port>` is refused too: the emulator hands out 127.0.0.1 URLs only, and one
//!   name means one origin and one cookie jar, so the owner cookie is where the consent page is.

use std::sync::{Mutex, PoisonError};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::tokens::random_token;
use super::wire::TEXT_PLAIN;
use super::{Emulator, RunningEmulator};

/// The owner cookie; its path covers the consent page and the decision it posts.
const OWNER_COOKIE: &str = "emulator_owner";
const OWNER_COOKIE_PATH: &str = "/oauth2/authorize";

/// Where a one-time owner link points.
pub const OWNER_LINK_PATH: &str = "/_emulator/owner";

/// Unused owner links kept at once; beyond this the oldest stop working.
const MAX_OWNER_LINKS: usize = 32;

/// A control secret given from outside must be at least this long (a made-up one is 43
/// characters: 258 random bits).
const MIN_SECRET_LEN: usize = 32;

const TEXT_HTML: &str = "text/html; charset=utf-8";

/// Why a control secret given from outside is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "EMULATOR_CONTROL_SECRET (--control-secret) must be at least 32 characters of visible ASCII, \
     such as the output of `openssl rand -hex 32`"
)]
pub struct WeakSecret;

/// A control secret given to `markdrop emulator`: long enough not to be guessed, and usable in
/// an `Authorization` header as it is.
pub fn parse_control_secret(raw: String) -> Result<SecretString, WeakSecret> {
    if raw.len() < MIN_SECRET_LEN || !raw.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(WeakSecret);
    }
    Ok(SecretString::from(raw))
}

/// The run's control secret and the owner links not yet opened.
pub struct Guard {
    secret: SecretString,
    /// One-time link tickets, each with where it sends the browser afterwards.
    tickets: Mutex<Vec<(String, Option<url::Url>)>>,
}

impl Guard {
    /// A guard on `secret`, or on one made up now.
    pub fn new(secret: Option<SecretString>) -> Guard {
        let secret = secret.unwrap_or_else(|| SecretString::from(random_token(43)));
        Guard { secret, tickets: Mutex::default() }
    }

    fn holds_secret(&self, given: &str) -> bool {
        bool::from(given.as_bytes().ct_eq(self.secret.expose_secret().as_bytes()))
    }

    /// A MAC of `purpose` keyed with the secret: values the emulator can check without storing
    /// them, and that reveal nothing of the secret.
    fn mac(&self, purpose: &str) -> String {
        // Keyed with the secret's SHA-256 through the fixed-size constructor, which cannot fail
        // (HMAC pads a key shorter than its block with zeros, as the array does).
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&Sha256::digest(self.secret.expose_secret().as_bytes()));
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&key.into());
        mac.update(purpose.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    fn owner_cookie_value(&self) -> String {
        self.mac("owner browser")
    }

    /// The token the consent form for `request_id` carries when shown to the owner's browser.
    pub fn page_token(&self, request_id: &str) -> String {
        self.mac(&format!("consent page {request_id}"))
    }

    /// Whether the request comes from the owner's browser (it carries the owner cookie).
    pub fn is_owner_browser(&self, request: &HttpRequest) -> bool {
        let expected = self.owner_cookie_value();
        request
            .cookie(OWNER_COOKIE)
            .is_some_and(|cookie| bool::from(cookie.value().as_bytes().ct_eq(expected.as_bytes())))
    }

    /// Whether `given` is the page token of the consent request `request_id`.
    pub fn is_page_token(&self, request_id: &str, given: &str) -> bool {
        bool::from(given.as_bytes().ct_eq(self.page_token(request_id).as_bytes()))
    }

    fn mint_ticket(&self, then: Option<url::Url>) -> String {
        let ticket = random_token(43);
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        if tickets.len() >= MAX_OWNER_LINKS {
            tickets.remove(0);
        }
        tickets.push((ticket.clone(), then));
        ticket
    }

    /// Takes a ticket out (a link works once), comparing every kept one in constant time.
    /// `Some(then)` when it was valid.
    fn take_ticket(&self, given: &str) -> Option<Option<url::Url>> {
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut found = None;
        for (index, (ticket, _)) in tickets.iter().enumerate() {
            if bool::from(ticket.as_bytes().ct_eq(given.as_bytes())) {
                found = Some(index);
            }
        }
        found.map(|index| tickets.remove(index).1)
    }
}

impl Emulator {
    /// The run's control secret: `Authorization: Bearer <it>` opens the `/_emulator/` routes.
    pub fn control_secret(&self) -> &SecretString {
        &self.inner.guard.secret
    }
}

impl RunningEmulator {
    /// A one-time link that makes the browser opening it the owner's (it may then "Allow" on
    /// the consent page), then sends it on to `then` (or shows a page saying so). This is what
    /// `markdrop demo` prints.
    pub fn owner_link(&self, then: Option<&url::Url>) -> url::Url {
        owner_link(&self.url, &self.emulator, then.cloned())
    }
}

fn owner_link(base: &url::Url, emulator: &Emulator, then: Option<url::Url>) -> url::Url {
    let ticket = emulator.inner.guard.mint_ticket(then);
    let mut link = base.clone();
    link.set_path(OWNER_LINK_PATH);
    link.query_pairs_mut().clear().append_pair("ticket", &ticket);
    link
}

/// `host:port` the emulator answers to, as `Host` must name it.
#[derive(Clone)]
pub struct OwnAddress(pub String);

/// Refuses every request whose `Host` is not the emulator's own address (DNS rebinding).
pub async fn only_own_address(
    own: web::Data<OwnAddress>,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let host = request.headers().get(header::HOST).and_then(|host| host.to_str().ok());
    // An absolute-form request line (`GET http://name/ HTTP/1.1`) names the host too.
    let authority = request.uri().authority().map(|authority| authority.as_str());
    let own_name = |name: &str| name.eq_ignore_ascii_case(&own.0);
    if host.is_some_and(own_name) && authority.is_none_or(own_name) {
        return Ok(next.call(request).await?.map_into_left_body());
    }
    tracing::debug!(host = host.unwrap_or_default(), "request for another host refused");
    let page = refused_page(
        StatusCode::MISDIRECTED_REQUEST,
        "Wrong address",
        "This Dropbox emulator answers only to requests addressed to it by the address it \
         listens on; this one named another host.",
        &format!("Use http://{}/ instead.", own.0),
    );
    Ok(request.into_response(page).map_into_right_body())
}

/// Lets through only callers holding the control secret as a bearer token.
pub async fn require_secret(
    emulator: web::Data<Emulator>,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if given.is_some_and(|given| emulator.inner.guard.holds_secret(given.trim())) {
        return Ok(next.call(request).await?.map_into_left_body());
    }
    let refusal = HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"Dropbox emulator control\""))
        .content_type(TEXT_PLAIN)
        .body(
            "401 Unauthorized: the emulator's control routes need the header \
             `Authorization: Bearer <control secret>`. `markdrop emulator` prints the secret \
             when it starts (or takes it as --control-secret / EMULATOR_CONTROL_SECRET); in \
             Rust, Emulator::control_secret.\n",
        );
    Ok(request.into_response(refusal).map_into_right_body())
}

#[derive(Deserialize)]
pub struct LinkRequest {
    then: Option<url::Url>,
}

/// `POST /_emulator/owner_links` `{"then"?: URL}` → `{"link": URL}`: an owner link for a
/// script's browser (behind the secret, like every control route).
pub async fn mint_owner_link(
    body: Option<web::Json<LinkRequest>>,
    own: web::Data<OwnAddress>,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    let then = body.and_then(|body| body.into_inner().then);
    if then.as_ref().is_some_and(|then| !matches!(then.scheme(), "http" | "https")) {
        return HttpResponse::BadRequest()
            .content_type(TEXT_PLAIN)
            .body("then: not an http(s) URL");
    }
    let Ok(base) = url::Url::parse(&format!("http://{}/", own.0)) else {
        tracing::error!(address = %own.0, "the emulator's own address is not a URL");
        return HttpResponse::InternalServerError().finish();
    };
    let link = owner_link(&base, &emulator, then);
    HttpResponse::Ok().json(serde_json::json!({ "link": link.as_str() }))
}

#[derive(Deserialize)]
pub struct Ticket {
    ticket: String,
}

#[derive(Template)]
#[template(path = "emulator/owner.html")]
struct OwnerPage;

/// `GET /_emulator/owner?ticket=…`: the one-time link. Sets the owner cookie, then sends the
/// browser on (303) or says it is done.
pub async fn open_owner_link(
    query: Option<web::Query<Ticket>>,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    let guard = &emulator.inner.guard;
    let Some(then) = query.and_then(|query| guard.take_ticket(&query.ticket)) else {
        return refused_page(
            StatusCode::FORBIDDEN,
            "This link does not work",
            "An owner link works once, and this one was used already or was never made here.",
            "Use the browser that opened it first, or get a new link: restart `markdrop demo`, \
             or ask the emulator's control surface for one (POST /_emulator/owner_links).",
        );
    };
    let cookie = Cookie::build(OWNER_COOKIE, guard.owner_cookie_value())
        .path(OWNER_COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    tracing::debug!("an owner link was opened");
    let status = if then.is_some() { StatusCode::SEE_OTHER } else { StatusCode::OK };
    let mut response = HttpResponse::build(status);
    response
        .cookie(cookie)
        // The ticket is spent, but the address bar had it: keep it out of any Referer.
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    match then {
        Some(then) => response.insert_header((header::LOCATION, then.as_str())).finish(),
        None => match OwnerPage.render() {
            Ok(html) => response.content_type(TEXT_HTML).body(html),
            Err(error) => {
                tracing::error!(%error, "owner page failed to render");
                response.content_type(TEXT_PLAIN).body("This browser may now allow access.\n")
            }
        },
    }
}

#[derive(Template)]
#[template(path = "emulator/refused.html")]
struct RefusedPage<'a> {
    title: &'a str,
    message: &'a str,
    hint: &'a str,
}

/// A refusal a person can read in a browser.
pub fn refused_page(status: StatusCode, title: &str, message: &str, hint: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    match (RefusedPage { title, message, hint }).render() {
        Ok(html) => response.content_type(TEXT_HTML).body(html),
        Err(error) => {
            tracing::error!(%error, "refusal page failed to render");
            response.content_type(TEXT_PLAIN).body(format!("{title}: {message} {hint}\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_control_secret_must_be_long_and_header_safe() {
        assert_eq!(parse_control_secret("short".to_owned()).err(), Some(WeakSecret));
        let spaced = format!("{} x", "a".repeat(32));
        assert_eq!(parse_control_secret(spaced).err(), Some(WeakSecret));
        assert!(parse_control_secret("a".repeat(32)).is_ok());
    }

    #[test]
    fn an_owner_ticket_works_once_and_only_as_minted() {
        let guard = Guard::new(None);
        let ticket = guard.mint_ticket(None);
        assert!(guard.take_ticket("not-it").is_none());
        assert!(guard.take_ticket(&ticket).is_some());
        assert!(guard.take_ticket(&ticket).is_none());
    }

    #[test]
    fn page_tokens_and_the_owner_cookie_depend_on_the_secret() {
        let ours = Guard::new(Some(SecretString::from("a".repeat(32))));
        let theirs = Guard::new(Some(SecretString::from("b".repeat(32))));
        assert!(ours.is_page_token("r1", &ours.page_token("r1")));
        assert!(!ours.is_page_token("r2", &ours.page_token("r1")));
        assert!(!ours.is_page_token("r1", &theirs.page_token("r1")));
        assert_ne!(ours.owner_cookie_value(), theirs.owner_cookie_value());
        assert!(!ours.owner_cookie_value().contains(&"a".repeat(8)));
    }
}
