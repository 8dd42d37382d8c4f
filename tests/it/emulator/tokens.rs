//! Access tokens as Dropbox treats them: refused when absent, malformed, unknown, expired or
//! revoked; limited to their scopes; expiring after their lifetime; and revoked together with
//! their refresh token and every token minted from it.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{REDIRECT_URI, TestDropbox, content_type};
use crate::support::{APP_KEY, APP_SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_are_absent_malformed_unknown_expired_or_revoked_are_refused_like_dropbox() {
    let dropbox = TestDropbox::start().await;
    let call = |authorization: Option<String>| {
        let mut request = dropbox.http.post(dropbox.url("2/users/get_current_account"));
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        request.send()
    };
    let response = call(None).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response =
        call(Some(format!("Bearer {}", dropbox.account.refresh_token))).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.text().await.expect("text"),
        "Error in call to API function \"users/get_current_account\": The given OAuth 2 access token is malformed."
    );
    let unauthorized =
        |tag: &str| json!({"error_summary": format!("{tag}/.."), "error": {".tag": tag}});
    let response = call(Some("Bearer sl.nobody-issued-this".to_owned())).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(content_type(&response), "application/json");
    assert_eq!(response.json::<Value>().await.expect("JSON"), unauthorized("invalid_access_token"));

    dropbox.emulator().expire_access_tokens(dropbox.id());
    let response = call(Some(format!("Bearer {}", dropbox.token()))).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.expect("JSON"), unauthorized("expired_access_token"));
    let refreshed = dropbox.refresh_with(&dropbox.account.refresh_token, Some(APP_SECRET)).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let fresh: Value = refreshed.json().await.expect("JSON");
    let fresh_token = fresh["access_token"].as_str().expect("a token").to_owned();
    let response = call(Some(format!("Bearer {fresh_token}"))).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::OK);

    dropbox.emulator().revoke_tokens(dropbox.id());
    let response = call(Some(format!("Bearer {fresh_token}"))).await.expect("an answer");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.expect("JSON"), unauthorized("invalid_access_token"));
    let refused = dropbox.refresh_with(&dropbox.account.refresh_token, Some(APP_SECRET)).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json::<Value>().await.expect("JSON"),
        json!({"error": "invalid_grant", "error_description": "refresh token is invalid or revoked"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_a_routes_scope_gets_missing_scope_with_the_scope_it_needs() {
    let dropbox = TestDropbox::start().await;
    let code = dropbox.authorize(&[("scope", "files.metadata.read")]).await;
    let response = dropbox
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", APP_KEY),
            ("client_secret", APP_SECRET),
        ])
        .await;
    let tokens: Value = response.json().await.expect("JSON");
    assert_eq!(tokens["scope"], "files.metadata.read");
    let token = tokens["access_token"].as_str().expect("a token");
    assert_eq!(
        dropbox.rpc("files/list_folder", token, json!({"path": ""})).await.status(),
        StatusCode::OK
    );
    let response = dropbox.upload(token, json!({"path": "/x.md"}), b"x").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({"error_summary": "missing_scope/..",
               "error": {".tag": "missing_scope", "required_scope": "files.content.write"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_expire_after_the_configured_lifetime() {
    let dropbox =
        TestDropbox::start_with(|config| config.access_token_lifetime = Duration::ZERO).await;
    let response = dropbox.rpc("files/list_folder", dropbox.token(), json!({"path": ""})).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.expect("JSON")["error"][".tag"],
        "expired_access_token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_kills_its_refresh_token_and_every_token_minted_from_it() {
    let dropbox = TestDropbox::start().await;
    let refresh =
        || async { dropbox.refresh_with(&dropbox.account.refresh_token, Some(APP_SECRET)).await };
    let refreshed: Value = refresh().await.json().await.expect("JSON");
    let minted = refreshed["access_token"].as_str().expect("a second token").to_owned();
    assert_ne!(minted, dropbox.token());
    let before = dropbox.rpc("files/list_folder", &minted, json!({"path": ""})).await;
    assert_eq!(before.status(), StatusCode::OK, "the minted token works until the revoke");

    let revoke = dropbox
        .http
        .post(dropbox.url("2/auth/token/revoke"))
        .bearer_auth(dropbox.token())
        .header("Content-Type", "application/json")
        .body("null")
        .send()
        .await
        .expect("an answer");
    assert_eq!(revoke.status(), StatusCode::OK);
    assert_eq!(revoke.text().await.expect("a body"), "null");
    let invalid = json!({"error_summary": "invalid_access_token/..",
                         "error": {".tag": "invalid_access_token"}});
    for token in [dropbox.token(), minted.as_str()] {
        let after = dropbox.rpc("files/list_folder", token, json!({"path": ""})).await;
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(after.json::<Value>().await.expect("JSON"), invalid);
    }
    let refused = refresh().await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(refused.json::<Value>().await.expect("JSON")["error"], "invalid_grant");
}
