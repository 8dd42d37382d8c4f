//! Upload sessions over HTTP: bytes sent in several calls and committed alone or in batches,
//! with Dropbox's lookup errors, its limits and its write lock.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{TestDropbox, escape_arg};
use crate::support::emulator::SlowUpload;
use crate::support::wait::{DEADLINE, eventually};

/// The tests' own content hash of a file under 4 MiB: SHA-256 of its one block's SHA-256
/// (docs/dropbox.md §5).
fn small_file_hash(content: &[u8]) -> String {
    let block = Sha256::digest(content);
    Sha256::digest(block).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An upload-style session call (`start`, `append_v2`, `finish`) with `token`: status, and
/// the body as JSON (or as a JSON string when it is not JSON).
async fn send(
    dropbox: &TestDropbox,
    route: &str,
    token: &str,
    arg: &Value,
    body: &[u8],
) -> (StatusCode, Value) {
    let response = dropbox
        .http
        .post(dropbox.url(&format!("2/files/upload_session/{route}")))
        .bearer_auth(token)
        .header("Dropbox-API-Arg", escape_arg(arg))
        .header("Content-Type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .expect("an answer");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Starts a session with `content`, closed or not, and returns its id.
async fn started(dropbox: &TestDropbox, content: &[u8], close: bool) -> String {
    let (status, body) =
        send(dropbox, "start", dropbox.token(), &json!({"close": close}), content).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["session_id"].as_str().expect("a session id");
    assert!(id.starts_with("pid_upload_session:"), "{id}");
    id.to_owned()
}

/// A batch entry committing session `id` (holding `length` bytes) to `path`.
fn entry(id: &str, length: usize, path: &str) -> Value {
    json!({"cursor": {"session_id": id, "offset": length}, "commit": {"path": path}})
}

async fn batch(dropbox: &TestDropbox, token: &str, entries: Vec<Value>) -> (StatusCode, String) {
    let arg = json!({"entries": entries});
    dropbox.rpc_text("files/upload_session/finish_batch_v2", token, arg).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_started_appended_and_finished_writes_the_file_with_its_content_hash() {
    let dropbox = TestDropbox::start().await;
    let id = started(&dropbox, b"Hello, ", false).await;
    let cursor = json!({"cursor": {"session_id": id, "offset": 7}});
    let (status, body) = send(&dropbox, "append_v2", dropbox.token(), &cursor, b"world").await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null), "append answers null (Void)");
    let finish = json!({
        "cursor": {"session_id": id, "offset": 12},
        "commit": {"path": "/Notes/greeting.md", "mode": "add", "mute": true},
        "content_hash": small_file_hash(b"!"),
    });
    let (status, metadata) = send(&dropbox, "finish", dropbox.token(), &finish, b"!").await;
    assert_eq!(status, StatusCode::OK, "{metadata}");
    assert!(metadata.get(".tag").is_none(), "finish returns FileMetadata without .tag");
    assert_eq!(metadata["path_display"], "/Notes/greeting.md");
    assert_eq!(metadata["size"], 13);
    assert_eq!(metadata["content_hash"], small_file_hash(b"Hello, world!"));
    assert_eq!(
        dropbox.emulator().read_file(dropbox.id(), "/notes/greeting.md").as_deref(),
        Some(&b"Hello, world!"[..])
    );

    // Committed: the session takes nothing more.
    let again = json!({"cursor": {"session_id": id, "offset": 13}});
    let (status, body) = send(&dropbox, "append_v2", dropbox.token(), &again, b"?").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, json!({"error_summary": "closed/..", "error": {".tag": "closed"}}));
    let stats = dropbox.emulator().stats();
    assert_eq!(stats.upload_session_calls(dropbox.id()), 4);
    assert_eq!(stats.content_calls(dropbox.id()), 4, "all four on the content host");
    assert_eq!(stats.succeeded("files/upload_session/finish", dropbox.id()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_or_finish_at_the_wrong_offset_answers_incorrect_offset_with_the_right_one() {
    let dropbox = TestDropbox::start().await;
    let id = started(&dropbox, b"abc", false).await;
    let behind = json!({"cursor": {"session_id": id, "offset": 1}});
    let (status, body) = send(&dropbox, "append_v2", dropbox.token(), &behind, b"def").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body,
        json!({"error_summary": "incorrect_offset/..",
               "error": {".tag": "incorrect_offset", "correct_offset": 3}})
    );
    let finish = json!({"cursor": {"session_id": id, "offset": 9}, "commit": {"path": "/x.md"}});
    let (status, body) = send(&dropbox, "finish", dropbox.token(), &finish, b"").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["error"],
        json!({".tag": "lookup_failed",
               "lookup_failed": {".tag": "incorrect_offset", "correct_offset": 3}})
    );
    assert_eq!(body["error_summary"], "lookup_failed/incorrect_offset/..");
    assert!(dropbox.emulator().file_paths(dropbox.id()).is_empty(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_commits_each_entry_on_its_own_and_reports_a_failure_in_its_place() {
    let dropbox = TestDropbox::start().await;
    // A folder where the second file would go.
    dropbox.emulator().put_file(dropbox.id(), "/b.md/inside.md", "x").expect("a folder");
    let a = started(&dropbox, b"first", true).await;
    let b = started(&dropbox, b"second", true).await;
    let c = started(&dropbox, b"third", true).await;
    let entries = vec![entry(&a, 5, "/a.md"), entry(&b, 6, "/b.md"), entry(&c, 5, "/c.md")];
    let (status, body) = batch(&dropbox, dropbox.token(), entries).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result: Value = serde_json::from_str(&body).expect("JSON");
    let entries = result["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0][".tag"], "success");
    assert_eq!(entries[0]["path_lower"], "/a.md");
    assert_eq!(entries[0]["content_hash"], small_file_hash(b"first"));
    assert_eq!(
        entries[1],
        json!({".tag": "failure", "failure": {".tag": "path",
               "path": {".tag": "conflict", "conflict": {".tag": "folder"}}}})
    );
    assert_eq!(entries[2][".tag"], "success");
    assert_eq!(entries[2]["path_lower"], "/c.md");
    assert_eq!(dropbox.emulator().file_paths(dropbox.id()), ["/a.md", "/b.md/inside.md", "/c.md"]);
    assert_eq!(dropbox.emulator().stats().batch_commits(dropbox.id()), 2);

    // The failed entry's session is still there to commit elsewhere.
    let (status, body) = batch(&dropbox, dropbox.token(), vec![entry(&b, 6, "/b2.md")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""success""#), "{body}");
    assert_eq!(
        dropbox.emulator().read_file(dropbox.id(), "/b2.md").as_deref(),
        Some(&b"second"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_more_than_1000_entries_is_refused_before_anything_is_committed() {
    let dropbox = TestDropbox::start().await;
    let id = started(&dropbox, b"x", true).await;
    let entries: Vec<Value> = (0..1001).map(|n| entry(&id, 1, &format!("/{n}.md"))).collect();
    let (status, body) = batch(&dropbox, dropbox.token(), entries).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("entries") && body.contains("more than 1000 items"), "{body}");
    assert!(dropbox.emulator().file_paths(dropbox.id()).is_empty());

    let entries: Vec<Value> = (0..1000).map(|n| entry(&id, 1, &format!("/{n}.md"))).collect();
    let (status, body) = batch(&dropbox, dropbox.token(), entries).await;
    assert_eq!(status, StatusCode::OK, "1,000 is allowed: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclosed_session_in_a_batch_fails_that_entry_with_not_closed() {
    let dropbox = TestDropbox::start().await;
    let closed = started(&dropbox, b"done", true).await;
    let open = started(&dropbox, b"more to come", false).await;
    let entries = vec![entry(&closed, 4, "/closed.md"), entry(&open, 12, "/open.md")];
    let (status, body) = batch(&dropbox, dropbox.token(), entries).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(result["entries"][0][".tag"], "success");
    assert_eq!(
        result["entries"][1],
        json!({".tag": "failure", "failure": {".tag": "lookup_failed",
               "lookup_failed": {".tag": "not_closed"}}})
    );
    assert_eq!(dropbox.emulator().file_paths(dropbox.id()), ["/closed.md"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_session_is_not_found() {
    let dropbox = TestDropbox::start().await;
    let other = dropbox.emulator().create_account("Grace Hopper");
    let id = started(&dropbox, b"Ada's", false).await;
    let cursor = json!({"cursor": {"session_id": id, "offset": 5}});
    let (status, body) = send(&dropbox, "append_v2", &other.access_token, &cursor, b"!").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body, json!({"error_summary": "not_found/..", "error": {".tag": "not_found"}}));
    let finish = json!({"cursor": {"session_id": id, "offset": 5}, "commit": {"path": "/x.md"}});
    let (status, body) = send(&dropbox, "finish", &other.access_token, &finish, b"").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        body["error"],
        json!({".tag": "lookup_failed", "lookup_failed": {".tag": "not_found"}})
    );
    // Its owner still can.
    let (status, _) = send(&dropbox, "finish", dropbox.token(), &finish, b"").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_past_its_lifetime_is_not_found() {
    let dropbox =
        TestDropbox::start_with(|config| config.upload_session_lifetime = Default::default()).await;
    let id = started(&dropbox, b"stale", false).await;
    let cursor = json!({"cursor": {"session_id": id, "offset": 5}});
    let (status, body) = send(&dropbox, "append_v2", dropbox.token(), &cursor, b"!").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], json!({".tag": "not_found"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_do_not_match_their_content_hash_are_refused_and_not_kept() {
    let dropbox = TestDropbox::start().await;
    let id = started(&dropbox, b"abc", false).await;
    let arg = json!({"cursor": {"session_id": id, "offset": 3},
                     "content_hash": small_file_hash(b"something else")});
    let (status, body) = send(&dropbox, "append_v2", dropbox.token(), &arg, b"def").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], json!({".tag": "content_hash_mismatch"}));
    let arg = json!({"cursor": {"session_id": id, "offset": 3}});
    let (status, _) = send(&dropbox, "append_v2", dropbox.token(), &arg, b"def").await;
    assert_eq!(status, StatusCode::OK, "the refused bytes were not appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_session_is_refused_with_a_clear_400() {
    let dropbox = TestDropbox::start().await;
    let arg = json!({"session_type": "concurrent"});
    let (status, body) = send(&dropbox, "start", dropbox.token(), &arg, b"").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = body.as_str().expect("plain text");
    assert!(text.contains("session_type") && text.contains("concurrent"), "{text}");
    let arg = json!({"session_type": {".tag": "sequential"}, "close": true});
    let (status, _) = send(&dropbox, "start", dropbox.token(), &arg, b"x").await;
    assert_eq!(status, StatusCode::OK, "sequential is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_while_another_write_holds_the_namespace_gets_429_but_session_bytes_do_not() {
    let dropbox = TestDropbox::start().await;
    let closed = started(&dropbox, b"ready", true).await;
    let open = started(&dropbox, b"", false).await;
    let slow =
        SlowUpload::start(dropbox.running.url(), &dropbox.account.access_token, "/slow.md").await;
    // No other write may start before the slow one is in: arriving while another holds the
    // account, the slow one would be refused itself.
    eventually("the slow upload to reach the emulator", || {
        std::future::ready(dropbox.emulator().writes_in_flight(dropbox.id()) == 1)
    })
    .await;
    let held = &dropbox;
    eventually("the slow upload to hold the account", || async move {
        batch(held, held.token(), Vec::new()).await.0 == StatusCode::TOO_MANY_REQUESTS
    })
    .await;

    let (status, body) = batch(&dropbox, dropbox.token(), vec![entry(&closed, 5, "/r.md")]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON"),
        json!({"error_summary": "too_many_write_operations/..",
               "error": {"reason": {".tag": "too_many_write_operations"}}})
    );
    // Sending bytes writes nothing yet: no lock, so no refusal.
    let cursor = json!({"cursor": {"session_id": open, "offset": 0}});
    let fresh = json!({});
    let appends = async {
        tokio::join!(
            send(&dropbox, "append_v2", dropbox.token(), &cursor, b"one"),
            send(&dropbox, "start", dropbox.token(), &fresh, b"two"),
        )
    };
    let ((appended, _), (started_too, _)) =
        tokio::time::timeout(DEADLINE, appends).await.expect("answers");
    assert_eq!((appended, started_too), (StatusCode::OK, StatusCode::OK));
    assert!(dropbox.emulator().stats().refusals("too_many_write_operations", dropbox.id()) >= 2);

    assert_eq!(slow.finish().await, "HTTP/1.1 200 OK");
    let (status, body) = batch(&dropbox, dropbox.token(), vec![entry(&closed, 5, "/r.md")]).await;
    assert_eq!(status, StatusCode::OK, "free again: {body}");
    assert!(body.contains(r#""success""#), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_finish_batch_answers_a_job_id_whose_check_completes_with_every_entry() {
    let dropbox = TestDropbox::start().await;
    let other = dropbox.emulator().create_account("Grace Hopper");
    let a = started(&dropbox, b"alpha", true).await;
    let b = started(&dropbox, b"beta", true).await;
    let arg = json!({"entries": [entry(&a, 5, "/alpha.md"), entry(&b, 99, "/beta.md")]});
    let launch = dropbox.rpc_json("files/upload_session/finish_batch", arg).await;
    assert_eq!(launch[".tag"], "async_job_id", "{launch}");
    let job = launch["async_job_id"].as_str().expect("a job id").to_owned();

    let check = |token: String, job: String| {
        let dropbox = &dropbox;
        async move {
            let arg = json!({"async_job_id": job});
            dropbox.rpc_text("files/upload_session/finish_batch/check", &token, arg).await
        }
    };
    let token = dropbox.token().to_owned();
    let done = eventually("the job to complete", || {
        let check = check(token.clone(), job.clone());
        async move {
            let (status, body) = check.await;
            let status_body: Value = serde_json::from_str(&body).map_err(|_| body.clone())?;
            match status_body[".tag"].as_str() {
                Some("complete") if status == StatusCode::OK => Ok(status_body),
                Some("in_progress") => Err(body),
                _ => panic!("neither in progress nor complete: {status} {body}"),
            }
        }
    })
    .await;
    let entries = done["entries"].as_array().expect("entries");
    assert_eq!(entries[0][".tag"], "success");
    assert_eq!(entries[0]["path_lower"], "/alpha.md");
    assert_eq!(
        entries[1],
        json!({".tag": "failure", "failure": {".tag": "lookup_failed",
               "lookup_failed": {".tag": "incorrect_offset", "correct_offset": 4}}})
    );
    assert_eq!(dropbox.emulator().file_paths(dropbox.id()), ["/alpha.md"]);

    let (status, body) = check(other.access_token.clone(), job.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "another account's job: {body}");
    assert!(body.contains("invalid_async_job_id"), "{body}");
    let (status, body) = check(token, "dbjid:nothing".to_owned()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("invalid_async_job_id"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_uploads_session_id_commits_its_bytes_with_finish() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().put_file(dropbox.id(), "/taken/inside.md", "x").expect("a folder");
    let response = dropbox.upload(dropbox.token(), json!({"path": "/taken"}), b"kept bytes").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body["error"]["reason"],
        json!({".tag": "conflict", "conflict": {".tag": "folder"}})
    );
    let id = body["error"]["upload_session_id"].as_str().expect("a session id");
    assert!(id.starts_with("pid_upload_session:"), "{id}");

    let finish =
        json!({"cursor": {"session_id": id, "offset": 10}, "commit": {"path": "/free.md"}});
    let (status, metadata) = send(&dropbox, "finish", dropbox.token(), &finish, b"").await;
    assert_eq!(status, StatusCode::OK, "{metadata}");
    assert_eq!(metadata["content_hash"], small_file_hash(b"kept bytes"));
    let (status, _) = send(&dropbox, "finish", dropbox.token(), &finish, b"").await;
    assert_eq!(status, StatusCode::CONFLICT, "committed once only");
}
