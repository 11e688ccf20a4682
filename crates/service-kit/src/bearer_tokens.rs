//! Bearer tokens the services issue (gateway API keys, relay ingest tokens): a prefix that says what the
//! token is for and 40 random letters and digits. Only a token's SHA-256 is stored, so a leaked database
//! holds no usable token.

use rand::RngExt as _;
use sha2::Digest as _;

const RANDOM_CHARACTERS: usize = 40;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new token: `prefix` and 40 random letters and digits.
pub fn new_bearer_token(prefix: &str) -> String {
    let mut rng = rand::rng();
    let random: String = (0..RANDOM_CHARACTERS)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{random}")
}

/// What is stored of a token: its SHA-256, lowercase hex.
pub fn token_sha256(token: &str) -> String {
    lowercase_hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// Bytes as lowercase hex, two characters each (digests and proofs are written this way).
pub fn lowercase_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_new_each_time_and_only_their_hash_repeats() {
        let first = new_bearer_token("adl_");
        let second = new_bearer_token("adl_");
        assert!(first.starts_with("adl_") && first.len() == 44);
        assert_ne!(first, second);
        assert_eq!(token_sha256(&first), token_sha256(&first));
        assert_eq!(token_sha256(&first).len(), 64);
    }
}
