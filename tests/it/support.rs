//! Helpers every test file shares.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen in well under a second.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// An empty directory of the test's own under the system temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("markdrop-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// Polls `condition` until it holds, failing the test with `what` after [`DEADLINE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Redis that `scripts/test` starts for the tests.
pub fn redis_url() -> String {
    std::env::var("MARKDROP_TEST_REDIS_URL").expect(
        "MARKDROP_TEST_REDIS_URL is not set: run the tests with scripts/test, which starts Redis",
    )
}

/// A key prefix no other test (or earlier run) uses, so tests share one Redis safely.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("test:{test}:{}:{nanos}:", std::process::id())
}

/// Valid settings for the web app under test: bound to 127.0.0.1 on a free port, talking to
/// `dropbox` (the emulator's URL) when given.
pub fn web_settings(app_secret: &str, dropbox: Option<&url::Url>) -> markdrop::config::Settings {
    let dropbox = dropbox.map(url::Url::to_string);
    let mut vars = vec![
        ("DROPBOX_APP_KEY", "test-app-key".to_owned()),
        ("DROPBOX_APP_SECRET", app_secret.to_owned()),
        ("SECRET_KEY", "0123456789abcdef0123456789abcdef".to_owned()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("BASE_URL", "http://markdrop.test".to_owned()),
    ];
    if let Some(url) = dropbox {
        for var in ["DROPBOX_API_URL", "DROPBOX_CONTENT_URL", "DROPBOX_WEB_URL"] {
            vars.push((var, url.clone()));
        }
    }
    markdrop::config::Settings::from_lookup(|name| {
        vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .expect("valid settings")
}

/// Starts the real web app with `settings` on a store under `prefix` in the Redis at
/// `redis_url`; returns its base address and the store it uses.
pub fn spawn_app(
    settings: &markdrop::config::Settings,
    redis_url: &str,
    prefix: &str,
) -> (String, markdrop::store::Store) {
    use markdrop::store::{RedisStore, Store, TokenSealer};
    let sealer = TokenSealer::new(&settings.secret_key);
    let store =
        Store::Redis(RedisStore::new(&redis_url.to_owned().into(), prefix, sealer).expect("store"));
    let app = markdrop::web::Application::build(settings, store.clone()).expect("build the app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    (address, store)
}

/// Claims the first due account as a worker would, failing the test if none is due.
pub async fn claim(store: &markdrop::store::Store) -> markdrop::store::Claim {
    use markdrop::store::ClaimOutcome;
    match store.claim(Duration::from_secs(30)).await.expect("claim") {
        ClaimOutcome::Claimed(claim) => *claim,
        ClaimOutcome::NothingDue { .. } => panic!("no account is due"),
    }
}
