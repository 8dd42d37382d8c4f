//! Whatever arrives from outside gets a clear 4xx, never a 5xx or a panic: arbitrary bodies and
//! headers on `/webhook`, arbitrary query strings on `/oauth/callback` (property tests against
//! the real app on a real Redis).

use std::sync::OnceLock;

use proptest::prelude::*;

use crate::support::app::TestApp;
use crate::support::webhooks::sign;

/// One app for every case: a runtime of its own that outlives each case.
fn app() -> &'static (tokio::runtime::Runtime, TestApp) {
    static APP: OnceLock<(tokio::runtime::Runtime, TestApp)> = OnceLock::new();
    APP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let app = runtime.block_on(TestApp::start("bad-input"));
        (runtime, app)
    })
}

/// A body: raw bytes, or text that looks like a notification more or less.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..1024),
        "\\PC{0,300}".prop_map(String::into_bytes),
        (proptest::collection::vec("[ -~]{0,60}", 0..5), any::<bool>()).prop_map(|(ids, delta)| {
            let ids: Vec<String> = ids.iter().map(|id| serde_json::json!(id).to_string()).collect();
            let users = if delta { r#", "delta": {"users": [1, "x", null]}"# } else { "" };
            format!(r#"{{"list_folder": {{"accounts": [{}]}}{users}}}"#, ids.join(", "))
                .into_bytes()
        }),
    ]
}

#[derive(Debug, Clone)]
enum Signature {
    Missing,
    Valid,
    ValidUppercase,
    Other(String),
}

fn signature() -> impl Strategy<Value = Signature> {
    prop_oneof![
        Just(Signature::Missing),
        Just(Signature::Valid),
        Just(Signature::ValidUppercase),
        "[ -~]{0,130}".prop_map(Signature::Other),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_webhook_answers_any_body_and_headers_with_200_or_a_clear_4xx(
        body in body(),
        signature in signature(),
        content_type in "[ -~]{0,40}",
        extra in proptest::collection::vec(("x-[a-z]{1,10}", "[ -~]{0,40}"), 0..4),
    ) {
        let (runtime, app) = app();
        let status = runtime.block_on(async {
            let mut request = app
                .http
                .post(app.url("/webhook"))
                .header("Content-Type", content_type.trim())
                .body(body.clone());
            let value = match &signature {
                Signature::Missing => None,
                Signature::Valid => Some(sign(&body)),
                Signature::ValidUppercase => Some(sign(&body).to_uppercase()),
                Signature::Other(other) => Some(other.trim().to_owned()),
            };
            if let Some(value) = value {
                request = request.header("X-Dropbox-Signature", value);
            }
            for (name, value) in &extra {
                request = request.header(name.as_str(), value.trim());
            }
            request.send().await.expect("an answer").status().as_u16()
        });
        prop_assert!([200, 400, 403, 413].contains(&status), "status {status}");
        if !matches!(signature, Signature::Valid | Signature::ValidUppercase) {
            prop_assert_eq!(status, 403, "unsigned or wrongly signed is forged");
        }
    }

    #[test]
    fn the_oauth_callback_answers_any_query_string_with_a_readable_400(
        pairs in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,40}"), 0..6),
        raw in "[ -~&&[^#]]{0,60}",
        use_raw in any::<bool>(),
    ) {
        let (runtime, app) = app();
        let query = if use_raw {
            raw.replace(' ', "%20")
        } else {
            let mut url = url::Url::parse("http://x/").expect("url");
            url.query_pairs_mut().extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            url.query().unwrap_or_default().to_owned()
        };
        let (status, content_type) = runtime.block_on(async {
            let response = app
                .http
                .get(app.url(&format!("/oauth/callback?{query}")))
                .send()
                .await
                .expect("an answer");
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            (response.status().as_u16(), content_type)
        });
        // No session, so no state can match: every query is refused before Dropbox is asked.
        prop_assert_eq!(status, 400, "query {}", query);
        prop_assert!(content_type.starts_with("text/html"), "a page: {}", content_type);
    }
}
