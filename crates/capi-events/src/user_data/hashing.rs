//! SHA-256 as Meta wants it (64 lowercase hex characters), and the test for a value that already is one.

use sha2::{Digest, Sha256};

pub fn sha256_hex(value: &str) -> String {
    lowercase_hex(&Sha256::digest(value.as_bytes()))
}

/// Bytes as lowercase hex (two characters each). Written out rather than formatted byte by byte: it runs
/// for every identifier of every event.
pub fn lowercase_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// A 64-character hex string: a SHA-256 digest the client computed itself (hashing it again would make it
/// unmatchable, the double hashing Meta's SDK users hit).
pub fn looks_hashed(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|byte| byte.is_ascii_hexdigit())
}
