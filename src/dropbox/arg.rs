//! `Dropbox-API-Arg`: the JSON argument of upload and download routes, carried in a header.
//!
//! HTTP headers must be ASCII, so Dropbox asks for every character at U+007F or above to be
//! written as a JSON `\uXXXX` escape (developers/reference/json-encoding). Characters beyond
//! U+FFFF (emoji) become a UTF-16 surrogate pair: `\ud83d\ude00`, never `\u1f600`, the bug in
//! the escaping helper the official Rust SDK once had.

use std::fmt::Write;

use serde::Serialize;

/// Serialises `arg` as header-safe JSON.
pub fn header_json(arg: &impl Serialize) -> Result<String, serde_json::Error> {
    serde_json::to_string(arg).map(|json| escape_non_ascii(&json))
}

/// Replaces every char ≥ U+007F with `\uXXXX` escapes, per UTF-16 code unit.
///
/// Safe as a post-pass over serde_json output: outside strings it is pure ASCII, so every
/// non-ASCII char sits inside a string literal, where an escape means the same char.
pub fn escape_non_ascii(json: &str) -> String {
    let mut escaped = String::with_capacity(json.len());
    for c in json.chars() {
        if c < '\u{7f}' {
            escaped.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                write!(escaped, "\\u{unit:04x}").expect("writing to a String cannot fail");
            }
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropboxs_own_vector_is_escaped_as_documented() {
        assert_eq!(
            escape_non_ascii("{\"field\": \"some_üñîcødé_and_\u{7f}\"}"),
            "{\"field\": \"some_\\u00fc\\u00f1\\u00eec\\u00f8d\\u00e9_and_\\u007f\"}"
        );
    }

    #[test]
    fn an_emoji_becomes_a_surrogate_pair() {
        let json = header_json(&serde_json::json!({"path": "/Notes/😀 plan.md"})).unwrap();
        assert_eq!(json, "{\"path\":\"/Notes/\\ud83d\\ude00 plan.md\"}");
        let decoded: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(decoded["path"], "/Notes/😀 plan.md");
    }

    #[test]
    fn escaped_output_is_a_valid_header_value() {
        let json = header_json(&serde_json::json!({"path": "/Ünïcode/日本語.md"})).unwrap();
        assert!(json.bytes().all(|b| (0x20..0x7f).contains(&b)), "{json}");
        assert!(reqwest::header::HeaderValue::from_str(&json).is_ok());
    }
}
