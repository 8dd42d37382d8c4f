//! The per-user rate limit over HTTP: past `max_concurrent_calls_per_user` calls in flight for
//! one account, 429 `too_many_requests` with `Retry-After`, and served again once one ends.

use markdrop::emulator::{FaultRule, Gate};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::TestDropbox;
use crate::support::wait::{DEADLINE, eventually};

/// A `get_metadata` call with `token` as a task of its own (so a test can hold it at a gate
/// and go on), answering its status.
fn spawn_lookup(dropbox: &TestDropbox, token: &str) -> tokio::task::JoinHandle<StatusCode> {
    let request = dropbox
        .http
        .post(dropbox.url("2/files/get_metadata"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(r#"{"path": "/nothing.md"}"#);
    tokio::spawn(async move { request.send().await.expect("an answer").status() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_the_per_user_limit_get_429_with_retry_after_until_one_ends() {
    let dropbox =
        TestDropbox::start_with(|config| config.max_concurrent_calls_per_user = Some(2)).await;
    let other = dropbox.emulator().create_account("Grace Hopper");
    let gate = Gate::default();
    dropbox
        .emulator()
        .add_fault(FaultRule::held("files/get_metadata", 2, &gate).for_account(dropbox.id()));
    let held: Vec<_> = (0..2).map(|_| spawn_lookup(&dropbox, dropbox.token())).collect();
    eventually("two calls in flight", || {
        std::future::ready(dropbox.emulator().calls_in_flight(dropbox.id()) == 2)
    })
    .await;

    let response = dropbox.rpc("files/list_folder", dropbox.token(), json!({"path": ""})).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["Retry-After"], "1");
    assert_eq!(response.headers()["Content-Type"], "application/json");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"error_summary": "too_many_requests/..",
               "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 1}})
    );
    let another = spawn_lookup(&dropbox, &other.access_token).await.expect("ran");
    assert_eq!(another, StatusCode::CONFLICT, "the limit is per user");

    gate.open();
    for call in held {
        let status = tokio::time::timeout(DEADLINE, call).await.expect("released").expect("ran");
        assert_eq!(status, StatusCode::CONFLICT, "served: not_found");
    }
    assert_eq!(dropbox.emulator().calls_in_flight(dropbox.id()), 0);
    let response = dropbox.rpc("files/list_folder", dropbox.token(), json!({"path": ""})).await;
    assert_eq!(response.status(), StatusCode::OK, "served again");
    let stats = dropbox.emulator().stats();
    assert_eq!(stats.refusals("too_many_requests", dropbox.id()), 1);
    assert_eq!(stats.total_refusals("too_many_requests"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_on_by_default_at_twenty_calls_per_user() {
    let dropbox = TestDropbox::start().await;
    let gate = Gate::default();
    dropbox.emulator().add_fault(FaultRule::held("files/get_metadata", 20, &gate));
    let calls: Vec<_> = (0..20).map(|_| spawn_lookup(&dropbox, dropbox.token())).collect();
    eventually("twenty calls in flight", || {
        std::future::ready(dropbox.emulator().calls_in_flight(dropbox.id()) == 20)
    })
    .await;
    let response = dropbox.rpc("files/list_folder", dropbox.token(), json!({"path": ""})).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "the 21st");
    gate.open();
    for call in calls {
        let status = tokio::time::timeout(DEADLINE, call).await.expect("released").expect("ran");
        assert_eq!(status, StatusCode::CONFLICT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_out_the_latency_counts_toward_the_rate_limit() {
    let dropbox = TestDropbox::start_with(|config| {
        config.max_concurrent_calls_per_user = Some(1);
        // Far longer than the test: the first call is still waiting when the second comes.
        config.latency = std::time::Duration::from_secs(60);
    })
    .await;
    let (http, url, token) =
        (dropbox.http.clone(), dropbox.url("2/files/list_folder"), dropbox.token().to_owned());
    let waiting = tokio::spawn(async move {
        let request = http.post(url).bearer_auth(token).header("Content-Type", "application/json");
        request.body(r#"{"path": ""}"#).send().await
    });
    eventually("the first call to be in flight", || {
        std::future::ready(dropbox.emulator().calls_in_flight(dropbox.id()) == 1)
    })
    .await;
    let response = dropbox.rpc("files/list_folder", dropbox.token(), json!({"path": ""})).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "refused without the wait");
    waiting.abort();
}
