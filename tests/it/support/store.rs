//! Stores for the tests: the Redis `scripts/test` starts, either backend under a name of the
//! test's own, and running a test on both. Every store a test opens is opened here, so a change
//! to how a store opens is a change to this file alone.

use std::path::Path;
use std::time::Duration;

use markdrop::config::StoreSettings;
use markdrop::store::{Claim, ClaimOutcome, Store};

use super::{SECRET_KEY, scratch_dir, unique_prefix, unique_suffix};

/// The Redis that `scripts/test` starts for the tests.
pub fn redis_url() -> String {
    std::env::var("MARKDROP_TEST_REDIS_URL").expect(
        "MARKDROP_TEST_REDIS_URL is not set: run the tests with scripts/test, which starts Redis",
    )
}

/// The shard markdrop keeps `account` in under the default `REDIS_SHARDS`, worked out here
/// from the documented layout (FNV-1a of the id, modulo 1,024) rather than asked of markdrop,
/// so the tests that read raw keys hold the layout to its word.
pub fn shard_of(account: &str) -> u64 {
    let hash = account.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    hash % 1024
}

/// A key of the shard `account` is in, with one field per account: `tokens`, `cursors`,
/// `ready`…
pub fn shard_key(prefix: &str, account: &str, name: &str) -> String {
    format!("{prefix}{{s{}}}:{name}", shard_of(account))
}

/// A key of `account`'s own: `gen`, `lease`, `files`, `notes`…
pub fn account_key(prefix: &str, account: &str, name: &str) -> String {
    format!("{prefix}{{s{}}}:{name}:{account}", shard_of(account))
}

/// A store on the Redis at `url`, its keys under `prefix`, sealing with `secret_key`.
pub fn open_redis(url: &str, prefix: &str, secret_key: &str) -> Store {
    let store = Store::open(&StoreSettings::redis(url, prefix), &secret_key.to_owned().into());
    store.unwrap_or_else(|error| panic!("a store on {url}: {error}"))
}

/// A store on the Redis Cluster reached through the comma-separated `nodes`, its keys under
/// `prefix`, sealing with `secret_key`.
pub fn open_redis_cluster(nodes: &str, prefix: &str, secret_key: &str) -> Store {
    let settings = StoreSettings::redis_cluster(nodes, prefix);
    let store = Store::open(&settings, &secret_key.to_owned().into());
    store.unwrap_or_else(|error| panic!("a store on the cluster: {error}"))
}

/// An embedded store in `dir`, sealing with `secret_key`.
pub fn open_embedded(dir: &Path, secret_key: &str) -> Store {
    let store = Store::open(&StoreSettings::embedded(dir), &secret_key.to_owned().into());
    store.unwrap_or_else(|error| panic!("a store in {}: {error}", dir.display()))
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// The Redis `scripts/test` starts, under a key prefix of the test's own.
    Redis,
    /// A redb file in a scratch folder of the test's own.
    Embedded,
}

impl Backend {
    /// A fresh, empty store on this backend, sealing with the tests' `SECRET_KEY`.
    pub fn store(self, test: &str) -> Store {
        self.store_with_key(test, SECRET_KEY)
    }

    pub fn store_with_key(self, test: &str, secret_key: &str) -> Store {
        match self {
            Backend::Redis => open_redis(&redis_url(), &unique_prefix(test), secret_key),
            Backend::Embedded => {
                let dir = scratch_dir(&format!("{test}-{}", unique_suffix()));
                open_embedded(&dir, secret_key)
            }
        }
    }
}

/// Claims the first due account as a worker would, failing the test if none is due.
pub async fn claim(store: &Store) -> Claim {
    match store.claim(Duration::from_secs(30)).await.expect("claim") {
        ClaimOutcome::Claimed(claim) => *claim,
        ClaimOutcome::NothingDue { .. } => panic!("no account is due"),
    }
}

/// Runs each named `async fn(Backend)` of the calling module as a test on both backends:
/// `<module>::redis::<name>` and `<module>::embedded::<name>`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::store::Backend::Redis).await
                }
            )*
        }
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::store::Backend::Embedded).await
                }
            )*
        }
    };
}
