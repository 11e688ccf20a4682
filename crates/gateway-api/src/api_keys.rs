//! Bearer API keys scoped to a tenant. A key is `adl_` and 40 random letters and digits; only its SHA-256
//! is stored, so a leaked database holds no usable key.

use rand::RngExt as _;
use sha2::Digest as _;
use sqlx::PgPool;

const KEY_PREFIX: &str = "adl_";
const KEY_RANDOM_CHARACTERS: usize = 40;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn sha256_hex(text: &str) -> String {
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A new key for `tenant_id`; the returned key is the only copy.
pub async fn create_api_key(pool: &PgPool, tenant_id: &str, name: &str) -> Result<String, sqlx::Error> {
    let random: String = {
        let mut rng = rand::rng();
        (0..KEY_RANDOM_CHARACTERS)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    };
    let key = format!("{KEY_PREFIX}{random}");
    sqlx::query("INSERT INTO api_keys (tenant_id, name, key_prefix, key_sha256) VALUES ($1, $2, $3, $4)")
        .bind(tenant_id)
        .bind(name)
        .bind(&key[..KEY_PREFIX.len() + 6])
        .bind(sha256_hex(&key))
        .execute(pool)
        .await?;
    Ok(key)
}

/// The tenant a live key belongs to.
pub async fn tenant_of_key(pool: &PgPool, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT tenant_id FROM api_keys WHERE key_sha256 = $1 AND revoked_at IS NULL")
        .bind(sha256_hex(key))
        .fetch_optional(pool)
        .await
}
