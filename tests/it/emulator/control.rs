//! Steering the emulator: injected faults answer the calls they match and are used up, stats
//! record peaks of concurrent calls, and the `/_emulator/` control routes create accounts,
//! write, read and delete files, add faults, expire tokens and report.

use markdrop::emulator::FaultRule;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::TestDropbox;
use crate::support::emulator::control_client;
use crate::support::wait::DEADLINE;

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
    // them (`files`) is turned off.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_surface_creates_accounts_writes_reads_deletes_and_reports() {
    let dropbox = TestDropbox::start().await;
    let http = &control_client(dropbox.emulator());
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
