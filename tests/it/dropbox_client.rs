//! The Dropbox client against the emulator, over real HTTP: every route, every error class,
//! token expiry and refresh, revocation, non-ASCII names, pagination and `reset`.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use markdrop::config::DropboxSettings;
use markdrop::dropbox::{
    AccountClient, AccountTokens, DropboxClient, DropboxError, Metadata, RateLimitReason,
    RetryPolicy, content_hash, new_pkce,
};
use markdrop::emulator::{Emulator, EmulatorConfig, FaultRule, LinkedAccount, RunningEmulator};
use url::Url;

use crate::support::emulator::SlowUpload;
use crate::support::wait::eventually;
use crate::support::{APP_KEY, APP_SECRET};

/// Retries that finish in milliseconds, so failure paths stay fast.
const FAST_RETRIES: RetryPolicy =
    RetryPolicy { attempts: 3, base: Duration::from_millis(5), cap: Duration::from_millis(20) };

struct TestDropbox {
    running: RunningEmulator,
    client: DropboxClient,
    account: LinkedAccount,
}

impl TestDropbox {
    async fn start() -> TestDropbox {
        let mut config = EmulatorConfig::new(APP_KEY, APP_SECRET);
        config.auto_approve = true;
        let running = Emulator::new(config).start(0).await.expect("start the emulator");
        let client = DropboxClient::new(&settings_for(running.url()))
            .expect("build the client")
            .with_retry_policy(FAST_RETRIES);
        let account = running.emulator.create_account("Ada Lovelace");
        TestDropbox { running, client, account }
    }

    fn emulator(&self) -> &Emulator {
        &self.running.emulator
    }

    fn id(&self) -> &str {
        &self.account.account_id
    }

    fn session(&self) -> AccountClient {
        self.session_expiring(None)
    }

    fn session_expiring(&self, expires_at: Option<SystemTime>) -> AccountClient {
        self.client.account(AccountTokens {
            access_token: self.account.access_token.clone().into(),
            refresh_token: self.account.refresh_token.clone().into(),
            expires_at,
            path_root: None,
        })
    }

    fn calls(&self, route: &str) -> u64 {
        self.emulator().stats().calls(route, self.id())
    }

    fn fail_next(&self, route: &str, times: u32, status: u16, content_type: &str, body: &str) {
        self.emulator().add_fault(FaultRule {
            content_type: content_type.to_owned(),
            ..FaultRule::status(route, times, status, body)
        });
    }
}

/// Downloads with a limit no test file comes near.
trait DownloadAny {
    async fn download_any(&self, path: &str) -> Result<markdrop::dropbox::Download, DropboxError>;
}

impl DownloadAny for AccountClient {
    async fn download_any(&self, path: &str) -> Result<markdrop::dropbox::Download, DropboxError> {
        self.download(path, 1 << 20).await
    }
}

fn settings_for(url: &Url) -> DropboxSettings {
    DropboxSettings {
        app_key: APP_KEY.to_owned(),
        app_secret: APP_SECRET.to_owned().into(),
        api_url: url.clone(),
        content_url: url.clone(),
        web_url: url.clone(),
    }
}

fn file_paths(page: &[Metadata]) -> Vec<String> {
    page.iter()
        .filter_map(|entry| match entry {
            Metadata::File(file) => file.path_display.clone(),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_account_is_the_linked_one() {
    let dropbox = TestDropbox::start().await;
    let account = dropbox.session().get_current_account().await.expect("account");
    assert_eq!(account.account_id.as_str(), dropbox.id());
    assert_eq!(account.name.display_name, "Ada Lovelace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_downloads_byte_for_byte_with_its_content_hash() {
    let dropbox = TestDropbox::start().await;
    let session = dropbox.session();
    let content = Bytes::from_static(b"<!DOCTYPE html>\n<p>hi</p>\n");
    let uploaded = session.upload("/Notes/ReadMe.html", content.clone()).await.expect("upload");
    assert_eq!(uploaded.path_display.as_deref(), Some("/Notes/ReadMe.html"));
    assert_eq!(uploaded.content_hash.as_deref(), Some(content_hash(&content).as_str()));

    let download = session.download_any("/notes/readme.html").await.expect("download");
    assert_eq!(download.content, content);
    assert_eq!(download.metadata.rev, uploaded.rev);
    assert_eq!(
        dropbox.emulator().read_file(dropbox.id(), "/Notes/ReadMe.html"),
        Some(content.to_vec())
    );

    let again = session.upload("/Notes/ReadMe.html", content).await.expect("upload again");
    assert_eq!(again.rev, uploaded.rev, "identical content keeps its rev");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_and_emoji_names_survive_every_route() {
    let dropbox = TestDropbox::start().await;
    let session = dropbox.session();
    for path in ["/Café/Größe — notes.md", "/Ideas/😀 plan.md", "/日本語/メモ.md"] {
        dropbox.emulator().put_file(dropbox.id(), path, path.as_bytes().to_vec()).expect("put");
        let download = session.download_any(path).await.expect(path);
        assert_eq!(download.content, path.as_bytes(), "{path}");
        assert_eq!(download.metadata.path_display.as_deref(), Some(path));
        let html = path.replace(".md", ".html");
        let uploaded = session.upload(&html, Bytes::from_static(b"x")).await.expect(&html);
        assert_eq!(uploaded.path_display.as_deref(), Some(html.as_str()));
        assert!(matches!(session.get_metadata(&html).await, Ok(Metadata::File(_))), "{html}");
    }
    let page = session.list_folder("", true, None).await.expect("list");
    let mut names = file_paths(&page.entries);
    names.sort();
    assert!(names.contains(&"/Ideas/😀 plan.html".to_owned()), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recursive_listing_pages_through_subfolders_and_continues_with_changes() {
    let dropbox = TestDropbox::start().await;
    let (emulator, id) = (dropbox.emulator(), dropbox.id());
    for i in 0..7 {
        emulator.put_file(id, &format!("/Deep/Er/note-{i}.md"), format!("# {i}\n")).expect("put");
    }
    let session = dropbox.session();
    let mut page = session.list_folder("", true, Some(3)).await.expect("first page");
    let mut files = file_paths(&page.entries);
    let mut pages = 1;
    while page.has_more {
        page = session.list_folder_continue(&page.cursor).await.expect("next page");
        files.extend(file_paths(&page.entries));
        pages += 1;
    }
    files.sort();
    assert_eq!(files.len(), 7, "{files:?}");
    assert!(pages >= 3, "a limit of 3 pages 7 files: {pages} page(s)");
    assert!(files.contains(&"/Deep/Er/note-6.md".to_owned()));

    emulator.put_file(id, "/Deep/new.md", "new").expect("put");
    emulator.delete_path(id, "/Deep/Er/note-0.md").expect("delete");
    let changes = session.list_folder_continue(&page.cursor).await.expect("changes");
    assert!(changes.entries.iter().any(
        |e| matches!(e, Metadata::File(f) if f.path_display.as_deref() == Some("/Deep/new.md"))
    ));
    assert!(changes.entries.iter().any(
        |e| matches!(e, Metadata::Deleted(d) if d.path_lower.as_deref() == Some("/deep/er/note-0.md"))
    ));

    let quiet = session.list_folder_continue(&changes.cursor).await.expect("no changes");
    assert!(quiet.entries.is_empty() && !quiet.has_more);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_cursor_is_a_route_error_the_caller_can_recognise() {
    let dropbox = TestDropbox::start().await;
    let session = dropbox.session();
    let page = session.list_folder("", true, None).await.expect("list");
    dropbox.emulator().reset_cursors(dropbox.id());
    match session.list_folder_continue(&page.cursor).await {
        Err(DropboxError::Route(route)) => assert!(route.is_reset(), "{route}"),
        other => panic!("expected reset, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_paths_and_deletes_answer_as_dropbox_does() {
    let dropbox = TestDropbox::start().await;
    let session = dropbox.session();
    match session.get_metadata("/nowhere.md").await {
        Err(DropboxError::Route(route)) => assert!(route.is_not_found(), "{route}"),
        other => panic!("expected not_found, got {other:?}"),
    }
    match session.download_any("/nowhere.md").await {
        Err(DropboxError::Route(route)) => assert!(route.is_not_found(), "{route}"),
        other => panic!("expected not_found, got {other:?}"),
    }
    dropbox.emulator().put_file(dropbox.id(), "/Gone.html", "bye").expect("put");
    let deleted = session.delete("/gone.html").await.expect("delete");
    assert!(matches!(deleted, Metadata::File(f) if f.name == "Gone.html"));
    assert_eq!(dropbox.emulator().read_file(dropbox.id(), "/Gone.html"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_given_as_slash_is_bad_input_not_retried() {
    let dropbox = TestDropbox::start().await;
    match dropbox.session().list_folder("/", true, None).await {
        Err(DropboxError::BadInput(text)) => assert!(text.contains("empty string"), "{text}"),
        other => panic!("expected bad input, got {other:?}"),
    }
    assert_eq!(dropbox.calls("files/list_folder"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_once_and_the_call_retried() {
    let dropbox = TestDropbox::start().await;
    let session = dropbox.session();
    dropbox.emulator().expire_access_tokens(dropbox.id());
    let account = session.get_current_account().await.expect("refreshed and retried");
    assert_eq!(account.account_id.as_str(), dropbox.id());
    assert_eq!(dropbox.emulator().stats().total_calls("oauth2/token"), 1);
    assert_eq!(dropbox.calls("users/get_current_account"), 2);
    let tokens = session.tokens().await;
    use secrecy::ExposeSecret;
    assert_ne!(tokens.access_token.expose_secret(), dropbox.account.access_token);
    assert!(tokens.expires_at.is_some_and(|at| at > SystemTime::now()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_with_an_expired_token_refresh_it_once() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().put_file(dropbox.id(), "/a.md", "a").expect("put");
    let session = std::sync::Arc::new(dropbox.session());
    dropbox.emulator().expire_access_tokens(dropbox.id());
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let session = session.clone();
        calls.spawn(async move { session.get_metadata("/a.md").await });
    }
    while let Some(outcome) = calls.join_next().await {
        let outcome = outcome.expect("the call did not panic");
        assert!(matches!(outcome, Ok(Metadata::File(_))), "{outcome:?}");
    }
    assert_eq!(dropbox.emulator().stats().total_calls("oauth2/token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_about_to_expire_is_refreshed_before_the_call() {
    let dropbox = TestDropbox::start().await;
    let session = dropbox.session_expiring(Some(SystemTime::now() + Duration::from_secs(30)));
    session.get_current_account().await.expect("account");
    assert_eq!(dropbox.emulator().stats().total_calls("oauth2/token"), 1);
    assert_eq!(dropbox.calls("users/get_current_account"), 1, "no call with the old token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_link_is_tried_with_a_fresh_token_once_and_its_refresh_is_refused() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().revoke_tokens(dropbox.id());
    // `invalid_access_token` alone does not say the grant is gone; the refused refresh does.
    assert!(matches!(
        dropbox.session().get_current_account().await,
        Err(DropboxError::RefreshRefused(_))
    ));
    assert_eq!(dropbox.emulator().stats().total_calls("oauth2/token"), 1, "one refresh");
    assert_eq!(dropbox.calls("users/get_current_account"), 1, "not called again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_that_died_early_is_refreshed_once_and_the_call_made_again() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().add_fault(FaultRule::auth_error(
        "users/get_current_account",
        2,
        "invalid_access_token",
    ));
    let session = dropbox.session();
    session.get_current_account().await.expect_err("dead again after the refresh");
    assert_eq!(dropbox.emulator().stats().total_calls("oauth2/token"), 1, "refreshed once");
    assert_eq!(dropbox.calls("users/get_current_account"), 2);
    session.get_current_account().await.expect("the refreshed token works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_ends_the_link() {
    let dropbox = TestDropbox::start().await;
    let session = dropbox.session();
    session.revoke().await.expect("revoke");
    assert!(matches!(session.get_current_account().await, Err(DropboxError::RefreshRefused(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_comes_back_with_its_wait_and_is_not_retried() {
    let dropbox = TestDropbox::start().await;
    dropbox.fail_next(
        "files/list_folder",
        1,
        429,
        "application/json",
        r#"{"error_summary":"too_many_requests/..","error":{"reason":{".tag":"too_many_requests"},"retry_after":300}}"#,
    );
    match dropbox.session().list_folder("", true, None).await {
        Err(DropboxError::RateLimited { reason, retry_after }) => {
            assert_eq!(reason, RateLimitReason::TooManyRequests);
            assert_eq!(retry_after, Duration::from_secs(300));
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    assert_eq!(dropbox.calls("files/list_folder"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_rate_limit_is_waited_out_and_the_call_goes_through_with_fewer_in_flight() {
    let dropbox = TestDropbox::start().await;
    let refusal = r#"{"error_summary":"too_many_requests/..","error":{"reason":{".tag":"too_many_requests"},"retry_after":1}}"#;
    dropbox.fail_next("files/list_folder", 1, 429, "application/json", refusal);
    let session = dropbox.session();
    let before = session.calls_in_flight_limit();
    let started = std::time::Instant::now();
    session.list_folder("", true, None).await.expect("answered the second time");
    assert!(started.elapsed() >= Duration::from_secs(1), "sent again before Retry-After");
    assert_eq!(dropbox.calls("files/list_folder"), 2);
    assert!(session.calls_in_flight_limit() < before, "the account backs off");

    // Refused again and again, the call gives up and says how long to wait.
    dropbox.fail_next("files/list_folder", 4, 429, "application/json", refusal);
    match session.list_folder("", true, None).await {
        Err(DropboxError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Duration::from_secs(1))
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    assert_eq!(dropbox.calls("files/list_folder"), 6, "three waits, then back to the caller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_text_rate_limit_takes_its_wait_from_retry_after() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().add_fault(
        FaultRule {
            headers: vec![("Retry-After".to_owned(), "17".to_owned())],
            ..FaultRule::status("files/upload", 1, 429, "Too many requests")
        }
        .for_account(dropbox.id()),
    );
    match dropbox.session().upload("/x.html", Bytes::from_static(b"x")).await {
        Err(DropboxError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Duration::from_secs(17))
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_contention_is_a_rate_limit_on_writes() {
    let dropbox = TestDropbox::start().await;
    dropbox.fail_next(
        "files/upload",
        1,
        409,
        "application/json",
        r#"{"error_summary":"path/too_many_write_operations/..","error":{".tag":"path","reason":{".tag":"too_many_write_operations"},"upload_session_id":"x"}}"#,
    );
    assert!(matches!(
        dropbox.session().upload("/x.html", Bytes::from_static(b"x")).await,
        Err(DropboxError::RateLimited { reason: RateLimitReason::TooManyWriteOperations, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_server_errors_is_retried_through() {
    let dropbox = TestDropbox::start().await;
    dropbox.fail_next("users/get_current_account", 2, 503, "text/html", "<h1>busy</h1>");
    dropbox.session().get_current_account().await.expect("third attempt succeeds");
    assert_eq!(dropbox.calls("users/get_current_account"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_server_errors_are_reported_after_the_retries() {
    let dropbox = TestDropbox::start().await;
    dropbox.fail_next("files/get_metadata", 10, 500, "text/plain", "oops");
    assert!(matches!(
        dropbox.session().get_metadata("/a.md").await,
        Err(DropboxError::Server { status: 500 })
    ));
    assert_eq!(dropbox.calls("files/get_metadata"), u64::from(FAST_RETRIES.attempts));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_dropbox_is_a_transport_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url: Url = format!("http://{}/", closed.local_addr().expect("addr")).parse().expect("url");
    drop(closed);
    let client =
        DropboxClient::new(&settings_for(&url)).expect("client").with_retry_policy(FAST_RETRIES);
    let session = client.account(AccountTokens {
        access_token: "sl.x".to_owned().into(),
        refresh_token: "r".to_owned().into(),
        expires_at: None,
        path_root: None,
    });
    assert!(matches!(session.get_current_account().await, Err(DropboxError::Transport(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_code_flow_links_an_account() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().sign_in(dropbox.id());
    let redirect: Url = "http://localhost:5000/oauth/callback".parse().expect("url");
    let (challenge, verifier) = new_pkce();
    let authorize = dropbox.client.authorize_url(&redirect, "state-123", challenge);
    let query: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    for (key, value) in [
        ("response_type", "code"),
        ("client_id", APP_KEY),
        ("state", "state-123"),
        ("token_access_type", "offline"),
        ("code_challenge_method", "S256"),
        ("redirect_uri", redirect.as_str()),
        ("scope", "account_info.read files.metadata.read files.content.read files.content.write"),
    ] {
        assert!(query.contains(&(key.to_owned(), value.to_owned())), "{key} in {authorize}");
    }

    let code = approve(&authorize, "state-123").await;
    let grant = dropbox.client.exchange_code(&code, &redirect, verifier).await.expect("exchange");
    assert_eq!(grant.account_id.as_str(), dropbox.id());
    assert!(grant.tokens.expires_at.is_some());
    let account = dropbox.client.account(grant.tokens).get_current_account().await.expect("works");
    assert_eq!(account.account_id, grant.account_id);

    let (_, other_verifier) = new_pkce();
    assert!(matches!(
        dropbox.client.exchange_code(&code, &redirect, other_verifier).await,
        Err(DropboxError::CodeRefused(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_with_the_wrong_verifier_is_refused() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().sign_in(dropbox.id());
    let redirect: Url = "http://localhost:5000/oauth/callback".parse().expect("url");
    let (challenge, _) = new_pkce();
    let (_, wrong_verifier) = new_pkce();
    let code = approve(&dropbox.client.authorize_url(&redirect, "s", challenge), "s").await;
    assert!(matches!(
        dropbox.client.exchange_code(&code, &redirect, wrong_verifier).await,
        Err(DropboxError::CodeRefused(_))
    ));
}

/// Follows the authorize URL as a browser would, with the emulator approving at once, and
/// returns the code from the redirect back to markdrop.
async fn approve(authorize: &Url, state: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = browser.get(authorize.clone()).send().await.expect("authorize");
    assert!(response.status().is_redirection(), "{}", response.status());
    let location: Url =
        response.headers()["location"].to_str().expect("ascii").parse().expect("url");
    let params: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert!(params.contains(&("state".to_owned(), state.to_owned())), "{location}");
    params.into_iter().find(|(k, _)| k == "code").map(|(_, v)| v).expect("a code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_error_is_access_denied() {
    let dropbox = TestDropbox::start().await;
    dropbox.fail_next(
        "files/list_folder",
        1,
        403,
        "application/json",
        r#"{"error_summary": "no_permission/..", "error": {".tag": "no_permission"}}"#,
    );
    match dropbox.session().list_folder("", true, None).await {
        Err(DropboxError::AccessDenied(tag)) => assert_eq!(tag, "no_permission"),
        other => panic!("expected access denied, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_without_its_result_header_is_unexpected() {
    let dropbox = TestDropbox::start().await;
    dropbox.fail_next("files/download", 1, 200, "application/octet-stream", "bytes");
    assert!(matches!(
        dropbox.session().download_any("/x.md").await,
        Err(DropboxError::Unexpected { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_limit_is_refused_without_reading_it() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().put_file(dropbox.id(), "/big.md", vec![b'#'; 4096]).expect("put");
    match dropbox.session().download("/big.md", 1000).await {
        Err(DropboxError::TooLarge { size, limit }) => assert_eq!((size, limit), (4096, 1000)),
        other => panic!("expected too large, got {other:?}"),
    }
    let small = dropbox.session().download("/big.md", 4096).await.expect("at the limit is fine");
    assert_eq!(small.content.len(), 4096);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_outage_is_retried_through() {
    let dropbox = TestDropbox::start().await;
    dropbox.fail_next("oauth2/token", 2, 503, "text/html", "<h1>Service Unavailable</h1>");
    dropbox.emulator().expire_access_tokens(dropbox.id());
    dropbox.session().get_current_account().await.expect("refreshed on the third try");
    assert_eq!(dropbox.emulator().stats().total_calls("oauth2/token"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_refresh_reports_its_wait() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().add_fault(FaultRule {
        headers: vec![("Retry-After".to_owned(), "30".to_owned())],
        ..FaultRule::status("oauth2/token", 1, 429, "Too many requests")
    });
    dropbox.emulator().expire_access_tokens(dropbox.id());
    match dropbox.session().get_current_account().await {
        Err(DropboxError::RateLimited { retry_after, .. }) => {
            assert_eq!(retry_after, Duration::from_secs(30))
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_a_scope_is_refused_that_scope_by_name() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().sign_in(dropbox.id());
    dropbox.emulator().put_file(dropbox.id(), "/a.md", "a").expect("put");
    let redirect: Url = "http://localhost:5000/oauth/callback".parse().expect("url");
    let (challenge, verifier) = new_pkce();
    let mut authorize = dropbox.client.authorize_url(&redirect, "s", challenge);
    // A person (or an app console) can grant fewer scopes than markdrop asks for.
    let narrowed: Vec<(String, String)> = authorize
        .query_pairs()
        .map(|(k, v)| match k.as_ref() {
            "scope" => (k.into_owned(), "account_info.read files.metadata.read".to_owned()),
            _ => (k.into_owned(), v.into_owned()),
        })
        .collect();
    authorize.query_pairs_mut().clear().extend_pairs(narrowed);
    let code = approve(&authorize, "s").await;
    let grant = dropbox.client.exchange_code(&code, &redirect, verifier).await.expect("exchange");
    let session = dropbox.client.account(grant.tokens);
    assert!(matches!(session.get_metadata("/a.md").await, Ok(Metadata::File(_))));
    match session.download_any("/a.md").await {
        Err(DropboxError::MissingScope { required_scope }) => {
            assert_eq!(required_scope, "files.content.read")
        }
        other => panic!("expected a missing scope, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpc_answer_with_a_download_result_header_is_unexpected() {
    let dropbox = TestDropbox::start().await;
    dropbox.emulator().add_fault(FaultRule {
        content_type: "application/json".to_owned(),
        headers: vec![("Dropbox-API-Result".to_owned(), "{}".to_owned())],
        ..FaultRule::status("users/get_current_account", 1, 200, "{}")
    });
    assert!(matches!(
        dropbox.session().get_current_account().await,
        Err(DropboxError::Unexpected { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarded_delete_spares_a_file_changed_since_its_rev_and_deletes_an_unchanged_one() {
    let dropbox = TestDropbox::start().await;
    let session = dropbox.session();
    dropbox.emulator().put_file(dropbox.id(), "/a.html", "seen").expect("put");
    let Metadata::File(seen) = session.get_metadata("/a.html").await.expect("metadata") else {
        panic!("a file");
    };
    dropbox.emulator().put_file(dropbox.id(), "/a.html", "edited").expect("edit");
    match session.delete_revision("/a.html", &seen.rev).await {
        Err(DropboxError::Route(route)) => assert!(route.is_lasting_write_refusal(), "{route}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(dropbox.emulator().read_file(dropbox.id(), "/a.html"), Some(b"edited".to_vec()));
    let Metadata::File(current) = session.get_metadata("/a.html").await.expect("metadata") else {
        panic!("a file");
    };
    session.delete_revision("/a.html", &current.rev).await.expect("delete");
    assert_eq!(dropbox.emulator().read_file(dropbox.id(), "/a.html"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_refused_while_another_write_holds_the_account_is_a_rate_limit() {
    let dropbox = TestDropbox::start().await;
    let session = dropbox.session();
    let url = dropbox.running.url().clone();
    let slow = SlowUpload::start(&url, &dropbox.account.access_token, "/slow.md").await;
    // No other write may start before the slow one is in: arriving while another holds the
    // account, the slow one would be refused itself.
    let emulator = dropbox.emulator();
    eventually("the slow upload to reach the emulator", || {
        std::future::ready(emulator.writes_in_flight(dropbox.id()) == 1)
    })
    .await;
    // Once it holds the account (a moment after it is in), the next upload is refused, and the
    // client must say so as a rate limit the worker reschedules on.
    let reason = eventually("an upload to be refused as a rate limit", || async {
        match session.upload("/x.html", Bytes::from_static(b"x")).await {
            Err(DropboxError::RateLimited { reason, .. }) => Some(reason),
            _ => None,
        }
    })
    .await;
    assert_eq!(reason, RateLimitReason::TooManyWriteOperations);
    assert_eq!(slow.finish().await, "HTTP/1.1 200 OK");
    session.upload("/x.html", Bytes::from_static(b"x")).await.expect("the account is free again");
}
