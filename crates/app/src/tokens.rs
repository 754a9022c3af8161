//! API tokens: 256 random bits, shown once, stored as SHA-256. A fast hash is right here (unlike
//! for passwords): the input has full entropy, so there is nothing to brute-force.

use base64::Engine;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "lm_";

pub fn generate() -> Result<String, String> {
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw).map_err(|e| e.to_string())?;
    Ok(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    ))
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let a = super::generate().unwrap();
        let b = super::generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("lm_") && a.len() > 40);
        assert_eq!(super::hash(&a), super::hash(&a));
        assert_eq!(super::hash(&a).len(), 64);
    }
}
