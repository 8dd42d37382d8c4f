//! "Connect Dropbox": `GET /login` sends the person to Dropbox with a one-time `state` and a
//! PKCE challenge kept in their session; `GET /oauth/callback` checks both, trades the code for
//! tokens, stores them sealed, queues the first sync and signs the browser in.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::pages::{MessagePage, render, see_other, with_session};
use super::session::PendingLogin;
use crate::account::AccountId;
use crate::crypto::{constant_time_eq, random_token};
use crate::dropbox::{DropboxError, PkceCodeVerifier, new_pkce};
use crate::store::StoreError;
use crate::telemetry::error_chain;

/// How long a person may take on Dropbox's consent page.
const LOGIN_LIFETIME_SECS: u64 = 15 * 60;

/// `GET /login`.
pub async fn start_login(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut session = state.sessions.load(&request);
    let (challenge, verifier) = new_pkce();
    let login_state = random_token();
    let authorize = state.dropbox.authorize_url(&state.redirect_uri, &login_state, challenge);
    session.login = Some(PendingLogin {
        state: login_state,
        verifier: verifier.secret().to_owned(),
        started_at: state.store.clock().now_secs(),
    });
    with_session(see_other(authorize.as_str()), &state, &session)
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Why a callback did not link an account; each becomes a page that says what to do.
#[derive(Debug, thiserror::Error)]
enum CallbackError {
    #[error("no login is in progress in this browser (expired cookie, or the link was used)")]
    NoLoginInProgress,
    #[error("the state does not match the login in progress")]
    StateMismatch,
    #[error("the login took longer than allowed")]
    Expired,
    #[error("the person chose not to connect")]
    Denied,
    #[error("Dropbox reported an error: {0}")]
    DropboxRefused(String),
    #[error("the callback has neither a code nor an error")]
    Incomplete,
    #[error("Dropbox did not complete the login")]
    Dropbox(#[source] DropboxError),
    #[error(transparent)]
    Store(StoreError),
}

/// `GET /oauth/callback`.
pub async fn finish_oauth(
    request: HttpRequest,
    query: web::Query<Callback>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut session = state.sessions.load(&request);
    // One-time: whatever happens next, this login cannot be completed twice.
    let pending = session.login.take();
    match link_account(&state, pending, query.into_inner()).await {
        Ok((account, link_id)) => {
            tracing::info!(%account, "account linked");
            // A new session, so nothing from before sign-in (a planted CSRF token) carries over.
            with_session(see_other("/account"), &state, &state.sessions.signed_in(account, link_id))
        }
        Err(error) => {
            match &error {
                CallbackError::Denied => tracing::info!("login declined at Dropbox"),
                other => tracing::warn!(error = %error_chain(other), "login failed"),
            }
            with_session(failure_page(&error), &state, &session)
        }
    }
}

async fn link_account(
    state: &AppState,
    pending: Option<PendingLogin>,
    callback: Callback,
) -> Result<(AccountId, String), CallbackError> {
    let pending = pending.ok_or(CallbackError::NoLoginInProgress)?;
    if !callback.state.as_deref().is_some_and(|given| constant_time_eq(&pending.state, given)) {
        return Err(CallbackError::StateMismatch);
    }
    if state.store.clock().now_secs().saturating_sub(pending.started_at) > LOGIN_LIFETIME_SECS {
        return Err(CallbackError::Expired);
    }
    match (callback.code, callback.error.as_deref()) {
        (_, Some("access_denied")) => Err(CallbackError::Denied),
        (_, Some(other)) => Err(CallbackError::DropboxRefused(known_error(other))),
        (None, None) => Err(CallbackError::Incomplete),
        (Some(code), None) => {
            let verifier = PkceCodeVerifier::new(pending.verifier);
            let grant = state
                .dropbox
                .exchange_code(&code, &state.redirect_uri, verifier)
                .await
                .map_err(CallbackError::Dropbox)?;
            let client = state.dropbox.account(grant.tokens.clone());
            let profile = match client.get_current_account().await {
                Ok(profile) => profile,
                Err(error) => {
                    // Nothing is stored yet: give the new grant back rather than leave an
                    // access at Dropbox that markdrop will never use.
                    if let Err(revoke_error) = client.revoke().await {
                        tracing::warn!(error = %error_chain(&revoke_error), "could not give back an unused grant");
                    }
                    return Err(CallbackError::Dropbox(error));
                }
            };
            let account = grant.account_id;
            let tokens =
                crate::account::AccountTokens { path_root: profile.path_root(), ..grant.tokens };
            let store = &state.store;
            let before = store.tokens(&account).await.map_err(CallbackError::Store)?;
            if before.is_some_and(|before| before.path_root != tokens.path_root) {
                // The Dropbox starts elsewhere now (a team space joined or left): the cursor and
                // the records' paths were made from the other root.
                tracing::info!(%account, "the Dropbox's root changed; syncing it afresh");
                store.restart_sync(&account).await.map_err(CallbackError::Store)?;
            }
            store.save_tokens(&account, &tokens).await.map_err(CallbackError::Store)?;
            store
                .save_display_name(&account, &profile.name.display_name)
                .await
                .map_err(CallbackError::Store)?;
            store.enqueue(std::slice::from_ref(&account)).await.map_err(CallbackError::Store)?;
            let link_id = store.link_id(&account).await.map_err(CallbackError::Store)?;
            Ok((account, link_id))
        }
    }
}

fn failure_page(error: &CallbackError) -> HttpResponse {
    let again = |heading, body| MessagePage {
        notice: None,
        heading,
        body,
        action_href: "/login",
        action_label: "Connect Dropbox",
    };
    match error {
        CallbackError::Denied => render(
            StatusCode::OK,
            &again(
                "Dropbox is not connected",
                "You chose not to give markdrop access, so nothing was changed. You can connect whenever you like.",
            ),
        ),
        CallbackError::NoLoginInProgress
        | CallbackError::StateMismatch
        | CallbackError::Expired => render(
            StatusCode::BAD_REQUEST,
            &again(
                "This sign-in link has expired",
                "It was already used, took too long, or was opened in another browser. Start again from here.",
            ),
        ),
        CallbackError::DropboxRefused(_) | CallbackError::Incomplete => render(
            StatusCode::BAD_REQUEST,
            &again(
                "Dropbox did not connect",
                "Dropbox ended the sign-in with an error. Please try again.",
            ),
        ),
        CallbackError::Dropbox(DropboxError::CodeRefused(_)) => render(
            StatusCode::BAD_REQUEST,
            &again(
                "Dropbox did not accept the sign-in",
                "The sign-in code was refused. Please start again.",
            ),
        ),
        CallbackError::Dropbox(_) => render(
            StatusCode::BAD_GATEWAY,
            &again(
                "Dropbox did not answer",
                "markdrop could not complete the sign-in with Dropbox. Please try again in a minute.",
            ),
        ),
        CallbackError::Store(_) => {
            render(StatusCode::SERVICE_UNAVAILABLE, &MessagePage::store_unavailable())
        }
    }
}

/// The error code for the log: one of OAuth's own, or `other`. The query is anyone's to write,
/// and a log line must not be.
fn known_error(code: &str) -> String {
    const CODES: [&str; 6] = [
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
    ];
    CODES.iter().find(|known| **known == code).map_or("other", |known| known).to_owned()
}
