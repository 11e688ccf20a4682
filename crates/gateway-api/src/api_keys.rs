//! Bearer API keys scoped to a tenant. A key is `adl_` and 40 random letters and digits; only its SHA-256
//! is stored, so a leaked database holds no usable key.

use adloop_service_kit::bearer_tokens::{new_bearer_token, token_sha256};
use sqlx::PgPool;

const KEY_PREFIX: &str = "adl_";

/// A new key for `tenant_id`; the returned key is the only copy.
pub async fn create_api_key(pool: &PgPool, tenant_id: &str, name: &str) -> Result<String, sqlx::Error> {
    let key = new_bearer_token(KEY_PREFIX);
    sqlx::query("INSERT INTO api_keys (tenant_id, name, key_prefix, key_sha256) VALUES ($1, $2, $3, $4)")
        .bind(tenant_id)
        .bind(name)
        .bind(&key[..KEY_PREFIX.len() + 6])
        .bind(token_sha256(&key))
        .execute(pool)
        .await?;
    Ok(key)
}

/// The tenant a live key belongs to.
pub async fn tenant_of_key(pool: &PgPool, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT tenant_id FROM api_keys WHERE key_sha256 = $1 AND revoked_at IS NULL")
        .bind(token_sha256(key))
        .fetch_optional(pool)
        .await
}
