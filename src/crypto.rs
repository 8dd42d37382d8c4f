//! Sealing small records (token records at rest, the session cookie) with keys derived from
//! `SECRET_KEY`: encrypted and authenticated, so they can be neither read nor forged.
//!
//! XChaCha20-Poly1305 with a fresh random 192-bit nonce per record (random nonces that long never
//! realistically repeat), one key per purpose derived with HKDF-SHA256, and associated data that
//! binds a record to its context (a token record to its account).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const NONCE_LEN: usize = 24;

/// Seals and opens records for one purpose.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    /// A sealer whose key is derived from `secret_key` for `purpose`; keys for different
    /// purposes are unrelated, so a session cookie can never pass for a token record.
    pub fn new(secret_key: &SecretString, purpose: &[u8]) -> Sealer {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(None, secret_key.expose_secret().as_bytes())
            .expand(purpose, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Sealer { cipher: XChaCha20Poly1305::new(&key.into()) }
    }

    /// `plaintext`, sealed and bound to `context`, as URL-safe base64.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext, aad: context })
            .expect("XChaCha20-Poly1305 encrypts any message under 256 GiB");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// The plaintext, if `sealed` was sealed by this sealer for `context` and is undamaged.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context })
            .ok()
    }
}

/// Whether two secrets are equal, in time that depends only on their length.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// 256 random bits, URL-safe: OAuth `state` values and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(key: &str, purpose: &[u8]) -> Sealer {
        Sealer::new(&key.to_owned().into(), purpose)
    }

    #[test]
    fn a_sealed_record_opens_only_with_its_key_purpose_and_context() {
        let key = "0123456789abcdef0123456789abcdef";
        let sealed = sealer(key, b"a").seal(b"plaintext", b"ctx");
        assert_eq!(sealer(key, b"a").open(&sealed, b"ctx").as_deref(), Some(&b"plaintext"[..]));
        assert!(!sealed.contains("plaintext"));
        assert_ne!(sealed, sealer(key, b"a").seal(b"plaintext", b"ctx"), "a fresh nonce each time");
        assert_eq!(sealer(key, b"b").open(&sealed, b"ctx"), None);
        assert_eq!(sealer(key, b"a").open(&sealed, b"other"), None);
        assert_eq!(sealer("another-secret-key-of-32-characters", b"a").open(&sealed, b"ctx"), None);
        let mut damaged = sealed.into_bytes();
        let last = damaged.len() - 2;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(sealer(key, b"a").open(&String::from_utf8(damaged).unwrap(), b"ctx"), None);
        for garbage in ["", "!!!", "AAAA"] {
            assert_eq!(sealer(key, b"a").open(garbage, b"ctx"), None, "{garbage}");
        }
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
