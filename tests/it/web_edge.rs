//! The public edge of the web process, as an attacker and a careful client meet it: bodies that
//! never finish, bodies refused before `100 Continue`, a notification with one bad id among good
//! ones, and `/metrics` behind `METRICS_TOKEN`. Raw sockets where the bytes on the wire matter.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::TestApp;
use crate::support::processes::{Processes, listening_port, markdrop};
use crate::support::store::redis_url;
use crate::support::wait::{DEADLINE, eventually};
use crate::support::webhooks::{notification, sign};
use crate::support::{ALICE, BOB, unique_prefix};

/// How many stalled connections the slow-body test holds open at once.
const STALLED: usize = 300;

/// How much of its declared 256 KiB each stalled connection sends before it stops.
const STALLED_SENT: usize = 64 * 1024;

/// The head of a webhook POST declaring `length` bytes of body, `extra` headers included.
fn webhook_head(length: usize, signature: &str, extra: &str) -> String {
    format!(
        "POST /webhook HTTP/1.1\r\nHost: markdrop.test\r\nContent-Type: application/json\r\n\
         X-Dropbox-Signature: {signature}\r\nContent-Length: {length}\r\n{extra}\r\n"
    )
}

/// Reads up to the end of a response head; returns it as text.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut byte))
            .await
            .expect("a response head before the deadline")
            .expect("read a response head");
        assert!(read == 1, "the connection ended inside a response head: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_stalled_webhook_bodies_hold_bounded_memory_and_are_cut_off_at_the_deadline() {
    let prefix = unique_prefix("stalled-bodies");
    let mut web = markdrop("web", None)
        .env("REDIS_URL", redis_url())
        .env("REDIS_KEY_PREFIX", &prefix)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start markdrop web");
    let port = listening_port(&mut web);
    let pid = web.id();
    let _web = Processes(vec![web]);
    let address = format!("127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        http.post(format!("http://{address}/webhook"))
            .header("X-Dropbox-Signature", sign(&body))
            .body(body)
            .send()
    };
    // Warm up, so what is measured next is what the connections hold.
    assert_eq!(post(notification(&[BOB])).await.expect("warm-up").status(), 200);
    let before = rss_kib(pid);

    // Each declares a full-size body, sends a quarter of it and stops: the issue's attack.
    let mut stalled = Vec::with_capacity(STALLED);
    let mut request = webhook_head(markdrop::web::MAX_WEBHOOK_BODY, "00", "").into_bytes();
    request.extend(std::iter::repeat_n(b' ', STALLED_SENT));
    for _ in 0..STALLED {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        tokio::time::timeout(DEADLINE, stream.write_all(&request))
            .await
            .expect("the kernel takes a quarter body at once")
            .expect("write");
        stalled.push(stream);
    }
    let opened = Instant::now();

    // A signed notification gets through at once, whatever the stalled bodies hold.
    let started = Instant::now();
    let answer = post(notification(&[ALICE])).await.expect("a signed notification");
    assert_eq!(answer.status(), 200);
    // Before any stalled body is even cut off: they do not stand in its way.
    let before_any_cut = markdrop::web::WEBHOOK_BODY_DEADLINE;
    assert!(started.elapsed() < before_any_cut, "answered in {:?}", started.elapsed());

    // Memory held per stalled connection stays far below the body it declared.
    let held = rss_kib(pid).saturating_sub(before);
    let budget = (markdrop::web::WEBHOOK_BODY_BUDGET / 1024) as u64;
    eprintln!(
        "{STALLED} stalled connections with {} KiB sent each: RSS {before} KiB -> +{held} KiB",
        STALLED_SENT / 1024
    );
    assert!(held < STALLED as u64 * 128 + budget, "{STALLED} stalled connections hold {held} KiB");

    // Each is answered 408 once its body is late, and closed.
    let mut answers = tokio::task::JoinSet::new();
    for mut stream in stalled {
        answers.spawn(async move { read_head(&mut stream).await });
    }
    while let Some(head) = answers.join_next().await {
        let head = head.expect("a reader");
        assert!(head.starts_with("HTTP/1.1 408"), "a stalled body is cut off: {head}");
    }
    let late = markdrop::web::WEBHOOK_BODY_DEADLINE + Duration::from_secs(3);
    assert!(opened.elapsed() < late, "cut off after {:?}", opened.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_announced_with_expect_continue_gets_its_413_before_any_100_continue() {
    let app = TestApp::start("expect-413").await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let too_long = 2 * 1024 * 1024;
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = webhook_head(too_long, &sign(b""), "Expect: 100-continue\r\n");
    stream.write_all(head.as_bytes()).await.expect("write the head");
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "the first answer is the refusal: {answer}");
    // A careless client sends the body anyway: it is drained, then the connection ends
    // cleanly, never with a reset.
    let _ = stream.write_all(&vec![b' '; too_long]).await;
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest)).await;
    assert!(matches!(ended, Ok(Ok(_))), "the connection ends with a clean close: {ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_sent_whole_is_answered_413_and_the_client_reads_it() {
    let app = TestApp::start("whole-413").await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let too_long = 2 * 1024 * 1024;
    let stream = TcpStream::connect(&address).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let mut request = webhook_head(too_long, &sign(b""), "").into_bytes();
    request.extend(std::iter::repeat_n(b' ', too_long));
    let sending = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(DEADLINE, reader.read_to_end(&mut answer)).await;
    assert!(matches!(read, Ok(Ok(_))), "a clean close, not a reset: {read:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    drop(sending.await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_with_malformed_ids_among_valid_ones_queues_the_valid_and_counts_the_rest() {
    let app = TestApp::start("mixed-ids").await;
    let body = format!(
        r#"{{"list_folder": {{"accounts": ["{ALICE}", "12345", "{BOB}", 42, "dbid:no spaces"]}}}}"#
    )
    .into_bytes();
    let http = reqwest::Client::new();
    let answer = http
        .post(app.url("/webhook"))
        .header("X-Dropbox-Signature", sign(&body))
        .body(body)
        .send()
        .await
        .expect("POST /webhook");
    assert_eq!(answer.status(), 200, "the valid ids count; Dropbox must not retry them");
    let mut queued = app.queued().await;
    queued.sort();
    let mut expected = vec![ALICE.to_owned(), BOB.to_owned()];
    expected.sort();
    assert_eq!(queued, expected);
    eventually("the malformed ids counted in /metrics", || async {
        let metrics = http.get(app.url("/metrics")).send().await.expect("GET /metrics");
        let text = metrics.text().await.expect("metrics text");
        text.lines().any(|line| line == "markdrop_webhook_malformed_accounts_total 3")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_metrics_token_metrics_answers_only_its_bearer() {
    let app = TestApp::builder("metrics-token")
        .with_settings(|settings| settings.metrics_token = Some("scrape-me-7f3a".into()))
        .start()
        .await;
    let http = reqwest::Client::new();
    let get = |authorization: Option<&'static str>| {
        let mut request = http.get(app.url("/metrics"));
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        request.send()
    };
    for refused in [None, Some("Bearer scrape-me-7f3b"), Some("Bearer "), Some("scrape-me-7f3a")] {
        let answer = get(refused).await.expect("GET /metrics");
        assert_eq!(answer.status(), 401, "{refused:?}");
        assert_eq!(answer.headers()["www-authenticate"], "Bearer realm=\"metrics\"");
        let body = answer.text().await.expect("body");
        assert!(!body.contains("scrape-me"), "the token never shows: {body}");
    }
    let answer = get(Some("Bearer scrape-me-7f3a")).await.expect("GET /metrics");
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.expect("body").contains("# TYPE markdrop_webhooks_total counter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_metrics_token_metrics_stays_open() {
    let app = TestApp::start("metrics-open").await;
    let answer = reqwest::get(app.url("/metrics")).await.expect("GET /metrics");
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.expect("body").contains("# TYPE markdrop_webhooks_total counter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_body_that_never_finishes_is_cut_off_with_a_408_at_the_request_deadline() {
    let app = TestApp::builder("form-deadline")
        .with_settings(|settings| settings.request_deadline = Duration::from_secs(1))
        .start()
        .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = "POST /account/unlink HTTP/1.1\r\nHost: markdrop.test\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ncsrf=";
    stream.write_all(head.as_bytes()).await.expect("write the head and a little");
    let sent = Instant::now();
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(sent.elapsed() < DEADLINE, "cut off at its deadline, not held");
}
