//! The pages people see: the home page, their account, disconnecting, and the messages every
//! refusal ends in. Pages come from askama templates in `templates/` sharing `layout.html`.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::AppState;
use super::session::Session;
use crate::dropbox::{AccountTokens, DropboxError};
use crate::store::{AccountStatus, Outcome, SyncState};
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
    csrf: String,
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

/// `GET /`.
pub async fn show_home(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut session = state.sessions.load(&request);
    let page = HomePage { notice: session.notice.take(), signed_in: session.account.is_some() };
    with_session(render(StatusCode::OK, &page), &state, &session)
}

/// `GET /account`.
pub async fn show_account(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut session = state.sessions.load(&request);
    let Some(account) = session.account.clone() else {
        return see_other("/");
    };
    let facts = async {
        let linked = state.store.tokens(&account).await?.is_some();
        let name = state.store.display_name(&account).await?;
        let status = state.store.status(&account).await?;
        let queued = state.store.is_queued(&account).await?;
        Ok::<_, crate::store::StoreError>((linked, name, status, queued))
    };
    let (linked, name, status, queued) = match facts.await {
        Ok(facts) => facts,
        Err(error) => {
            tracing::warn!(%account, error = %error_chain(&error), "account page without a store");
            return render(StatusCode::SERVICE_UNAVAILABLE, &MessagePage::store_unavailable());
        }
    };
    let status = status.unwrap_or_default();
    let page = AccountPage {
        notice: session.notice.take(),
        display_name: name.unwrap_or_else(|| account.to_string()),
        linked: linked && status.state != SyncState::Unlinked,
        sync_state: describe_sync(&status, queued),
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
        csrf: session.csrf.clone(),
    };
    with_session(render(StatusCode::OK, &page), &state, &session)
}

#[derive(Deserialize)]
pub struct UnlinkForm {
    csrf: String,
}

/// `POST /account/unlink`: gives up markdrop's access at Dropbox, forgets the account, signs
/// the browser out.
pub async fn unlink_account(
    request: HttpRequest,
    form: web::Form<UnlinkForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = state.sessions.load(&request);
    let Some(account) = session.account.clone() else {
        return see_other("/");
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
        Err(error) => {
            tracing::warn!(%account, error = %error_chain(&error), "unlink without a store");
            return render(StatusCode::SERVICE_UNAVAILABLE, &MessagePage::store_unavailable());
        }
    };
    let revoked = match tokens {
        Some(tokens) => revoke(&state, tokens).await,
        None => true,
    };
    if let Err(error) = state.store.forget_account(&account).await {
        tracing::warn!(%account, error = %error_chain(&error), "unlink without a store");
        return render(StatusCode::SERVICE_UNAVAILABLE, &MessagePage::store_unavailable());
    }
    tracing::info!(%account, revoked, "account unlinked");
    let notice = if revoked {
        "Dropbox is disconnected and markdrop has deleted what it kept about your account."
    } else {
        "markdrop has deleted what it kept about your account, but could not reach Dropbox to give up its access: remove markdrop under Connected apps in your Dropbox settings."
    };
    let signed_out = Session { notice: Some(notice.to_owned()), ..Session::default() };
    with_session(see_other("/"), &state, &signed_out)
}

/// The sync state in words a person understands.
fn describe_sync(status: &AccountStatus, queued: bool) -> String {
    match &status.state {
        SyncState::Syncing => "Converting your changes now.".to_owned(),
        SyncState::RateLimited { until } => format!(
            "Dropbox asked markdrop to slow down; syncing resumes at {}.",
            format_time(*until)
        ),
        SyncState::Failing { message } => {
            format!("Syncing keeps failing: {message}. markdrop keeps trying.")
        }
        SyncState::Unlinked => "Stopped: Dropbox no longer accepts markdrop's access.".to_owned(),
        SyncState::Idle if queued && status.last_pass_at.is_none() => {
            "Waiting for the first sync.".to_owned()
        }
        SyncState::Idle if queued => {
            "Changes are waiting and will be converted shortly.".to_owned()
        }
        SyncState::Idle => "Up to date.".to_owned(),
    }
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Converted => "converted".to_owned(),
        Outcome::Removed => "removed with its note".to_owned(),
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
        Outcome::Failed { message } => format!("failed: {message}"),
    }
}

/// `2026-11-27 10:31 UTC` from seconds since the Unix epoch (civil-from-days, after Howard
/// Hinnant's algorithm; a date library would be a large dependency for one format).
fn format_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
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
        _ => return HttpResponse::NotFound().finish(),
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
