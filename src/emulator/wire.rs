//! How the emulator answers on the wire: Dropbox's status codes, bodies and `.tag` layouts.
//!
//! Every error a route can give is built here, so the layout rules of docs/dropbox.md §1 live in
//! one place: a union member carrying a union or primitive is *nested* under a key named like its
//! tag, one carrying an ordinary struct is *flattened* next to `.tag`, and a void member is the tag
//! alone. The 409 envelope is `{"error_summary": "<tags>/..", "error": ...}` (docs/dropbox.md §6).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

use super::faults::FaultRule;

/// `Content-Type` of Dropbox's 400 bodies.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// A call Dropbox refuses; each variant is one status with its body shape.
#[derive(Debug)]
pub enum CallError {
    /// 400, plain text: the input itself is wrong (bad JSON, bad header, pattern mismatch).
    BadInput(String),
    /// 401, JSON `AuthError`.
    Unauthorized(AuthFailure),
    /// 409, JSON envelope with the route's error.
    Route(RouteError),
    /// 429 `too_many_write_operations`: another write holds the namespace.
    TooManyWriteOperations,
    /// 429 `too_many_requests`: the account has too many calls in flight (docs/dropbox.md §14).
    TooManyRequests { retry_after_seconds: u32 },
    /// 422, JSON `PathRootError`: `Dropbox-API-Path-Root` names a namespace the account cannot
    /// start from.
    PathRoot(Value),
}

/// The `AuthError` members the emulator gives (docs/dropbox.md §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    InvalidAccessToken,
    ExpiredAccessToken,
    MissingScope(&'static str),
}

impl CallError {
    /// The response, with the route's name in the 400 text the way Dropbox prefixes it.
    pub fn into_response(self, route: &str) -> HttpResponse {
        match self {
            CallError::BadInput(message) => bad_input(route, &message),
            CallError::Unauthorized(failure) => {
                let (summary, error) = match failure {
                    AuthFailure::InvalidAccessToken => {
                        ("invalid_access_token", json!({".tag": "invalid_access_token"}))
                    }
                    AuthFailure::ExpiredAccessToken => {
                        ("expired_access_token", json!({".tag": "expired_access_token"}))
                    }
                    // `missing_scope` carries the `TokenScopeError` struct, so it is flattened.
                    AuthFailure::MissingScope(scope) => {
                        ("missing_scope", json!({".tag": "missing_scope", "required_scope": scope}))
                    }
                };
                envelope(StatusCode::UNAUTHORIZED, &format!("{summary}/.."), error)
            }
            CallError::Route(error) => {
                envelope(StatusCode::CONFLICT, &format!("{}/..", error.summary), error.error)
            }
            CallError::PathRoot(error) => {
                let summary = format!("{}/..", error[".tag"].as_str().unwrap_or("path_root"));
                envelope(StatusCode::UNPROCESSABLE_ENTITY, &summary, error)
            }
            // The very body the fault of that name gives, so the two cannot drift apart.
            CallError::TooManyWriteOperations => {
                FaultRule::too_many_write_operations(route, 1).response().unwrap_or_else(|| {
                    HttpResponse::TooManyRequests().content_type(TEXT_PLAIN).finish()
                })
            }
            CallError::TooManyRequests { retry_after_seconds } => {
                FaultRule::rate_limited(route, 1, retry_after_seconds).response().unwrap_or_else(
                    || HttpResponse::TooManyRequests().content_type(TEXT_PLAIN).finish(),
                )
            }
        }
    }
}

/// A 400 with Dropbox's `Error in call to API function "<route>": <message>` text.
fn bad_input(route: &str, message: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type(TEXT_PLAIN)
        .body(format!("Error in call to API function \"{route}\": {message}"))
}

fn envelope(status: StatusCode, summary: &str, error: Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(json!({"error_summary": summary, "error": error}).to_string())
}

/// A 409 route error: its tag chain for `error_summary` and the `error` value.
#[derive(Debug)]
pub struct RouteError {
    summary: String,
    error: Value,
}

/// `LookupError` (docs/dropbox.md §6), the members the emulator can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupError {
    MalformedPath,
    NotFound,
    NotFile,
    NotFolder,
}

impl LookupError {
    fn tag(self) -> &'static str {
        match self {
            LookupError::MalformedPath => "malformed_path",
            LookupError::NotFound => "not_found",
            LookupError::NotFile => "not_file",
            LookupError::NotFolder => "not_folder",
        }
    }
}

/// `WriteError`, the members the emulator can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    MalformedPath,
    Conflict(Conflict),
}

/// `WriteConflictError`: what is in the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    File,
    Folder,
    FileAncestor,
}

impl Conflict {
    fn tag(self) -> &'static str {
        match self {
            Conflict::File => "file",
            Conflict::Folder => "folder",
            Conflict::FileAncestor => "file_ancestor",
        }
    }
}

impl WriteError {
    fn tags(self) -> Vec<&'static str> {
        match self {
            WriteError::MalformedPath => vec!["malformed_path"],
            WriteError::Conflict(conflict) => vec!["conflict", conflict.tag()],
        }
    }

    fn value(self) -> Value {
        match self {
            // A nullable string member left unset: the tag alone.
            WriteError::MalformedPath => json!({".tag": "malformed_path"}),
            // `conflict` carries a union, so it is nested.
            WriteError::Conflict(conflict) => {
                json!({".tag": "conflict", "conflict": {".tag": conflict.tag()}})
            }
        }
    }
}

impl RouteError {
    /// A union member carrying a `LookupError`, nested under its tag: `path` for list_folder,
    /// get_metadata and download, `path_lookup` for delete_v2.
    pub fn lookup(member: &'static str, error: LookupError) -> RouteError {
        RouteError {
            summary: format!("{member}/{}", error.tag()),
            error: json!({".tag": member, member: {".tag": error.tag()}}),
        }
    }

    /// `DeleteError.path_write`, nested.
    pub fn delete_write(error: WriteError) -> RouteError {
        let mut tags = vec!["path_write"];
        tags.extend(error.tags());
        RouteError {
            summary: tags.join("/"),
            error: json!({".tag": "path_write", "path_write": error.value()}),
        }
    }

    /// `UploadError.path`: its value is the `UploadWriteFailed` struct, so it is flattened.
    pub fn upload_write(error: WriteError, upload_session_id: &str) -> RouteError {
        let mut tags = vec!["path"];
        tags.extend(error.tags());
        RouteError {
            summary: tags.join("/"),
            error: json!({
                ".tag": "path",
                "reason": error.value(),
                "upload_session_id": upload_session_id,
            }),
        }
    }

    /// `template_not_found` (a `TemplateError` member carrying the template id) nested under
    /// `member`: `template_error` for list_folder, `properties_error` for upload.
    pub fn template_not_found(member: &'static str, template_id: &str) -> RouteError {
        RouteError {
            summary: format!("{member}/template_not_found"),
            error: json!({
                ".tag": member,
                member: {".tag": "template_not_found", "template_not_found": template_id},
            }),
        }
    }

    /// A void member: the tag alone (`reset`, `unsupported_file`, `payload_too_large`, …).
    pub fn void(tag: &'static str) -> RouteError {
        RouteError { summary: tag.to_owned(), error: json!({".tag": tag}) }
    }

    /// `UploadSessionAppendError`: the lookup's member itself, at the top.
    pub fn session_append(error: SessionLookup) -> RouteError {
        RouteError { summary: error.tag().to_owned(), error: error.value() }
    }

    /// `UploadSessionFinishError.lookup_failed`, nested (its value is a union).
    pub fn session_lookup_failed(error: SessionLookup) -> RouteError {
        RouteError {
            summary: format!("lookup_failed/{}", error.tag()),
            error: json!({".tag": "lookup_failed", "lookup_failed": error.value()}),
        }
    }

    /// `UploadSessionFinishError.path`: unlike upload's, a plain `WriteError`, so nested.
    pub fn session_write(error: WriteError) -> RouteError {
        let mut tags = vec!["path"];
        tags.extend(error.tags());
        RouteError {
            summary: tags.join("/"),
            error: json!({".tag": "path", "path": error.value()}),
        }
    }

    /// The `error` value alone, for a batch entry's `failure`.
    pub fn into_value(self) -> Value {
        self.error
    }
}

/// `UploadSessionLookupError` (and the same members of `UploadSessionAppendError`), those the
/// emulator gives (docs/dropbox.md §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionLookup {
    /// No such session for this account, or it is older than its lifetime.
    NotFound,
    /// The cursor's offset is not the session's length, which is the right one.
    IncorrectOffset { correct_offset: u64 },
    /// Closed (or already committed): no more data may be added.
    Closed,
    /// A batch commits only closed sessions.
    NotClosed,
    /// Past the most a session may hold.
    TooLarge,
}

impl SessionLookup {
    fn tag(self) -> &'static str {
        match self {
            SessionLookup::NotFound => "not_found",
            SessionLookup::IncorrectOffset { .. } => "incorrect_offset",
            SessionLookup::Closed => "closed",
            SessionLookup::NotClosed => "not_closed",
            SessionLookup::TooLarge => "too_large",
        }
    }

    fn value(self) -> Value {
        match self {
            // `UploadSessionOffsetError` is a struct, so it is flattened beside the tag.
            SessionLookup::IncorrectOffset { correct_offset } => {
                json!({".tag": "incorrect_offset", "correct_offset": correct_offset})
            }
            other => json!({".tag": other.tag()}),
        }
    }
}

/// JSON fit for an HTTP header: every character from U+007F up as a `\uXXXX` escape, characters
/// above U+FFFF as a UTF-16 surrogate pair (docs/dropbox.md §4).
///
/// serde_json leaves non-ASCII only inside strings, where an escape means the same character, so
/// escaping after serialising is safe.
pub fn header_safe_json(value: &Value) -> String {
    let raw = value.to_string();
    let mut escaped = String::with_capacity(raw.len());
    for character in raw.chars() {
        if u32::from(character) < 0x7f {
            escaped.push(character);
        } else {
            let mut units = [0u16; 2];
            for unit in character.encode_utf16(&mut units) {
                escaped.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    escaped
}

/// Decodes `%XX` escapes (and nothing else: `+` stays a plus in a path); `None` if the
/// escapes are broken or the result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// Decodes one `application/x-www-form-urlencoded` value: `+` is a space, then `%XX` escapes.
pub fn form_decode(text: &str) -> Option<String> {
    percent_decode(&text.replace('+', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_plus_signs_and_refuses_broken_escapes() {
        assert_eq!(percent_decode("a%20b+c%C3%A9").as_deref(), Some("a b+cé"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn form_decoding_reads_plus_as_a_space_and_an_escaped_plus_as_a_plus() {
        assert_eq!(form_decode("s3c+r%2Bt%3A%40").as_deref(), Some("s3c r+t:@"));
        assert_eq!(form_decode("bad%zz"), None);
    }

    #[test]
    fn header_json_escapes_dropboxs_vector_like_dropbox_does() {
        let value = json!({"field": "some_üñîcødé_and_\u{7f}"});
        assert_eq!(
            header_safe_json(&value),
            r#"{"field":"some_\u00fc\u00f1\u00eec\u00f8d\u00e9_and_\u007f"}"#
        );
    }

    #[test]
    fn header_json_writes_an_emoji_as_a_surrogate_pair() {
        let value = json!("/😀.md");
        assert_eq!(header_safe_json(&value), r#""/\ud83d\ude00.md""#);
        let back: Value = serde_json::from_str(&header_safe_json(&value)).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_session_finish_nests_its_write_error_and_flattens_an_offset() {
        // `UploadSessionFinishError.path` is a `WriteError` (a union), unlike upload's struct.
        let error = RouteError::session_write(WriteError::Conflict(Conflict::Folder));
        assert_eq!(error.summary, "path/conflict/folder");
        assert_eq!(
            error.error,
            json!({".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "folder"}}})
        );
        let error =
            RouteError::session_lookup_failed(SessionLookup::IncorrectOffset { correct_offset: 7 });
        assert_eq!(error.summary, "lookup_failed/incorrect_offset");
        assert_eq!(
            error.error,
            json!({".tag": "lookup_failed",
                   "lookup_failed": {".tag": "incorrect_offset", "correct_offset": 7}})
        );
        let error = RouteError::session_append(SessionLookup::NotFound);
        assert_eq!(
            (error.summary.as_str(), error.error),
            ("not_found", json!({".tag": "not_found"}))
        );
    }

    #[test]
    fn upload_conflicts_are_flattened_and_lookup_errors_nested() {
        let error = RouteError::upload_write(WriteError::Conflict(Conflict::Folder), "s1");
        assert_eq!(error.summary, "path/conflict/folder");
        assert_eq!(
            error.error,
            json!({".tag": "path", "reason": {".tag": "conflict", "conflict": {".tag": "folder"}},
                   "upload_session_id": "s1"})
        );
        let error = RouteError::lookup("path_lookup", LookupError::NotFound);
        assert_eq!(error.summary, "path_lookup/not_found");
        assert_eq!(
            error.error,
            json!({".tag": "path_lookup", "path_lookup": {".tag": "not_found"}})
        );
    }
}
