//! `markdrop migrate`: moves a deployment's keys from the layout before shards to today's
//! ([`super`]'s table), without losing a token, a cursor, a record or a queued account.
//!
//! Before shards, every account shared one set of hashes and queues right after the prefix
//! (`tokens`, `ready`…; on a cluster the prefix was hash-tagged, `{markdrop}:`, so all of it was
//! in one slot), and each account's own keys were `<name>:<account>`. The accounts are read
//! from those hashes and queues, so no SCAN of a whole cluster is needed, and each account is
//! written to its shard in one MULTI: its new keys share one slot, so a cluster takes it too.
//!
//! Every process must be stopped first: old processes read only the old keys, new ones only
//! the new. A lease under the old keys shows one still running, and the migration refuses.
//!
//! Running it again is safe. Until the layout marker is written every account is copied again,
//! each copy overwriting the last with the same values, so a run that died half way is simply
//! run again. Once the marker is there the copy is done and processes may have changed the new
//! keys since, so nothing is copied again: a later run only checks, and deletes the old keys
//! when asked (`--delete-old`).

use std::collections::HashMap;

use futures_util::{StreamExt, TryStreamExt};
use redis::{AsyncCommands, Script};

use super::connection::{Connection, Endpoint};
use super::keys::{Keys, Shard};
use crate::account::AccountId;
use crate::config::RedisSettings;
use crate::store::StoreError;

/// Accounts read, copied or deleted at once.
const ACCOUNTS_IN_FLIGHT: usize = 32;
/// Fields or members read per HSCAN or ZSCAN when listing the old layout's accounts.
const SCAN_PAGE: u32 = 1000;

/// An old key's name, and the new key its contents go to in the account's shard.
type ShardKey = (&'static str, fn(&Keys, Shard) -> String);
/// An old key's name (`<name>:<account>`), and the new key of the account's it becomes.
type AccountKey = (&'static str, fn(&Keys, &AccountId) -> String);

/// The old layout's hashes with one field per account.
const ACCOUNT_FIELDS: [ShardKey; 6] = [
    ("tokens", Keys::tokens),
    ("cursors", Keys::cursors),
    ("failures", Keys::failures),
    ("status", Keys::status),
    ("names", Keys::names),
    ("links", Keys::links),
];
/// The old layout's queues (sorted sets, score = when due).
const QUEUES: [ShardKey; 2] = [("ready", Keys::ready), ("retries", Keys::retries)];
/// The old layout's hashes of one account's own.
const ACCOUNT_HASHES: [AccountKey; 4] = [
    ("files", Keys::files),
    ("attachments", Keys::attachments),
    ("notes", Keys::notes),
    ("settings", Keys::settings),
];
/// The old layout's counter (`gen:<account>`) and lease (`lease:<account>`) names.
const GENERATION: &str = "gen";
const LEASE: &str = "lease";
/// The old layout's metrics hash; the new layout keeps it right after the prefix too.
const METRICS: &str = "metrics";

/// What a migration found and did, printed as its one-line summary. It holds counts only:
/// nothing of an account's tokens.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The layout marker was there already: nothing was copied this time.
    pub already_migrated: bool,
    /// Accounts found under the old keys.
    pub accounts: usize,
    /// Of those, the ones linked (with a token record), with a cursor, queued, and with notes
    /// waiting for a retry.
    pub with_tokens: usize,
    pub with_cursor: usize,
    pub queued: usize,
    pub retrying: usize,
    /// Fields or members of the old hashes and queues that are not account ids, left behind.
    pub not_accounts: usize,
    /// The old metrics were copied to the new key.
    pub metrics_copied: bool,
    /// Old keys deleted (`--delete-old`).
    pub old_keys_deleted: Option<usize>,
    /// The new layout's number of shards.
    pub shards: u16,
}

impl std::fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = if self.already_migrated { "already migrated" } else { "migrated" };
        write!(
            f,
            "{verb} {} accounts to {} shards ({} with tokens, {} with a cursor, {} queued, {} retrying)",
            self.accounts,
            self.shards,
            self.with_tokens,
            self.with_cursor,
            self.queued,
            self.retrying
        )?;
        if self.metrics_copied {
            write!(f, "; metrics copied")?;
        }
        if self.not_accounts > 0 {
            write!(f, "; {} fields that are not account ids left behind", self.not_accounts)?;
        }
        match self.old_keys_deleted {
            Some(deleted) => write!(f, "; {deleted} old keys deleted"),
            None => write!(f, "; the old keys are kept (--delete-old removes them)"),
        }
    }
}

/// Why a migration stopped; each says what to do about it. Nothing is deleted by a migration
/// that fails, and the new layout's marker is written only once every account is copied.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the keys under REDIS_KEY_PREFIX are laid out in {found} but REDIS_SHARDS asks for {wanted}; set REDIS_SHARDS to the deployment's number"
    )]
    OtherShardCount { found: String, wanted: u16 },
    #[error(
        "{held} accounts are leased under the old keys, so a markdrop process is still running: stop every `web` and `worker` process (or wait {wait_secs} s for their leases to run out) and run `markdrop migrate` again"
    )]
    StillRunning { held: usize, wait_secs: u64 },
    #[error(
        "{listening} markdrop processes still wait for work under the old keys: stop every `web` and `worker` process and run `markdrop migrate` again"
    )]
    StillListening { listening: u64 },
    #[error(
        "the old hashes hold {not_accounts} fields that are not account ids, so they may not be markdrop's alone; the old keys were not deleted: check them and delete them by hand"
    )]
    NotOnlyMarkdrop { not_accounts: usize },
    #[error(
        "{missing} accounts are missing from the new keys after the copy (first: {first}); the layout is not marked as migrated, run `markdrop migrate` again"
    )]
    Incomplete { missing: usize, first: AccountId },
    #[error(
        "the keys under REDIS_KEY_PREFIX are in use in the new layout already, but {missing} accounts linked under the old keys are not linked there (first: {first}), so nothing was copied or deleted: if they were unlinked since the migration, delete the old keys by hand; if a process ran on the new keys before it, stop every process, delete the `layout` key under REDIS_KEY_PREFIX and run `markdrop migrate` again"
    )]
    Diverged { missing: usize, first: AccountId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redis::RedisError> for MigrateError {
    fn from(error: redis::RedisError) -> MigrateError {
        MigrateError::Store(error.into())
    }
}

/// Moves the keys under `from_prefix` in the old layout to the layout `settings` describe;
/// with `delete_old`, then deletes the old keys. See the module's documentation.
pub async fn migrate(
    settings: &RedisSettings,
    from_prefix: &str,
    delete_old: bool,
) -> Result<MigrationReport, MigrateError> {
    let keys = Keys::new(&settings.key_prefix, settings.shards);
    let old = OldKeys { prefix: from_prefix.to_owned() };
    // Not `RedisStore::connection`: its layout check refuses exactly the keys moved here.
    let endpoint = Endpoint::new(settings).map_err(StoreError::from)?;
    let mut connection = endpoint.connect().await?;
    let already_migrated = match connection.get::<_, Option<String>>(keys.layout()).await? {
        None => false,
        Some(found) if found == keys.layout_marker() => true,
        Some(found) => {
            return Err(MigrateError::OtherShardCount { found, wanted: keys.shard_count().get() });
        }
    };
    let (accounts, not_accounts) = old_accounts(&mut connection, &old).await?;
    refuse_if_leased(&connection, &old, &accounts).await?;
    refuse_if_listening(&endpoint, &old).await?;

    let copy = !already_migrated;
    let moved: Vec<Moved> = futures_util::stream::iter(&accounts)
        .map(|account| {
            let (connection, old, keys) = (connection.clone(), &old, &keys);
            async move { move_account(connection, old, keys, account, copy).await }
        })
        .buffer_unordered(ACCOUNTS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut report = MigrationReport {
        already_migrated,
        accounts: accounts.len(),
        with_tokens: moved.iter().filter(|moved| moved.tokens).count(),
        with_cursor: moved.iter().filter(|moved| moved.cursor).count(),
        queued: moved.iter().filter(|moved| moved.queued).count(),
        retrying: moved.iter().filter(|moved| moved.retrying).count(),
        not_accounts,
        shards: keys.shard_count().get(),
        ..MigrationReport::default()
    };

    if copy {
        report.metrics_copied = copy_metrics(&mut connection, &old, &keys).await?;
        let (missing, first) = missing_from_new(&connection, &keys, &moved, true).await?;
        if let Some(first) = first {
            return Err(MigrateError::Incomplete { missing, first });
        }
        // Last: from here on new processes accept the keys, and a later run copies nothing.
        let _: () = connection.set(keys.layout(), keys.layout_marker()).await?;
    } else {
        let (missing, first) = missing_from_new(&connection, &keys, &moved, false).await?;
        if let Some(first) = first {
            return Err(MigrateError::Diverged { missing, first });
        }
    }

    if delete_old {
        if not_accounts > 0 {
            return Err(MigrateError::NotOnlyMarkdrop { not_accounts });
        }
        report.old_keys_deleted =
            Some(delete_old_keys(&connection, &old, &accounts, old.prefix != keys.prefix()).await?);
    }
    Ok(report)
}

/// The names of the old layout's keys under one prefix (which may hold a hash tag).
struct OldKeys {
    prefix: String,
}

impl OldKeys {
    /// A key every account shared: a hash with a field per account, a queue, the metrics.
    fn shared(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A key of one account's own.
    fn of_account(&self, name: &str, account: &AccountId) -> String {
        format!("{}{name}:{account}", self.prefix)
    }
}

/// Every account named in the old hashes and queues, in order, and how many fields or
/// members are not account ids.
async fn old_accounts(
    connection: &mut Connection,
    old: &OldKeys,
) -> Result<(Vec<AccountId>, usize), MigrateError> {
    let mut names = std::collections::BTreeSet::new();
    for (name, _) in ACCOUNT_FIELDS {
        names.extend(scan_members(connection, "HSCAN", &old.shared(name)).await?);
    }
    for (name, _) in QUEUES {
        names.extend(scan_members(connection, "ZSCAN", &old.shared(name)).await?);
    }
    let (accounts, not_accounts): (Vec<_>, Vec<_>) =
        names.iter().map(|name| AccountId::parse(name)).partition(Result::is_ok);
    for name in names.iter().filter(|name| AccountId::parse(name).is_err()) {
        tracing::warn!(field = %name, "not an account id; left under the old keys");
    }
    Ok((accounts.into_iter().flatten().collect(), not_accounts.len()))
}

/// The fields of a hash (`HSCAN`) or the members of a sorted set (`ZSCAN`), a page at a time
/// so no single call blocks Redis however many accounts there are.
async fn scan_members(
    connection: &mut Connection,
    scan: &str,
    key: &str,
) -> Result<Vec<String>, MigrateError> {
    let (mut members, mut cursor) = (Vec::new(), 0u64);
    loop {
        // Member–value pairs (a field and its value, a member and its score).
        let (next, pairs): (u64, Vec<(String, redis::Value)>) = redis::cmd(scan)
            .arg(key)
            .arg(cursor)
            .arg("COUNT")
            .arg(SCAN_PAGE)
            .query_async(connection)
            .await?;
        members.extend(pairs.into_iter().map(|(member, _)| member));
        if next == 0 {
            return Ok(members);
        }
        cursor = next;
    }
}

/// A lease under the old keys means a process of the old layout is still working: copying
/// now would miss what it writes next.
/// Refuses while a process of the old layout is idle but running: an old worker holds no
/// lease between passes, but it listens on the old wake-up channel. Each node `REDIS_URL`
/// names is asked, since a node counts only its own subscribers.
async fn refuse_if_listening(endpoint: &Endpoint, old: &OldKeys) -> Result<(), MigrateError> {
    let channel = format!("{}wake", old.prefix);
    let mut listening = 0;
    for node in endpoint.nodes() {
        let mut connection = node.get_multiplexed_async_connection().await?;
        let (_, here): (String, u64) =
            redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query_async(&mut connection).await?;
        listening += here;
    }
    match listening {
        0 => Ok(()),
        listening => Err(MigrateError::StillListening { listening }),
    }
}

async fn refuse_if_leased(
    connection: &Connection,
    old: &OldKeys,
    accounts: &[AccountId],
) -> Result<(), MigrateError> {
    let left: Vec<i64> = futures_util::stream::iter(accounts)
        .map(|account| {
            let mut connection = connection.clone();
            let lease = old.of_account(LEASE, account);
            async move { connection.pttl::<_, i64>(lease).await }
        })
        .buffer_unordered(ACCOUNTS_IN_FLIGHT)
        .try_collect()
        .await?;
    // PTTL: -2 when there is no such key, -1 when it never expires.
    let held: Vec<i64> = left.into_iter().filter(|left| *left != -2).collect();
    if held.is_empty() {
        return Ok(());
    }
    let longest_ms = held.iter().copied().max().unwrap_or(0).max(0);
    Err(MigrateError::StillRunning {
        held: held.len(),
        wait_secs: u64::try_from(longest_ms).unwrap_or(0).div_ceil(1000),
    })
}

/// What one account had under the old keys, for the report and the check.
struct Moved {
    account: AccountId,
    tokens: bool,
    cursor: bool,
    queued: bool,
    retrying: bool,
}

/// What the old keys hold for one account.
#[derive(Default)]
struct OldAccount {
    /// In the order of [`ACCOUNT_FIELDS`].
    fields: Vec<Option<String>>,
    /// In the order of [`QUEUES`].
    scores: Vec<Option<f64>>,
    generation: Option<String>,
    /// In the order of [`ACCOUNT_HASHES`]; empty when there is no such key.
    hashes: Vec<HashMap<String, String>>,
}

/// Reads one account's old values and, when `copy`, writes them to its shard.
async fn move_account(
    mut connection: Connection,
    old: &OldKeys,
    keys: &Keys,
    account: &AccountId,
    copy: bool,
) -> Result<Moved, MigrateError> {
    let values = read_old(&mut connection, old, account).await?;
    if copy {
        copy_account(&mut connection, keys, account, &values).await?;
    }
    Ok(Moved {
        account: account.clone(),
        tokens: values.fields[0].is_some(),
        cursor: values.fields[1].is_some(),
        queued: values.scores[0].is_some(),
        retrying: values.scores[1].is_some(),
    })
}

/// One round trip for all of an account's old values.
async fn read_old(
    connection: &mut Connection,
    old: &OldKeys,
    account: &AccountId,
) -> Result<OldAccount, MigrateError> {
    let mut pipe = redis::pipe();
    for (name, _) in ACCOUNT_FIELDS {
        pipe.hget(old.shared(name), account.as_str());
    }
    for (name, _) in QUEUES {
        pipe.zscore(old.shared(name), account.as_str());
    }
    pipe.get(old.of_account(GENERATION, account));
    for (name, _) in ACCOUNT_HASHES {
        pipe.hgetall(old.of_account(name, account));
    }
    let replies: Vec<redis::Value> = pipe.query_async(connection).await?;
    let mut replies = replies.iter();
    let mut next =
        || replies.next().ok_or_else(|| StoreError::new(anyhow::anyhow!("a reply short")));
    let mut values = OldAccount::default();
    for _ in ACCOUNT_FIELDS {
        values.fields.push(redis::from_redis_value(next()?)?);
    }
    for _ in QUEUES {
        values.scores.push(redis::from_redis_value(next()?)?);
    }
    values.generation = redis::from_redis_value(next()?)?;
    for _ in ACCOUNT_HASHES {
        values.hashes.push(redis::from_redis_value(next()?)?);
    }
    Ok(values)
}

/// Writes an account's old values to its shard in one MULTI: the account is never seen half
/// copied, and a copy that fails can be made again whole. Every key written is in the
/// account's shard, so in one cluster slot.
async fn copy_account(
    connection: &mut Connection,
    keys: &Keys,
    account: &AccountId,
    values: &OldAccount,
) -> Result<(), MigrateError> {
    let shard = keys.shard(account);
    let mut pipe = redis::pipe();
    pipe.atomic();
    for ((_, new_key), value) in ACCOUNT_FIELDS.iter().zip(&values.fields) {
        if let Some(value) = value {
            pipe.hset(new_key(keys, shard), account.as_str(), value).ignore();
        }
    }
    for ((_, new_key), score) in QUEUES.iter().zip(&values.scores) {
        if let Some(score) = score {
            pipe.zadd(new_key(keys, shard), account.as_str(), *score).ignore();
        }
    }
    if let Some(generation) = &values.generation {
        pipe.set(keys.generation(account), generation).ignore();
    }
    for ((_, new_key), entries) in ACCOUNT_HASHES.iter().zip(&values.hashes) {
        if !entries.is_empty() {
            let key = new_key(keys, account);
            // Replaced whole, so a path dropped since an earlier copy does not linger.
            pipe.del(&key).ignore();
            let entries: Vec<(&String, &String)> = entries.iter().collect();
            pipe.hset_multiple(&key, &entries).ignore();
        }
    }
    pipe.query_async::<()>(connection).await?;
    Ok(())
}

/// Copies the old metrics when they are another key than the new ones and the new key has
/// no counts yet. `true` when copied.
async fn copy_metrics(
    connection: &mut Connection,
    old: &OldKeys,
    keys: &Keys,
) -> Result<bool, MigrateError> {
    if old.shared(METRICS) == keys.metrics() {
        return Ok(false);
    }
    let counts: HashMap<String, String> = connection.hgetall(old.shared(METRICS)).await?;
    if counts.is_empty() {
        return Ok(false);
    }
    let script = Script::new(include_str!("lua/copy_metrics.lua"));
    let mut invocation = script.prepare_invoke();
    invocation.key(keys.metrics());
    for (series, count) in &counts {
        invocation.arg(series).arg(count);
    }
    let copied: i64 = invocation.invoke_async(connection).await?;
    Ok(copied == 1)
}

/// How many of the accounts with tokens under the old keys (and, when `cursors`, with a
/// cursor) lack them under the new keys, and the first of them.
async fn missing_from_new(
    connection: &Connection,
    keys: &Keys,
    moved: &[Moved],
    cursors: bool,
) -> Result<(usize, Option<AccountId>), MigrateError> {
    let present: Vec<(&Moved, bool)> = futures_util::stream::iter(moved)
        .map(|moved| {
            let mut connection = connection.clone();
            async move {
                let shard = keys.shard(&moved.account);
                let account = moved.account.as_str();
                let (tokens, cursor): (bool, bool) = redis::pipe()
                    .hexists(keys.tokens(shard), account)
                    .hexists(keys.cursors(shard), account)
                    .query_async(&mut connection)
                    .await?;
                let complete = (tokens || !moved.tokens) && (cursor || !cursors || !moved.cursor);
                Ok::<_, MigrateError>((moved, complete))
            }
        })
        .buffer_unordered(ACCOUNTS_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut missing: Vec<&AccountId> =
        present.iter().filter(|(_, complete)| !complete).map(|(moved, _)| &moved.account).collect();
    missing.sort();
    Ok((missing.len(), missing.first().map(|account| (*account).clone())))
}

/// Deletes the old keys: each account's own first, the shared ones last, so a run that dies
/// half way still finds the accounts it has yet to delete. The old metrics stay when they
/// are the new ones (same prefix). Returns how many keys were deleted.
async fn delete_old_keys(
    connection: &Connection,
    old: &OldKeys,
    accounts: &[AccountId],
    with_metrics: bool,
) -> Result<usize, MigrateError> {
    let per_account: Vec<usize> = futures_util::stream::iter(accounts)
        .map(|account| {
            let mut connection = connection.clone();
            let names = [GENERATION, LEASE].into_iter().chain(ACCOUNT_HASHES.map(|(name, _)| name));
            let doomed: Vec<String> = names.map(|name| old.of_account(name, account)).collect();
            async move { unlink_each(&mut connection, &doomed).await }
        })
        .buffer_unordered(ACCOUNTS_IN_FLIGHT)
        .try_collect()
        .await?;
    let shared =
        ACCOUNT_FIELDS.map(|(name, _)| name).into_iter().chain(QUEUES.map(|(name, _)| name));
    let shared = shared.chain(with_metrics.then_some(METRICS));
    let doomed: Vec<String> = shared.map(|name| old.shared(name)).collect();
    let mut connection = connection.clone();
    Ok(per_account.iter().sum::<usize>() + unlink_each(&mut connection, &doomed).await?)
}

/// `UNLINK` of each key on its own, in one pipeline. On a cluster a pipeline must stay in one
/// slot: the old keys are, since the old layout ran on a cluster only under a hash-tagged
/// prefix. Returns how many existed.
async fn unlink_each(connection: &mut Connection, keys: &[String]) -> Result<usize, MigrateError> {
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.unlink(key);
    }
    let unlinked: Vec<usize> = pipe.query_async(connection).await?;
    Ok(unlinked.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_accounts_and_says_whether_the_old_keys_remain() {
        let report = MigrationReport {
            accounts: 4,
            with_tokens: 4,
            with_cursor: 2,
            queued: 2,
            retrying: 1,
            metrics_copied: true,
            shards: 1024,
            ..MigrationReport::default()
        };
        assert_eq!(
            report.to_string(),
            "migrated 4 accounts to 1024 shards (4 with tokens, 2 with a cursor, 2 queued, 1 retrying); metrics copied; the old keys are kept (--delete-old removes them)"
        );
        let again = MigrationReport {
            already_migrated: true,
            metrics_copied: false,
            old_keys_deleted: Some(21),
            ..report
        };
        assert!(again.to_string().starts_with("already migrated 4 accounts"), "{again}");
        assert!(again.to_string().ends_with("; 21 old keys deleted"), "{again}");
    }

    #[test]
    fn old_keys_keep_the_old_prefix_and_its_hash_tag() {
        let old = OldKeys { prefix: "{markdrop}:".to_owned() };
        let alice = AccountId::parse("dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc").expect("an id");
        assert_eq!(old.shared("tokens"), "{markdrop}:tokens");
        assert_eq!(
            old.of_account("files", &alice),
            "{markdrop}:files:dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"
        );
    }
}
