//! SHA-256 as Meta wants it (64 lowercase hex characters), and the test for a value that already is one.

use sha2::{Digest, Sha256};

pub fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A 64-character hex string: a SHA-256 digest the client computed itself (hashing it again would make it
/// unmatchable, the double hashing Meta's SDK users hit).
pub fn looks_hashed(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|byte| byte.is_ascii_hexdigit())
}
