//! `/webhook`: Dropbox's side of markdrop (docs/dropbox.md §8).
//!
//! `GET ?challenge=` proves to the App Console that we own the URL. `POST` is a change
//! notification: verified over the raw bytes, then every account in it queued with one store
//! call, then 200 at once. Dropbox allows 10 seconds and disables a webhook that fails too
//! often, for every user at once, so nothing here calls Dropbox or waits for a sync.
//!
//! The body is the one thing on this public route a stranger can make markdrop hold, so it is
//! bounded three ways: its size ([`MAX_BODY`], refused from `Content-Length` before any
//! `100 Continue`, see `super::refuse_before_continue`), the time it may take to arrive
//! ([`BODY_DEADLINE`]), and the memory all bodies of the process take at once ([`BodyBudget`]).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use bytes::BytesMut;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::AppState;
use crate::account::AccountId;
use crate::store::StoreError;
use crate::telemetry::error_chain;

/// Far above any real notification (a batch of a few hundred account ids), far below memory.
pub const MAX_BODY: usize = 256 * 1024;

/// How long a body may take to arrive once its head has. Dropbox sends a few hundred bytes at
/// once; a body still coming after this is a client holding a connection and its buffer open.
pub const BODY_DEADLINE: Duration = Duration::from_secs(5);

/// What one request may hold without drawing on the [`BodyBudget`]: a notification naming a few
/// hundred accounts, so Dropbox's own notifications never wait for the budget, whoever holds it.
/// Bounded in total by the server's connection limit.
const UNBUDGETED_BODY: usize = 16 * 1024;

/// Body bytes beyond [`UNBUDGETED_BODY`] that all requests of one process may hold at once:
/// sixteen bodies at [`MAX_BODY`].
pub const BODY_BUDGET: usize = 4 * 1024 * 1024;

const SIGNATURE: &str = "X-Dropbox-Signature";

/// The memory all webhook bodies of one process may take beyond [`UNBUDGETED_BODY`] each, in
/// bytes. A request reserves its share as its bytes arrive and waits (within
/// [`BODY_DEADLINE`]) when there is none left, so however many connections send large bodies,
/// markdrop holds at most this much of them.
pub struct BodyBudget(Semaphore);

impl BodyBudget {
    pub fn new() -> BodyBudget {
        BodyBudget(Semaphore::new(BODY_BUDGET))
    }
}

impl Default for BodyBudget {
    fn default() -> Self {
        BodyBudget::new()
    }
}

#[derive(Deserialize)]
pub struct Challenge {
    challenge: Option<String>,
}

/// `GET /webhook?challenge=X`: answers X exactly, as plain text the browser must not sniff
/// (the challenge is attacker-controlled text echoed back).
pub async fn verify_webhook(query: web::Query<Challenge>) -> HttpResponse {
    match query.into_inner().challenge {
        Some(challenge) => HttpResponse::Ok()
            .content_type("text/plain")
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(challenge),
        None => HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body("missing the challenge parameter\n"),
    }
}

/// Why a notification was refused; each is a status Dropbox (or whoever sent it) can act on.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the request has no X-Dropbox-Signature")]
    MissingSignature,
    #[error("the X-Dropbox-Signature does not match the body")]
    BadSignature,
    #[error("the body is over {MAX_BODY} bytes")]
    TooLarge,
    #[error("the body did not arrive within {} seconds", BODY_DEADLINE.as_secs())]
    TooSlow,
    #[error("the body could not be read")]
    Unreadable(#[source] actix_web::error::PayloadError),
    #[error("the body is not a Dropbox notification")]
    Malformed(#[source] serde_json::Error),
    #[error("the queue is unavailable")]
    StoreUnavailable(#[source] StoreError),
}

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebhookError::MissingSignature | WebhookError::BadSignature => StatusCode::FORBIDDEN,
            WebhookError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::TooSlow => StatusCode::REQUEST_TIMEOUT,
            WebhookError::Unreadable(_) | WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
            // Dropbox retries a failed notification, so nothing is lost while the store is down.
            WebhookError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(format!("{self}\n"))
    }
}

/// The part of a notification markdrop reads; `delta.users` (v1 user ids) is ignored. Each
/// entry of `accounts` is kept raw so that one malformed id does not refuse the others.
#[derive(Deserialize)]
struct Notification {
    list_folder: Option<ListFolder>,
}

#[derive(Deserialize)]
struct ListFolder {
    #[serde(default)]
    accounts: Vec<serde_json::Value>,
}

/// What a notification names: its valid account ids, each once and sorted, and how many of its
/// entries were not account ids at all.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Notified {
    pub accounts: Vec<AccountId>,
    /// Entries of `list_folder.accounts` that are not account ids (not strings, or strings of
    /// another shape), skipped.
    pub malformed: Vec<String>,
}

/// The accounts a notification body names. Only `list_folder.accounts` is read; a body without
/// it names none. A body that is not such an object is an error; an entry that is not an account
/// id is reported in [`Notified::malformed`], so that Dropbox's notification for every valid
/// account still counts (Dropbox retries a refused notification, all of it, for ten minutes,
/// and disables a webhook that keeps failing).
pub fn parse_notification(body: &[u8]) -> Result<Notified, serde_json::Error> {
    let notification: Notification = serde_json::from_slice(body)?;
    let entries = notification.list_folder.map(|list| list.accounts).unwrap_or_default();
    let mut notified = Notified::default();
    for entry in entries {
        match entry.as_str().map(AccountId::parse) {
            Some(Ok(account)) => notified.accounts.push(account),
            _ => notified.malformed.push(entry.to_string()),
        }
    }
    notified.accounts.sort();
    notified.accounts.dedup();
    Ok(notified)
}

/// `POST /webhook`.
pub async fn receive_webhook(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebhookError> {
    let outcome = accept_notification(&request, payload, &state).await;
    match &outcome {
        Ok(accounts) => tracing::debug!(accounts, "webhook accepted"),
        Err(error) => tracing::warn!(error = %error_chain(error), "webhook refused"),
    }
    state.metrics.webhook(match &outcome {
        Ok(_) => "accepted",
        Err(WebhookError::MissingSignature | WebhookError::BadSignature) => "forged",
        Err(WebhookError::TooLarge) => "too_large",
        Err(WebhookError::TooSlow) => "too_slow",
        Err(WebhookError::Unreadable(_) | WebhookError::Malformed(_)) => "malformed",
        Err(WebhookError::StoreUnavailable(_)) => "store_unavailable",
    });
    outcome.map(|_| HttpResponse::Ok().finish())
}

/// Verifies, parses and queues a notification; returns how many accounts it queued.
async fn accept_notification(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<usize, WebhookError> {
    let signature = request.headers().get(SIGNATURE).ok_or(WebhookError::MissingSignature)?;
    let (body, _reserved) =
        tokio::time::timeout(BODY_DEADLINE, read_limited(request, payload, &state.body_budget))
            .await
            .map_err(|_| WebhookError::TooSlow)??;
    verify_signature(state.app_secret.expose_secret().as_bytes(), signature.as_bytes(), &body)?;
    let notified = parse_notification(&body).map_err(WebhookError::Malformed)?;
    if !notified.malformed.is_empty() {
        // Signed by Dropbox, so worth a look, but never fatal for the valid ids beside them.
        let first: String = notified.malformed[0].chars().take(120).collect();
        tracing::warn!(
            count = notified.malformed.len(),
            first = %first,
            "a signed notification names entries that are not account ids; skipped"
        );
        state.metrics.webhook_malformed_accounts(notified.malformed.len());
    }
    state.store.enqueue(&notified.accounts).await.map_err(WebhookError::StoreUnavailable)?;
    Ok(notified.accounts.len())
}

/// The raw body, refused as soon as it is known to be over [`MAX_BODY`], with its reservation
/// on the [`BodyBudget`] (held until the body is dropped).
async fn read_limited<'a>(
    request: &HttpRequest,
    mut payload: web::Payload,
    budget: &'a BodyBudget,
) -> Result<(BytesMut, Option<SemaphorePermit<'a>>), WebhookError> {
    let declared = declared_length(request.head());
    if declared.is_some_and(|length| length > MAX_BODY) {
        return Err(WebhookError::TooLarge);
    }
    // Grown as bytes arrive, never to the declared length up front: a declared length costs the
    // sender nothing.
    let mut body = BytesMut::new();
    // A declared length's share is reserved before a byte is read: while a request waits for
    // the budget, actix reads no more of its body than its own buffers hold.
    let mut reserved = match declared {
        Some(length) => reserve(budget, length.saturating_sub(UNBUDGETED_BODY)).await?,
        None => None,
    };
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(WebhookError::Unreadable)?;
        let length = body.len() + chunk.len();
        if length > MAX_BODY {
            return Err(WebhookError::TooLarge);
        }
        let held = reserved.as_ref().map_or(0, |permit| permit.num_permits());
        if let Some(more) =
            reserve(budget, length.saturating_sub(UNBUDGETED_BODY).saturating_sub(held)).await?
        {
            match reserved.as_mut() {
                Some(permit) => permit.merge(more),
                None => reserved = Some(more),
            }
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, reserved))
}

/// `bytes` of the budget (none for 0), waiting for them to be free.
async fn reserve(
    budget: &BodyBudget,
    bytes: usize,
) -> Result<Option<SemaphorePermit<'_>>, WebhookError> {
    if bytes == 0 {
        return Ok(None);
    }
    // At most MAX_BODY, so it fits; the budget is never closed, so acquiring cannot fail, and
    // were it to, the body could not be read in time either.
    let permits = u32::try_from(bytes).map_err(|_| WebhookError::TooLarge)?;
    budget.0.acquire_many(permits).await.map(Some).map_err(|_| WebhookError::TooSlow)
}

/// `Content-Length` as a number, when the request has a readable one.
pub(super) fn declared_length(request: &actix_web::dev::RequestHead) -> Option<usize> {
    request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok())
}

/// Checks the hex HMAC-SHA256 of the raw body, keyed with the app secret, in constant time.
fn verify_signature(secret: &[u8], signature: &[u8], body: &[u8]) -> Result<(), WebhookError> {
    let expected = hex::decode(signature).map_err(|_| WebhookError::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| WebhookError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/dropbox.md §8's vector: secret `test_app_secret`, the 107-byte example body.
    const BODY: &[u8] = br#"{"list_folder": {"accounts": ["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"]}, "delta": {"users": [12345678]}}"#;
    const SIGNATURE: &[u8] = b"d28161ccd83ba2d4d73925cdcc121b8491c4adfbe974ba32ac96038e3eca58ce";

    #[test]
    fn the_documented_signature_verifies() {
        assert_eq!(BODY.len(), 107);
        assert!(verify_signature(b"test_app_secret", SIGNATURE, BODY).is_ok());
        assert!(
            verify_signature(b"test_app_secret", &SIGNATURE.to_ascii_uppercase(), BODY).is_ok()
        );
    }

    #[test]
    fn anything_else_is_a_bad_signature() {
        let mut tampered = BODY.to_vec();
        tampered[30] ^= 1;
        for (secret, signature, body) in [
            (&b"other_secret"[..], SIGNATURE, BODY),
            (b"test_app_secret", SIGNATURE, &tampered[..]),
            (b"test_app_secret", b"zz", BODY),
            (b"test_app_secret", b"", BODY),
            (b"test_app_secret", &SIGNATURE[..62], BODY),
        ] {
            assert!(matches!(
                verify_signature(secret, signature, body),
                Err(WebhookError::BadSignature)
            ));
        }
    }
}
