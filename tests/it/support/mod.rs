//! What the black-box tests share, one place for each thing:
//!
//! - [`app`]: [`app::TestApp`], the real markdrop on loopback (web app, emulator, workers),
//!   with a builder for the few ways a test wants it different;
//! - [`wait`]: [`wait::eventually`], the one way to wait for a condition;
//! - [`webhooks`]: notifications as Dropbox sends them, signed with the app secret;
//! - [`store`]: the tests' Redis, a store on either backend (the only place a store is
//!   opened), and running a test on both;
//! - [`redis`]: a Redis of a test's own, to stop, restart or speak TLS;
//! - [`processes`]: `markdrop` as a child process, signals, and its log;
//! - [`emulator`]: driving the emulator as its users do (control secret, owner's browser, a
//!   write held open).

pub mod app;
pub mod emulator;
pub mod processes;
pub mod redis;
pub mod store;
pub mod wait;
pub mod webhooks;

use std::path::PathBuf;

/// The Dropbox app markdrop is under test: the emulator and every markdrop agree on it.
pub const APP_KEY: &str = "test-app-key";
pub const APP_SECRET: &str = "test-app-secret";

/// The `SECRET_KEY` every markdrop under test seals its records with.
pub const SECRET_KEY: &str = "0123456789abcdef0123456789abcdef";

/// Two well-formed account ids for tests that need no real account behind them.
pub const ALICE: &str = "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc";
pub const BOB: &str = "dbid:AABob000000000000000000000000000000000";

/// An empty directory of the test's own under the system temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("markdrop-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// A key prefix no other test (or earlier run) uses, so tests share one Redis safely.
pub fn unique_prefix(test: &str) -> String {
    format!("test:{test}:{}:{}:", std::process::id(), unique_suffix())
}

/// Nanoseconds of the current second: enough to tell apart two runs of one test.
pub fn unique_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos())
}
