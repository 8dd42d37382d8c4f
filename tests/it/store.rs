//! The store contract on a real Redis (the embedded backend joins with the single-machine work).

use std::time::{Duration, SystemTime};

use markdrop::dropbox::{AccountId, AccountTokens};
use markdrop::store::Store;
use redis::AsyncCommands;
use secrecy::ExposeSecret;

use crate::support::redis::PrivateRedis;
use crate::support::store::{
    account_key, claim, open_redis, open_redis_cluster, redis_cluster_url, redis_url, shard_key,
};
use crate::support::{ALICE, BOB, SECRET_KEY, unique_prefix};

fn store(prefix: &str, secret_key: &str) -> Store {
    open_redis(&redis_url(), prefix, secret_key)
}

fn tokens(tag: &str) -> AccountTokens {
    AccountTokens {
        access_token: format!("sl.access-{tag}").into(),
        refresh_token: format!("refresh-{tag}").into(),
        expires_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000)),
        path_root: None,
    }
}

async fn raw() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis_url()).expect("client");
    client.get_multiplexed_async_connection().await.expect("connect")
}

fn account(id: &str) -> AccountId {
    AccountId::parse(id).expect("an account id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_kept_sealed_and_read_back_whole() {
    let prefix = unique_prefix("store-tokens");
    let store = store(&prefix, SECRET_KEY);
    store.save_tokens(&account(ALICE), &tokens("alice")).await.expect("save");
    let read = store.tokens(&account(ALICE)).await.expect("read").expect("linked");
    assert_eq!(read.access_token.expose_secret(), "sl.access-alice");
    assert_eq!(read.refresh_token.expose_secret(), "refresh-alice");
    assert_eq!(read.expires_at, tokens("alice").expires_at);
    assert!(store.tokens(&account(BOB)).await.expect("read").is_none());

    let stored: String =
        raw().await.hget(shard_key(&prefix, ALICE, "tokens"), ALICE).await.expect("raw");
    assert!(!stored.contains("alice"), "no token in plaintext: {stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_sealed_under_another_secret_key_reads_as_not_linked() {
    let prefix = unique_prefix("store-rekeyed");
    store(&prefix, SECRET_KEY).save_tokens(&account(ALICE), &tokens("a")).await.expect("save");
    let rekeyed = store(&prefix, "a-different-secret-key-32-characters");
    assert!(rekeyed.tokens(&account(ALICE)).await.expect("read").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_an_account_deletes_everything_kept_for_it_and_nothing_else() {
    let prefix = unique_prefix("store-forget");
    let store = store(&prefix, SECRET_KEY);
    for id in [ALICE, BOB] {
        store.save_tokens(&account(id), &tokens(id)).await.expect("save");
    }
    store.enqueue(&[account(ALICE), account(BOB)]).await.expect("enqueue");
    let mut redis = raw().await;
    let _: () =
        redis.hset(shard_key(&prefix, ALICE, "cursors"), ALICE, "cursor").await.expect("cursor");
    let _: () = redis.set(account_key(&prefix, ALICE, "lease"), "worker").await.expect("lease");

    store.forget_account(&account(ALICE)).await.expect("forget");

    assert!(store.tokens(&account(ALICE)).await.expect("read").is_none());
    assert!(store.tokens(&account(BOB)).await.expect("read").is_some());
    assert_eq!(store.queued().await.expect("queue"), [account(BOB)]);
    let cursor: Option<String> =
        redis.hget(shard_key(&prefix, ALICE, "cursors"), ALICE).await.expect("hget");
    assert_eq!(cursor, None);
    for key in [account_key(&prefix, ALICE, "lease"), account_key(&prefix, ALICE, "gen")] {
        let exists: bool = redis.exists(&key).await.expect("exists");
        assert!(!exists, "{key} is gone");
    }
    let bob_generation: bool =
        redis.exists(account_key(&prefix, BOB, "gen")).await.expect("exists");
    assert!(bob_generation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_round_trips_and_goes_with_its_account() {
    use markdrop::store::{AccountStatus, Conversion, Outcome, SyncState};
    let prefix = unique_prefix("store-status");
    let store = store(&prefix, SECRET_KEY);
    assert_eq!(store.status(&account(ALICE)).await.expect("read"), None);
    let mut status = AccountStatus {
        state: SyncState::RateLimited { until: 99 },
        last_pass_at: Some(42),
        ..AccountStatus::default()
    };
    status.record(Conversion { path: "/ünïcode.md".into(), at: 42, outcome: Outcome::Removed });
    store.save_tokens(&account(ALICE), &tokens("a")).await.expect("link");
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    let claim = claim(&store).await;
    store.commit(&claim.lease, &Default::default(), None, Some(&status)).await.expect("save");
    assert_eq!(store.status(&account(ALICE)).await.expect("read"), Some(status));
    store.forget_account(&account(ALICE)).await.expect("forget");
    assert_eq!(store.status(&account(ALICE)).await.expect("read"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_records_are_json_by_path_and_one_that_does_not_parse_is_left_out() {
    use markdrop::store::{RecordChanges, SettingsRecord};
    let prefix = unique_prefix("store-settings");
    let store = store(&prefix, SECRET_KEY);
    store.save_tokens(&account(ALICE), &tokens("a")).await.expect("link");
    store.enqueue(&[account(ALICE)]).await.expect("enqueue");
    let claim = claim(&store).await;
    let record = SettingsRecord {
        path: "/Blog/markdrop.toml".into(),
        hash: "h".into(),
        text: None,
        stylesheet: None,
        problem: Some("not TOML".into()),
    };
    let mut changes = RecordChanges::default();
    changes.settings.insert("/blog/markdrop.toml".into(), Some(record.clone()));
    store.commit(&claim.lease, &changes, None, None).await.expect("commit");

    let key = account_key(&prefix, ALICE, "settings");
    let mut redis = raw().await;
    let stored: String = redis.hget(&key, "/blog/markdrop.toml").await.expect("raw");
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("JSON");
    assert_eq!(stored["path"], "/Blog/markdrop.toml");
    // Written by another version, say: read as if never read, not as an outage.
    let _: () = redis.hset(&key, "/old/markdrop.toml", "{not json").await.expect("hset");
    let found = store.settings_files(&account(ALICE)).await.expect("read");
    assert_eq!(found, [("/blog/markdrop.toml".to_owned(), record)].into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_redis_with_a_self_signed_certificate_works_when_the_url_says_insecure() {
    let redis = PrivateRedis::start_tls("store-tls");
    let store = open_redis(&redis.url(), "tls:", SECRET_KEY);
    store.save_tokens(&account(ALICE), &tokens("tls")).await.expect("save over TLS");
    store.enqueue(&[account(ALICE)]).await.expect("enqueue over TLS");
    let claim = claim(&store).await;
    assert_eq!(claim.lease.account(), &account(ALICE));
    // Without `#insecure` the certificate is checked, and a self-signed one is refused.
    let strict = open_redis(&redis.strict_url(), "tls:", SECRET_KEY);
    assert!(strict.ping().await.is_err(), "an untrusted certificate is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_of_many_accounts_spread_evenly_over_every_node_of_a_cluster() {
    let prefix = unique_prefix("store-spread");
    let store = open_redis_cluster(&redis_cluster_url(), &prefix, SECRET_KEY);
    let accounts: Vec<AccountId> =
        (0..1200).map(|n| account(&format!("dbid:AA{n:04}-spread-{n:x}"))).collect();
    for id in &accounts {
        store.save_tokens(id, &tokens("t")).await.expect("save");
    }
    store.enqueue(&accounts).await.expect("enqueue");
    assert_eq!(store.queued().await.expect("queued").len(), accounts.len());

    // Each node is asked on its own: what a node holds, it holds alone.
    let mut linked_per_node = Vec::new();
    for url in redis_cluster_url().split(',') {
        let client = redis::Client::open(url).expect("a node's URL");
        let mut node = client.get_multiplexed_async_connection().await.expect("the node");
        let tokens_hashes = keys_on_node(&mut node, &format!("{prefix}{{s*}}:tokens")).await;
        let mut linked = 0;
        for hash in &tokens_hashes {
            linked += node.hlen::<_, usize>(hash).await.expect("hlen");
        }
        let generations = keys_on_node(&mut node, &format!("{prefix}{{s*}}:gen:*")).await;
        assert_eq!(generations.len(), linked, "each account's own keys sit with its shard's");
        linked_per_node.push(linked);
    }
    assert_eq!(linked_per_node.iter().sum::<usize>(), accounts.len(), "{linked_per_node:?}");
    // Within 15% of an even third each.
    for linked in &linked_per_node {
        assert!((340..=460).contains(linked), "{linked_per_node:?}");
    }
}

/// The keys on one node matching `pattern` (`SCAN` of that node alone).
async fn keys_on_node(node: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<String> {
    let (mut cursor, mut keys) = (0u64, Vec::new());
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(node)
            .await
            .expect("scan");
        keys.extend(page);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}
