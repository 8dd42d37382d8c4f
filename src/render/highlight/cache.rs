//! The highlighted blocks the process has already made, so that a note rendered again (its prose
//! or one block edited, a wikilink target appearing, a retry) highlights only the blocks that
//! changed. Highlighting is ~80% tree-sitter's parser and query cursor; no caller-side trick
//! makes a first render fast, but a second one need not repeat it.
//!
//! A block is found by a 128-bit XXH3 of its language and code, and holds the exact HTML that
//! went inside its `<code>`, so a hit writes the same bytes a fresh highlight would. The cache
//! holds at most [`CAPACITY_BYTES`] and forgets the least recently used block first. It is
//! shared by every rendering thread behind one `Mutex`, held only to look up or store, never
//! while highlighting, so a render never waits for another's tree-sitter.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use xxhash_rust::xxh3::Xxh3;

/// What the process's cache may hold: about 5,800 blocks like those of `BENCHMARKS.md`'s code
/// notebook (900 bytes of code, 2.9 KB counted), the code of 50 such notebooks. The worker's
/// peak RSS was 34 MiB without it; with it full, about half the 100 MB goal.
pub(crate) const CAPACITY_BYTES: usize = 16 * 1024 * 1024;

/// A block larger than this share of the cache is not kept: one huge block would push out
/// hundreds of ordinary ones, and it is rare enough that highlighting it again costs little
/// in all. With 16 MiB this is 1 MiB of HTML, about 400 KB of code.
const LARGEST_SHARE: usize = 16;

/// What an entry costs besides its HTML: the key twice (map and use order), the `Arc`'s
/// counts, the map's and the tree's bookkeeping. An estimate, so that many tiny blocks cannot
/// hold far more memory than the bound says.
const ENTRY_OVERHEAD_BYTES: usize = 96;

/// How often the cache answered, since the process started (or since [`BlockCache::clear`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Blocks found in the cache.
    pub hits: u64,
    /// Blocks looked for and not found (each then highlighted).
    pub misses: u64,
    /// Blocks held now.
    pub blocks: usize,
    /// Bytes held now, as counted against the bound (HTML, keys and overhead).
    pub bytes: usize,
}

/// A block's identity: XXH3-128 of its language and code, under the cache's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct BlockKey(u128);

/// Highlighted blocks, bounded in bytes, least recently used forgotten first.
pub(crate) struct BlockCache {
    /// XXH3 is not a cryptographic hash: with a known seed a note's author could craft code
    /// that collides with some other block and have that block's HTML written in its place.
    /// A seed drawn per process makes such a collision something to stumble on, at 2^-128.
    seed: u64,
    /// The largest entry kept (see [`LARGEST_SHARE`]).
    largest: usize,
    blocks: Mutex<Blocks>,
}

impl BlockCache {
    /// An empty cache that holds at most `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        BlockCache {
            seed: rand::random(),
            largest: capacity / LARGEST_SHARE,
            blocks: Mutex::new(Blocks::new(capacity)),
        }
    }

    /// The key of `code` in `language`; computed before the lock is taken.
    pub(super) fn key(&self, language: &str, code: &str) -> BlockKey {
        let mut hasher = Xxh3::with_seed(self.seed);
        hasher.update(language.as_bytes());
        // 0xFF never occurs in UTF-8, so no language and code run into another pair's.
        hasher.update(&[0xFF]);
        hasher.update(code.as_bytes());
        BlockKey(hasher.digest128())
    }

    /// The HTML kept for `key`, which now counts as the most recently used.
    pub(super) fn get(&self, key: BlockKey) -> Option<Arc<str>> {
        self.lock().get(key)
    }

    /// Keeps `html` for `key`, forgetting the least recently used blocks to stay in bounds.
    /// Only a successful highlight is ever stored: a failure is not a fact about the code.
    pub(super) fn insert(&self, key: BlockKey, html: &str) {
        if entry_bytes(html.len()) > self.largest {
            return;
        }
        // Copied before the lock is taken: other renders may be waiting on it.
        let html = Arc::from(html);
        self.lock().insert(key, html);
    }

    /// Forgets every block and resets the counts.
    pub(crate) fn clear(&self) {
        let mut blocks = self.lock();
        *blocks = Blocks::new(blocks.capacity);
    }

    pub(crate) fn counts(&self) -> CacheCounts {
        let blocks = self.lock();
        CacheCounts {
            hits: blocks.hits,
            misses: blocks.misses,
            blocks: blocks.entries.len(),
            bytes: blocks.bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Blocks> {
        // Nothing done under the lock can panic short of running out of memory, so a poisoned
        // lock still guards whole entries; a render should not fail for a cache.
        self.blocks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a block of `html_len` bytes counts against the bound.
fn entry_bytes(html_len: usize) -> usize {
    size_of::<BlockKey>() + html_len + ENTRY_OVERHEAD_BYTES
}

/// The cache's contents: an exact LRU. `by_use` orders the keys by their last use (a counter
/// that only grows), so the least recently used block is its first entry: each lookup and
/// store is a hash lookup and a B-tree move, a few hundred nanoseconds beside the 50 µs or more
/// that highlighting a block costs.
struct Blocks {
    entries: HashMap<BlockKey, Entry>,
    by_use: BTreeMap<u64, BlockKey>,
    last_use: u64,
    bytes: usize,
    capacity: usize,
    hits: u64,
    misses: u64,
}

struct Entry {
    html: Arc<str>,
    last_use: u64,
}

impl Blocks {
    fn new(capacity: usize) -> Self {
        Blocks {
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            last_use: 0,
            bytes: 0,
            capacity,
            hits: 0,
            misses: 0,
        }
    }

    fn get(&mut self, key: BlockKey) -> Option<Arc<str>> {
        let Some(entry) = self.entries.get_mut(&key) else {
            self.misses += 1;
            return None;
        };
        self.hits += 1;
        self.by_use.remove(&entry.last_use);
        self.last_use += 1;
        entry.last_use = self.last_use;
        self.by_use.insert(self.last_use, key);
        Some(entry.html.clone())
    }

    fn insert(&mut self, key: BlockKey, html: Arc<str>) {
        // Two renders may both miss the same block and both store it; the second replaces
        // the first, counted once.
        self.remove(key);
        self.last_use += 1;
        self.bytes += entry_bytes(html.len());
        self.by_use.insert(self.last_use, key);
        self.entries.insert(key, Entry { html, last_use: self.last_use });
        while self.bytes > self.capacity {
            let Some((_, oldest)) = self.by_use.first_key_value() else { break };
            self.remove(*oldest);
        }
    }

    fn remove(&mut self, key: BlockKey) {
        if let Some(entry) = self.entries.remove(&key) {
            self.by_use.remove(&entry.last_use);
            self.bytes -= entry_bytes(entry.html.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Room for exactly `blocks` blocks of `html_len` bytes each. The use order is checked on
    /// [`Blocks`] itself: a cache that small would keep nothing, every block being more than
    /// its share.
    fn blocks_for(blocks: usize, html_len: usize) -> Blocks {
        Blocks::new(blocks * entry_bytes(html_len))
    }

    fn key(code: &str) -> BlockKey {
        BlockKey(xxhash_rust::xxh3::xxh3_128(code.as_bytes()))
    }

    fn get(blocks: &mut Blocks, code: &str) -> Option<String> {
        blocks.get(key(code)).map(|html| html.to_string())
    }

    fn put(blocks: &mut Blocks, code: &str, html: &str) {
        blocks.insert(key(code), Arc::from(html));
    }

    fn html(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn a_stored_block_is_served_back_and_counted_as_a_hit() {
        let cache = BlockCache::new(CAPACITY_BYTES);
        let (a, b) = (cache.key("rust", "a"), cache.key("rust", "b"));
        assert_eq!(cache.get(a), None);
        cache.insert(a, "<a-k>a</a-k>");
        assert_eq!(cache.get(a).as_deref(), Some("<a-k>a</a-k>"));
        assert_eq!(cache.get(b), None);
        let counts = cache.counts();
        assert_eq!((counts.hits, counts.misses, counts.blocks), (1, 2, 1));
        assert_eq!(counts.bytes, entry_bytes("<a-k>a</a-k>".len()));
    }

    #[test]
    fn the_least_recently_used_block_is_forgotten_first() {
        let mut blocks = blocks_for(3, 1);
        for code in ["a", "b", "c"] {
            put(&mut blocks, code, code);
        }
        assert_eq!(get(&mut blocks, "a"), html("a"), "a is now the most recently used");
        put(&mut blocks, "d", "d");
        assert_eq!(get(&mut blocks, "b"), None, "b was the least recently used");
        for code in ["a", "c", "d"] {
            assert_eq!(get(&mut blocks, code), html(code));
        }
        assert_eq!(blocks.entries.len(), 3);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let capacity = 64 * 1024;
        let cache = BlockCache::new(capacity);
        let mut held = 0;
        for n in 0..2_000usize {
            // Sizes from 0 to a little over the largest share (4 KiB here), in no order.
            let len = (n * 7_919) % (capacity / LARGEST_SHARE + 64);
            cache.insert(cache.key("rust", &n.to_string()), &"x".repeat(len));
            let counts = cache.counts();
            assert!(counts.bytes <= capacity, "{counts:?} after block {n}");
            held = held.max(counts.blocks);
        }
        assert!(held > 16, "the cache kept many blocks at once, not only the last: {held}");
        let blocks = cache.lock();
        let counted: usize =
            blocks.entries.values().map(|entry| entry_bytes(entry.html.len())).sum();
        assert_eq!(blocks.bytes, counted, "the running count is the sum of the entries");
        assert_eq!(
            blocks.by_use.len(),
            blocks.entries.len(),
            "each entry has one place in use order"
        );
    }

    #[test]
    fn a_block_larger_than_its_share_of_the_cache_is_not_kept() {
        let capacity = 64 * 1024;
        let cache = BlockCache::new(capacity);
        let largest = capacity / LARGEST_SHARE - entry_bytes(0);
        let [small, fits, huge] = ["small", "fits", "huge"].map(|code| cache.key("rust", code));
        cache.insert(small, "s");
        cache.insert(fits, &"x".repeat(largest));
        cache.insert(huge, &"x".repeat(largest + 1));
        assert_eq!(cache.get(huge), None);
        assert_eq!(cache.get(fits).map(|html| html.len()), Some(largest));
        assert_eq!(cache.get(small).as_deref(), Some("s"), "a huge block pushes nothing out");
    }

    #[test]
    fn storing_a_block_again_replaces_it_and_counts_it_once() {
        let mut blocks = blocks_for(4, 8);
        put(&mut blocks, "a", "first");
        put(&mut blocks, "a", "second");
        assert_eq!(get(&mut blocks, "a"), html("second"));
        assert_eq!((blocks.entries.len(), blocks.by_use.len()), (1, 1));
        assert_eq!(blocks.bytes, entry_bytes("second".len()));
    }

    #[test]
    fn the_key_tells_languages_and_codes_apart() {
        let cache = BlockCache::new(CAPACITY_BYTES);
        assert_eq!(cache.key("rust", "x"), cache.key("rust", "x"));
        assert_ne!(cache.key("rust", "x"), cache.key("python", "x"));
        assert_ne!(cache.key("rust", "x"), cache.key("rust", "y"));
        assert_ne!(cache.key("c", "ss"), cache.key("cs", "s"), "where one ends and one starts");
        assert_ne!(
            cache.key("rust", "x"),
            BlockCache::new(CAPACITY_BYTES).key("rust", "x"),
            "each cache draws its own seed"
        );
    }

    #[test]
    fn clearing_forgets_every_block_and_the_counts() {
        let cache = BlockCache::new(CAPACITY_BYTES);
        let a = cache.key("rust", "a");
        cache.insert(a, "a");
        assert_eq!(cache.get(a).as_deref(), Some("a"));
        cache.clear();
        assert_eq!(cache.counts(), CacheCounts::default());
        assert_eq!(cache.get(a), None);
    }
}
