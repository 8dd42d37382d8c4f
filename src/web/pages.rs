//! The pages people see: the home page, their account, disconnecting, and the messages every
//! refusal ends in. Pages come from askama templates in `templates/` sharing `layout.html`.

use actix_web::cookie::time::OffsetDateTime;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AppState;
use super::session::Session;
use crate::account::{AccountId, AccountTokens};
use crate::crypto::constant_time_eq;
use crate::dropbox::DropboxError;
use crate::store::{AccountStatus, Outcome, StoreError, SyncState};
use crate::telemetry::error_chain;

const STYLESHEET: &str = include_str!("../../static/app.css");
const ICON: &str = include_str!("../../static/icon.svg");

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    notice: Option<String>,
    signed_in: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    notice: Option<String>,
    display_name: String,
    linked: bool,
    sync_state: String,
    last_pass: Option<String>,
    recent: Vec<RecentRow>,
    /// Pages markdrop leaves alone because they are the person's.
    kept: Vec<KeptRow>,
    /// Notes waiting for another try.
    retrying: Vec<RetryRow>,
    /// The person's `markdrop.toml` files.
    settings: Vec<SettingsRow>,
    csrf: String,
}

/// One line of "Your settings".
struct SettingsRow {
    path: String,
    /// The folder it applies to, for people: "everything" for the top.
    folder: String,
    /// Whether a version of it is in force.
    in_force: bool,
    problem: Option<String>,
}

/// One line of "Pages markdrop leaves to you".
struct KeptRow {
    /// The page's display path.
    html: String,
    /// Its file name, for the way out.
    name: String,
    since: String,
}

/// One line of "Waiting to be tried again".
struct RetryRow {
    path: String,
    reason: String,
    next: String,
}

/// One line of "Recent conversions".
struct RecentRow {
    path: String,
    when: String,
    result: String,
}

/// A page that says what happened and what to do next.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub notice: Option<String>,
    pub heading: &'static str,
    pub body: &'static str,
    pub action_href: &'static str,
    pub action_label: &'static str,
}

impl MessagePage {
    /// The page for "the store does not answer", used wherever a page needs the store.
    pub fn store_unavailable() -> MessagePage {
        MessagePage {
            notice: None,
            heading: "markdrop is having trouble",
            body: "markdrop cannot reach its storage right now. Nothing you did caused this; please try again in a minute.",
            action_href: "/",
            action_label: "Back to the start",
        }
    }
}

/// `template` as an HTML response with `status`; a template that fails is logged and becomes a
/// plain 500 rather than a panic.
pub fn render(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(html) => HttpResponse::build(status).content_type("text/html; charset=utf-8").body(html),
        Err(error) => {
            tracing::error!(error = %error_chain(&error), "a page failed to render");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Something went wrong on our side.\n")
        }
    }
}

/// A 303 to `location` (after a form or a login, the browser must GET the next page).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((LOCATION, location)).finish()
}

/// `response` with the (changed) session written back to its cookie.
pub fn with_session(
    mut response: HttpResponse,
    state: &AppState,
    session: &Session,
) -> HttpResponse {
    if let Err(error) = response.add_cookie(&state.sessions.cookie(session)) {
        tracing::error!(%error, "the session cookie could not be set");
    }
    response
}

/// The account this browser is signed in as, if its link still stands: a session from before
/// the account was unlinked (in this browser or another) is signed out here.
pub async fn signed_in_account(
    state: &AppState,
    session: &mut Session,
) -> Result<Option<AccountId>, StoreError> {
    let Some(account) = session.account.clone() else {
        return Ok(None);
    };
    let current = state.store.current_link_id(&account).await?;
    let still_linked = match (&current, &session.link_id) {
        (Some(current), Some(ours)) => constant_time_eq(current, ours),
        _ => false,
    };
    if still_linked {
        Ok(Some(account))
    } else {
        *session = state.sessions.fresh();
        Ok(None)
    }
}

/// The page for a store that does not answer, with the cause in the log.
pub fn store_trouble(what: &str, error: &StoreError) -> HttpResponse {
    tracing::warn!(error = %error_chain(error), "{what} without a store");
    render(StatusCode::SERVICE_UNAVAILABLE, &MessagePage::store_unavailable())
}

/// `GET /`.
pub async fn show_home(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut session = state.sessions.load(&request);
    let page = HomePage { notice: session.notice.take(), signed_in: session.account.is_some() };
    with_session(render(StatusCode::OK, &page), &state, &session)
}

/// `GET /account`.
pub async fn show_account(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut session = state.sessions.load(&request);
    let account = match signed_in_account(&state, &mut session).await {
        Ok(Some(account)) => account,
        Ok(None) => return with_session(see_other("/"), &state, &session),
        Err(error) => return store_trouble("the account page", &error),
    };
    let facts = async {
        let linked = state.store.tokens(&account).await?.is_some();
        let name = state.store.display_name(&account).await?;
        let status = state.store.status(&account).await?;
        let queued = state.store.is_queued(&account).await?;
        Ok::<_, StoreError>((linked, name, status, queued))
    };
    let (linked, name, status, queued) = match facts.await {
        Ok(facts) => facts,
        Err(error) => return store_trouble("the account page", &error),
    };
    let status = status.unwrap_or_default();
    let page = AccountPage {
        notice: session.notice.take(),
        display_name: name.unwrap_or_else(|| account.to_string()),
        linked,
        sync_state: describe_sync(&status, queued, linked),
        last_pass: status.last_pass_at.map(format_time),
        recent: status
            .recent
            .iter()
            .map(|conversion| RecentRow {
                path: conversion.path.clone(),
                when: format_time(conversion.at),
                result: describe_outcome(&conversion.outcome),
            })
            .collect(),
        kept: status
            .kept
            .values()
            .map(|page| KeptRow {
                name: page.html.rsplit('/').next().unwrap_or(&page.html).to_owned(),
                html: page.html.clone(),
                since: format_time(page.since),
            })
            .collect(),
        retrying: status
            .retrying
            .values()
            .map(|note| RetryRow {
                path: note.markdown.clone(),
                reason: note.reason.clone(),
                next: format_time(note.next_at_ms / 1000),
            })
            .collect(),
        settings: status
            .settings
            .iter()
            .map(|file| SettingsRow {
                folder: match file.path.rfind('/') {
                    Some(0) | None => "your whole Dropbox".to_owned(),
                    Some(slash) => file.path[..slash].to_owned(),
                },
                path: file.path.clone(),
                in_force: file.in_force,
                problem: file.problem.clone(),
            })
            .collect(),
        csrf: session.csrf.clone(),
    };
    with_session(render(StatusCode::OK, &page), &state, &session)
}

#[derive(Deserialize)]
pub struct UnlinkForm {
    /// Missing counts as wrong: the same page says the form has expired.
    #[serde(default)]
    csrf: String,
}

/// `POST /account/unlink`: gives up markdrop's access at Dropbox, forgets the account, signs
/// the browser out.
pub async fn unlink_account(
    request: HttpRequest,
    form: web::Form<UnlinkForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut session = state.sessions.load(&request);
    let account = match signed_in_account(&state, &mut session).await {
        Ok(Some(account)) => account,
        Ok(None) => return with_session(see_other("/"), &state, &session),
        Err(error) => return store_trouble("unlink", &error),
    };
    if !session.csrf_matches(&form.csrf) {
        let page = MessagePage {
            notice: None,
            heading: "That form has expired",
            body: "The page you sent it from is out of date. Open your account page again and retry.",
            action_href: "/account",
            action_label: "Your account",
        };
        return render(StatusCode::FORBIDDEN, &page);
    }
    let tokens = match state.store.tokens(&account).await {
        Ok(tokens) => tokens,
        Err(error) => return store_trouble("unlink", &error),
    };
    let revoked = match tokens {
        Some(tokens) => revoke(&state, tokens).await,
        None => true,
    };
    if let Err(error) = state.store.forget_account(&account).await {
        return store_trouble("unlink", &error);
    }
    tracing::info!(%account, revoked, "account unlinked");
    let notice = if revoked {
        "Dropbox is disconnected and markdrop has deleted what it kept about your account."
    } else {
        "markdrop has deleted what it kept about your account, but could not reach Dropbox to give up its access: remove markdrop under Connected apps in your Dropbox settings."
    };
    let signed_out = Session { notice: Some(notice.to_owned()), ..state.sessions.fresh() };
    with_session(see_other("/"), &state, &signed_out)
}

/// The sync state in words a person understands.
fn describe_sync(status: &AccountStatus, queued: bool, linked: bool) -> String {
    if !linked {
        return "Stopped until Dropbox is connected again.".to_owned();
    }
    match &status.state {
        SyncState::Syncing => "Converting your changes now.".to_owned(),
        SyncState::RateLimited { until } => format!(
            "Dropbox asked markdrop to slow down; syncing resumes at {}.",
            format_time(*until)
        ),
        SyncState::Failing { message } => {
            format!("Syncing keeps failing: {message}. markdrop keeps trying.")
        }
        SyncState::MissingPermission { scope, .. } => format!(
            "Stopped: Dropbox says markdrop lacks the permission {scope}. Connect Dropbox again \
             and allow it; syncing resumes where it stopped."
        ),
        // Tokens again after the worker unlinked the account: connected anew, not synced yet.
        SyncState::Unlinked => "Connected again; waiting for the first sync.".to_owned(),
        SyncState::Idle if queued && status.last_pass_at.is_none() => {
            "Waiting for the first sync.".to_owned()
        }
        SyncState::Idle if queued => {
            "Changes are waiting and will be converted shortly.".to_owned()
        }
        SyncState::Idle if !status.retrying.is_empty() => format!(
            "Up to date, except {} waiting to be tried again (below).",
            match status.retrying.len() {
                1 => "one note".to_owned(),
                notes => format!("{notes} notes"),
            }
        ),
        SyncState::Idle => "Up to date.".to_owned(),
    }
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Converted => "converted".to_owned(),
        Outcome::Removed => "removed with its note".to_owned(),
        Outcome::Kept { html } => {
            let name = html.rsplit('/').next().unwrap_or(html);
            format!("{name} is yours, so markdrop left it as it is")
        }
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
        Outcome::Failed { message } => format!("failed: {message}"),
    }
}

/// `2026-11-27 10:31 UTC` from seconds since the Unix epoch.
fn format_time(secs: u64) -> String {
    let Ok(time) = i64::try_from(secs)
        .map_err(drop)
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).map_err(drop))
    else {
        return "an unknown time".to_owned();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute()
    )
}

/// Revokes the link at Dropbox; a link Dropbox already dropped counts as revoked.
async fn revoke(state: &AppState, tokens: AccountTokens) -> bool {
    match state.dropbox.account(tokens).revoke().await {
        Ok(()) | Err(DropboxError::InvalidToken { .. } | DropboxError::RefreshRefused(_)) => true,
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "revoking at Dropbox failed");
            false
        }
    }
}

/// A form or query that cannot be read: a page rather than actix's plain-text error.
pub fn refuse_bad_request(
    error: impl std::error::Error + 'static,
    _request: &HttpRequest,
) -> actix_web::Error {
    let page = MessagePage {
        notice: None,
        heading: "That request could not be read",
        body: "Something in the address or the form was not what markdrop expects. Start again from the home page.",
        action_href: "/",
        action_label: "Go to the start",
    };
    actix_web::error::InternalError::from_response(
        error.to_string(),
        render(StatusCode::BAD_REQUEST, &page),
    )
    .into()
}

/// Any other path.
pub async fn show_not_found() -> HttpResponse {
    let page = MessagePage {
        notice: None,
        heading: "Page not found",
        body: "There is nothing at this address. The start page has everything markdrop offers.",
        action_href: "/",
        action_label: "Go to the start",
    };
    render(StatusCode::NOT_FOUND, &page)
}

/// `GET /static/app.css` and `/static/icon.svg`, compiled in so a deployment is one file.
pub async fn serve_static(path: web::Path<String>) -> HttpResponse {
    let (body, content_type) = match path.as_str() {
        "app.css" => (STYLESHEET, "text/css; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => return show_not_found().await,
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_utc_calendar_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(1_795_775_460), "2026-11-27 10:31 UTC");
        assert_eq!(format_time(4_102_444_799), "2099-12-31 23:59 UTC");
    }
}
