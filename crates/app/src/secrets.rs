//! Encryption of the secrets Lastmile must be able to read back: service passwords (RADIUS
//! CHAP needs the clear password to verify a response), NAS shared secrets and router API
//! passwords. XChaCha20-Poly1305 with a random 192-bit nonce per value, under one 256-bit key
//! from configuration (`--secret-key-file` / `LASTMILE_SECRET_KEY`). Stored form:
//! `0x01 ‖ nonce (24) ‖ ciphertext+tag`. Losing the key loses these secrets, nothing else.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::sync::Arc;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Clone)]
pub struct SecretBox {
    cipher: Arc<XChaCha20Poly1305>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret key must be 64 hexadecimal characters (32 bytes)")]
    BadKey,
    #[error("a stored secret could not be decrypted (wrong secret key?)")]
    Undecryptable,
    #[error("the system random generator failed: {0}")]
    Random(String),
}

impl SecretBox {
    /// From a 64-character hex key (surrounding whitespace ignored).
    pub fn from_hex(key: &str) -> Result<Self, SecretError> {
        let bytes = hex::decode(key.trim()).map_err(|_| SecretError::BadKey)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretError::BadKey)?;
        Ok(Self {
            cipher: Arc::new(cipher),
        })
    }

    /// A new random key, hex-encoded.
    pub fn generate_key() -> Result<String, SecretError> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(hex::encode(key))
    }

    pub fn encrypt(&self, plaintext: &str) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| SecretError::Random(e.to_string()))?;
        let ct = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext.as_bytes())
            .map_err(|_| SecretError::Undecryptable)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn decrypt(&self, stored: &[u8]) -> Result<String, SecretError> {
        if stored.len() < 1 + NONCE_LEN || stored[0] != FORMAT_V1 {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, ct) = stored[1..].split_at(NONCE_LEN);
        let pt = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(pt).map_err(|_| SecretError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let b = SecretBox::from_hex(&SecretBox::generate_key().unwrap()).unwrap();
        let c1 = b.encrypt("s3cret").unwrap();
        let c2 = b.encrypt("s3cret").unwrap();
        assert_ne!(c1, c2, "fresh nonce per value");
        assert_eq!(b.decrypt(&c1).unwrap(), "s3cret");
        let mut bad = c1.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(b.decrypt(&bad).is_err());
        let other = SecretBox::from_hex(&SecretBox::generate_key().unwrap()).unwrap();
        assert!(other.decrypt(&c1).is_err());
        assert!(SecretBox::from_hex("abcd").is_err());
    }
}
