//! The relay's event store in Postgres: validated events (their `user_data` already hashed) are written in
//! one statement per request, or per group of concurrent requests (`group_commit`), and committed before
//! the relay answers; a repeat of (pixel, event name, event id) is stored once (a test event repeats only
//! test events with the same code). An event without `event_id` gets one derived from its content, so a
//! client that retries the same event without an id is still de-duplicated.

pub mod group_commit;

use std::collections::HashSet;

use adloop_capi_events::event::ValidatedEvent;
use adloop_capi_events::user_data::hashing::lowercase_hex;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("event store database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event store database error (for a group of requests): {0}")]
    Group(String),
}

/// What storing a request's events did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stored {
    /// Events written now.
    pub stored: usize,
    /// Events already stored (same pixel, event name and event id, and test code if any).
    pub deduplicated: usize,
}

/// The id an event goes by: the client's, or one derived from the event itself (`adl-` and 32 hex digits
/// of the SHA-256 of its canonical JSON, hashed user_data included), the same for every retry of it.
pub fn event_id_of(event: &ValidatedEvent) -> (String, bool) {
    if let Some(event_id) = &event.event_id {
        return (event_id.clone(), false);
    }
    // serde_json keeps object keys sorted, so equal events give equal text.
    let canonical = serde_json::to_string(&event.body).unwrap_or_default();
    let digest = Sha256::digest(canonical.as_bytes());
    (format!("adl-{}", lowercase_hex(&digest[..16])), true)
}

/// One event as it is written: its row in `events`.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub pixel_id: String,
    pub source_id: i64,
    pub event_id: String,
    pub event_id_derived: bool,
    pub event_name: String,
    pub event_time: i64,
    pub action_source: String,
    /// The event as it will be sent to Meta, `event_id` included.
    pub body: Value,
    /// Sent with Meta's `test_event_code` (Events Manager's test view only).
    pub test_event_code: Option<String>,
}

impl EventRow {
    /// The row of `event` sent to `pixel_id` by source `source_id`.
    pub fn new(pixel_id: &str, source_id: i64, event: ValidatedEvent, test_event_code: Option<&str>) -> EventRow {
        let (event_id, event_id_derived) = event_id_of(&event);
        let mut body = event.body;
        body.insert("event_id".into(), Value::String(event_id.clone()));
        EventRow {
            pixel_id: pixel_id.to_owned(),
            source_id,
            event_id,
            event_id_derived,
            event_name: event.event_name,
            event_time: event.event_time,
            action_source: event.action_source,
            body: Value::Object(body),
            test_event_code: test_event_code.map(str::to_owned),
        }
    }

    /// Meta's de-duplication key and the relay's: (pixel, event name, event id), and the test code (empty for
    /// production events), so a test copy never stands for a production event.
    pub fn key(&self) -> DeduplicationKey {
        (
            self.pixel_id.clone(),
            self.event_name.clone(),
            self.event_id.clone(),
            self.test_event_code.clone().unwrap_or_default(),
        )
    }
}

pub type DeduplicationKey = (String, String, String, String);

/// Inserts `rows` in one statement (one commit) and returns the keys it wrote; a row whose key is already
/// stored, or repeated in `rows`, is written once. Rows go in key order, so two statements that share keys
/// wait for each other instead of deadlocking. With `learning_outbox`, each newly stored event that names
/// its ad (`custom_data.ad_id`) is queued for ml-service's learner in the same statement — production events
/// only: test traffic must not teach the learner.
pub async fn insert_rows(pool: &PgPool, rows: &[&EventRow]) -> Result<HashSet<DeduplicationKey>, StoreError> {
    insert_rows_with_outbox(pool, rows, false).await
}

/// `insert_rows`, queueing attributed conversions for the learner when `learning_outbox` is on.
pub async fn insert_rows_with_outbox(
    pool: &PgPool,
    rows: &[&EventRow],
    learning_outbox: bool,
) -> Result<HashSet<DeduplicationKey>, StoreError> {
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    let mut ordered: Vec<&EventRow> = rows.to_vec();
    ordered.sort_by_cached_key(|row| row.key());
    let column = |value: fn(&EventRow) -> &str| -> Vec<&str> { ordered.iter().map(|row| value(row)).collect() };
    let pixels = column(|row| &row.pixel_id);
    let event_ids = column(|row| &row.event_id);
    let names = column(|row| &row.event_name);
    let action_sources = column(|row| &row.action_source);
    let sources: Vec<i64> = ordered.iter().map(|row| row.source_id).collect();
    let times: Vec<i64> = ordered.iter().map(|row| row.event_time).collect();
    let derived: Vec<bool> = ordered.iter().map(|row| row.event_id_derived).collect();
    let bodies: Vec<&Value> = ordered.iter().map(|row| &row.body).collect();
    let test_event_codes: Vec<Option<&str>> = ordered.iter().map(|row| row.test_event_code.as_deref()).collect();
    let inserted: Vec<DeduplicationKey> = sqlx::query_as(
        "WITH inserted AS ( \
             INSERT INTO events (pixel_id, source_id, event_id, event_name, event_time, action_source, \
                 event_id_derived, body, test_event_code) \
             SELECT pixel_id, source_id, event_id, event_name, event_time, action_source, derived, body, test_code \
             FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bool[], \
                 $8::jsonb[], $9::text[]) WITH ORDINALITY \
                 AS new(pixel_id, source_id, event_id, event_name, event_time, action_source, derived, body, \
                     test_code, position) \
             ORDER BY position \
             ON CONFLICT (pixel_id, event_name, event_id, (COALESCE(test_event_code, ''))) DO NOTHING \
             RETURNING pixel_id, event_name, event_id, COALESCE(test_event_code, '') AS test_code, event_time, body \
         ), \
         queued_for_learning AS ( \
             INSERT INTO learning_outbox (pixel_id, event_id, event_name, event_time, ad_id, custom_data) \
             SELECT pixel_id, event_id, event_name, event_time, body->'custom_data'->>'ad_id', body->'custom_data' \
             FROM inserted WHERE $10 AND test_code = '' AND body->'custom_data'->>'ad_id' IS NOT NULL \
         ) \
         SELECT pixel_id, event_name, event_id, test_code FROM inserted",
    )
    .bind(&pixels)
    .bind(&sources)
    .bind(&event_ids)
    .bind(&names)
    .bind(&times)
    .bind(&action_sources)
    .bind(&derived)
    .bind(&bodies)
    .bind(&test_event_codes)
    .bind(learning_outbox)
    .fetch_all(pool)
    .await?;
    Ok(inserted.into_iter().collect())
}

/// How many of each request's rows were written now: a key written by this statement counts for the first
/// request (in order) that holds it; the rest of the rows were de-duplicated.
pub fn credit_requests(requests: &[&[EventRow]], inserted: &HashSet<DeduplicationKey>) -> Vec<Stored> {
    let mut credited: HashSet<DeduplicationKey> = HashSet::new();
    requests
        .iter()
        .map(|rows| {
            let stored = rows
                .iter()
                .map(EventRow::key)
                .filter(|key| inserted.contains(key) && credited.insert(key.clone()))
                .count();
            Stored {
                stored,
                deduplicated: rows.len() - stored,
            }
        })
        .collect()
}

/// Stores `events` of `pixel_id` sent by source `source_id` in one statement (committed when this returns).
pub async fn store_events(
    pool: &PgPool,
    pixel_id: &str,
    source_id: i64,
    events: &[ValidatedEvent],
) -> Result<Stored, StoreError> {
    let rows: Vec<EventRow> = events
        .iter()
        .map(|event| EventRow::new(pixel_id, source_id, event.clone(), None))
        .collect();
    let inserted = insert_rows(pool, &rows.iter().collect::<Vec<_>>()).await?;
    Ok(credit_requests(&[&rows], &inserted)[0])
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
