//! Who may drive the emulator, black-box over real HTTP: the `/_emulator/` control routes need
//! the run's secret, "Allow" on the consent page needs the owner's browser (the one that opened
//! the one-time owner link) and the page it was shown, and every request must name the emulator
//! as `127.0.0.1:<port>`. Also `markdrop emulator`'s side of it: the secret printed or given.

use std::process::{Command, Stdio};

use markdrop::emulator::{Emulator, EmulatorConfig, RunningEmulator};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, HOST, LOCATION, SET_COOKIE};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::support::emulator::{control_client, cookie_of, form_field, plain_client};
use crate::support::processes::lines_of;
use crate::support::scratch_dir;
use crate::support::wait::DEADLINE;

const REDIRECT_URI: &str = "http://127.0.0.1:5000/oauth/callback";

/// An emulator that shows its consent page, with "Ada" signed in and a note of hers.
async fn start() -> (RunningEmulator, String) {
    let running = Emulator::new(EmulatorConfig::new("control-key", "control-secret"))
        .start(0)
        .await
        .expect("start the emulator");
    let account = running.emulator.create_account("Ada").account_id;
    running.emulator.sign_in(&account);
    running.emulator.put_file(&account, "/Private.md", "mine").expect("a note");
    (running, account)
}

fn url(running: &RunningEmulator, path: &str) -> String {
    format!("{}{path}", running.url())
}

/// The consent page for a fresh authorization, as the browser holding `cookie` sees it.
async fn consent_page(running: &RunningEmulator, cookie: Option<&str>) -> String {
    let mut request = plain_client().get(url(running, "oauth2/authorize")).query(&[
        ("client_id", "control-key"),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT_URI),
        ("state", "s-1"),
    ]);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let page = request.send().await.expect("an answer");
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.expect("HTML")
}

async fn decide(
    running: &RunningEmulator,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = plain_client().post(url(running, "oauth2/authorize/decision")).form(form);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_routes_answer_401_without_the_secret_and_work_with_it() {
    let (running, account) = start().await;
    let file = url(&running, &format!("_emulator/files/{account}/Private.md"));
    let wrong = reqwest::Client::new();
    let guessed = "Bearer not-the-secret-but-just-as-long-as-it-is-00000";
    let attempts = [
        wrong.get(url(&running, "_emulator/stats")),
        wrong.get(&file),
        wrong.put(&file).body("overwritten"),
        wrong.delete(&file),
        wrong.post(url(&running, "_emulator/accounts")).json(&json!({"name": "Mallory"})),
        wrong.post(url(&running, &format!("_emulator/accounts/{account}/revoke_tokens"))),
        wrong.post(url(&running, "_emulator/owner_links")).json(&json!({})),
        wrong.get(url(&running, "_emulator/no-such-control")),
        wrong.get(url(&running, "_emulator/stats")).header(AUTHORIZATION, guessed),
        wrong.get(&file).header(AUTHORIZATION, guessed),
    ];
    for attempt in attempts {
        let refused = attempt.send().await.expect("an answer");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{}", refused.url());
        assert!(refused.headers().contains_key("www-authenticate"));
        let body = refused.text().await.expect("text");
        assert!(body.contains("Authorization: Bearer <control secret>"), "{body}");
    }
    assert_eq!(running.emulator.read_file(&account, "/Private.md"), Some(b"mine".to_vec()));
    assert_eq!(running.emulator.file_paths(&account), ["/Private.md"]);

    let http = control_client(&running.emulator);
    let read = http.get(&file).send().await.expect("an answer");
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.bytes().await.expect("bytes").as_ref(), b"mine");
    let stats = http.get(url(&running, "_emulator/stats")).send().await.expect("an answer");
    assert_eq!(stats.status(), StatusCode::OK);
    let unknown = http.get(url(&running, "_emulator/no-such-control")).send().await;
    assert_eq!(unknown.expect("an answer").status(), StatusCode::NOT_FOUND);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_on_the_consent_page_needs_the_owner_link_and_the_page_it_showed() {
    let (running, _) = start().await;

    let stranger_page = consent_page(&running, None).await;
    assert!(stranger_page.contains("This browser cannot allow access"), "{stranger_page}");
    assert!(!stranger_page.contains("value=\"allow\""), "no Allow offered: {stranger_page}");
    let strangers_request = form_field(&stranger_page, "request");
    let refused =
        decide(&running, None, &[("request", &strangers_request), ("decision", "allow")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html")
    );
    let page = refused.text().await.expect("HTML");
    assert!(page.contains("Only the owner of this emulator can allow access"), "{page}");
    assert!(page.contains("open the link it printed"), "{page}");

    let link = running.owner_link(None);
    let opened = plain_client().get(link.clone()).send().await.expect("an answer");
    assert_eq!(opened.status(), StatusCode::OK);
    let set_cookie = opened.headers()[SET_COOKIE].to_str().expect("ascii").to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/oauth2/authorize"] {
        assert!(set_cookie.contains(attribute), "{attribute} in {set_cookie}");
    }
    assert!(
        !set_cookie.contains(running.emulator.control_secret().expose_secret()),
        "the cookie does not carry the control secret"
    );
    let owner = cookie_of(opened.headers());
    let again = plain_client().get(link).send().await.expect("an answer");
    assert_eq!(again.status(), StatusCode::FORBIDDEN, "an owner link works once");
    assert!(again.text().await.expect("HTML").contains("This link does not work"));

    // The owner's cookie with a request started elsewhere (a page the owner never saw, so
    // without its page token) is what a cross-site form would post: refused, and forging the
    // token does not help.
    for token in [None, Some("forged")] {
        let mut form = vec![("request", strangers_request.as_str()), ("decision", "allow")];
        form.extend(token.map(|token| ("page_token", token)));
        let refused = decide(&running, Some(&owner), &form).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "page token {token:?}");
    }

    let owners_page = consent_page(&running, Some(&owner)).await;
    let allowed = decide(
        &running,
        Some(&owner),
        &[
            ("request", &form_field(&owners_page, "request")),
            ("page_token", &form_field(&owners_page, "page_token")),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(allowed.status(), StatusCode::FOUND);
    let back = allowed.headers()[LOCATION].to_str().expect("ascii");
    assert!(back.starts_with(REDIRECT_URI) && back.contains("code="), "{back}");

    // Deny grants nothing, so any browser may answer its own page with it.
    let denied =
        decide(&running, None, &[("request", &strangers_request), ("decision", "deny")]).await;
    assert_eq!(denied.status(), StatusCode::FOUND);
    let back = denied.headers()[LOCATION].to_str().expect("ascii");
    assert!(back.contains("error=access_denied"), "{back}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_link_minted_over_http_sends_the_browser_on_to_where_it_was_asked() {
    let (running, _) = start().await;
    let minted: Value = control_client(&running.emulator)
        .post(url(&running, "_emulator/owner_links"))
        .json(&json!({"then": "http://127.0.0.1:5000/"}))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    let link = minted["link"].as_str().expect("a link");
    assert!(link.starts_with(running.url().as_str()), "{link}");
    let opened = plain_client().get(link).send().await.expect("an answer");
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    assert_eq!(opened.headers()[LOCATION], "http://127.0.0.1:5000/");
    assert!(opened.headers().contains_key(SET_COOKIE));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_naming_another_host_than_127_0_0_1_and_the_port_is_refused() {
    let (running, _) = start().await;
    let port = running.url().port().expect("a port");
    let http = control_client(&running.emulator);
    let token = running.emulator.create_account("Bob").access_token;
    for host in [format!("rebound.example:{port}"), format!("localhost:{port}"), "127.0.0.1".into()]
    {
        let stats =
            http.get(url(&running, "_emulator/stats")).header(HOST, &host).send().await.unwrap();
        assert_eq!(stats.status(), StatusCode::MISDIRECTED_REQUEST, "{host}");
        let page = stats.text().await.expect("HTML");
        assert!(page.contains(&format!("Use http://127.0.0.1:{port}/ instead.")), "{page}");
        let api = http
            .post(url(&running, "2/users/get_current_account"))
            .header(HOST, &host)
            .bearer_auth(&token)
            .send()
            .await
            .expect("an answer");
        assert_eq!(api.status(), StatusCode::MISDIRECTED_REQUEST, "{host}");
    }
    let own = http.get(url(&running, "_emulator/stats")).send().await.expect("an answer");
    assert_eq!(own.status(), StatusCode::OK);
    running.stop().await;
}

fn markdrop_emulator() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_markdrop"));
    command
        .current_dir(scratch_dir("emulator-control-cli"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["emulator", "--port", "0", "--app-key", "k", "--app-secret", "s"]);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markdrop_emulator_prints_a_secret_made_for_the_run_that_opens_the_control_routes() {
    let mut child = markdrop_emulator()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run markdrop");
    let stdout = child.stdout.take().expect("stdout");
    let received = lines_of(stdout);
    let next_line = || received.recv_timeout(DEADLINE).expect("a line on stdout");
    let url = next_line().rsplit(' ').next().expect("a URL").to_owned();
    let secret_line = next_line();
    assert!(secret_line.starts_with("Control secret"), "{secret_line}");
    let secret = secret_line.rsplit(' ').next().expect("the secret").to_owned();
    assert!(secret.len() >= 32, "{secret_line}");
    let link_line = next_line();
    assert!(link_line.contains(&format!("{url}_emulator/owner?ticket=")), "{link_line}");

    let stats = |bearer: &str| {
        reqwest::Client::new().get(format!("{url}_emulator/stats")).bearer_auth(bearer).send()
    };
    assert_eq!(stats(&secret).await.expect("an answer").status(), StatusCode::OK);
    let other = "x".repeat(secret.len());
    assert_eq!(stats(&other).await.expect("an answer").status(), StatusCode::UNAUTHORIZED);

    let killed = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    assert!(killed.expect("run kill").success());
    assert!(child.wait().expect("wait for markdrop").success());
}

#[test]
fn a_weak_control_secret_stops_markdrop_emulator_with_one_line_naming_the_variable() {
    let output = markdrop_emulator()
        .env("EMULATOR_CONTROL_SECRET", "tooweak123")
        .output()
        .expect("run markdrop");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("EMULATOR_CONTROL_SECRET"), "{stderr}");
    assert!(!stderr.contains("tooweak123"), "the refused secret is not repeated: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_of_the_emulator_can_be_framed_by_another_page() {
    let (running, _) = start().await;
    let consent = plain_client()
        .get(url(&running, "oauth2/authorize"))
        .query(&[
            ("client_id", "control-key"),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("state", "s-1"),
        ])
        .send()
        .await
        .expect("the consent page");
    assert_eq!(consent.status(), StatusCode::OK);
    assert_eq!(consent.headers()["x-frame-options"], "DENY");
    assert_eq!(consent.headers()["content-security-policy"], "frame-ancestors 'none'");
}
