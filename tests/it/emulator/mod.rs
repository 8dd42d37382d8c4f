//! The Dropbox emulator, black-box over real HTTP: it must reject what Dropbox rejects, answer
//! with Dropbox's shapes, run OAuth like Dropbox, keep a change journal behind cursors, send
//! signed webhooks, obey injected faults, and be as strict as Dropbox where leniency would hide
//! a client's bug. One file per topic:
//!
//! - `refusals`: malformed requests refused with Dropbox's status and body;
//! - `arguments`: arguments checked field by field against the spec;
//! - `tokens`: access tokens refused, scoped, expiring and revoked like Dropbox's;
//! - `oauth`: authorization, the consent page, code exchange and refresh;
//! - `files`: uploads, downloads, deletes, autorename, overlapping writes refused;
//! - `sessions`: upload sessions and batch commits;
//! - `rate_limit`: the per-user limit of calls in flight;
//! - `listing`: pages, cursors and the change journal behind them;
//! - `webhooks`: signed notifications, batching and retries;
//! - `control`: injected faults, stats and the `/_emulator/` control routes;
//! - `guard`: who may drive the emulator (control secret, owner's browser, `Host` check);
//! - `folder`: the folder backing.
//!
//! These tests speak HTTP with plain reqwest and hand-written JSON, never the markdrop client: the
//! emulator and the client check each other only if neither borrows the other's reading of the
//! wire format.

mod arguments;
mod control;
mod files;
mod folder;
mod guard;
mod listing;
mod oauth;
mod rate_limit;
mod refusals;
mod sessions;
mod tokens;
mod webhooks;

use std::collections::HashMap;

use markdrop::emulator::{Emulator, EmulatorConfig, LinkedAccount, RunningEmulator};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{APP_KEY, APP_SECRET};

const REDIRECT_URI: &str = "http://localhost:5000/oauth/callback";

/// An emulator approving access at once, with Ada Lovelace's account in it, and a client for
/// its HTTP API.
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

    /// An RPC call with a JSON argument, as its status and body.
    async fn rpc_text(&self, route: &str, token: &str, arg: Value) -> (StatusCode, String) {
        let response = self.rpc(route, token, arg).await;
        (response.status(), response.text().await.expect("a body"))
    }

    async fn rpc_json(&self, route: &str, arg: Value) -> Value {
        let (status, body) = self.rpc_text(route, self.token(), arg).await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    async fn rev_of(&self, path: &str) -> String {
        let metadata = self.rpc_json("files/get_metadata", json!({"path": path})).await;
        metadata["rev"].as_str().expect("a rev").to_owned()
    }

    /// A call whose argument travels in `Dropbox-API-Arg` as plain JSON (ASCII paths only), as
    /// its status and body; for a download, `Dropbox-API-Result` stands in for the body.
    async fn content(&self, route: &str, arg: Value, body: &[u8]) -> (StatusCode, String) {
        let mut request = self
            .http
            .post(self.url(&format!("2/{route}")))
            .bearer_auth(self.token())
            .header("Dropbox-API-Arg", arg.to_string());
        if route == "files/upload" {
            request =
                request.header("Content-Type", "application/octet-stream").body(body.to_vec());
        }
        let response = request.send().await.expect("an answer");
        let status = response.status();
        let text = if route == "files/download" && status == StatusCode::OK {
            response.headers()["Dropbox-API-Result"].to_str().expect("ASCII").to_owned()
        } else {
            response.text().await.expect("a body")
        };
        (status, text)
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

    /// `/oauth2/token` with `refresh_token`, the app's key as `client_id`, and `secret` as
    /// `client_secret` when given (a PKCE client has none).
    async fn refresh_with(&self, refresh_token: &str, secret: Option<&str>) -> reqwest::Response {
        let mut params = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", APP_KEY),
        ];
        params.extend(secret.map(|secret| ("client_secret", secret)));
        self.token_request(&params).await
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

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}
