//! OAuth as Dropbox runs it: PKCE and secret flows, client credentials in the body or by HTTP
//! Basic, registered redirect URIs, one-time codes, and the consent page's Allow and Deny.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{REDIRECT_URI, TestDropbox, content_type, redirect_params};
use crate::support::emulator::{form_field, owner_cookie};
use crate::support::{APP_KEY, APP_SECRET};

fn pkce_pair() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra".to_owned();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pkce_code_exchange_needs_no_secret_and_its_refresh_needs_only_the_client_id() {
    let dropbox = TestDropbox::start().await;
    let (verifier, challenge) = pkce_pair();
    let code = dropbox
        .authorize(&[("code_challenge", &challenge), ("code_challenge_method", "S256")])
        .await;
    let response = dropbox
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", APP_KEY),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/json");
    let tokens: Value = response.json().await.expect("JSON");
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 14400);
    assert_eq!(tokens["account_id"], dropbox.id());
    assert!(tokens["uid"].as_str().is_some_and(|uid| uid.parse::<u64>().is_ok()));
    assert_eq!(
        tokens["scope"],
        "account_info.read files.content.read files.content.write files.metadata.read"
    );
    let access = tokens["access_token"].as_str().expect("an access token");
    assert!(access.starts_with("sl."));
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let whoami = dropbox.rpc("users/get_current_account", access, Value::Null).await;
    assert_eq!(whoami.status(), StatusCode::OK);

    let refreshed = dropbox.refresh_with(refresh, None).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.expect("JSON");
    assert!(
        refreshed["access_token"].as_str().is_some_and(|t| t.starts_with("sl.") && t != access)
    );
    assert_eq!(refreshed["expires_in"], 14400);
    assert!(refreshed.get("refresh_token").is_none(), "refresh tokens do not rotate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_flow_grant_needs_the_secret_again_to_refresh() {
    let dropbox = TestDropbox::start().await;
    let code = dropbox.authorize(&[]).await;
    // Client credentials by HTTP Basic, parameters in the query string (the JS SDK's way).
    let response = dropbox
        .http
        .post(dropbox.url("oauth2/token"))
        .header(
            "Authorization",
            format!("Basic {}", STANDARD.encode(format!("{APP_KEY}:{APP_SECRET}"))),
        )
        .query(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
        ])
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.expect("JSON");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");

    let without_secret = dropbox.refresh_with(refresh, None).await;
    assert_eq!(without_secret.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        without_secret.json::<Value>().await.expect("JSON"),
        json!({"error": "invalid_request", "error_description": "No auth function available for given request"})
    );
    let wrong_secret = dropbox.refresh_with(refresh, Some("not-the-secret")).await;
    assert_eq!(wrong_secret.status(), StatusCode::BAD_REQUEST);
    assert_eq!(wrong_secret.json::<Value>().await.expect("JSON")["error"], "invalid_client");
    let with_secret = dropbox.refresh_with(refresh, Some(APP_SECRET)).await;
    assert_eq!(with_secret.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_are_form_decoded_so_a_secret_may_hold_plus_space_colon_and_at() {
    const AWKWARD_SECRET: &str = "s3c+r t:x@y";
    let dropbox =
        TestDropbox::start_with(|config| config.app_secret = AWKWARD_SECRET.to_owned()).await;
    let refresh =
        [("grant_type", "refresh_token"), ("refresh_token", &dropbox.account.refresh_token)];
    let with_basic = |id: &str, secret: &str| {
        dropbox
            .http
            .post(dropbox.url("oauth2/token"))
            .header("Authorization", format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))))
            .form(&refresh)
            .send()
    };
    // RFC 6749 §2.3.1: each part form-urlencoded before base64, as the oauth2 crate sends it.
    let form_encoded =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let encoded =
        with_basic(&form_encoded(APP_KEY), &form_encoded(AWKWARD_SECRET)).await.expect("an answer");
    assert_eq!(encoded.status(), StatusCode::OK);
    assert!(encoded.json::<Value>().await.expect("JSON")["access_token"].is_string());

    // Sent raw, the `+` reads as a space: the secret no longer matches.
    let raw = with_basic(APP_KEY, AWKWARD_SECRET).await.expect("an answer");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert_eq!(raw.json::<Value>().await.expect("JSON")["error"], "invalid_client");

    let in_form = dropbox.refresh_with(&dropbox.account.refresh_token, Some(AWKWARD_SECRET)).await;
    assert_eq!(in_form.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect() {
    let dropbox = TestDropbox::start_with(|config| {
        config.redirect_uris = vec![url::Url::parse(REDIRECT_URI).expect("a URL")];
    })
    .await;
    assert!(!dropbox.authorize(&[]).await.is_empty(), "the registered URI is redirected to");
    let response = dropbox
        .http
        .get(dropbox.url("oauth2/authorize"))
        .query(&[
            ("client_id", APP_KEY),
            ("response_type", "code"),
            ("redirect_uri", "http://localhost:5000/oauth/elsewhere"),
            ("state", "csrf-123"),
        ])
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    assert!(content_type(&response).starts_with("text/html"));
    let html = response.text().await.expect("HTML");
    assert!(html.contains("Invalid redirect_uri"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_one_time_and_bound_to_their_redirect_uri_and_verifier() {
    let dropbox = TestDropbox::start().await;
    let (verifier, challenge) = pkce_pair();
    let pkce = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")];
    let invalid_grant =
        |description: &str| json!({"error": "invalid_grant", "error_description": description});

    let code = dropbox.authorize(&pkce).await;
    let exchange = |code: String, redirect: &'static str, verifier: String| {
        let dropbox = &dropbox;
        async move {
            dropbox
                .token_request(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("client_id", APP_KEY),
                    ("code_verifier", &verifier),
                ])
                .await
        }
    };
    let first = exchange(code.clone(), REDIRECT_URI, verifier.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = exchange(code, REDIRECT_URI, verifier.clone()).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        again.json::<Value>().await.expect("JSON"),
        invalid_grant("code doesn't exist or has expired")
    );

    let code = dropbox.authorize(&pkce).await;
    let elsewhere = exchange(code, "http://localhost:5000/elsewhere", verifier.clone()).await;
    assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);
    assert_eq!(elsewhere.json::<Value>().await.expect("JSON")["error"], "invalid_grant");

    let code = dropbox.authorize(&pkce).await;
    let wrong = exchange(code, REDIRECT_URI, "x".repeat(50)).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(wrong.json::<Value>().await.expect("JSON")["error"], "invalid_grant");

    let unknown = dropbox
        .token_request(&[
            ("grant_type", "password"),
            ("client_id", APP_KEY),
            ("client_secret", APP_SECRET),
        ])
        .await;
    assert_eq!(unknown.json::<Value>().await.expect("JSON")["error"], "unsupported_grant_type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_page_offers_allow_and_deny_and_each_redirects_with_the_state() {
    let dropbox = TestDropbox::start_with(|config| config.auto_approve = false).await;
    dropbox.emulator().sign_in(dropbox.id());
    let owner = owner_cookie(&dropbox.running).await;
    let consent = |state: &'static str| {
        dropbox
            .http
            .get(dropbox.url("oauth2/authorize"))
            .header(reqwest::header::COOKIE, &owner)
            .query(&[
                ("client_id", APP_KEY),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT_URI),
                ("state", state),
                ("token_access_type", "offline"),
            ])
            .send()
    };
    let page = consent("deny-me").await.expect("an answer");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(content_type(&page).starts_with("text/html"));
    let html = page.text().await.expect("HTML");
    assert!(
        html.contains("Ada Lovelace") && html.contains("Allow") && html.contains("Deny"),
        "{html}"
    );
    let request_id = form_field(&html, "request");
    let denied = dropbox
        .http
        .post(dropbox.url("oauth2/authorize/decision"))
        .form(&[("request", request_id.as_str()), ("decision", "deny")])
        .send()
        .await
        .expect("an answer");
    assert_eq!(denied.status(), StatusCode::FOUND);
    let params = redirect_params(denied.headers());
    assert_eq!(params.get("error").map(String::as_str), Some("access_denied"));
    assert!(params.contains_key("error_description"));
    assert_eq!(params.get("state").map(String::as_str), Some("deny-me"));
    assert!(!params.contains_key("code"));

    let html = consent("allow-me").await.expect("an answer").text().await.expect("HTML");
    let allowed = dropbox
        .http
        .post(dropbox.url("oauth2/authorize/decision"))
        .header(reqwest::header::COOKIE, &owner)
        .form(&[
            ("request", form_field(&html, "request").as_str()),
            ("page_token", &form_field(&html, "page_token")),
            ("decision", "allow"),
        ])
        .send()
        .await
        .expect("an answer");
    let params = redirect_params(allowed.headers());
    assert_eq!(params.get("state").map(String::as_str), Some("allow-me"));
    let code = params.get("code").expect("a code");
    let exchanged = dropbox
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", APP_KEY),
            ("client_secret", APP_SECRET),
        ])
        .await;
    assert_eq!(exchanged.status(), StatusCode::OK);
}
