//! The Dropbox emulator, black-box over real HTTP: it must reject what Dropbox rejects, answer
//! with Dropbox's shapes, run OAuth like Dropbox, keep a change journal behind cursors, send
//! signed webhooks, and obey injected faults.
//!
//! These tests speak HTTP with plain reqwest and hand-written JSON, never the markdrop client: the
//! emulator and the client check each other only if neither borrows the other's reading of the
//! wire format.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use markdrop::emulator::{Emulator, EmulatorConfig, FaultRule, LinkedAccount, RunningEmulator};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

const APP_KEY: &str = "emulator-test-key";
const APP_SECRET: &str = "emulator-test-secret";
const REDIRECT_URI: &str = "http://localhost:5000/oauth/callback";
/// How long any awaited condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

struct TestDropbox {
    running: RunningEmulator,
    http: reqwest::Client,
    account: LinkedAccount,
}

impl TestDropbox {
    async fn start() -> TestDropbox {
        TestDropbox::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut EmulatorConfig)) -> TestDropbox {
        let mut config = EmulatorConfig::new(APP_KEY, APP_SECRET);
        config.auto_approve = true;
        adjust(&mut config);
        let running = Emulator::new(config).start(0).await.expect("start the emulator");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let account = running.emulator.create_account("Ada Lovelace");
        TestDropbox { running, http, account }
    }

    fn emulator(&self) -> &Emulator {
        &self.running.emulator
    }

    fn id(&self) -> &str {
        &self.account.account_id
    }

    fn token(&self) -> &str {
        &self.account.access_token
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.running.url(), path.trim_start_matches('/'))
    }

    /// An RPC call with a JSON argument.
    async fn rpc(&self, route: &str, token: &str, arg: Value) -> reqwest::Response {
        self.http
            .post(self.url(&format!("2/{route}")))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(arg.to_string())
            .send()
            .await
            .expect("an answer")
    }

    async fn rpc_json(&self, route: &str, arg: Value) -> Value {
        let response = self.rpc(route, self.token(), arg).await;
        assert_eq!(response.status(), StatusCode::OK, "{route}");
        response.json().await.expect("JSON")
    }

    async fn upload(&self, token: &str, arg: Value, content: &[u8]) -> reqwest::Response {
        self.http
            .post(self.url("2/files/upload"))
            .bearer_auth(token)
            .header("Dropbox-API-Arg", escape_arg(&arg))
            .header("Content-Type", "application/octet-stream")
            .body(content.to_vec())
            .send()
            .await
            .expect("an answer")
    }

    async fn upload_ok(&self, path: &str, content: &[u8]) -> Value {
        let arg = json!({"path": path, "mode": {".tag": "overwrite"}, "mute": true});
        let response = self.upload(self.token(), arg, content).await;
        assert_eq!(response.status(), StatusCode::OK, "upload {path}");
        response.json().await.expect("JSON")
    }

    async fn download(&self, path: &str) -> reqwest::Response {
        self.http
            .post(self.url("2/files/download"))
            .bearer_auth(self.token())
            .header("Dropbox-API-Arg", escape_arg(&json!({"path": path})))
            .send()
            .await
            .expect("an answer")
    }

    async fn token_request(&self, params: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.url("oauth2/token")).form(params).send().await.expect("an answer")
    }

    /// Runs `/oauth2/authorize` (auto-approved) and returns the `code` from the redirect.
    async fn authorize(&self, extra: &[(&str, &str)]) -> String {
        self.emulator().sign_in(self.id());
        let mut params = vec![
            ("client_id", APP_KEY),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("state", "csrf-123"),
            ("token_access_type", "offline"),
        ];
        params.extend_from_slice(extra);
        let response = self
            .http
            .get(self.url("oauth2/authorize"))
            .query(&params)
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = redirect_params(response.headers());
        assert_eq!(location.get("state").map(String::as_str), Some("csrf-123"));
        location.get("code").cloned().expect("a code in the redirect")
    }
}

/// JSON for `Dropbox-API-Arg`: every char from U+007F up as `\uXXXX`, per UTF-16 unit. The
/// tests' own copy, so the emulator's reading is checked against an independent writer.
fn escape_arg(value: &Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if (c as u32) < 0x7f {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn redirect_params(headers: &HeaderMap) -> HashMap<String, String> {
    let location = headers.get("location").expect("a Location").to_str().expect("ASCII");
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    url::Url::parse(location).expect("a URL").query_pairs().into_owned().collect()
}

fn pkce_pair() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra".to_owned();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Strictness

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
async fn tokens_that_are_absent_malformed_unknown_expired_or_revoked_are_refused_like_dropbox() {
    let dropbox = TestDropbox::start().await;
    let call = |authorization: Option<String>| {
        let mut request = dropbox.http.post(dropbox.url("2/users/get_current_account"));
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        request.send()
    };
    let response = call(None).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response =
        call(Some(format!("Bearer {}", dropbox.account.refresh_token))).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.text().await.expect("text"),
        "Error in call to API function \"users/get_current_account\": The given OAuth 2 access token is malformed."
    );
    let unauthorized =
        |tag: &str| json!({"error_summary": format!("{tag}/.."), "error": {".tag": tag}});
    let response = call(Some("Bearer sl.nobody-issued-this".to_owned())).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(content_type(&response), "application/json");
    assert_eq!(response.json::<Value>().await.expect("JSON"), unauthorized("invalid_access_token"));

    dropbox.emulator().expire_access_tokens(dropbox.id());
    let response = call(Some(format!("Bearer {}", dropbox.token()))).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.expect("JSON"), unauthorized("expired_access_token"));
    let refreshed = dropbox
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &dropbox.account.refresh_token),
            ("client_id", APP_KEY),
            ("client_secret", APP_SECRET),
        ])
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let fresh: Value = refreshed.json().await.expect("JSON");
    let fresh_token = fresh["access_token"].as_str().expect("a token").to_owned();
    let response = call(Some(format!("Bearer {fresh_token}"))).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);

    dropbox.emulator().revoke_tokens(dropbox.id());
    let response = call(Some(format!("Bearer {fresh_token}"))).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.expect("JSON"), unauthorized("invalid_access_token"));
    let refused = dropbox
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &dropbox.account.refresh_token),
            ("client_id", APP_KEY),
            ("client_secret", APP_SECRET),
        ])
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json::<Value>().await.expect("JSON"),
        json!({"error": "invalid_grant", "error_description": "refresh token is invalid or revoked"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_a_routes_scope_gets_missing_scope_with_the_scope_it_needs() {
    let dropbox = TestDropbox::start().await;
    let code = dropbox.authorize(&[("scope", "files.metadata.read")]).await;
    let response = dropbox
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", APP_KEY),
            ("client_secret", APP_SECRET),
        ])
        .await;
    let tokens: Value = response.json().await.expect("JSON");
    assert_eq!(tokens["scope"], "files.metadata.read");
    let token = tokens["access_token"].as_str().expect("a token");
    assert_eq!(
        dropbox.rpc("files/list_folder", token, json!({"path": ""})).await.status(),
        StatusCode::OK
    );
    let response = dropbox.upload(token, json!({"path": "/x.md"}), b"x").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({"error_summary": "missing_scope/..",
               "error": {".tag": "missing_scope", "required_scope": "files.content.write"}})
    );
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

// ---------------------------------------------------------------------------------------------
// OAuth

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pkce_code_exchange_needs_no_secret_and_its_refresh_needs_only_the_client_id() {
    let dropbox = TestDropbox::start().await;
    let (verifier, challenge) = pkce_pair();
    let code = dropbox
        .authorize(&[("code_challenge", &challenge), ("code_challenge_method", "S256")])
        .await;
    let response = dropbox
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", APP_KEY),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/json");
    let tokens: Value = response.json().await.expect("JSON");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 14400);
    assert_eq!(tokens["account_id"], dropbox.id());
    assert!(tokens["uid"].as_str().is_some_and(|uid| uid.parse::<u64>().is_ok()));
    assert_eq!(
        tokens["scope"],
        "account_info.read files.content.read files.content.write files.metadata.read"
    );
    let access = tokens["access_token"].as_str().expect("an access token");
    assert!(access.starts_with("sl."));
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let whoami = dropbox.rpc("users/get_current_account", access, Value::Null).await;
    assert_eq!(whoami.status(), StatusCode::OK);

    let refreshed = dropbox
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", APP_KEY),
        ])
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.expect("JSON");
    assert!(
        refreshed["access_token"].as_str().is_some_and(|t| t.starts_with("sl.") && t != access)
    );
    assert_eq!(refreshed["expires_in"], 14400);
    assert!(refreshed.get("refresh_token").is_none(), "refresh tokens do not rotate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_flow_grant_needs_the_secret_again_to_refresh() {
    let dropbox = TestDropbox::start().await;
    let code = dropbox.authorize(&[]).await;
    // Client credentials by HTTP Basic, parameters in the query string (the JS SDK's way).
    let response = dropbox
        .http
        .post(dropbox.url("oauth2/token"))
        .header(
            "Authorization",
            format!("Basic {}", STANDARD.encode(format!("{APP_KEY}:{APP_SECRET}"))),
        )
        .query(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
        ])
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.expect("JSON");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");

    let without_secret = dropbox
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", APP_KEY),
        ])
        .await;
    assert_eq!(without_secret.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        without_secret.json::<Value>().await.expect("JSON"),
        json!({"error": "invalid_request", "error_description": "No auth function available for given request"})
    );
    let wrong_secret = dropbox
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", APP_KEY),
            ("client_secret", "not-the-secret"),
        ])
        .await;
    assert_eq!(wrong_secret.status(), StatusCode::BAD_REQUEST);
    assert_eq!(wrong_secret.json::<Value>().await.expect("JSON")["error"], "invalid_client");
    let with_secret = dropbox
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", APP_KEY),
            ("client_secret", APP_SECRET),
        ])
        .await;
    assert_eq!(with_secret.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_are_form_decoded_so_a_secret_may_hold_plus_space_colon_and_at() {
    const AWKWARD_SECRET: &str = "s3c+r t:x@y";
    let dropbox =
        TestDropbox::start_with(|config| config.app_secret = AWKWARD_SECRET.to_owned()).await;
    let refresh =
        [("grant_type", "refresh_token"), ("refresh_token", &dropbox.account.refresh_token)];
    let with_basic = |id: &str, secret: &str| {
        dropbox
            .http
            .post(dropbox.url("oauth2/token"))
            .header("Authorization", format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))))
            .form(&refresh)
            .send()
    };
    // RFC 6749 §2.3.1: each part form-urlencoded before base64, as the oauth2 crate sends it.
    let form_encoded =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let encoded =
        with_basic(&form_encoded(APP_KEY), &form_encoded(AWKWARD_SECRET)).await.expect("an answer");
    assert_eq!(encoded.status(), StatusCode::OK);
    assert!(encoded.json::<Value>().await.expect("JSON")["access_token"].is_string());

    // Sent raw, the `+` reads as a space: the secret no longer matches.
    let raw = with_basic(APP_KEY, AWKWARD_SECRET).await.expect("an answer");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert_eq!(raw.json::<Value>().await.expect("JSON")["error"], "invalid_client");

    let in_form = dropbox
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &dropbox.account.refresh_token),
            ("client_id", APP_KEY),
            ("client_secret", AWKWARD_SECRET),
        ])
        .await;
    assert_eq!(in_form.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect() {
    let dropbox = TestDropbox::start_with(|config| {
        config.redirect_uris = vec![url::Url::parse(REDIRECT_URI).expect("a URL")];
    })
    .await;
    assert!(!dropbox.authorize(&[]).await.is_empty(), "the registered URI is redirected to");
    let response = dropbox
        .http
        .get(dropbox.url("oauth2/authorize"))
        .query(&[
            ("client_id", APP_KEY),
            ("response_type", "code"),
            ("redirect_uri", "http://localhost:5000/oauth/elsewhere"),
            ("state", "csrf-123"),
        ])
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    assert!(content_type(&response).starts_with("text/html"));
    let html = response.text().await.expect("HTML");
    assert!(html.contains("Invalid redirect_uri"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_one_time_and_bound_to_their_redirect_uri_and_verifier() {
    let dropbox = TestDropbox::start().await;
    let (verifier, challenge) = pkce_pair();
    let pkce = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")];
    let invalid_grant =
        |description: &str| json!({"error": "invalid_grant", "error_description": description});

    let code = dropbox.authorize(&pkce).await;
    let exchange = |code: String, redirect: &'static str, verifier: String| {
        let dropbox = &dropbox;
        async move {
            dropbox
                .token_request(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("client_id", APP_KEY),
                    ("code_verifier", &verifier),
                ])
                .await
        }
    };
    let first = exchange(code.clone(), REDIRECT_URI, verifier.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = exchange(code, REDIRECT_URI, verifier.clone()).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        again.json::<Value>().await.expect("JSON"),
        invalid_grant("code doesn't exist or has expired")
    );

    let code = dropbox.authorize(&pkce).await;
    let elsewhere = exchange(code, "http://localhost:5000/elsewhere", verifier.clone()).await;
    assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);
    assert_eq!(elsewhere.json::<Value>().await.expect("JSON")["error"], "invalid_grant");

    let code = dropbox.authorize(&pkce).await;
    let wrong = exchange(code, REDIRECT_URI, "x".repeat(50)).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(wrong.json::<Value>().await.expect("JSON")["error"], "invalid_grant");

    let unknown = dropbox
        .token_request(&[
            ("grant_type", "password"),
            ("client_id", APP_KEY),
            ("client_secret", APP_SECRET),
        ])
        .await;
    assert_eq!(unknown.json::<Value>().await.expect("JSON")["error"], "unsupported_grant_type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_page_offers_allow_and_deny_and_each_redirects_with_the_state() {
    let dropbox = TestDropbox::start_with(|config| config.auto_approve = false).await;
    dropbox.emulator().sign_in(dropbox.id());
    let owner = crate::emulator_control::owner_cookie(&dropbox.running).await;
    let consent = |state: &'static str| {
        dropbox
            .http
            .get(dropbox.url("oauth2/authorize"))
            .header(reqwest::header::COOKIE, &owner)
            .query(&[
                ("client_id", APP_KEY),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT_URI),
                ("state", state),
                ("token_access_type", "offline"),
            ])
            .send()
    };
    let page = consent("deny-me").await.expect("an answer");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(content_type(&page).starts_with("text/html"));
    let html = page.text().await.expect("HTML");
    assert!(
        html.contains("Ada Lovelace") && html.contains("Allow") && html.contains("Deny"),
        "{html}"
    );
    let request_id = hidden_request_id(&html);
    let denied = dropbox
        .http
        .post(dropbox.url("oauth2/authorize/decision"))
        .form(&[("request", request_id.as_str()), ("decision", "deny")])
        .send()
        .await
        .expect("an answer");
    assert_eq!(denied.status(), StatusCode::FOUND);
    let params = redirect_params(denied.headers());
    assert_eq!(params.get("error").map(String::as_str), Some("access_denied"));
    assert!(params.contains_key("error_description"));
    assert_eq!(params.get("state").map(String::as_str), Some("deny-me"));
    assert!(!params.contains_key("code"));

    let html = consent("allow-me").await.expect("an answer").text().await.expect("HTML");
    let allowed = dropbox
        .http
        .post(dropbox.url("oauth2/authorize/decision"))
        .header(reqwest::header::COOKIE, &owner)
        .form(&[
            ("request", hidden_request_id(&html).as_str()),
            ("page_token", &crate::emulator_control::form_field(&html, "page_token")),
            ("decision", "allow"),
        ])
        .send()
        .await
        .expect("an answer");
    let params = redirect_params(allowed.headers());
    assert_eq!(params.get("state").map(String::as_str), Some("allow-me"));
    let code = params.get("code").expect("a code");
    let exchanged = dropbox
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", APP_KEY),
            ("client_secret", APP_SECRET),
        ])
        .await;
    assert_eq!(exchanged.status(), StatusCode::OK);
}

fn hidden_request_id(html: &str) -> String {
    let marker = "name=\"request\" value=\"";
    let start = html.find(marker).expect("a request field") + marker.len();
    let end = start + html[start..].find('"').expect("a closing quote");
    html[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_kills_its_refresh_token_and_every_token_minted_from_it() {
    let dropbox = TestDropbox::start().await;
    let refresh = || async {
        dropbox
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &dropbox.account.refresh_token),
                ("client_id", APP_KEY),
                ("client_secret", APP_SECRET),
            ])
            .await
    };
    let refreshed: Value = refresh().await.json().await.expect("JSON");
    let minted = refreshed["access_token"].as_str().expect("a second token").to_owned();
    assert_ne!(minted, dropbox.token());
    let before = dropbox.rpc("files/list_folder", &minted, json!({"path": ""})).await;
    assert_eq!(before.status(), StatusCode::OK, "the minted token works until the revoke");

    let revoke = dropbox
        .http
        .post(dropbox.url("2/auth/token/revoke"))
        .bearer_auth(dropbox.token())
        .header("Content-Type", "application/json")
        .body("null")
        .send()
        .await
        .expect("an answer");
    assert_eq!(revoke.status(), StatusCode::OK);
    assert_eq!(revoke.text().await.expect("a body"), "null");
    let invalid = json!({"error_summary": "invalid_access_token/..",
                         "error": {".tag": "invalid_access_token"}});
    for token in [dropbox.token(), minted.as_str()] {
        let after = dropbox.rpc("files/list_folder", token, json!({"path": ""})).await;
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(after.json::<Value>().await.expect("JSON"), invalid);
    }
    let refused = refresh().await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(refused.json::<Value>().await.expect("JSON")["error"], "invalid_grant");
}

// ---------------------------------------------------------------------------------------------
// Files

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_list_download_and_delete_with_non_ascii_and_emoji_names() {
    let dropbox = TestDropbox::start().await;
    let uploaded = dropbox.upload_ok("/Notizen/Über 😀.md", b"# Hello\n").await;
    assert!(uploaded.get(".tag").is_none(), "upload returns FileMetadata without .tag");
    assert_eq!(uploaded["name"], "Über 😀.md");
    assert_eq!(uploaded["path_display"], "/Notizen/Über 😀.md");
    assert_eq!(uploaded["path_lower"], "/notizen/über 😀.md");
    assert_eq!(uploaded["size"], 8);
    assert_eq!(
        uploaded["content_hash"],
        "120526db5e8601ebafe01d832259d7d9cd2fb4c0860053c6d33dfed7ebb08da7"
    );
    assert!(uploaded["id"].as_str().is_some_and(|id| id.starts_with("id:") && id.len() > 3));
    let rev = uploaded["rev"].as_str().expect("a rev");
    assert!(
        rev.len() >= 9 && rev.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let modified = uploaded["server_modified"].as_str().expect("a timestamp");
    assert_eq!(modified.len(), 20, "{modified}");
    assert!(modified.ends_with('Z') && modified.as_bytes()[10] == b'T');

    let listing =
        dropbox.rpc_json("files/list_folder", json!({"path": "", "recursive": true})).await;
    let entries = listing["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0][".tag"], "folder");
    assert_eq!(entries[0]["path_display"], "/Notizen");
    assert_eq!(entries[1][".tag"], "file");
    assert_eq!(entries[1]["is_downloadable"], true);
    assert_eq!(listing["has_more"], false);

    let download = dropbox.download("/NOTIZEN/über 😀.md").await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(content_type(&download), "application/octet-stream");
    let result = download.headers().get("Dropbox-API-Result").expect("Dropbox-API-Result").clone();
    let result = result.to_str().expect("an ASCII-only header");
    assert!(result.contains("\\u00dcber \\ud83d\\ude00.md"), "{result}");
    let metadata: Value = serde_json::from_str(result).expect("JSON");
    assert!(metadata.get(".tag").is_none());
    assert_eq!(metadata["path_display"], "/Notizen/Über 😀.md");
    assert_eq!(download.bytes().await.expect("bytes").as_ref(), b"# Hello\n");

    let by_lowercase =
        dropbox.rpc_json("files/get_metadata", json!({"path": "/notizen/über 😀.md"})).await;
    assert_eq!(by_lowercase[".tag"], "file");
    assert_eq!(by_lowercase["rev"], rev);
    let by_id = dropbox.rpc_json("files/get_metadata", json!({"path": uploaded["id"]})).await;
    assert_eq!(by_id["path_display"], "/Notizen/Über 😀.md");

    let deleted = dropbox.rpc_json("files/delete_v2", json!({"path": "/Notizen/Über 😀.md"})).await;
    assert_eq!(deleted["metadata"][".tag"], "file");
    assert_eq!(deleted["metadata"]["rev"], rev);
    assert_eq!(dropbox.emulator().file_paths(dropbox.id()), Vec::<String>::new());
    let gone = dropbox.download("/Notizen/Über 😀.md").await;
    assert_eq!(gone.status(), StatusCode::CONFLICT);
}

/// Sends an upload's head and only the first bytes of the 10 MiB body it announces, and
/// returns the status line of the answer.
async fn status_of_an_unfinished_upload(dropbox: &TestDropbox, headers: String) -> String {
    let address = dropbox.running.url().socket_addrs(|| None).expect("an address")[0];
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).expect("a read timeout");
        let head = format!(
            "POST /2/files/upload HTTP/1.1\r\nHost: {address}\r\n{headers}\
             Content-Length: {}\r\n\r\nthe first bytes",
            10 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        let mut answer = Vec::new();
        let mut buffer = [0; 256];
        while !answer.contains(&b'\n') {
            let read = stream.read(&mut buffer).expect("an answer before the deadline");
            assert!(read > 0, "the connection closed without an answer");
            answer.extend_from_slice(&buffer[..read]);
        }
        String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
    })
    .await
    .expect("the client thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_refused_before_its_body_is_read() {
    let dropbox = TestDropbox::start().await;
    // The rest of the body never comes: an emulator that read it before checking would not
    // answer before the deadline.
    let unknown_token = "Authorization: Bearer sl.nobody-issued-this\r\n\
         Content-Type: application/octet-stream\r\n\
         Dropbox-API-Arg: {\"path\": \"/big.md\"}\r\n";
    let status = status_of_an_unfinished_upload(&dropbox, unknown_token.to_owned()).await;
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    let no_argument = format!(
        "Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n",
        dropbox.token()
    );
    let status = status_of_an_unfinished_upload(&dropbox, no_argument).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_reupload_keeps_its_rev_and_leaves_the_journal_alone() {
    let dropbox = TestDropbox::start().await;
    let first = dropbox.upload_ok("/a.md", b"same").await;
    let cursor = dropbox.rpc_json("files/list_folder", json!({"path": ""})).await["cursor"].clone();
    let again = dropbox.upload_ok("/A.md", b"same").await;
    assert_eq!(again["rev"], first["rev"]);
    assert_eq!(again["server_modified"], first["server_modified"]);
    let changes = dropbox.rpc_json("files/list_folder/continue", json!({"cursor": cursor})).await;
    assert_eq!(changes["entries"], json!([]));
    let changed = dropbox.upload_ok("/a.md", b"different").await;
    assert_ne!(changed["rev"], first["rev"]);
    assert_eq!(changed["id"], first["id"], "an overwrite keeps the file's id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_reports_new_parents_changed_files_and_deletions_in_an_applicable_order() {
    let dropbox = TestDropbox::start().await;
    let (emulator, id) = (dropbox.emulator(), dropbox.id());
    emulator.put_file(id, "/keep.md", "keep").expect("put");
    emulator.put_file(id, "/old/gone.md", "gone").expect("put");
    let cursor = dropbox
        .rpc_json("files/list_folder", json!({"path": "", "recursive": true}))
        .await["cursor"]
        .clone();

    emulator.put_file(id, "/Deep/Er/new.md", "new").expect("put");
    emulator.put_file(id, "/keep.md", "changed once").expect("put");
    emulator.put_file(id, "/keep.md", "changed twice").expect("put");
    emulator.delete_path(id, "/old").expect("delete");
    emulator.move_path(id, "/Deep/Er/new.md", "/Deep/moved.md").expect("move");

    let changes = dropbox.rpc_json("files/list_folder/continue", json!({"cursor": cursor})).await;
    let summary: Vec<(String, String)> = changes["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e[".tag"].as_str().unwrap_or("").to_owned(),
                e["path_display"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    // Ordered by each path's last change: /Deep/Er was last touched when it was created.
    let expected = [
        ("folder", "/Deep"),
        ("folder", "/Deep/Er"),
        ("file", "/keep.md"),
        ("deleted", "/old"),
        ("deleted", "/Deep/Er/new.md"),
        ("file", "/Deep/moved.md"),
    ];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(tag, path)| ((*tag).to_owned(), (*path).to_owned())).collect();
    assert_eq!(summary, expected);
    let entries = changes["entries"].as_array().expect("entries");
    let deleted = entries.iter().find(|e| e[".tag"] == "deleted").expect("a deleted entry");
    assert!(deleted.get("id").is_none() && deleted.get("rev").is_none(), "{deleted}");
    let keep = entries.iter().find(|e| e["path_display"] == "/keep.md").expect("keep.md");
    assert_eq!(keep["size"], "changed twice".len(), "the latest state, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_pages_by_limit_and_the_limit_carries_over_to_continue() {
    let dropbox = TestDropbox::start().await;
    for i in 0..5 {
        dropbox
            .emulator()
            .put_file(dropbox.id(), &format!("/f{i}.md"), format!("{i}"))
            .expect("put");
    }
    let mut page = dropbox.rpc_json("files/list_folder", json!({"path": "", "limit": 2})).await;
    let mut seen = Vec::new();
    let mut pages = 1;
    loop {
        let entries = page["entries"].as_array().expect("entries");
        assert!(entries.len() <= 2);
        seen.extend(entries.iter().map(|e| e["name"].as_str().unwrap_or("").to_owned()));
        if page["has_more"] != true {
            break;
        }
        page =
            dropbox.rpc_json("files/list_folder/continue", json!({"cursor": page["cursor"]})).await;
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["f0.md", "f1.md", "f2.md", "f3.md", "f4.md"]);
    let quiet =
        dropbox.rpc_json("files/list_folder/continue", json!({"cursor": page["cursor"]})).await;
    assert_eq!(quiet["entries"], json!([]));
    assert_eq!(quiet["has_more"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_cursors_turn_every_earlier_cursor_into_a_reset_and_foreign_cursors_are_refused() {
    let dropbox = TestDropbox::start().await;
    let cursor = dropbox.rpc_json("files/list_folder", json!({"path": ""})).await["cursor"].clone();
    let stranger = dropbox.emulator().create_account("Grace Hopper");
    let foreign = dropbox
        .rpc("files/list_folder/continue", &stranger.access_token, json!({"cursor": cursor}))
        .await;
    assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);

    dropbox.emulator().reset_cursors(dropbox.id());
    let response =
        dropbox.rpc("files/list_folder/continue", dropbox.token(), json!({"cursor": cursor})).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({"error_summary": "reset/..", "error": {".tag": "reset"}})
    );
    let fresh = dropbox.rpc_json("files/list_folder", json!({"path": ""})).await["cursor"].clone();
    let response =
        dropbox.rpc("files/list_folder/continue", dropbox.token(), json!({"cursor": fresh})).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_downloadable_file_is_listed_flagged_hidden_on_request_and_never_downloaded() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().put_file(dropbox.id(), "/Doc.gdoc", "x").expect("put");
    dropbox.emulator().mark_non_downloadable(dropbox.id(), "/doc.gdoc").expect("mark");
    let listed = dropbox.rpc_json("files/list_folder", json!({"path": ""})).await;
    assert_eq!(listed["entries"][0]["is_downloadable"], false);
    let hidden = dropbox
        .rpc_json("files/list_folder", json!({"path": "", "include_non_downloadable_files": false}))
        .await;
    assert_eq!(hidden["entries"], json!([]));
    let download = dropbox.download("/Doc.gdoc").await;
    assert_eq!(download.status(), StatusCode::CONFLICT);
    assert_eq!(
        download.json::<Value>().await.expect("JSON"),
        json!({"error_summary": "unsupported_file/..", "error": {".tag": "unsupported_file"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autorename_picks_a_numbered_name_for_add_and_a_conflicted_copy_for_update() {
    let dropbox = TestDropbox::start().await;
    let original = dropbox.upload_ok("/Report.md", b"one").await;
    let renamed = dropbox
        .upload(
            dropbox.token(),
            json!({"path": "/report.md", "mode": "add", "autorename": true}),
            b"two",
        )
        .await;
    assert_eq!(renamed.json::<Value>().await.expect("JSON")["path_display"], "/report (2).md");
    let stale = "0".repeat(original["rev"].as_str().map_or(9, str::len));
    let update = json!({"path": "/Report.md", "mode": {".tag": "update", "update": stale}, "autorename": true});
    let copy = dropbox.upload(dropbox.token(), update, b"three").await;
    assert_eq!(
        copy.json::<Value>().await.expect("JSON")["path_display"],
        "/Report (conflicted copy).md"
    );
    let update =
        json!({"path": "/Report.md", "mode": {".tag": "update", "update": original["rev"]}});
    let updated = dropbox.upload(dropbox.token(), update, b"four").await;
    assert_eq!(updated.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Webhooks

/// One notification as the receiver saw it.
struct Received {
    body: Vec<u8>,
    signature: Option<String>,
    content_type: Option<String>,
    user_agent: Option<String>,
}

/// The receiving end of [`webhook_receiver`]: hands each request to the test, answers with the
/// scripted statuses in turn (then 200), and echoes verification challenges.
struct Receiver {
    sender: mpsc::UnboundedSender<Received>,
    statuses: Mutex<std::vec::IntoIter<u16>>,
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    receiver: web::Data<Receiver>,
) -> HttpResponse {
    let challenge = url::form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(name, _)| name == "challenge")
        .map(|(_, value)| value.into_owned());
    if let Some(challenge) = challenge {
        return HttpResponse::Ok().content_type("text/plain").body(challenge);
    }
    let header =
        |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let _ = receiver.sender.send(Received {
        body: body.to_vec(),
        signature: header("X-Dropbox-Signature"),
        content_type: header("Content-Type"),
        user_agent: header("User-Agent"),
    });
    let status = receiver.statuses.lock().map(|mut s| s.next().unwrap_or(200)).unwrap_or(200);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("a status")).finish()
}

/// A tiny webhook receiver on port 0; the channel yields each notification it gets.
async fn webhook_receiver(statuses: Vec<u16>) -> (url::Url, mpsc::UnboundedReceiver<Received>) {
    let (sender, notifications) = mpsc::unbounded_channel();
    let receiver = web::Data::new(Receiver { sender, statuses: Mutex::new(statuses.into_iter()) });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("an address");
    let server = HttpServer::new(move || {
        App::new().app_data(receiver.clone()).default_service(web::to(receive))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    let url = url::Url::parse(&format!("http://{address}/webhook")).expect("a URL");
    (url, notifications)
}

async fn next_notification(receiver: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(DEADLINE, receiver.recv())
        .await
        .expect("a notification before the deadline")
        .expect("the receiver is running")
}

/// Polls `condition` until it holds, failing the test at the deadline.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn signature_of(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("a key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_in_two_accounts_arrive_as_one_signed_notification_formatted_like_dropbox() {
    let (url, mut notifications) = webhook_receiver(vec![]).await;
    let dropbox = TestDropbox::start_with(|config| {
        config.webhook_url = Some(url);
        // Far longer than the microseconds between two `put_file` calls, even on a loaded
        // machine, so writes made together certainly share a notification.
        config.webhook_batch_window = Duration::from_secs(1);
    })
    .await;
    let other = dropbox.emulator().create_account("Grace Hopper");
    // An identical write changes nothing and must not notify: only `other` may appear.
    dropbox.emulator().put_file(dropbox.id(), "/n.md", "x").expect("put");
    let first = next_notification(&mut notifications).await;
    assert!(String::from_utf8_lossy(&first.body).contains(dropbox.id()));
    dropbox.emulator().put_file(dropbox.id(), "/n.md", "x").expect("identical put");
    dropbox.emulator().put_file(&other.account_id, "/o.md", "o").expect("put");
    dropbox.emulator().put_file(&other.account_id, "/p.md", "p").expect("put");
    let notification = next_notification(&mut notifications).await;
    let body = String::from_utf8(notification.body.clone()).expect("UTF-8");
    let parsed: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(parsed["list_folder"]["accounts"], json!([other.account_id]));
    let uid = parsed["delta"]["users"][0].as_u64().expect("a numeric uid");
    assert_eq!(
        body,
        format!(
            r#"{{"list_folder": {{"accounts": ["{}"]}}, "delta": {{"users": [{uid}]}}}}"#,
            other.account_id
        )
    );
    assert_eq!(notification.signature.as_deref(), Some(signature_of(&notification.body).as_str()));
    assert_eq!(notification.content_type.as_deref(), Some("application/json"));
    assert_eq!(notification.user_agent.as_deref(), Some("DropboxWebhooks/1.0"));

    dropbox.emulator().put_file(dropbox.id(), "/a.md", "a").expect("put");
    dropbox.emulator().put_file(&other.account_id, "/b.md", "b").expect("put");
    let batched = next_notification(&mut notifications).await;
    let parsed: Value = serde_json::from_slice(&batched.body).expect("JSON");
    assert_eq!(parsed["list_folder"]["accounts"], json!([dropbox.id(), other.account_id]));
    assert_eq!(parsed["delta"]["users"].as_array().map(Vec::len), Some(2));
    let text = String::from_utf8(batched.body).expect("UTF-8");
    assert!(text.contains(&format!("[\"{}\", \"{}\"]", dropbox.id(), other.account_id)), "{text}");
    eventually("all three notifications are delivered", || {
        dropbox.emulator().stats().webhooks_delivered() == 3
    })
    .await;
    assert_eq!(dropbox.emulator().stats().webhook_attempts(), 3, "one notification per batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_emulator_cancels_a_delivery_that_is_still_being_retried() {
    let (url, mut notifications) = webhook_receiver(vec![500; 10_000]).await;
    let dropbox = TestDropbox::start_with(|config| {
        config.webhook_url = Some(url);
        config.webhook_retry_base = Duration::from_millis(10);
    })
    .await;
    dropbox.emulator().put_file(dropbox.id(), "/n.md", "x").expect("put");
    let refused = next_notification(&mut notifications).await;
    let retried = next_notification(&mut notifications).await;
    assert_eq!(refused.body, retried.body);
    let emulator = dropbox.emulator().clone();
    assert_eq!(emulator.stats().webhooks_pending(), 1);
    dropbox.running.stop().await;
    assert_eq!(emulator.stats().webhooks_pending(), 0, "no delivery outlives stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verification_challenge_passes_an_echoing_receiver_and_fails_a_silent_one() {
    let (url, _notifications) = webhook_receiver(vec![]).await;
    let dropbox = TestDropbox::start_with(|config| config.webhook_url = Some(url.clone())).await;
    dropbox.emulator().verify_webhook().await.expect("the receiver echoes the challenge");
    let silent = TestDropbox::start_with(|config| {
        config.webhook_url = Some(dropbox.running.url().join("nowhere").expect("a URL"));
    })
    .await;
    assert!(silent.emulator().verify_webhook().await.is_err());
    assert!(TestDropbox::start().await.emulator().verify_webhook().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_expire_after_the_configured_lifetime() {
    let dropbox =
        TestDropbox::start_with(|config| config.access_token_lifetime = Duration::ZERO).await;
    let response = dropbox.rpc("files/list_folder", dropbox.token(), json!({"path": ""})).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.expect("JSON")["error"][".tag"],
        "expired_access_token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_own_upload_notifies_and_a_refused_notification_is_retried() {
    let (url, mut notifications) = webhook_receiver(vec![500]).await;
    let dropbox = TestDropbox::start_with(|config| {
        config.webhook_url = Some(url);
        config.webhook_retry_base = Duration::from_millis(20);
    })
    .await;
    dropbox.upload_ok("/own.html", b"<p>").await;
    let refused = next_notification(&mut notifications).await;
    let retried = next_notification(&mut notifications).await;
    assert_eq!(refused.body, retried.body);
    assert_eq!(refused.signature, retried.signature);
    assert!(String::from_utf8_lossy(&retried.body).contains(dropbox.id()));
    eventually("the retry is counted as delivered", || {
        dropbox.emulator().stats().webhooks_delivered() == 1
    })
    .await;
    assert_eq!(dropbox.emulator().stats().webhook_attempts(), 2);
}

// ---------------------------------------------------------------------------------------------
// Faults and stats

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_answers_the_next_calls_for_its_account_and_then_is_used_up() {
    let dropbox = TestDropbox::start().await;
    let other = dropbox.emulator().create_account("Grace Hopper");
    dropbox
        .emulator()
        .add_fault(FaultRule::rate_limited("files/upload", 1, 300).for_account(dropbox.id()));
    let others = dropbox.upload(&other.access_token, json!({"path": "/x.md"}), b"x").await;
    assert_eq!(others.status(), StatusCode::OK, "another account's call is not matched");

    let limited = dropbox.upload(dropbox.token(), json!({"path": "/x.md"}), b"x").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers().get("Retry-After").and_then(|v| v.to_str().ok()), Some("300"));
    let body: Value = limited.json().await.expect("JSON");
    assert_eq!(body["error"], json!({"reason": {".tag": "too_many_requests"}, "retry_after": 300}));
    let next = dropbox.upload(dropbox.token(), json!({"path": "/x.md"}), b"x").await;
    assert_eq!(next.status(), StatusCode::OK);

    dropbox.emulator().add_fault(FaultRule::write_contention("files/upload", 1));
    let contended = dropbox.upload(dropbox.token(), json!({"path": "/y.md"}), b"y").await;
    assert_eq!(contended.status(), StatusCode::CONFLICT);
    let body: Value = contended.json().await.expect("JSON");
    assert_eq!(body["error_summary"], "path/too_many_write_operations/..");
    assert_eq!(body["error"]["reason"], json!({".tag": "too_many_write_operations"}));

    dropbox.emulator().add_fault(FaultRule::status("oauth2/token", 1, 503, "down"));
    let down = dropbox
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &dropbox.account.refresh_token),
        ])
        .await;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);

    let stats = dropbox.emulator().stats();
    assert_eq!(stats.calls("files/upload", dropbox.id()), 3);
    assert_eq!(stats.calls("files/upload", &other.account_id), 1);
    assert_eq!(stats.total_calls("files/upload"), 4);
    assert_eq!(stats.calls("oauth2/token", dropbox.id()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_record_the_peak_of_concurrent_listings_and_writes_per_account() {
    // Overlapping uploads to one account are what is measured here, so Dropbox's refusal of
    // them (emulator_strict) is turned off.
    let dropbox = TestDropbox::start_with(|config| config.refuse_overlapping_writes = false).await;
    // Each call waits at the gate until all of its group have arrived, so they are certainly
    // in flight together however the machine schedules them.
    dropbox.emulator().hold_calls("files/list_folder", 2);
    dropbox.emulator().hold_calls("files/upload", 3);
    let list = || dropbox.rpc("files/list_folder", dropbox.token(), json!({"path": ""}));
    let (a, b) = tokio::time::timeout(DEADLINE, async { tokio::join!(list(), list()) })
        .await
        .expect("both listings are released together");
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    let upload = |name: &'static str| dropbox.upload(dropbox.token(), json!({"path": name}), b"x");
    let uploads = async { tokio::join!(upload("/1.md"), upload("/2.md"), upload("/3.md")) };
    let (a, b, c) =
        tokio::time::timeout(DEADLINE, uploads).await.expect("the uploads are released together");
    assert!([a.status(), b.status(), c.status()].iter().all(|s| *s == StatusCode::OK));
    let stats = dropbox.emulator().stats();
    assert_eq!(stats.peak_listings(dropbox.id()), 2);
    assert_eq!(stats.peak_writes(dropbox.id()), 3);

    let other = dropbox.emulator().create_account("Grace Hopper");
    for _ in 0..2 {
        let response =
            dropbox.rpc("files/list_folder", &other.access_token, json!({"path": ""})).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(dropbox.emulator().stats().peak_listings(&other.account_id), 1);
}

// ---------------------------------------------------------------------------------------------
// The HTTP control surface

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_surface_creates_accounts_writes_reads_deletes_and_reports() {
    let dropbox = TestDropbox::start().await;
    let http = &crate::emulator_control::control_client(dropbox.emulator());
    let created: Value = http
        .post(dropbox.url("_emulator/accounts"))
        .json(&json!({"name": "Script User"}))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    let account_id = created["account_id"].as_str().expect("an account id");
    let token = created["access_token"].as_str().expect("a token");
    assert!(created["refresh_token"].is_string());
    let file_url = dropbox.url(&format!("_emulator/files/{account_id}/Notes/Caf%C3%A9%20%2B.md"));
    let put = http.put(&file_url).body("# Café\n").send().await.expect("an answer");
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    assert_eq!(dropbox.emulator().file_paths(account_id), ["/Notes/Café +.md"]);
    let got = http.get(&file_url).send().await.expect("an answer");
    assert_eq!(got.bytes().await.expect("bytes").as_ref(), "# Café\n".as_bytes());
    let listing =
        dropbox.rpc("files/list_folder", token, json!({"path": "", "recursive": true})).await;
    assert_eq!(listing.status(), StatusCode::OK);

    let fault = http
        .post(dropbox.url("_emulator/faults"))
        .json(&json!({"route": "files/list_folder", "status": 503, "body": "busy", "times": 1}))
        .send()
        .await
        .expect("an answer");
    assert_eq!(fault.status(), StatusCode::NO_CONTENT);
    let busy = dropbox.rpc("files/list_folder", token, json!({"path": ""})).await;
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);

    let stats: Value = http
        .get(dropbox.url("_emulator/stats"))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(stats["calls"]["files/list_folder"][account_id], 2);

    let expire = http
        .post(dropbox.url(&format!("_emulator/accounts/{account_id}/expire_tokens")))
        .send()
        .await
        .expect("an answer");
    assert_eq!(expire.status(), StatusCode::NO_CONTENT);
    let expired = dropbox.rpc("files/list_folder", token, json!({"path": ""})).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);

    let deleted = http.delete(&file_url).send().await.expect("an answer");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        http.get(&file_url).send().await.expect("an answer").status(),
        StatusCode::NOT_FOUND
    );
    let unknown = http
        .put(dropbox.url("_emulator/files/dbid:nobody/x.md"))
        .body("x")
        .send()
        .await
        .expect("an answer");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    dropbox.running.stop().await;
}
