//! Checking a request before its route runs: the `Content-Type` a route style accepts, and the
//! argument, decoded from the body or the `Dropbox-API-Arg` header and checked against the
//! spec's fields and patterns.

use actix_web::http::header::{self, HeaderMap};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::emulator::path::rev_problem;
use crate::emulator::wire::CallError;

use super::Style;

const JSON_TYPES: &str = "\"application/json\", \"application/json; charset=utf-8\", \
     \"text/plain; charset=dropbox-cors-hack\"";
const OCTET_TYPES: &str = "\"application/octet-stream\", \"text/plain; charset=dropbox-cors-hack\"";

pub(super) fn check_content_type(
    style: Style,
    headers: &HeaderMap,
    empty_body: bool,
) -> Result<(), CallError> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|value| value.as_bytes());
    let accepted = match (style, content_type) {
        // Void routes: no body and no Content-Type is how the JS SDK calls them (docs/dropbox.md §1).
        (Style::RpcVoid, None) => empty_body,
        (Style::Rpc | Style::RpcVoid, Some(value)) => {
            value == b"application/json" || value == b"application/json; charset=utf-8"
        }
        (Style::Rpc, None) => false,
        // Exactly this; even `; charset=utf8` appended is refused (observed, docs/dropbox.md §3.5).
        (Style::Upload, Some(value)) => value == b"application/octet-stream",
        (Style::Upload, None) => false,
        (Style::Download, None) => true,
        (Style::Download, Some(value)) => value == b"application/octet-stream",
    };
    if accepted {
        return Ok(());
    }
    let shown = content_type.map(String::from_utf8_lossy).unwrap_or_default();
    let expected =
        if matches!(style, Style::Upload | Style::Download) { OCTET_TYPES } else { JSON_TYPES };
    Err(CallError::BadInput(format!(
        "Bad HTTP \"Content-Type\" header: \"{shown}\".  Expecting one of {expected}."
    )))
}

const UNDECODABLE_BODY: &str = "request body: could not decode input as JSON";

/// A Void argument: no body at all, or exactly `null` (docs/dropbox.md §1).
pub(super) fn void_arg(headers: &HeaderMap, body: &[u8]) -> Result<(), CallError> {
    if headers.get(header::CONTENT_TYPE).is_none() && body.is_empty() {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Null) => Ok(()),
        Ok(_) => Err(CallError::BadInput("request body: expected null, got value".to_owned())),
        Err(_) => Err(CallError::BadInput(UNDECODABLE_BODY.to_owned())),
    }
}

/// Where a route's argument travels, which is how Dropbox names it in a 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ArgPlace {
    Body,
    Header,
}

impl ArgPlace {
    /// A 400 for the argument: `request body: <detail>` or `HTTP header "Dropbox-API-Arg": …`.
    pub(super) fn refuse(self, detail: impl std::fmt::Display) -> CallError {
        CallError::BadInput(match self {
            ArgPlace::Body => format!("request body: {detail}"),
            ArgPlace::Header => format!("HTTP header \"Dropbox-API-Arg\": {detail}"),
        })
    }
}

/// A route's argument as `files.stone` declares it. Every field of the spec is declared and
/// unknown ones are refused (`deny_unknown_fields`), as Dropbox refuses them: a misspelled
/// optional field must not pass as if it were absent (a `parent_revv` would make a guarded
/// delete unconditional). [`Argument::check`] then applies the spec's patterns and ranges.
pub(super) trait Argument: DeserializeOwned {
    /// The detail of the 400 for a value the spec's patterns or ranges refuse.
    fn check(&self) -> Result<(), String>;
}

fn argument<T: Argument>(value: Value, place: ArgPlace) -> Result<T, CallError> {
    let arg: T =
        serde_json::from_value(value).map_err(|error| place.refuse(serde_detail(&error)))?;
    arg.check().map_err(|detail| place.refuse(detail))?;
    Ok(arg)
}

/// serde's message in Dropbox's words where they differ: for an unknown field Dropbox says
/// `unknown field 'parent_revv'` where serde says ``unknown field `parent_revv`, expected …``,
/// and a union's unknown member is an unknown tag.
fn serde_detail(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let named = |prefix: &str| {
        let rest = message.strip_prefix(prefix)?;
        let end = rest.rfind("`, expected").or_else(|| rest.rfind("`, there are no "))?;
        Some(rest[..end].to_owned())
    };
    if let Some(field) = named("unknown field `") {
        format!("unknown field '{field}'")
    } else if let Some(tag) = named("unknown variant `") {
        format!("unknown tag '{tag}'")
    } else {
        message
    }
}

pub(super) fn rpc_arg<T: Argument>(body: &[u8]) -> Result<T, CallError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| CallError::BadInput(UNDECODABLE_BODY.to_owned()))?;
    argument(value, ArgPlace::Body)
}

/// The `Dropbox-API-Arg` header: JSON that must be pure ASCII, non-ASCII written as `\u`
/// escapes (docs/dropbox.md §4). Raw UTF-8 is refused to catch a client that forgets to escape.
pub(super) fn header_arg<T: Argument>(headers: &HeaderMap) -> Result<T, CallError> {
    let raw = headers.get("Dropbox-API-Arg").ok_or_else(|| {
        CallError::BadInput(
            "Must provide HTTP header \"Dropbox-API-Arg\" or URL parameter \"arg\".".to_owned(),
        )
    })?;
    let bytes = raw.as_bytes();
    let undecodable = || ArgPlace::Header.refuse("could not decode input as JSON");
    if bytes.iter().any(|byte| *byte >= 0x7f) {
        return Err(undecodable());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|_| undecodable())?;
    argument(value, ArgPlace::Header)
}

/// A string field's `min_length`, in Dropbox's words.
pub(super) fn check_min_length(field: &str, value: &str, min: usize) -> Result<(), String> {
    let length = value.chars().count();
    if length < min {
        return Err(format!("{field}: '{value}' must be at least {min} characters, got {length}"));
    }
    Ok(())
}

/// An optional `Rev` field.
pub(super) fn check_rev(field: &str, rev: Option<&str>) -> Result<(), String> {
    match rev.and_then(rev_problem) {
        Some(problem) => Err(format!("{field}: {problem}")),
        None => Ok(()),
    }
}
