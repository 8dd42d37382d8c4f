//! Dropbox's content hash (docs/dropbox.md §5), the emulator's own copy.
//!
//! The client in `src/dropbox/` has its own implementation on purpose: a misreading of the
//! algorithm must not hide by living on both sides, so each is tested against Dropbox's vectors.

use sha2::{Digest, Sha256};

/// Dropbox hashes content in blocks of exactly 4 MiB; only the last block may be shorter.
const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// Lowercase hex SHA-256 of the concatenated SHA-256 digests of each 4 MiB block.
///
/// An empty file has no blocks at all, so its hash is SHA-256 of nothing (not of one empty block).
pub fn content_hash(content: &[u8]) -> String {
    combine(content.chunks(BLOCK_SIZE).map(|block| Sha256::digest(block).into()))
}

/// The second step on its own: SHA-256 over the raw concatenated block digests, as hex.
fn combine(block_digests: impl IntoIterator<Item = [u8; 32]>) -> String {
    let mut overall = Sha256::new();
    for digest in block_digests {
        overall.update(digest);
    }
    hex::encode(overall.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_hashes_to_sha256_of_nothing() {
        assert_eq!(
            content_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn small_files_hash_to_the_published_vectors() {
        assert_eq!(
            content_hash(b"hello world"),
            "bc62d4b80d9e36da29c16c5d4d9f11731f36052c72401a76c23c0fb5a9b74423"
        );
        assert_eq!(
            content_hash(b"# Hello\n"),
            "120526db5e8601ebafe01d832259d7d9cd2fb4c0860053c6d33dfed7ebb08da7"
        );
    }

    #[test]
    fn a_file_of_exactly_one_block_and_one_of_a_block_and_a_byte_hash_to_the_vectors() {
        let mut content = vec![b'a'; BLOCK_SIZE];
        assert_eq!(
            content_hash(&content),
            "907a506cf5e706bda5c7a29b43c9c65d8344bd2fa2f22339b359c214812af5a1"
        );
        content.push(b'a');
        assert_eq!(
            content_hash(&content),
            "5f858b62ccd88447586305aec6fd53c96747cfebf527cbba129a6dfed47d9624"
        );
    }

    #[test]
    fn the_published_block_digests_combine_into_the_milky_way_hash() {
        // Dropbox publishes the block digests of milky-way-nasa.jpg, not the image itself, so this
        // checks the combining step: SHA-256 over the raw concatenated block digests.
        let blocks = [
            "2a846fa617c3361fc117e1c5c1e1838c336b6a5cef982c1a2d9bdf68f2f1992a",
            "c68469027410ea393eba6551b9fa1e26db775f00eae70a0c3c129a0011a39cf9",
            "7376192de020925ce6c5ef5a8a0405e931b0a9a8c75517aacd9ca24a8a56818b",
        ];
        let digests = blocks.map(|block| {
            let mut digest = [0; 32];
            hex::decode_to_slice(block, &mut digest).unwrap();
            digest
        });
        assert_eq!(
            combine(digests),
            "485291fa0ee50c016982abbfa943957bcd231aae0492ccbaa22c58e3997b35e0"
        );
    }
}
