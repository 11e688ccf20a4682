//! Ingest sources: who may send events, with which token, to which pixels. A token is `adlr_` and 40
//! random letters and digits; only its SHA-256 is stored.

use adloop_service_kit::bearer_tokens::{new_bearer_token, token_sha256};
use sqlx::PgPool;

const TOKEN_PREFIX: &str = "adlr_";

/// Meta's Test Events code: 1 to 64 printable characters (no control character, C0 or C1).
pub fn is_valid_test_event_code(code: &str) -> bool {
    !code.is_empty() && code.chars().count() <= 64 && !code.chars().any(char::is_control)
}

/// A source's name (a label for operators): 1 to 100 characters, not only spaces, no control character.
pub fn is_valid_source_name(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= 100 && !name.chars().any(char::is_control)
}

/// A pixel id: 1 to 20 digits (Meta's object ids are 64-bit numbers, at most 20 digits).
pub fn is_valid_pixel_id(pixel_id: &str) -> bool {
    (1..=20).contains(&pixel_id.len()) && pixel_id.bytes().all(|byte| byte.is_ascii_digit())
}

/// A source as the relay checks it on each request.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IngestSource {
    pub id: i64,
    pub name: String,
    pub pixel_ids: Vec<String>,
    /// Sent with every event of this source unless its request names one: Meta's test view only.
    pub test_event_code: Option<String>,
}

impl IngestSource {
    pub fn may_write(&self, pixel_id: &str) -> bool {
        self.pixel_ids.iter().any(|allowed| allowed == pixel_id)
    }
}

/// Creates a source allowed to write to `pixel_ids`; returns its token (the only copy).
pub async fn create_source(pool: &PgPool, name: &str, pixel_ids: &[String]) -> Result<String, sqlx::Error> {
    create_source_with_test_code(pool, name, pixel_ids, None).await
}

/// Creates a source whose events all go to Meta's test view with `test_event_code` (unless a request names
/// its own); returns its token.
pub async fn create_source_with_test_code(
    pool: &PgPool,
    name: &str,
    pixel_ids: &[String],
    test_event_code: Option<&str>,
) -> Result<String, sqlx::Error> {
    let token = new_bearer_token(TOKEN_PREFIX);
    sqlx::query("INSERT INTO ingest_sources (name, token_sha256, pixel_ids, test_event_code) VALUES ($1, $2, $3, $4)")
        .bind(name)
        .bind(token_sha256(&token))
        .bind(pixel_ids)
        .bind(test_event_code)
        .execute(pool)
        .await?;
    Ok(token)
}

/// Sources looked up by token, remembered for a short while so a busy relay does not ask Postgres on
/// every request: a revoked token keeps working for at most `remember_for`. Unknown tokens are not
/// remembered (a new source works at once, and guessing fills no memory).
#[derive(Clone)]
pub struct SourceCache {
    known: moka::future::Cache<String, IngestSource>,
}

impl SourceCache {
    pub fn new(remember_for: std::time::Duration) -> SourceCache {
        SourceCache {
            known: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(remember_for)
                .build(),
        }
    }

    /// The live source `token` belongs to.
    pub async fn source_of_token(&self, pool: &PgPool, token: &str) -> Result<Option<IngestSource>, sqlx::Error> {
        let token_hash = token_sha256(token);
        if let Some(source) = self.known.get(&token_hash).await {
            return Ok(Some(source));
        }
        let source = source_of_token_hash(pool, &token_hash).await?;
        if let Some(source) = &source {
            self.known.insert(token_hash, source.clone()).await;
        }
        Ok(source)
    }
}

/// The live source a token belongs to.
pub async fn source_of_token(pool: &PgPool, token: &str) -> Result<Option<IngestSource>, sqlx::Error> {
    source_of_token_hash(pool, &token_sha256(token)).await
}

async fn source_of_token_hash(pool: &PgPool, token_hash: &str) -> Result<Option<IngestSource>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, pixel_ids, test_event_code FROM ingest_sources WHERE token_sha256 = $1 AND revoked_at IS NULL",
    )
        .bind(token_hash)
        .fetch_optional(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_event_codes_are_one_to_64_printable_characters() {
        assert!(is_valid_test_event_code("TEST4242"));
        assert!(is_valid_test_event_code(&"é".repeat(64)));
        assert!(!is_valid_test_event_code(&"é".repeat(65)));
        assert!(!is_valid_test_event_code(""));
        assert!(!is_valid_test_event_code("TEST\u{7}"));
        assert!(!is_valid_test_event_code("TEST\u{9b}"), "a C1 control character");
    }

    #[test]
    fn source_names_are_labels_without_control_characters() {
        assert!(is_valid_source_name("shop"));
        assert!(is_valid_source_name(&"é".repeat(100)), "characters, not bytes");
        assert!(!is_valid_source_name(&"é".repeat(101)));
        assert!(!is_valid_source_name("   "));
        assert!(!is_valid_source_name("shop\nfake log line"));
    }

    #[test]
    fn pixel_ids_are_one_to_twenty_digits() {
        assert!(is_valid_pixel_id("100000000000001"));
        assert!(!is_valid_pixel_id(""));
        assert!(!is_valid_pixel_id("zzz"));
        assert!(!is_valid_pixel_id("12 3"));
        assert!(is_valid_pixel_id(&"9".repeat(20)));
        assert!(!is_valid_pixel_id(&"1".repeat(21)), "longer than any 64-bit id");
    }
}
