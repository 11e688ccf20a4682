//! Bearer API keys scoped to a tenant. A key is `adl_` and 40 random letters and digits; only its SHA-256
//! is stored, so a leaked database holds no usable key.

use adloop_service_kit::bearer_tokens::{new_bearer_token, token_sha256};
use sqlx::PgPool;

const KEY_PREFIX: &str = "adl_";

/// A tenant id: 1 to 100 ASCII letters, digits, `-`, `_` or `.`. Tenant ids name audit actors
/// (`api:<tenant>`), log fields and metric labels, so spaces, control characters and look-alike letters
/// are kept out.
pub fn is_valid_tenant_id(tenant_id: &str) -> bool {
    (1..=100).contains(&tenant_id.len())
        && tenant_id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// A key's label: at most 100 characters, none of them a control character.
pub fn is_valid_key_name(name: &str) -> bool {
    name.chars().count() <= 100 && !name.chars().any(char::is_control)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_short_plain_identifiers() {
        for good in ["acme", "dev", "month-20261204T031500", "tenant_b.eu", &"a".repeat(100)] {
            assert!(is_valid_tenant_id(good), "{good:?}");
        }
        for bad in ["", " acme", "acme ", "ac me", "acme\n", "acmé", &"a".repeat(101)] {
            assert!(!is_valid_tenant_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn key_names_are_labels_without_control_characters() {
        assert!(is_valid_key_name(""));
        assert!(is_valid_key_name("make run month"));
        assert!(is_valid_key_name(&"é".repeat(100)));
        assert!(!is_valid_key_name(&"é".repeat(101)));
        assert!(!is_valid_key_name("two\nlines"));
    }
}
