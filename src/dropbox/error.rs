//! Everything a Dropbox call can answer besides success, as a caller needs to tell it apart.
//!
//! The dispatch follows the SDKs' `parse_response` (docs/dropbox.md §6) and goes beyond it
//! where Dropbox does: a 429 may be plain text, its wait may be in the body or only in the
//! `Retry-After` header, and `too_many_write_operations` also arrives as a 409 route error.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::Value;

/// The wait when a 429 names none, as the Python SDK does.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// The wait for `too_many_write_operations`, whose bodies usually carry no `retry_after`.
const WRITE_CONTENTION_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest piece of an unexpected body kept for the log.
const MAX_DETAIL: usize = 300;

/// Every way a Dropbox call can fail, each a decision for the caller (refresh, unlink,
/// reschedule, recover from `reset`, report).
#[derive(Debug, thiserror::Error)]
pub enum DropboxError {
    /// 401 `expired_access_token`: refresh and try again (the client does this once by itself).
    #[error("the access token has expired")]
    ExpiredToken,
    /// 401 `invalid_access_token` (the client has refreshed once already, so the grant is gone:
    /// revoked, or the app removed) or `user_suspended`: the link is dead until the person
    /// connects again.
    #[error("Dropbox refused the access token ({reason})")]
    InvalidToken { reason: String },
    /// 401 `missing_scope`: the app was not granted a scope this call needs.
    #[error("the app lacks the Dropbox permission {required_scope}")]
    MissingScope { required_scope: String },
    /// 401 with any other tag (`AuthError` is an open union: `route_access_denied`, tags added
    /// later): nothing says the grant is gone, so it is a failure that may pass.
    #[error("Dropbox refused the call ({reason})")]
    Unauthorized { reason: String },
    /// The authorization code was refused (`invalid_grant`: used already, expired, or a PKCE
    /// verifier or redirect URI that does not match): the person should start over.
    #[error("Dropbox refused the authorization code ({0})")]
    CodeRefused(String),
    /// The refresh token was refused (`invalid_grant`: revoked, or the app's access removed).
    #[error("Dropbox refused to refresh the access token ({0})")]
    RefreshRefused(String),
    /// 429, or write contention: wait `retry_after`, then try again. The client waits out a
    /// short `too_many_requests` itself; what reaches a caller is to be waited out elsewhere.
    #[error("rate limited by Dropbox ({reason:?}); retry after {retry_after:?}")]
    RateLimited { reason: RateLimitReason, retry_after: Duration },
    /// 409: the route's own error, e.g. `path/not_found` or `reset`.
    #[error("Dropbox answered {0}")]
    Route(RouteError),
    /// 400: Dropbox rejected the request itself; a bug on our side, never retried.
    #[error("Dropbox rejected the request: {0}")]
    BadInput(String),
    /// 403 `AccessError`.
    #[error("Dropbox denied access ({0})")]
    AccessDenied(String),
    /// 422 `PathRootError`: the `Dropbox-API-Path-Root` sent is not the account's (it joined or
    /// left a team space since it was linked).
    #[error("Dropbox refused the path root ({0})")]
    PathRoot(String),
    /// 5xx, after the client's own retries.
    #[error("Dropbox had a server error ({status})")]
    Server { status: u16 },
    /// No answer (connection, timeout, TLS), after the client's own retries.
    #[error("could not reach Dropbox")]
    Transport(#[source] reqwest::Error),
    /// An answer that fits none of Dropbox's documented shapes.
    #[error("unexpected answer from Dropbox ({status}): {detail}")]
    Unexpected { status: u16, detail: String },
    /// A file larger than the caller accepts; nothing past the limit was read.
    #[error("the file is {size} bytes, over the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    /// The request could not be made at all (an argument that does not encode, a token that is
    /// no valid header): a bug on our side, never Dropbox's answer.
    #[error("cannot call Dropbox: {0}")]
    Local(String),
}

/// Which limit a 429 (or a write-lock 409) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitReason {
    /// The per-user request rate.
    TooManyRequests,
    /// Contention for the namespace's write lock: write one file at a time.
    TooManyWriteOperations,
}

/// A 409's `error`, with the chain of its tags (`["path", "not_found"]`) for matching.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteError {
    pub tags: Vec<String>,
    pub error: Value,
}

impl RouteError {
    fn from_error(error: Value) -> RouteError {
        RouteError { tags: tag_chain(&error), error }
    }

    /// `list_folder/continue`: the cursor is no longer valid; list again from scratch.
    pub fn is_reset(&self) -> bool {
        self.tags.first().is_some_and(|tag| tag == "reset")
    }

    /// The path does not exist (`path/not_found`, `path_lookup/not_found`, …).
    pub fn is_not_found(&self) -> bool {
        self.tags.get(1).is_some_and(|tag| tag == "not_found")
    }

    /// An upload refused because the account is out of space (`path/insufficient_space`).
    pub fn is_insufficient_space(&self) -> bool {
        self.tags.iter().any(|tag| tag == "insufficient_space")
    }

    /// A write refused for a reason that stays until the path or the folder changes: a name
    /// Dropbox does not allow, a folder in the way, a read-only folder.
    pub fn is_lasting_write_refusal(&self) -> bool {
        const LASTING: [&str; 5] =
            ["disallowed_name", "malformed_path", "conflict", "no_write_permission", "team_folder"];
        self.tags.iter().any(|tag| LASTING.contains(&tag.as_str()))
    }

    /// `download` of a file that cannot be downloaded (a Google Doc, say).
    pub fn is_unsupported_file(&self) -> bool {
        self.tags.first().is_some_and(|tag| tag == "unsupported_file")
    }
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.tags.join("/"))
    }
}

impl DropboxError {
    pub(crate) fn local(detail: impl Into<String>) -> DropboxError {
        DropboxError::Local(detail.into())
    }

    /// A 2xx answer whose shape is not what the route documents.
    pub(crate) fn unexpected_success(detail: impl Into<String>) -> DropboxError {
        DropboxError::Unexpected { status: 200, detail: detail.into() }
    }

    /// Whether a fresh access token may fix this: the token expired, or died early.
    pub(crate) fn calls_for_refresh(&self) -> bool {
        match self {
            DropboxError::ExpiredToken => true,
            DropboxError::InvalidToken { reason } => reason == "invalid_access_token",
            _ => false,
        }
    }

    /// Whether the client itself should try again after a pause (5xx and no answer at all).
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, DropboxError::Server { .. } | DropboxError::Transport(_))
    }

    /// A route's own error (a 409's `error`, or a failed entry of a batch commit);
    /// `too_many_write_operations` among its tags is write contention, whatever wraps it.
    pub(crate) fn from_route_error(error: Value) -> DropboxError {
        let route = RouteError::from_error(error);
        if route.tags.iter().any(|tag| tag == "too_many_write_operations") {
            DropboxError::RateLimited {
                reason: RateLimitReason::TooManyWriteOperations,
                retry_after: WRITE_CONTENTION_RETRY_AFTER,
            }
        } else {
            DropboxError::Route(route)
        }
    }

    /// Reads a non-success answer.
    pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let json = || serde_json::from_slice::<Value>(body).ok();
        match status.as_u16() {
            400 => DropboxError::BadInput(detail(body)),
            401 => match json().as_ref().map(|v| &v["error"]) {
                Some(error) => match error[".tag"].as_str() {
                    Some("expired_access_token") => DropboxError::ExpiredToken,
                    Some("missing_scope") => DropboxError::MissingScope {
                        required_scope: error["required_scope"].as_str().unwrap_or("?").to_owned(),
                    },
                    Some(tag @ ("invalid_access_token" | "user_suspended")) => {
                        DropboxError::InvalidToken { reason: tag.to_owned() }
                    }
                    Some(other) => DropboxError::Unauthorized { reason: other.to_owned() },
                    None => unexpected(status, body),
                },
                None => unexpected(status, body),
            },
            403 => match json() {
                Some(v) => DropboxError::AccessDenied(tag_chain(&v["error"]).join("/")),
                None => unexpected(status, body),
            },
            409 => match json() {
                Some(mut v) => DropboxError::from_route_error(v["error"].take()),
                None => unexpected(status, body),
            },
            422 => match json() {
                // Only the outer tag: `invalid_root` carries the account's `RootInfo`, whose own
                // tag (`user`, `team`) is not part of the reason.
                Some(v) => match tag_chain(&v["error"]).into_iter().next() {
                    Some(tag) => DropboxError::PathRoot(tag),
                    None => unexpected(status, body),
                },
                None => unexpected(status, body),
            },
            429 => rate_limited(headers, body),
            500..=599 => DropboxError::Server { status: status.as_u16() },
            _ => unexpected(status, body),
        }
    }
}

/// A 429: JSON `RateLimitError` (no outer `.tag`) or plain text, wait from the body, else the
/// `Retry-After` header (seconds), else a default.
fn rate_limited(headers: &HeaderMap, body: &[u8]) -> DropboxError {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let error = is_json.then(|| serde_json::from_slice::<Value>(body).ok()).flatten();
    let error = error.as_ref().map(|v| &v["error"]);
    let reason = match error.and_then(|e| e["reason"][".tag"].as_str()) {
        Some("too_many_write_operations") => RateLimitReason::TooManyWriteOperations,
        _ => RateLimitReason::TooManyRequests,
    };
    let from_body = error.and_then(|e| e["retry_after"].as_u64()).filter(|&secs| secs > 0);
    let from_header = headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let retry_after = from_body.or(from_header).map(Duration::from_secs).unwrap_or(match reason {
        RateLimitReason::TooManyRequests => DEFAULT_RETRY_AFTER,
        RateLimitReason::TooManyWriteOperations => WRITE_CONTENTION_RETRY_AFTER,
    });
    DropboxError::RateLimited { reason, retry_after }
}

/// The tags of a Stone union value, outermost first. A member's value is nested under a key
/// named like its tag, or flattened beside it; `UploadWriteFailed` puts it under `reason`.
fn tag_chain(mut value: &Value) -> Vec<String> {
    let mut tags = Vec::new();
    while let Some(tag) = value[".tag"].as_str() {
        tags.push(tag.to_owned());
        value = match (&value[tag], &value["reason"]) {
            (nested, _) if nested.is_object() => nested,
            (_, reason) if reason.is_object() => reason,
            _ => break,
        };
    }
    tags
}

fn unexpected(status: StatusCode, body: &[u8]) -> DropboxError {
    DropboxError::Unexpected { status: status.as_u16(), detail: detail(body) }
}

/// A body, shortened for an error message.
fn detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn parse(
        status: u16,
        content_type: &str,
        retry_after: Option<&str>,
        body: &str,
    ) -> DropboxError {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        if let Some(value) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        }
        DropboxError::from_response(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body.as_bytes(),
        )
    }

    const JSON: &str = "application/json";

    #[test]
    fn auth_errors_are_told_apart() {
        let expired = r#"{"error_summary": "expired_access_token/..", "error": {".tag": "expired_access_token"}}"#;
        assert!(matches!(parse(401, JSON, None, expired), DropboxError::ExpiredToken));
        let scope = r#"{"error_summary": "missing_scope/.", "error": {".tag": "missing_scope", "required_scope": "files.content.read"}}"#;
        assert!(matches!(parse(401, JSON, None, scope),
            DropboxError::MissingScope { required_scope } if required_scope == "files.content.read"));
        let invalid = r#"{"error_summary": "invalid_access_token/", "error": {".tag": "invalid_access_token"}}"#;
        assert!(matches!(parse(401, JSON, None, invalid),
            DropboxError::InvalidToken { reason } if reason == "invalid_access_token"));
        let suspended = r#"{"error": {".tag": "user_suspended"}}"#;
        assert!(matches!(parse(401, JSON, None, suspended),
            DropboxError::InvalidToken { reason } if reason == "user_suspended"));
        for tag in ["route_access_denied", "some_tag_added_next_year"] {
            let body = format!(r#"{{"error": {{".tag": "{tag}"}}}}"#);
            assert!(matches!(parse(401, JSON, None, &body),
                DropboxError::Unauthorized { reason } if reason == tag));
        }
        assert!(matches!(
            parse(401, JSON, None, "garbage"),
            DropboxError::Unexpected { status: 401, .. }
        ));
    }

    #[test]
    fn rate_limits_take_their_wait_from_the_body_then_the_header() {
        let body = r#"{"error_summary":"too_many_requests/..","error":{"reason":{".tag":"too_many_requests"},"retry_after":300}}"#;
        assert!(matches!(parse(429, JSON, Some("7"), body),
            DropboxError::RateLimited { reason: RateLimitReason::TooManyRequests, retry_after } if retry_after == Duration::from_secs(300)));
        let no_wait = r#"{"error_summary":"too_many_write_operations/..","error":{"reason":{".tag":"too_many_write_operations"}}}"#;
        assert!(matches!(parse(429, JSON, Some("3"), no_wait),
            DropboxError::RateLimited { reason: RateLimitReason::TooManyWriteOperations, retry_after } if retry_after == Duration::from_secs(3)));
        assert!(matches!(parse(429, "text/plain; charset=utf-8", Some("12"), "Too many requests"),
            DropboxError::RateLimited { reason: RateLimitReason::TooManyRequests, retry_after } if retry_after == Duration::from_secs(12)));
        assert!(matches!(parse(429, "text/plain", None, ""),
            DropboxError::RateLimited { retry_after, .. } if retry_after == DEFAULT_RETRY_AFTER));
    }

    #[test]
    fn route_errors_keep_their_tag_chain() {
        let cases = [
            (
                r#"{"error_summary": "path/not_found/..", "error": {".tag": "path", "path": {".tag": "not_found"}}}"#,
                vec!["path", "not_found"],
            ),
            (r#"{"error_summary":"reset/..","error":{".tag":"reset"}}"#, vec!["reset"]),
            (
                r#"{"error_summary":"path/conflict/folder/..","error":{".tag":"path","reason":{".tag":"conflict","conflict":{".tag":"folder"}},"upload_session_id":"x"}}"#,
                vec!["path", "conflict", "folder"],
            ),
            (
                r#"{"error_summary":"hologram/..","error":{".tag":"hologram","future":true}}"#,
                vec!["hologram"],
            ),
        ];
        for (body, tags) in cases {
            match parse(409, JSON, None, body) {
                DropboxError::Route(route) => assert_eq!(route.tags, tags, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let DropboxError::Route(reset) = parse(409, JSON, None, r#"{"error":{".tag":"reset"}}"#)
        else {
            panic!()
        };
        assert!(reset.is_reset() && !reset.is_not_found());
        let DropboxError::Route(missing) =
            parse(409, JSON, None, r#"{"error":{".tag":"path","path":{".tag":"not_found"}}}"#)
        else {
            panic!()
        };
        assert!(missing.is_not_found());
    }

    #[test]
    fn write_contention_in_a_409_is_a_rate_limit() {
        let body = r#"{"error_summary":"path/too_many_write_operations/..","error":{".tag":"path","reason":{".tag":"too_many_write_operations"},"upload_session_id":"x"}}"#;
        assert!(matches!(
            parse(409, JSON, None, body),
            DropboxError::RateLimited { reason: RateLimitReason::TooManyWriteOperations, .. }
        ));
    }

    #[test]
    fn other_statuses_map_to_their_class() {
        assert!(
            matches!(parse(400, "text/plain", None, "Error in call to API function \"files/list_folder\": path: bad"),
            DropboxError::BadInput(text) if text.contains("files/list_folder"))
        );
        assert!(matches!(
            parse(503, "text/html", None, "<html>"),
            DropboxError::Server { status: 503 }
        ));
        assert!(
            matches!(parse(422, JSON, None, r#"{"error_summary":"invalid_root/..","error":{".tag":"invalid_root","invalid_root":{".tag":"user","root_namespace_id":"1","home_namespace_id":"1"}}}"#),
            DropboxError::PathRoot(tag) if tag == "invalid_root")
        );
        assert!(matches!(parse(403, JSON, None, r#"{"error":{".tag":"no_permission"}}"#),
            DropboxError::AccessDenied(tag) if tag == "no_permission"));
        assert!(matches!(parse(418, "text/plain", None, &"x".repeat(1000)),
            DropboxError::Unexpected { status: 418, detail } if detail.chars().count() == MAX_DETAIL + 1));
        assert!(parse(500, "", None, "").is_transient());
        assert!(!parse(429, "", None, "").is_transient());
    }
}
