//! What Dropbox refuses, the emulator refuses, with Dropbox's status, content type and body:
//! malformed paths, arguments and headers, write conflicts; and what it accepts, it accepts
//! too (a void route's missing body).

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{TestDropbox, content_type};

/// One request Dropbox refuses, and how it refuses it.
struct Refusal {
    what: &'static str,
    route: &'static str,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
    status: u16,
    /// For 400s: a fragment of the text body. For 401/409: the expected `error` JSON.
    expect: Expect,
}

enum Expect {
    Text(&'static str),
    Error(&'static str, Value),
}

fn json_ct() -> (&'static str, Vec<u8>) {
    ("Content-Type", b"application/json".to_vec())
}

fn octet_ct() -> (&'static str, Vec<u8>) {
    ("Content-Type", b"application/octet-stream".to_vec())
}

fn arg(value: &str) -> (&'static str, Vec<u8>) {
    ("Dropbox-API-Arg", value.as_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_rejects_what_dropbox_rejects_with_dropboxs_status_and_body() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().put_file(dropbox.id(), "/Notes/a.md", "# A\n").expect("put");
    let a_rev = dropbox.rpc_json("files/get_metadata", json!({"path": "/Notes/a.md"})).await["rev"]
        .as_str()
        .expect("a rev")
        .to_owned();
    let wrong_rev = if a_rev.starts_with('0') { "1" } else { "0" }.repeat(a_rev.len());
    let token = dropbox.token().to_owned();
    let bearer = ("Authorization", format!("Bearer {token}").into_bytes());
    let cases = vec![
        Refusal {
            what: "the root written as a slash",
            route: "files/list_folder",
            headers: vec![json_ct()],
            body: br#"{"path": "/"}"#.to_vec(),
            status: 400,
            expect: Expect::Text(
                "path: Specify the root folder as an empty string rather than as \"/\".",
            ),
        },
        Refusal {
            what: "raw UTF-8 in Dropbox-API-Arg",
            route: "files/upload",
            headers: vec![
                octet_ct(),
                ("Dropbox-API-Arg", "{\"path\": \"/ü.md\"}".as_bytes().to_vec()),
            ],
            body: b"x".to_vec(),
            status: 400,
            expect: Expect::Text("HTTP header \"Dropbox-API-Arg\": could not decode input as JSON"),
        },
        Refusal {
            what: "a charset after the upload Content-Type",
            route: "files/upload",
            headers: vec![
                ("Content-Type", b"application/octet-stream; charset=utf8".to_vec()),
                arg(r#"{"path": "/x.md"}"#),
            ],
            body: b"x".to_vec(),
            status: 400,
            expect: Expect::Text(
                "Bad HTTP \"Content-Type\" header: \"application/octet-stream; charset=utf8\".  Expecting one of \"application/octet-stream\"",
            ),
        },
        Refusal {
            what: "an upload with no Content-Type, even with an empty body",
            route: "files/upload",
            headers: vec![arg(r#"{"path": "/x.md"}"#)],
            body: Vec::new(),
            status: 400,
            expect: Expect::Text("Bad HTTP \"Content-Type\" header"),
        },
        Refusal {
            what: "a void route given an object",
            route: "users/get_current_account",
            headers: vec![json_ct()],
            body: b"{}".to_vec(),
            status: 400,
            expect: Expect::Text("request body: expected null, got value"),
        },
        Refusal {
            what: "a void route given a JSON Content-Type and no body",
            route: "users/get_current_account",
            headers: vec![json_ct()],
            body: Vec::new(),
            status: 400,
            expect: Expect::Text("request body: could not decode input as JSON"),
        },
        Refusal {
            what: "a void route given a text body",
            route: "auth/token/revoke",
            headers: vec![("Content-Type", b"text/plain".to_vec())],
            body: b"null".to_vec(),
            status: 400,
            expect: Expect::Text("Bad HTTP \"Content-Type\" header: \"text/plain\""),
        },
        Refusal {
            what: "an RPC body that is not JSON",
            route: "files/list_folder",
            headers: vec![json_ct()],
            body: b"{path: ''}".to_vec(),
            status: 400,
            expect: Expect::Text("request body: could not decode input as JSON"),
        },
        Refusal {
            what: "an RPC call without a Content-Type",
            route: "files/list_folder",
            headers: vec![],
            body: br#"{"path": ""}"#.to_vec(),
            status: 400,
            expect: Expect::Text("Bad HTTP \"Content-Type\" header"),
        },
        Refusal {
            what: "a limit out of range",
            route: "files/list_folder",
            headers: vec![json_ct()],
            body: br#"{"path": "", "limit": 0}"#.to_vec(),
            status: 400,
            expect: Expect::Text("limit"),
        },
        Refusal {
            what: "a cursor nobody issued",
            route: "files/list_folder/continue",
            headers: vec![json_ct()],
            body: br#"{"cursor": "AAEnot-a-cursor"}"#.to_vec(),
            status: 400,
            expect: Expect::Text("cursor"),
        },
        Refusal {
            what: "metadata of a missing file",
            route: "files/get_metadata",
            headers: vec![json_ct()],
            body: br#"{"path": "/nowhere.md"}"#.to_vec(),
            status: 409,
            expect: Expect::Error(
                "path/not_found/..",
                json!({".tag": "path", "path": {".tag": "not_found"}}),
            ),
        },
        Refusal {
            what: "deleting a missing file",
            route: "files/delete_v2",
            headers: vec![json_ct()],
            body: br#"{"path": "/nowhere.md"}"#.to_vec(),
            status: 409,
            expect: Expect::Error(
                "path_lookup/not_found/..",
                json!({".tag": "path_lookup", "path_lookup": {".tag": "not_found"}}),
            ),
        },
        Refusal {
            what: "downloading a folder",
            route: "files/download",
            headers: vec![arg(r#"{"path": "/notes"}"#)],
            body: Vec::new(),
            status: 409,
            expect: Expect::Error(
                "path/not_file/..",
                json!({".tag": "path", "path": {".tag": "not_file"}}),
            ),
        },
        Refusal {
            what: "listing a file as a folder",
            route: "files/list_folder",
            headers: vec![json_ct()],
            body: br#"{"path": "/notes/A.md"}"#.to_vec(),
            status: 409,
            expect: Expect::Error(
                "path/not_folder/..",
                json!({".tag": "path", "path": {".tag": "not_folder"}}),
            ),
        },
        Refusal {
            what: "a path with a trailing slash",
            route: "files/get_metadata",
            headers: vec![json_ct()],
            body: br#"{"path": "/notes/"}"#.to_vec(),
            status: 409,
            expect: Expect::Error(
                "path/malformed_path/..",
                json!({".tag": "path", "path": {".tag": "malformed_path"}}),
            ),
        },
        Refusal {
            what: "a content hash that does not match the upload",
            route: "files/upload",
            headers: vec![
                octet_ct(),
                arg(&format!(r#"{{"path": "/h.md", "content_hash": "{}"}}"#, "0".repeat(64))),
            ],
            body: b"x".to_vec(),
            status: 409,
            expect: Expect::Error(
                "content_hash_mismatch/..",
                json!({".tag": "content_hash_mismatch"}),
            ),
        },
    ];
    for case in cases {
        let mut request = dropbox
            .http
            .post(dropbox.url(&format!("2/{}", case.route)))
            .header(bearer.0, bearer.1.as_slice())
            .body(case.body.clone());
        for (name, value) in &case.headers {
            request = request
                .header(*name, reqwest::header::HeaderValue::from_bytes(value).expect("a header"));
        }
        let response = request.send().await.expect("an answer");
        assert_eq!(response.status().as_u16(), case.status, "{}", case.what);
        let kind = content_type(&response);
        let body = response.text().await.expect("a body");
        match case.expect {
            Expect::Text(fragment) => {
                assert_eq!(kind, "text/plain; charset=utf-8", "{}", case.what);
                let prefix = format!("Error in call to API function \"{}\": ", case.route);
                assert!(body.starts_with(&prefix), "{}: {body}", case.what);
                assert!(body.contains(fragment), "{}: {body}", case.what);
            }
            Expect::Error(summary, error) => {
                assert_eq!(kind, "application/json", "{}", case.what);
                let body: Value = serde_json::from_str(&body).expect("JSON");
                assert_eq!(body["error_summary"], summary, "{}", case.what);
                assert_eq!(body["error"], error, "{}", case.what);
            }
        }
    }

    // Upload write conflicts carry the flattened `UploadWriteFailed` struct.
    for (what, arg_value, summary, reason) in [
        (
            "an upload onto a folder",
            json!({"path": "/Notes"}),
            "path/conflict/folder/..",
            json!({".tag": "conflict", "conflict": {".tag": "folder"}}),
        ),
        (
            "an upload below a file",
            json!({"path": "/Notes/a.md/b.md"}),
            "path/conflict/file_ancestor/..",
            json!({".tag": "conflict", "conflict": {".tag": "file_ancestor"}}),
        ),
        (
            "an add onto a different file",
            json!({"path": "/notes/a.md", "mode": "add"}),
            "path/conflict/file/..",
            json!({".tag": "conflict", "conflict": {".tag": "file"}}),
        ),
        (
            "an update from a stale rev",
            json!({"path": "/notes/a.md", "mode": {".tag": "update", "update": wrong_rev}}),
            "path/conflict/file/..",
            json!({".tag": "conflict", "conflict": {".tag": "file"}}),
        ),
        (
            "a path ending in whitespace",
            json!({"path": "/notes/b.md "}),
            "path/malformed_path/..",
            json!({".tag": "malformed_path"}),
        ),
    ] {
        let response = dropbox.upload(&token, arg_value, b"different").await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{what}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error_summary"], summary, "{what}");
        assert_eq!(body["error"][".tag"], "path", "{what}");
        assert_eq!(body["error"]["reason"], reason, "{what}");
        assert!(body["error"]["upload_session_id"].is_string(), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn void_routes_accept_no_body_or_null() {
    let dropbox = TestDropbox::start().await;
    let bare = dropbox
        .http
        .post(dropbox.url("2/users/get_current_account"))
        .bearer_auth(dropbox.token())
        .send()
        .await
        .expect("an answer");
    assert_eq!(bare.status(), StatusCode::OK);
    assert_eq!(content_type(&bare), "application/json");
    let account: Value = bare.json().await.expect("JSON");
    assert_eq!(account["account_id"], dropbox.id());
    assert_eq!(account["account_id"].as_str().map(str::len), Some(40));
    assert_eq!(account["name"]["display_name"], "Ada Lovelace");
    assert_eq!(account["root_info"][".tag"], "user");
    let with_null = dropbox.rpc("users/get_current_account", dropbox.token(), Value::Null).await;
    assert_eq!(with_null.status(), StatusCode::OK);
}
