//! The relay's event store in Postgres: validated events (their `user_data` already hashed) are written in
//! one statement per request and committed before the relay answers; a repeat of (pixel, event name, event
//! id) is stored once. An event without `event_id` gets one derived from its content, so a client that
//! retries the same event without an id is still de-duplicated.

use adloop_capi_events::event::ValidatedEvent;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("event store database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// What storing a request's events did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stored {
    /// Events written now.
    pub stored: usize,
    /// Events already stored (same pixel, event name and event id).
    pub deduplicated: usize,
}

/// The id an event goes by: the client's, or one derived from the event itself (`adl-` and 32 hex digits
/// of the SHA-256 of its canonical JSON, hashed user_data included), the same for every retry of it.
pub fn event_id_of(event: &ValidatedEvent) -> (String, bool) {
    if let Some(event_id) = &event.event_id {
        return (event_id.clone(), false);
    }
    // serde_json keeps object keys sorted, so equal events give equal text.
    let canonical = Value::Object(event.body.clone()).to_string();
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest.iter().take(16).map(|byte| format!("{byte:02x}")).collect();
    (format!("adl-{hex}"), true)
}

/// Stores `events` of `pixel_id` sent by source `source_id` in one statement (committed when this returns).
pub async fn store_events(
    pool: &PgPool,
    pixel_id: &str,
    source_id: i64,
    events: &[ValidatedEvent],
) -> Result<Stored, StoreError> {
    if events.is_empty() {
        return Ok(Stored::default());
    }
    let mut event_ids = Vec::with_capacity(events.len());
    let mut derived = Vec::with_capacity(events.len());
    for event in events {
        let (event_id, was_derived) = event_id_of(event);
        let mut body = event.body.clone();
        body.insert("event_id".into(), Value::String(event_id.clone()));
        event_ids.push((event_id, body));
        derived.push(was_derived);
    }
    let (ids, bodies): (Vec<String>, Vec<Value>) = event_ids
        .into_iter()
        .map(|(event_id, body)| (event_id, Value::Object(body)))
        .unzip();
    let names: Vec<&str> = events.iter().map(|event| event.event_name.as_str()).collect();
    let times: Vec<i64> = events.iter().map(|event| event.event_time).collect();
    let sources: Vec<&str> = events.iter().map(|event| event.action_source.as_str()).collect();
    let inserted = sqlx::query(
        "INSERT INTO events (pixel_id, source_id, event_id, event_name, event_time, action_source, \
             event_id_derived, body) \
         SELECT $1, $8, event_id, event_name, event_time, action_source, derived, body \
         FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::bool[], $7::jsonb[]) \
             AS new(event_id, event_name, event_time, action_source, derived, body) \
         ON CONFLICT (pixel_id, event_name, event_id) DO NOTHING",
    )
    .bind(pixel_id)
    .bind(&ids)
    .bind(&names)
    .bind(&times)
    .bind(&sources)
    .bind(&derived)
    .bind(&bodies)
    .bind(source_id)
    .execute(pool)
    .await?
    .rows_affected() as usize;
    Ok(Stored {
        stored: inserted,
        deduplicated: events.len() - inserted,
    })
}

/// Where the events with `event_id` on `pixel_id` (and `event_name`, if given) stand: name, state, attempts,
/// when received and delivered (Unix seconds), and Meta's last error.
pub async fn event_status(
    pool: &PgPool,
    pixel_id: &str,
    event_id: &str,
    event_name: Option<&String>,
) -> Result<Vec<Value>, StoreError> {
    type StatusRow = (String, String, i32, f64, Option<f64>, Option<Value>);
    let rows: Vec<StatusRow> = sqlx::query_as(
        "SELECT event_name, state, attempt, EXTRACT(EPOCH FROM received_at)::float8, \
             EXTRACT(EPOCH FROM delivered_at)::float8, last_error \
         FROM events WHERE pixel_id = $1 AND event_id = $2 AND ($3::text IS NULL OR event_name = $3) ORDER BY id",
    )
    .bind(pixel_id)
    .bind(event_id)
    .bind(event_name)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, state, attempts, received_at, delivered_at, last_error)| {
            serde_json::json!({
                "event_id": event_id,
                "event_name": name,
                "state": state,
                "attempts": attempts,
                "received_at_unix": received_at,
                "delivered_at_unix": delivered_at,
                "last_error": last_error,
            })
        })
        .collect())
}
