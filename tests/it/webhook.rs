//! `/webhook`, `/healthz` and `/readyz` on the real app, bound to port 0, with a real Redis.

use crate::support::app::TestApp;
use crate::support::wait::DEADLINE;
use crate::support::webhooks::{notification, sign, sign_with};
use crate::support::{ALICE, BOB};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_challenge_is_echoed_as_plain_text_nobody_may_sniff() {
    let app = TestApp::start("challenge").await;
    let response = app.get("/webhook?challenge=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.text().await.expect("body"), "<script>alert(1)</script>");
    assert_eq!(app.get("/webhook").await.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_notification_queues_each_account_once_and_answers_at_once() {
    let app = TestApp::start("signed").await;
    let body = notification(&[ALICE, BOB, ALICE]);
    let response = app.post_webhook(&body, Some(&sign(&body))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "", "the answer has an empty body");
    let mut queued = app.queued().await;
    queued.sort();
    let mut expected = vec![ALICE.to_owned(), BOB.to_owned()];
    expected.sort();
    assert_eq!(queued, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_notifications_for_one_account_leave_one_pending_pass() {
    let app = TestApp::start("coalesce").await;
    let body = notification(&[ALICE]);
    let signature = sign(&body);
    for _ in 0..20 {
        assert_eq!(app.post_webhook(&body, Some(&signature)).await.status(), 200);
    }
    assert_eq!(app.queued().await, [ALICE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_or_forged_notification_is_forbidden_and_queues_nothing() {
    let app = TestApp::start("forged").await;
    let body = notification(&[ALICE]);
    let forged = sign_with("another app's secret", &body);
    for signature in
        [None, Some(""), Some("not hex at all"), Some(&forged[..]), Some(&sign(b"{}")[..])]
    {
        let response = app.post_webhook(&body, signature).await;
        assert_eq!(response.status(), 403, "signature {signature:?}");
    }
    assert!(app.queued().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_body_that_is_no_notification_is_a_bad_request() {
    let app = TestApp::start("malformed").await;
    for body in [&b"not json"[..], b"[1, 2]", br#"{"list_folder": {"accounts": "dbid:x"}}"#] {
        let response = app.post_webhook(body, Some(&sign(body))).await;
        assert_eq!(response.status(), 400, "{}", String::from_utf8_lossy(body));
    }
    assert!(app.queued().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_format_notification_is_accepted_and_queues_nothing() {
    let app = TestApp::start("delta-only").await;
    let body = br#"{"delta": {"users": [12345678]}}"#;
    assert_eq!(app.post_webhook(body, Some(&sign(body))).await.status(), 200);
    assert!(app.queued().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_from_its_declared_length_before_it_is_sent() {
    let app = TestApp::start("oversized").await;
    let too_long = markdrop::web::MAX_WEBHOOK_BODY + 1;
    // Headers only: the answer must come without a byte of the body being read.
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         X-Dropbox-Signature: {}\r\nContent-Length: {too_long}\r\n\r\n",
        sign(b"")
    );
    assert!(raw_exchange(&app.address, head.as_bytes()).await.starts_with("HTTP/1.1 413"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_chunked_body_is_refused_once_it_passes_the_limit() {
    let app = TestApp::start("oversized-chunked").await;
    let mut request = format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         X-Dropbox-Signature: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        sign(b"")
    )
    .into_bytes();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..(markdrop::web::MAX_WEBHOOK_BODY / chunk.len() + 1) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    assert!(raw_exchange(&app.address, &request).await.starts_with("HTTP/1.1 413"));
}

/// Writes `request` as is and returns the start of the answer (whatever of the request the
/// server refuses to read is simply dropped).
async fn raw_exchange(address: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .expect("connect");
    // The server may answer and close before taking everything; a failed write is fine then.
    let _ = stream.write_all(request).await;
    let mut answer = vec![0; 64];
    let read = tokio::time::timeout(DEADLINE, stream.read(&mut answer))
        .await
        .expect("an answer before the deadline")
        .expect("read");
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_a_notification_gets_503_so_dropbox_retries() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("redis://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let app = TestApp::builder("redis-down").on_redis_at(&dead).start().await;
    let body = notification(&[ALICE]);
    let refused = app.post_webhook(&body, Some(&sign(&body))).await;
    assert_eq!(refused.status(), 503);
    // The cause (a refused connection) is for the log, not for whoever sent the request.
    assert_eq!(refused.text().await.expect("body"), "the queue is unavailable\n");
    assert_eq!(app.get("/readyz").await.status(), 503);
    assert_eq!(app.get("/healthz").await.status(), 200, "the process itself is alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer_when_redis_does() {
    let app = TestApp::start("health").await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.expect("body"), "ready\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_accepts_but_never_answers_still_gets_a_prompt_503() {
    // Accepts connections and reads nothing: the worst kind of outage, a hung server.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("redis://{}", silent.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            held.push(connection);
        }
    });
    let app = TestApp::builder("redis-silent").on_redis_at(&url).start().await;
    let body = notification(&[ALICE]);
    for _ in 0..3 {
        let answer = tokio::time::timeout(DEADLINE, app.post_webhook(&body, Some(&sign(&body))))
            .await
            .expect("an answer well before Dropbox's 10 s");
        assert_eq!(answer.status(), 503);
    }
}
