//! Dropbox's content hash (developers/reference/content-hash): SHA-256 over the concatenated
//! SHA-256 digests of the content's 4 MiB blocks, in lowercase hex.
//!
//! It is what `FileMetadata.content_hash` carries, so comparing it with the hash of bytes we hold
//! tells whether a file changed without downloading it.

use sha2::{Digest, Sha256};

const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// An incremental content hasher, for content that arrives in pieces.
#[derive(Default, Clone)]
pub struct ContentHasher {
    overall: Sha256,
    block: Sha256,
    block_len: usize,
}

impl ContentHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next piece of the content, of any length.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = data.len().min(BLOCK_SIZE - self.block_len);
            self.block.update(&data[..take]);
            self.block_len += take;
            data = &data[take..];
            if self.block_len == BLOCK_SIZE {
                self.finish_block();
            }
        }
    }

    /// The content hash of everything fed, in lowercase hex.
    pub fn finalize(mut self) -> String {
        // An empty file has no blocks at all: its hash is SHA-256 of nothing.
        if self.block_len > 0 {
            self.finish_block();
        }
        hex::encode(self.overall.finalize())
    }

    fn finish_block(&mut self) {
        let digest = std::mem::take(&mut self.block).finalize();
        self.overall.update(digest);
        self.block_len = 0;
    }
}

/// The content hash of `data`.
pub fn content_hash(data: &[u8]) -> String {
    let mut hasher = ContentHasher::new();
    hasher.update(data);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_vectors_hash_as_documented() {
        let cases: [(&[u8], &str); 3] = [
            (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"hello world", "bc62d4b80d9e36da29c16c5d4d9f11731f36052c72401a76c23c0fb5a9b74423"),
            (b"# Hello\n", "120526db5e8601ebafe01d832259d7d9cd2fb4c0860053c6d33dfed7ebb08da7"),
        ];
        for (data, hash) in cases {
            assert_eq!(content_hash(data), hash);
        }
    }

    #[test]
    fn block_boundaries_hash_as_documented() {
        let block = vec![b'a'; BLOCK_SIZE];
        assert_eq!(
            content_hash(&block),
            "907a506cf5e706bda5c7a29b43c9c65d8344bd2fa2f22339b359c214812af5a1"
        );
        let mut hasher = ContentHasher::new();
        hasher.update(&block[..1000]);
        hasher.update(&block[1000..]);
        hasher.update(b"a");
        assert_eq!(
            hasher.finalize(),
            "5f858b62ccd88447586305aec6fd53c96747cfebf527cbba129a6dfed47d9624"
        );
    }
}
