//! Where each thing lives in Redis: the shards accounts are divided into, and every key's name.
//!
//! An account always belongs to the same shard, chosen by a hash of its id. The shard is the
//! hash tag of every key of its accounts (`{s17}`), so all of them fall in one Redis Cluster
//! slot: a script may touch any of them, and a cluster spreads the shards, and so the
//! accounts, over its nodes. On a single Redis the tag means nothing, so there is one layout.

use std::num::NonZeroU16;

use crate::account::AccountId;

/// One of the shards accounts are divided into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shard(u16);

impl Shard {
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The shard at `index` of [`Keys::all_shards`].
    pub fn from_index(index: usize) -> Shard {
        Shard(u16::try_from(index).expect("at most 16,384 shards"))
    }

    /// The shard a wake-up message names, if it is one of `shards`.
    pub fn parse(text: &str, shards: NonZeroU16) -> Option<Shard> {
        text.parse::<u16>().ok().filter(|shard| *shard < shards.get()).map(Shard)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The names of markdrop's keys under one prefix, for one number of shards.
#[derive(Clone)]
pub struct Keys {
    prefix: String,
    shards: NonZeroU16,
}

impl Keys {
    /// `prefix` holds no `{` or `}` (the configuration refuses it): a brace in it would
    /// become every key's hash tag, putting everything back in one slot.
    pub fn new(prefix: &str, shards: NonZeroU16) -> Keys {
        Keys { prefix: prefix.to_owned(), shards }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn shard_count(&self) -> NonZeroU16 {
        self.shards
    }

    pub fn all_shards(&self) -> impl Iterator<Item = Shard> + use<> {
        (0..self.shards.get()).map(Shard)
    }

    /// The account's shard: FNV-1a (64 bits) of its id, modulo the number of shards. Written
    /// out rather than taken from `std`, whose hashers may change between Rust releases: the
    /// shard decides where an account's keys are, so it may never change.
    pub fn shard(&self, account: &AccountId) -> Shard {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in account.as_str().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Shard((hash % u64::from(self.shards.get())) as u16)
    }

    /// What every key of `shard` starts with; the claim script builds its accounts' `gen:`
    /// and `lease:` keys from it.
    pub fn shard_prefix(&self, shard: Shard) -> String {
        format!("{}{{s{shard}}}:", self.prefix)
    }

    /// A key of the shard's own: a queue or a hash with one field per account.
    fn of_shard(&self, shard: Shard, name: &str) -> String {
        format!("{}{name}", self.shard_prefix(shard))
    }

    /// A key of one account's own, in the account's shard.
    fn of_account(&self, name: &str, account: &AccountId) -> String {
        format!("{}{name}:{account}", self.shard_prefix(self.shard(account)))
    }

    /// Sorted set: one member per account with work; score = when it is due (ms).
    pub fn ready(&self, shard: Shard) -> String {
        self.of_shard(shard, "ready")
    }

    /// Sorted set: accounts with notes waiting for a retry; score = when the soonest is due.
    pub fn retries(&self, shard: Shard) -> String {
        self.of_shard(shard, "retries")
    }

    /// Hash: account → sealed token record.
    pub fn tokens(&self, shard: Shard) -> String {
        self.of_shard(shard, "tokens")
    }

    /// Hash: account → `list_folder` cursor.
    pub fn cursors(&self, shard: Shard) -> String {
        self.of_shard(shard, "cursors")
    }

    /// Hash: account → passes failed in a row.
    pub fn failures(&self, shard: Shard) -> String {
        self.of_shard(shard, "failures")
    }

    /// Hash: account → sync status (JSON).
    pub fn status(&self, shard: Shard) -> String {
        self.of_shard(shard, "status")
    }

    /// Hash: account → display name.
    pub fn names(&self, shard: Shard) -> String {
        self.of_shard(shard, "names")
    }

    /// Hash: account → link id.
    pub fn links(&self, shard: Shard) -> String {
        self.of_shard(shard, "links")
    }

    pub fn generation(&self, account: &AccountId) -> String {
        self.of_account("gen", account)
    }

    pub fn lease(&self, account: &AccountId) -> String {
        self.of_account("lease", account)
    }

    pub fn files(&self, account: &AccountId) -> String {
        self.of_account("files", account)
    }

    pub fn attachments(&self, account: &AccountId) -> String {
        self.of_account("attachments", account)
    }

    pub fn notes(&self, account: &AccountId) -> String {
        self.of_account("notes", account)
    }

    pub fn settings(&self, account: &AccountId) -> String {
        self.of_account("settings", account)
    }

    /// Hash: series → count, for the whole deployment (one key, so a scrape reads one place).
    pub fn metrics(&self) -> String {
        format!("{}metrics", self.prefix)
    }

    /// String: how the keys are laid out (`shards=<n>`), written by the first process or by
    /// `markdrop migrate`, so processes with another `REDIS_SHARDS` refuse to start.
    pub fn layout(&self) -> String {
        format!("{}layout", self.prefix)
    }

    /// The pub/sub channel that wakes idle workers (not a key); a message names the shard
    /// with work.
    pub fn wake(&self) -> String {
        format!("{}wake", self.prefix)
    }

    /// What [`Keys::layout`] holds for this layout.
    pub fn layout_marker(&self) -> String {
        format!("shards={}", self.shards)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(shards: u16) -> Keys {
        Keys::new("md:", NonZeroU16::new(shards).expect("not zero"))
    }

    fn account(id: &str) -> AccountId {
        AccountId::parse(id).expect("an account id")
    }

    #[test]
    fn an_account_keeps_its_shard_for_good() {
        // Pinned: a change here would strand every deployed account's keys.
        let alice = account("dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc");
        assert_eq!(keys(1024).shard(&alice), Shard(139));
        assert_eq!(keys(1).shard(&alice), Shard(0));
        assert_eq!(
            keys(1024).files(&alice),
            "md:{s139}:files:dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"
        );
        assert_eq!(keys(1024).ready(Shard(139)), "md:{s139}:ready");
    }

    #[test]
    fn accounts_spread_evenly_over_the_shards() {
        let keys = keys(16);
        let mut counts = [0u32; 16];
        for n in 0..16_000 {
            counts[keys.shard(&account(&format!("dbid:AA{n:038}"))).index()] += 1;
        }
        for count in counts {
            assert!((800..1200).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn a_wake_up_names_a_shard_only_within_the_count() {
        let count = NonZeroU16::new(8).expect("not zero");
        assert_eq!(Shard::parse("7", count), Some(Shard(7)));
        assert_eq!(Shard::parse("8", count), None);
        assert_eq!(Shard::parse("x", count), None);
    }
}
