//! Notifications as Dropbox sends them: batched, signed with the app secret, formatted like
//! Dropbox's, retried when refused and cancelled when the emulator stops; the verification
//! challenge.

use std::sync::Mutex;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::TestDropbox;
use crate::support::wait::{DEADLINE, eventually};
use crate::support::webhooks::sign;

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
    assert_eq!(notification.signature.as_deref(), Some(sign(&notification.body).as_str()));
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
    eventually("all three notifications to be delivered", || {
        std::future::ready(dropbox.emulator().stats().webhooks_delivered() == 3)
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
    eventually("the retry to be counted as delivered", || {
        std::future::ready(dropbox.emulator().stats().webhooks_delivered() == 1)
    })
    .await;
    assert_eq!(dropbox.emulator().stats().webhook_attempts(), 2);
}
