//! Fault injection: the next N calls to a route answer with a chosen status, body and headers,
//! or are only delayed. This is how tests make the emulator rate-limit, fail or stall.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::json;

/// One fault: matched by route (`"files/upload"`, `"oauth2/token"`, …) and optionally by
/// account, consumed `times` times.
#[derive(Clone, Debug)]
pub struct FaultRule {
    pub route: String,
    /// Only calls made for this account; `None` matches every caller.
    pub account_id: Option<String>,
    pub times: u32,
    /// The status to answer with; `0` means "delay only, then answer normally".
    pub status: u16,
    pub body: String,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    /// Waited before answering, with the fault or normally.
    pub delay: Option<Duration>,
    /// Held here until the gate opens, then answered, with the fault or normally.
    pub gate: Option<Gate>,
}

/// Where held calls wait until a test lets them through: a request on the wire that lands
/// whenever the test says, not after a delay that has to be guessed long enough.
#[derive(Clone, Debug)]
pub struct Gate(Arc<tokio::sync::Semaphore>);

impl Default for Gate {
    fn default() -> Self {
        Gate(Arc::new(tokio::sync::Semaphore::new(0)))
    }
}

impl Gate {
    /// Lets every call held at the gate, and every later one, through.
    pub fn open(&self) {
        self.0.close();
    }

    /// Waits until the gate is open.
    pub(super) async fn pass(&self) {
        // No permit is ever added: acquiring ends only when the gate is closed, i.e. open.
        let _ = self.0.acquire().await;
    }
}

impl FaultRule {
    /// The next `times` calls to `route` answer `status` with a plain-text `body`.
    pub fn status(route: &str, times: u32, status: u16, body: &str) -> FaultRule {
        FaultRule {
            route: route.to_owned(),
            account_id: None,
            times,
            status,
            body: body.to_owned(),
            content_type: "text/plain; charset=utf-8".to_owned(),
            headers: Vec::new(),
            delay: None,
            gate: None,
        }
    }

    /// The next `times` calls to `route` are answered normally after `delay`.
    pub fn delay(route: &str, times: u32, delay: Duration) -> FaultRule {
        FaultRule { delay: Some(delay), ..FaultRule::status(route, times, 0, "") }
    }

    /// The next `times` calls to `route` are held until `gate` opens, then answered normally.
    pub fn held(route: &str, times: u32, gate: &Gate) -> FaultRule {
        FaultRule { gate: Some(gate.clone()), ..FaultRule::status(route, times, 0, "") }
    }

    /// Dropbox's JSON 429 (`RateLimitError`, no top-level `.tag`) with a `Retry-After` header.
    pub fn rate_limited(route: &str, times: u32, retry_after_seconds: u32) -> FaultRule {
        let body = format!(
            r#"{{"error_summary": "too_many_requests/..", "error": {{"reason": {{".tag": "too_many_requests"}}, "retry_after": {retry_after_seconds}}}}}"#
        );
        FaultRule {
            content_type: "application/json".to_owned(),
            headers: vec![("Retry-After".to_owned(), retry_after_seconds.to_string())],
            ..FaultRule::status(route, times, 429, &body)
        }
    }

    /// Namespace lock contention as a 429 (`RateLimitError` with reason
    /// `too_many_write_operations`); like Dropbox's, the body has no `retry_after` and no
    /// `Retry-After` header is sent (add one to `headers` to test that path).
    pub fn too_many_write_operations(route: &str, times: u32) -> FaultRule {
        let body = json!({
            "error_summary": "too_many_write_operations/..",
            "error": {"reason": {".tag": "too_many_write_operations"}},
        });
        FaultRule {
            content_type: "application/json".to_owned(),
            ..FaultRule::status(route, times, 429, &body.to_string())
        }
    }

    /// Namespace lock contention as the route's own 409: `path/too_many_write_operations` in
    /// upload's flattened `UploadWriteFailed`, the top-level member for `delete_v2`.
    pub fn write_contention(route: &str, times: u32) -> FaultRule {
        let body = if route == "files/upload" {
            json!({
                "error_summary": "path/too_many_write_operations/..",
                "error": {
                    ".tag": "path",
                    "reason": {".tag": "too_many_write_operations"},
                    "upload_session_id": "emulated-session",
                },
            })
        } else {
            json!({
                "error_summary": "too_many_write_operations/..",
                "error": {".tag": "too_many_write_operations"},
            })
        };
        FaultRule {
            content_type: "application/json".to_owned(),
            ..FaultRule::status(route, times, 409, &body.to_string())
        }
    }

    /// The route's own 409 with `error` as its Stone value, e.g. upload's
    /// `{".tag": "path", "reason": {".tag": "insufficient_space"}, "upload_session_id": "…"}`.
    pub fn route_error(route: &str, times: u32, error: serde_json::Value) -> FaultRule {
        let summary = route_error_summary(&error);
        let body = json!({"error_summary": summary, "error": error});
        FaultRule {
            content_type: "application/json".to_owned(),
            ..FaultRule::status(route, times, 409, &body.to_string())
        }
    }

    /// Upload's 409 for an account out of space (`path/insufficient_space`).
    pub fn insufficient_space(times: u32) -> FaultRule {
        let error = json!({
            ".tag": "path",
            "reason": {".tag": "insufficient_space"},
            "upload_session_id": "emulated-session",
        });
        FaultRule::route_error("files/upload", times, error)
    }

    /// A 401 `AuthError` with `tag` (`invalid_access_token`, `user_suspended`,
    /// `route_access_denied`, or one Dropbox has not made up yet); `missing_scope` names the
    /// scope `files.content.write`.
    pub fn auth_error(route: &str, times: u32, tag: &str) -> FaultRule {
        let mut error = json!({".tag": tag});
        if tag == "missing_scope" {
            error["required_scope"] = json!("files.content.write");
        }
        let body = json!({"error_summary": format!("{tag}/.."), "error": error});
        FaultRule {
            content_type: "application/json".to_owned(),
            ..FaultRule::status(route, times, 401, &body.to_string())
        }
    }

    /// Restricts the rule to calls made for one account.
    pub fn for_account(mut self, account_id: &str) -> FaultRule {
        self.account_id = Some(account_id.to_owned());
        self
    }

    fn matches(&self, route: &str, account_id: Option<&str>) -> bool {
        self.times > 0
            && self.route == route
            && self.account_id.as_deref().is_none_or(|wanted| Some(wanted) == account_id)
    }

    /// The fault's own response, or `None` for a delay-only rule.
    pub fn response(&self) -> Option<HttpResponse> {
        if self.status == 0 {
            return None;
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        if !self.content_type.is_empty() {
            response.content_type(self.content_type.as_str());
        }
        for (name, value) in &self.headers {
            response.append_header((name.as_str(), value.as_str()));
        }
        Some(response.body(self.body.clone()))
    }
}

/// `path/insufficient_space/..`: the tags of a Stone union, as Dropbox summarises them.
fn route_error_summary(mut error: &serde_json::Value) -> String {
    let mut summary = String::new();
    while let Some(tag) = error[".tag"].as_str() {
        summary.push_str(tag);
        summary.push('/');
        error = if error[tag].is_object() { &error[tag] } else { &error["reason"] };
    }
    summary.push('.');
    summary
}

/// Takes one use of the first rule matching the call, dropping rules that are used up.
pub fn take(
    rules: &mut Vec<FaultRule>,
    route: &str,
    account_id: Option<&str>,
) -> Option<FaultRule> {
    let index = rules.iter().position(|rule| rule.matches(route, account_id))?;
    let rule = &mut rules[index];
    rule.times -= 1;
    let taken = rule.clone();
    if rule.times == 0 {
        rules.remove(index);
    }
    Some(taken)
}
