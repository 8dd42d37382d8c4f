//! "Connect Dropbox" end to end: the real app on port 0, the emulator's consent page, a real
//! Redis; then the account page and disconnecting.

use markdrop::dropbox::AccountId;
use redis::AsyncCommands;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use secrecy::ExposeSecret;
use url::Url;

use crate::support::app::TestApp;
use crate::support::emulator::owner_cookie;
use crate::support::store::{claim, redis_url};

/// The app, its Dropbox showing the consent page, with Ada Lovelace signed in at Dropbox and
/// not yet connected to markdrop; returns her account id too.
async fn app_with_ada(test: &str) -> (TestApp, AccountId) {
    let app = TestApp::builder(test).with_consent_page().start().await;
    let ada = app.emulator().create_account("Ada Lovelace").account_id;
    app.emulator().sign_in(&ada);
    (app, AccountId::parse(&ada).expect("an account id"))
}

/// Every key and value the app stored, as text, to search for secrets.
async fn everything_stored(app: &TestApp) -> String {
    let mut redis = redis::Client::open(redis_url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> = redis.keys(format!("{}*", app.prefix)).await.expect("keys");
    let mut dump = String::new();
    for key in keys {
        let kind: String =
            redis::cmd("TYPE").arg(&key).query_async(&mut redis).await.expect("type");
        let values: Vec<String> = match kind.as_str() {
            "hash" => redis.hgetall::<_, Vec<String>>(&key).await.expect("hgetall"),
            "zset" => redis.zrange(&key, 0, -1).await.expect("zrange"),
            _ => vec![redis.get::<_, String>(&key).await.expect("get")],
        };
        dump.push_str(&format!("{key}: {values:?}\n"));
    }
    dump
}

/// A browser: no automatic redirects, one cookie jar for the app.
struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Browser { http, cookie: None }
    }

    /// A browser that has connected Dropbox and is signed in.
    async fn signed_in(app: &TestApp) -> Browser {
        let mut browser = Browser::new();
        let callback = browser.go_to_dropbox_and(app, "allow").await;
        let linked = browser.get(&callback).await;
        assert_eq!(linked.status(), 303, "signed in");
        browser
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let mut request = self.http.get(url);
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        self.keep_cookie(request.send().await.expect("GET"))
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.http.post(url).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        self.keep_cookie(request.send().await.expect("POST"))
    }

    fn keep_cookie(&mut self, response: reqwest::Response) -> reqwest::Response {
        if let Some(set) = response.headers().get(SET_COOKIE) {
            let pair = set.to_str().expect("ascii").split(';').next().expect("a pair");
            if pair.starts_with("markdrop_session=") {
                self.cookie = Some(pair.to_owned());
            }
        }
        response
    }

    /// The CSRF token of the account page's form.
    async fn csrf_token(&mut self, app: &TestApp) -> String {
        let page = self.get(&app.url("/account")).await.text().await.expect("account page");
        attribute_after(&page, "name=\"csrf\"", "value")
    }

    /// Clicks "Connect Dropbox" and, on the emulator's consent page, `decision`; returns the
    /// callback URL Dropbox sends the browser back to, pointed at the app under test.
    async fn go_to_dropbox_and(&mut self, app: &TestApp, decision: &str) -> String {
        let login = self.get(&app.url("/login")).await;
        assert_eq!(login.status(), 303);
        let authorize = location(&login);
        assert!(authorize.starts_with(app.dropbox.url().as_str()), "{authorize}");
        // The person's browser opened the emulator's owner link, as `markdrop demo` has them do:
        // only it may Allow. Its cookie is the emulator's, so it goes to the emulator alone.
        let owner = owner_cookie(&app.dropbox).await;
        let consent = self.http.get(&authorize).header(COOKIE, &owner).send().await;
        let consent = consent.expect("GET");
        assert_eq!(consent.status(), 200);
        let page = consent.text().await.expect("consent page");
        let action = attribute_after(&page, "<form", "action");
        let request = attribute_after(&page, "name=\"request\"", "value");
        let page_token = attribute_after(&page, "name=\"page_token\"", "value");
        let decided = self
            .http
            .post(app.dropbox.url().join(&action).expect("url"))
            .header(COOKIE, &owner)
            .form(&[
                ("request", request.as_str()),
                ("page_token", &page_token),
                ("decision", decision),
            ])
            .send()
            .await
            .expect("POST");
        assert!(decided.status().is_redirection(), "{}", decided.status());
        let back: Url = location(&decided).parse().expect("a callback URL");
        assert_eq!(back.path(), "/oauth/callback");
        app.url(&format!("/oauth/callback?{}", back.query().unwrap_or_default()))
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION].to_str().expect("ascii").to_owned()
}

/// The value of `attribute` in the first tag after `marker` (enough HTML parsing for one form).
fn attribute_after(page: &str, marker: &str, attribute: &str) -> String {
    let from = &page[page.find(marker).unwrap_or_else(|| panic!("{marker} in {page}"))..];
    let needle = format!("{attribute}=\"");
    let start = from.find(&needle).expect("the attribute") + needle.len();
    let value = &from[start..start + from[start..].find('"').expect("a closing quote")];
    value.replace("&amp;", "&").replace("&#x2f;", "/").replace("&#47;", "/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_showing_and_disconnecting_an_account_round_trips() {
    let (app, ada) = app_with_ada("round-trip").await;
    let mut browser = Browser::new();
    let home = browser.get(&app.url("/")).await;
    assert_eq!(home.status(), 200);
    for (header, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ] {
        assert_eq!(home.headers()[header], value, "{header}");
    }
    assert!(
        home.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let set_cookie = home.headers()[SET_COOKIE].to_str().expect("ascii").to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(home.text().await.expect("home").contains("href=\"/login\">Connect Dropbox</a>"));

    let callback = browser.go_to_dropbox_and(&app, "allow").await;
    let linked = browser.get(&callback).await;
    assert_eq!(linked.status(), 303);
    assert_eq!(location(&linked), "/account");

    let account_page = browser.get(&app.url("/account")).await;
    assert_eq!(account_page.status(), 200);
    let page = account_page.text().await.expect("account page");
    assert!(page.contains("<h1>Ada Lovelace</h1>"), "{page}");
    assert!(page.contains("Connected"));
    assert!(app.store.tokens(&ada).await.expect("read").is_some());
    assert_eq!(
        app.store.queued().await.expect("queue"),
        std::slice::from_ref(&ada),
        "the first sync is queued"
    );
    let tokens = app.store.tokens(&ada).await.expect("read").expect("linked");
    let everything = everything_stored(&app).await;
    for secret in [tokens.access_token.expose_secret(), tokens.refresh_token.expose_secret()] {
        assert!(!everything.contains(secret), "a token in plaintext among:\n{everything}");
    }
    assert!(everything.contains(ada.as_str()), "the scan saw the records");

    let csrf = attribute_after(&page, "name=\"csrf\"", "value");
    let unlinked = browser.post_form(&app.url("/account/unlink"), &[("csrf", &csrf)]).await;
    assert_eq!(unlinked.status(), 303);
    assert_eq!(location(&unlinked), "/");
    let home = browser.get(&app.url("/")).await.text().await.expect("home");
    assert!(home.contains("Dropbox is disconnected"), "{home}");
    assert!(app.store.tokens(&ada).await.expect("read").is_none());
    assert!(app.store.queued().await.expect("queue").is_empty());
    assert_eq!(app.dropbox.emulator.stats().total_calls("auth/token/revoke"), 1);
    assert_eq!(browser.get(&app.url("/account")).await.status(), 303, "signed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_at_dropbox_gets_a_friendly_page_that_offers_to_try_again() {
    let (app, _) = app_with_ada("declined").await;
    let mut browser = Browser::new();
    let callback = browser.go_to_dropbox_and(&app, "deny").await;
    let declined = browser.get(&callback).await;
    assert_eq!(declined.status(), 200);
    let page = declined.text().await.expect("page");
    assert!(
        page.contains("Dropbox is not connected") && page.contains("href=\"/login\""),
        "{page}"
    );
    assert!(app.store.queued().await.expect("queue").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_with_a_wrong_missing_or_reused_state_is_a_readable_400() {
    let (app, _) = app_with_ada("bad-state").await;
    let mut browser = Browser::new();
    let stranger = browser.get(&app.url("/oauth/callback?code=x&state=y")).await;
    assert_eq!(stranger.status(), 400, "no login in progress");
    assert!(stranger.text().await.expect("page").contains("This sign-in link has expired"));

    let callback = browser.go_to_dropbox_and(&app, "allow").await;
    let mut forged: Url = callback.parse().expect("url");
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            (k.to_string(), if k == "state" { "forged".to_owned() } else { v.to_string() })
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(browser.get(forged.as_str()).await.status(), 400, "wrong state");
    assert_eq!(browser.get(&callback).await.status(), 400, "the login was used up by the failure");

    let callback = browser.go_to_dropbox_and(&app, "allow").await;
    assert_eq!(browser.get(&callback).await.status(), 303);
    assert_eq!(browser.get(&callback).await.status(), 400, "reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_without_the_forms_csrf_token_is_refused() {
    let (app, ada) = app_with_ada("csrf").await;
    let mut browser = Browser::signed_in(&app).await;
    let refused = browser.post_form(&app.url("/account/unlink"), &[("csrf", "guess")]).await;
    assert_eq!(refused.status(), 403);
    assert!(app.store.tokens(&ada).await.expect("read").is_some(), "nothing deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_sends_strangers_home() {
    let (app, _) = app_with_ada("stranger").await;
    let account = Browser::new().get(&app.url("/account")).await;
    assert_eq!(account.status(), 303);
    assert_eq!(location(&account), "/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_are_served_with_a_cache_lifetime() {
    let (app, _) = app_with_ada("static").await;
    let mut browser = Browser::new();
    let css = browser.get(&app.url("/static/app.css")).await;
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    assert_eq!(browser.get(&app.url("/static/nope.js")).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_before_an_unlink_stays_signed_out_after_a_new_link() {
    let (app, _) = app_with_ada("stale-session").await;
    let mut first = Browser::new();
    let callback = first.go_to_dropbox_and(&app, "allow").await;
    assert_eq!(first.get(&callback).await.status(), 303);
    let stale_cookie = first.cookie.clone();
    let page = first.get(&app.url("/account")).await.text().await.expect("page");
    let csrf = attribute_after(&page, "name=\"csrf\"", "value");
    assert_eq!(
        first.post_form(&app.url("/account/unlink"), &[("csrf", &csrf)]).await.status(),
        303
    );

    let mut second = Browser::new();
    let callback = second.go_to_dropbox_and(&app, "allow").await;
    assert_eq!(second.get(&callback).await.status(), 303);
    assert_eq!(second.get(&app.url("/account")).await.status(), 200);

    let mut replay = Browser::new();
    replay.cookie = stale_cookie;
    assert_eq!(replay.get(&app.url("/account")).await.status(), 303, "the old session is out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_without_a_csrf_field_is_refused() {
    let (app, ada) = app_with_ada("no-csrf").await;
    let mut browser = Browser::signed_in(&app).await;
    assert_eq!(browser.post_form(&app.url("/account/unlink"), &[]).await.status(), 403);
    assert!(app.store.tokens(&ada).await.expect("read").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropbox_errors_and_incomplete_callbacks_are_readable_pages() {
    let (app, _) = app_with_ada("callback-errors").await;
    let mut browser = Browser::new();
    let cases = [
        ("error", "server_error", 400, "Dropbox did not connect"),
        ("neither", "", 400, "Dropbox did not connect"),
    ];
    for (kind, code, status, heading) in cases {
        let callback: Url = browser.go_to_dropbox_and(&app, "allow").await.parse().expect("url");
        let state =
            callback.query_pairs().find(|(k, _)| k == "state").expect("state").1.into_owned();
        let query = match kind {
            "error" => format!("state={state}&error={code}&error_description=x"),
            _ => format!("state={state}"),
        };
        let response = browser.get(&app.url(&format!("/oauth/callback?{query}"))).await;
        assert_eq!(response.status(), status, "{kind}");
        assert!(response.text().await.expect("page").contains(heading), "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_code_is_a_400_page_and_an_unreachable_dropbox_a_502_page() {
    use markdrop::emulator::FaultRule;
    let (app, ada) = app_with_ada("exchange-errors").await;
    let mut browser = Browser::new();
    let refusal =
        r#"{"error": "invalid_grant", "error_description": "code doesn't exist or has expired"}"#;
    app.dropbox.emulator.add_fault(FaultRule {
        content_type: "application/json".to_owned(),
        ..FaultRule::status("oauth2/token", 1, 400, refusal)
    });
    let callback = browser.go_to_dropbox_and(&app, "allow").await;
    let refused = browser.get(&callback).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.expect("page").contains("did not accept the sign-in"));

    app.dropbox.emulator.add_fault(FaultRule::status("users/get_current_account", 10, 503, "busy"));
    let callback = browser.go_to_dropbox_and(&app, "allow").await;
    let unreachable = browser.get(&callback).await;
    assert_eq!(unreachable.status(), 502);
    assert!(unreachable.text().await.expect("page").contains("Dropbox did not answer"));
    assert!(app.store.tokens(&ada).await.expect("read").is_none(), "nothing half-linked");
    assert_eq!(
        app.dropbox.emulator.stats().total_calls("auth/token/revoke"),
        1,
        "the unused grant was given back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_session_cookie_is_host_only_and_secure_and_hsts_is_sent() {
    let app = TestApp::builder("https")
        .with_settings(|settings| {
            settings.base_url = "https://markdrop.example".parse().expect("url")
        })
        .start()
        .await;
    let home = Browser::new().get(&app.url("/")).await;
    let cookie = home.headers()[SET_COOKIE].to_str().expect("ascii").to_owned();
    assert!(
        cookie.starts_with("__Host-markdrop_session=") && cookie.contains("Secure"),
        "{cookie}"
    );
    assert!(home.headers()["strict-transport-security"].to_str().unwrap().contains("max-age"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_shows_the_sync_state_last_pass_and_recent_conversions() {
    use markdrop::store::{AccountStatus, Conversion, KeptPage, Outcome, RetryingNote, SyncState};
    let (app, _) = app_with_ada("status").await;
    let mut browser = Browser::signed_in(&app).await;
    let page = browser.get(&app.url("/account")).await.text().await.expect("page");
    assert!(page.contains("Waiting for the first sync.") && page.contains("Not yet"), "{page}");

    // What the worker records after a pass.
    let mut status = AccountStatus {
        state: SyncState::Failing { message: "Dropbox is not answering".to_owned() },
        last_pass_at: Some(1_795_775_460),
        ..AccountStatus::default()
    };
    status.kept.insert(
        "/q3.md".into(),
        KeptPage { html: "/Reports/Q3 <final>.html".into(), since: 1_795_775_400 },
    );
    status.retrying.insert(
        "/stuck.md".into(),
        RetryingNote {
            markdown: "/Stuck.md".into(),
            reason: "Dropbox had a server error (503)".into(),
            attempts: 2,
            next_at_ms: 1_795_775_520_000,
            removal: false,
        },
    );
    status.record(Conversion {
        path: "/Notes/Café <plan>.md".into(),
        at: 1_795_775_400,
        outcome: Outcome::Converted,
    });
    status.record(Conversion {
        path: "/Big.md".into(),
        at: 1_795_775_460,
        outcome: Outcome::Skipped { reason: "larger than 10 MiB".into() },
    });
    // Recorded as the worker does: under the lease of a claim.
    let claim = claim(&app.store).await;
    app.store.commit(&claim.lease, &Default::default(), None, Some(&status)).await.expect("save");

    let page = browser.get(&app.url("/account")).await.text().await.expect("page");
    assert!(page.contains("Syncing keeps failing: Dropbox is not answering."), "{page}");
    assert!(page.contains("2026-11-27 10:31 UTC"));
    assert!(
        page.contains(
            "<td>/Notes/Café &#60;plan&#62;.md</td><td>2026-11-27 10:30 UTC</td><td>converted</td>"
        ),
        "{page}"
    );
    assert!(
        page.contains("<code>/Reports/Q3 &#60;final&#62;.html</code> (since 2026-11-27 10:30 UTC): rename or delete\n  <code>Q3 &#60;final&#62;.html</code> and markdrop writes it again."),
        "the person's page and the way out: {page}"
    );
    assert!(
        page.contains("<td>/Stuck.md</td><td>Dropbox had a server error (503)</td><td>2026-11-27 10:32 UTC</td>"),
        "the note waiting for a retry: {page}"
    );
    let big = page.find("/Big.md").expect("the newest row");
    assert!(big < page.find("Café").expect("the older row"), "newest first");

    // A completed pass with a note waiting: nothing else to do, but not quite up to date.
    let idle = AccountStatus { state: SyncState::Idle, ..status.clone() };
    app.store.complete(&claim.lease, claim.generation, &idle, Some(u64::MAX)).await.expect("done");
    let page = browser.get(&app.url("/account")).await.text().await.expect("page");
    assert!(
        page.contains("Up to date, except one note waiting to be tried again (below)."),
        "{page}"
    );

    app.store.enqueue(std::slice::from_ref(claim.lease.account())).await.expect("queue");
    let claim = crate::support::store::claim(&app.store).await;
    let unlinked = AccountStatus { state: SyncState::Unlinked, ..status };
    assert!(app.store.unlink(&claim.lease, &claim.sealed_tokens, &unlinked).await.expect("unlink"));
    let page = browser.get(&app.url("/account")).await.text().await.expect("page");
    assert!(
        page.contains("Not connected") && page.contains("href=\"/login\">Connect again"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_page_is_a_readable_404() {
    let (app, _) = app_with_ada("not-found").await;
    let response = Browser::new().get(&app.url("/nope")).await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.expect("page").contains("Page not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_while_dropbox_is_down_still_forgets_and_says_what_to_do() {
    use markdrop::emulator::FaultRule;
    let (app, ada) = app_with_ada("revoke-down").await;
    let mut browser = Browser::signed_in(&app).await;
    let csrf = browser.csrf_token(&app).await;
    app.dropbox.emulator.add_fault(FaultRule::status("auth/token/revoke", 10, 503, "down"));
    assert_eq!(
        browser.post_form(&app.url("/account/unlink"), &[("csrf", &csrf)]).await.status(),
        303
    );
    let home = browser.get(&app.url("/")).await.text().await.expect("home");
    assert!(home.contains("could not reach Dropbox") && home.contains("Connected apps"), "{home}");
    assert!(app.store.tokens(&ada).await.expect("read").is_none());
}
