//! The emulator is as strict as Dropbox where leniency would hide a client's bug: arguments are
//! checked field by field against the spec, a folder recreated within one cursor window still
//! reports its children gone, overlapping writes to one account are refused, and cursors do not
//! die because a client made many of them.
//!
//! Black-box over HTTP with hand-written JSON, like `emulator.rs`: the markdrop client must not
//! lend the emulator its reading of the wire format.

use std::time::Duration;

use markdrop::emulator::{Emulator, EmulatorConfig, LinkedAccount, RunningEmulator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::sync_world::eventually;

/// How long an awaited answer may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

struct Dropbox {
    running: RunningEmulator,
    http: reqwest::Client,
    account: LinkedAccount,
}

impl Dropbox {
    async fn start() -> Dropbox {
        Dropbox::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut EmulatorConfig)) -> Dropbox {
        let mut config = EmulatorConfig::new("strict-key", "strict-secret");
        adjust(&mut config);
        let running = Emulator::new(config).start(0).await.expect("start the emulator");
        let account = running.emulator.create_account("Ada Lovelace");
        Dropbox { running, http: reqwest::Client::new(), account }
    }

    fn emulator(&self) -> &Emulator {
        &self.running.emulator
    }

    fn id(&self) -> &str {
        &self.account.account_id
    }

    fn url(&self, route: &str) -> String {
        format!("{}2/{route}", self.running.url())
    }

    async fn rpc_as(&self, token: &str, route: &str, arg: &Value) -> (StatusCode, String) {
        let response = self
            .http
            .post(self.url(route))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(arg.to_string())
            .send()
            .await
            .expect("an answer");
        (response.status(), response.text().await.expect("a body"))
    }

    async fn rpc(&self, route: &str, arg: Value) -> (StatusCode, String) {
        self.rpc_as(&self.account.access_token, route, &arg).await
    }

    async fn rpc_json(&self, route: &str, arg: Value) -> Value {
        let (status, body) = self.rpc(route, arg).await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// A call whose argument travels in `Dropbox-API-Arg` (ASCII paths only here).
    async fn content(&self, route: &str, arg: Value, body: &[u8]) -> (StatusCode, String) {
        let mut request = self
            .http
            .post(self.url(route))
            .bearer_auth(&self.account.access_token)
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

    async fn rev_of(&self, path: &str) -> String {
        let metadata = self.rpc_json("files/get_metadata", json!({"path": path})).await;
        metadata["rev"].as_str().expect("a rev").to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_argument_field_is_a_400_naming_it_on_every_route() {
    let dropbox = Dropbox::start().await;
    dropbox.emulator().put_file(dropbox.id(), "/notes/a.md", "a").expect("put");
    let cursor = dropbox.rpc_json("files/list_folder", json!({"path": ""})).await["cursor"].clone();
    let body_cases = [
        ("files/list_folder", json!({"path": "", "recursiv": true}), "recursiv"),
        ("files/list_folder/continue", json!({"cursor": cursor, "limit": 5}), "limit"),
        (
            "files/get_metadata",
            json!({"path": "/notes/a.md", "include_delete": true}),
            "include_delete",
        ),
        (
            "files/delete_v2",
            json!({"path": "/notes/a.md", "parent_revv": "0123456789"}),
            "parent_revv",
        ),
    ];
    for (route, arg, field) in body_cases {
        let (status, body) = dropbox.rpc(route, arg).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route}: {body}");
        assert_eq!(
            body,
            format!(
                "Error in call to API function \"{route}\": request body: unknown field '{field}'"
            )
        );
    }
    let header_cases = [
        ("files/download", json!({"path": "/notes/a.md", "revision": "0123456789"}), "revision"),
        ("files/upload", json!({"path": "/notes/b.md", "mutee": true}), "mutee"),
        ("files/upload", json!({"path": "/notes/b.md", "mode": {".tag": "add", "x": 1}}), "x"),
    ];
    for (route, arg, field) in header_cases {
        let (status, body) = dropbox.content(route, arg, b"b").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route}: {body}");
        let place = if field == "x" { "mode: " } else { "" };
        assert_eq!(
            body,
            format!(
                "Error in call to API function \"{route}\": HTTP header \"Dropbox-API-Arg\": \
                 {place}unknown field '{field}'"
            )
        );
    }
    assert_eq!(dropbox.emulator().file_paths(dropbox.id()), ["/notes/a.md"], "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_of_the_spec_is_accepted_on_every_route() {
    let dropbox = Dropbox::start().await;
    let (status, uploaded) = dropbox
        .content(
            "files/upload",
            json!({"path": "/a.md", "mode": {".tag": "overwrite"}, "autorename": false,
                   "client_modified": "2015-05-12T15:50:38Z", "mute": true, "property_groups": [],
                   "strict_conflict": false,
                   "content_hash": markdrop::emulator::content_hash(b"a")}),
            b"a",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{uploaded}");
    let rev = serde_json::from_str::<Value>(&uploaded).expect("JSON")["rev"].clone();
    let listing = dropbox
        .rpc_json(
            "files/list_folder",
            json!({"path": "", "recursive": true, "include_media_info": false,
                   "include_deleted": false, "include_has_explicit_shared_members": false,
                   "include_mounted_folders": true, "limit": 100,
                   "include_non_downloadable_files": true, "include_restorable_info": false}),
        )
        .await;
    assert_eq!(listing["entries"][0]["path_display"], "/a.md");
    let cursor = listing["cursor"].clone();
    dropbox.rpc_json("files/list_folder/continue", json!({"cursor": cursor})).await;
    dropbox
        .rpc_json(
            "files/get_metadata",
            json!({"path": "/a.md", "include_media_info": false, "include_deleted": false,
                   "include_has_explicit_shared_members": false}),
        )
        .await;
    let (status, body) =
        dropbox.content("files/download", json!({"path": "/a.md", "rev": rev}), b"").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    dropbox.rpc_json("files/delete_v2", json!({"path": "/a.md", "parent_rev": rev})).await;
    assert!(dropbox.emulator().file_paths(dropbox.id()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelled_parent_rev_never_makes_a_guarded_delete_unconditional() {
    let dropbox = Dropbox::start().await;
    let (emulator, id) = (dropbox.emulator(), dropbox.id());
    emulator.put_file(id, "/a.md", "seen").expect("put");
    let seen = dropbox.rev_of("/a.md").await;
    emulator.put_file(id, "/a.md", "edited since").expect("edit");

    let (status, _) =
        dropbox.rpc("files/delete_v2", json!({"path": "/a.md", "parentrev": seen})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(emulator.read_file(id, "/a.md").as_deref(), Some(&b"edited since"[..]));

    let (status, body) =
        dropbox.rpc("files/delete_v2", json!({"path": "/a.md", "parent_rev": seen})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(emulator.read_file(id, "/a.md").as_deref(), Some(&b"edited since"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revs_and_paths_outside_the_spec_patterns_are_refused_with_400s() {
    let dropbox = Dropbox::start().await;
    dropbox.emulator().put_file(dropbox.id(), "/a.md", "a").expect("put");
    let rev_pattern = "did not match pattern '[0-9a-f]+'";
    let body_cases = [
        (
            "files/delete_v2",
            json!({"path": "/a.md", "parent_rev": "0123456789ABCDEF"}),
            rev_pattern,
        ),
        (
            "files/delete_v2",
            json!({"path": "/a.md", "parent_rev": "abc"}),
            "must be at least 9 characters, got 3",
        ),
        ("files/delete_v2", json!({"path": "rev:0123456789abcdef"}), "did not match pattern"),
        ("files/delete_v2", json!({"path": ""}), "did not match pattern"),
        ("files/list_folder", json!({"path": "rev:0123456789abcdef"}), "did not match pattern"),
        ("files/list_folder", json!({"path": "ns:12x"}), "did not match pattern"),
        ("files/get_metadata", json!({"path": "a.md"}), "did not match pattern"),
    ];
    for (route, arg, fragment) in body_cases {
        let (status, body) = dropbox.rpc(route, arg.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route} {arg}: {body}");
        let prefix = format!("Error in call to API function \"{route}\": request body: ");
        assert!(body.starts_with(&prefix) && body.contains(fragment), "{route} {arg}: {body}");
    }
    let header_cases = [
        (
            "files/upload",
            json!({"path": "/a.md", "mode": {".tag": "update", "update": "0123456789ABCDEF"}}),
            rev_pattern,
        ),
        ("files/upload", json!({"path": ""}), "path: '' did not match pattern"),
        ("files/download", json!({"path": "a.md"}), "path: 'a.md' did not match pattern"),
        ("files/download", json!({"path": "/a.md", "rev": "xyz"}), rev_pattern),
    ];
    for (route, arg, fragment) in header_cases {
        let (status, body) = dropbox.content(route, arg.clone(), b"x").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route} {arg}: {body}");
        let prefix =
            format!("Error in call to API function \"{route}\": HTTP header \"Dropbox-API-Arg\": ");
        assert!(body.starts_with(&prefix) && body.contains(fragment), "{route} {arg}: {body}");
    }
    assert_eq!(dropbox.emulator().read_file(dropbox.id(), "/a.md").as_deref(), Some(&b"a"[..]));
}

// ---------------------------------------------------------------------------------------------
// The journal

/// What a client holds after applying entries the way the spec's route notes say: a file
/// replaces the path and its children, a folder keeps its children, a deletion removes the path
/// and its children.
fn apply(held: &mut Vec<(String, bool)>, entries: &Value) {
    for entry in entries.as_array().expect("entries") {
        let path = entry["path_lower"].as_str().expect("a path").to_owned();
        let within = |held: &str| held == path || held.starts_with(&format!("{path}/"));
        match entry[".tag"].as_str() {
            Some("file") => {
                held.retain(|(p, _)| !within(p));
                held.push((path, true));
            }
            Some("folder") => {
                held.retain(|(p, is_file)| !(p == &path && *is_file));
                if !held.iter().any(|(p, _)| *p == path) {
                    held.push((path, false));
                }
            }
            _ => held.retain(|(p, _)| !within(p)),
        }
    }
    held.sort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_deleted_and_recreated_before_continue_reports_each_child_deleted() {
    let dropbox = Dropbox::start().await;
    let (emulator, id) = (dropbox.emulator(), dropbox.id());
    emulator.put_file(id, "/Notes/a.md", "a").expect("put");
    emulator.put_file(id, "/Notes/b.md", "b").expect("put");
    let listing =
        dropbox.rpc_json("files/list_folder", json!({"path": "", "recursive": true})).await;
    let mut held = Vec::new();
    apply(&mut held, &listing["entries"]);

    emulator.delete_path(id, "/Notes").expect("delete");
    emulator.put_file(id, "/Notes/c.md", "c").expect("put");
    let changes =
        dropbox.rpc_json("files/list_folder/continue", json!({"cursor": listing["cursor"]})).await;
    let deleted: Vec<&str> = changes["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|entry| entry[".tag"] == "deleted")
        .filter_map(|entry| entry["path_lower"].as_str())
        .collect();
    assert_eq!(deleted, ["/notes/a.md", "/notes/b.md"], "{changes}");
    apply(&mut held, &changes["entries"]);
    let expected = [("/notes".to_owned(), false), ("/notes/c.md".to_owned(), true)];
    assert_eq!(held, expected, "the client holds what Dropbox holds");
}

// ---------------------------------------------------------------------------------------------
// Overlapping writes

/// An upload whose head and first bytes are sent and whose body is finished only on request:
/// a write Dropbox is in the middle of, for as long as a test needs.
pub(crate) struct SlowUpload {
    stream: tokio::net::TcpStream,
}

const SLOW_BODY: &[u8] = b"first half, second half";

impl SlowUpload {
    pub(crate) async fn start(base: &url::Url, token: &str, path: &str) -> SlowUpload {
        let address = base.socket_addrs(|| None).expect("an address")[0];
        let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        let head = format!(
            "POST /2/files/upload HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n\
             Dropbox-API-Arg: {{\"path\": \"{path}\", \"mode\": \"overwrite\"}}\r\n\
             Content-Length: {}\r\n\r\n",
            SLOW_BODY.len()
        );
        stream.write_all(head.as_bytes()).await.expect("send the head");
        stream.write_all(&SLOW_BODY[..10]).await.expect("send the first bytes");
        SlowUpload { stream }
    }

    /// Sends the rest of the body and returns the answer's status line.
    pub(crate) async fn finish(mut self) -> String {
        self.stream.write_all(&SLOW_BODY[10..]).await.expect("send the rest");
        let mut answer = Vec::new();
        tokio::time::timeout(DEADLINE, self.stream.read_to_end(&mut answer))
            .await
            .expect("an answer before the deadline")
            .expect("read the answer");
        String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
    }
}

/// A write that changes nothing (deleting a path that is not there): 409 `not_found` while the
/// account is free, 429 while another write holds it.
async fn harmless_write(dropbox: &Dropbox) -> (StatusCode, String) {
    dropbox.rpc("files/delete_v2", json!({"path": "/never-there.md"})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_overlapping_another_to_the_same_account_gets_429_too_many_write_operations() {
    let dropbox = Dropbox::start().await;
    let other = dropbox.emulator().create_account("Grace Hopper");
    let slow =
        SlowUpload::start(dropbox.running.url(), &dropbox.account.access_token, "/slow.md").await;
    // No other write may start before the slow one is in: arriving while another holds the
    // account, the slow one would be refused itself.
    let emulator = dropbox.emulator();
    eventually("the slow upload to reach the emulator", || {
        std::future::ready(emulator.writes_in_flight(dropbox.id()) == 1)
    })
    .await;
    let held = &dropbox;
    eventually("the slow upload to hold the account", || async move {
        harmless_write(held).await.0 == StatusCode::TOO_MANY_REQUESTS
    })
    .await;

    let response = dropbox
        .http
        .post(dropbox.url("files/upload"))
        .bearer_auth(&dropbox.account.access_token)
        .header("Dropbox-API-Arg", r#"{"path": "/fast.md"}"#)
        .header("Content-Type", "application/octet-stream")
        .body("fast")
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("Retry-After").is_none(), "Dropbox sends none for this");
    assert_eq!(response.headers()["Content-Type"], "application/json");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"error_summary": "too_many_write_operations/..",
               "error": {"reason": {".tag": "too_many_write_operations"}}})
    );
    // Another account is another namespace.
    let (status, _) = dropbox
        .rpc_as(&other.access_token, "files/delete_v2", &json!({"path": "/never-there.md"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    assert_eq!(slow.finish().await, "HTTP/1.1 200 OK");
    assert_eq!(
        dropbox.emulator().file_paths(dropbox.id()),
        ["/slow.md"],
        "the refused one wrote nothing"
    );
    assert_eq!(harmless_write(&dropbox).await.0, StatusCode::CONFLICT, "the account is free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_writes_pass_when_a_test_turns_the_refusal_off() {
    let dropbox = Dropbox::start_with(|config| config.refuse_overlapping_writes = false).await;
    let slow =
        SlowUpload::start(dropbox.running.url(), &dropbox.account.access_token, "/slow.md").await;
    eventually("the slow upload to be in flight", || {
        std::future::ready(dropbox.emulator().writes_in_flight(dropbox.id()) == 1)
    })
    .await;
    assert_eq!(harmless_write(&dropbox).await.0, StatusCode::CONFLICT);
    assert_eq!(slow.finish().await, "HTTP/1.1 200 OK");
}

// ---------------------------------------------------------------------------------------------
// Cursors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_stays_valid_however_many_cursors_the_account_makes_after_it() {
    let dropbox = Dropbox::start().await;
    let (emulator, id) = (dropbox.emulator(), dropbox.id());
    for name in ["/a.md", "/b.md", "/c.md"] {
        emulator.put_file(id, name, name).expect("put");
    }
    // Paged listings, the kind of cursor that needs the most remembering.
    let mut cursors = Vec::new();
    for _ in 0..200 {
        let page = dropbox.rpc_json("files/list_folder", json!({"path": "", "limit": 1})).await;
        assert_eq!(page["has_more"], true);
        cursors.push(page["cursor"].clone());
    }
    for which in [0, 32, 199] {
        let mut names = Vec::new();
        let mut cursor = cursors[which].clone();
        loop {
            let page =
                dropbox.rpc_json("files/list_folder/continue", json!({"cursor": cursor})).await;
            names.extend(
                page["entries"].as_array().expect("entries").iter().map(|e| e["name"].clone()),
            );
            cursor = page["cursor"].clone();
            if page["has_more"] != true {
                break;
            }
        }
        assert_eq!(names, [json!("b.md"), json!("c.md")], "cursor {which}");
    }
    // And a page handed out long ago still leads to the changes since its listing.
    emulator.put_file(id, "/d.md", "d").expect("put");
    let mut cursor = cursors[0].clone();
    let mut names = Vec::new();
    loop {
        let page = dropbox.rpc_json("files/list_folder/continue", json!({"cursor": cursor})).await;
        names
            .extend(page["entries"].as_array().expect("entries").iter().map(|e| e["name"].clone()));
        cursor = page["cursor"].clone();
        if page["has_more"] != true && page["entries"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
    }
    assert!(names.contains(&json!("d.md")), "{names:?}");
}
