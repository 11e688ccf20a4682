//! The event store: committed once per (pixel, event name, event id), raw PII never stored, an id derived
//! for events that came without one so their retries are stored once too.

use adloop_capi_events::event::{TimeRules, validate_event};
use adloop_capi_events::user_data::NormaliseSettings;
use adloop_config::DatabaseSettings;
use adloop_test_support::TestDatabase;
use capi_relay::store::store_events;
use serde_json::{Value, json};
use sqlx::PgPool;

const NOW: i64 = 1_780_000_000;

pub async fn relay_database() -> PgPool {
    let database = TestDatabase::create().await;
    let settings: DatabaseSettings = serde_json::from_value(json!({
        "url": database.url, "schema": "capi", "max_connections": 4, "connect_timeout_seconds": 5,
    }))
    .unwrap();
    adloop_service_kit::postgres::connect_and_migrate(&settings, &capi_relay::startup::MIGRATOR)
        .await
        .unwrap()
}

/// The id of a new ingest source for `pixels` (the database's only one).
async fn source_for(pool: &PgPool, pixels: &[&str]) -> i64 {
    let pixels: Vec<String> = pixels.iter().map(|pixel| (*pixel).to_owned()).collect();
    capi_relay::sources::create_source(pool, "test", &pixels).await.unwrap();
    sqlx::query_scalar("SELECT id FROM ingest_sources")
        .fetch_one(pool)
        .await
        .unwrap()
}

fn purchase(event_id: Option<&str>, email: &str) -> adloop_capi_events::event::ValidatedEvent {
    let mut event = json!({
        "event_name": "Purchase",
        "event_time": NOW - 30,
        "action_source": "email",
        "user_data": { "em": email },
        "custom_data": { "value": 10, "currency": "EUR" },
    });
    if let Some(event_id) = event_id {
        event["event_id"] = json!(event_id);
    }
    validate_event(0, &event, NOW, &TimeRules::default(), &NormaliseSettings::default()).unwrap()
}

#[tokio::test]
async fn each_event_is_stored_once_and_only_its_hashes() {
    let pool = relay_database().await;
    let source = source_for(&pool, &["100000000000001", "100000000000002"]).await;
    let first = store_events(
        &pool,
        "100000000000001",
        source,
        &[
            purchase(Some("order-1"), "Ana@Example.com"),
            purchase(None, "bo@example.com"),
        ],
    )
    .await
    .unwrap();
    assert_eq!((first.stored, first.deduplicated), (2, 0));

    // A retry of both (the second still without an id) and a repeat within one request.
    let again = store_events(
        &pool,
        "100000000000001",
        source,
        &[
            purchase(Some("order-1"), "Ana@Example.com"),
            purchase(None, "bo@example.com"),
            purchase(Some("order-2"), "cy@example.com"),
            purchase(Some("order-2"), "cy@example.com"),
        ],
    )
    .await
    .unwrap();
    assert_eq!((again.stored, again.deduplicated), (1, 3));
    // The same event id on another pixel is another event.
    let other_pixel = store_events(
        &pool,
        "100000000000002",
        source,
        &[purchase(Some("order-1"), "Ana@Example.com")],
    )
    .await
    .unwrap();
    assert_eq!(other_pixel.stored, 1);

    let rows: Vec<(String, bool, Value)> =
        sqlx::query_as("SELECT event_id, event_id_derived, body FROM events ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 4);
    let derived: Vec<_> = rows.iter().filter(|row| row.1).collect();
    assert_eq!(derived.len(), 1, "only the event sent without an id gets one: {rows:?}");
    assert!(derived[0].0.starts_with("adl-"), "{:?}", derived[0]);
    assert_eq!(
        derived[0].2["event_id"],
        derived[0].0.as_str(),
        "the body carries the id it is sent with"
    );
    let everything = serde_json::to_string(&rows.iter().map(|row| &row.2).collect::<Vec<_>>()).unwrap();
    for raw in ["Ana@Example.com", "ana@example.com", "bo@example.com"] {
        assert!(!everything.contains(raw), "raw PII stored: {raw}");
    }
}

#[tokio::test]
async fn a_test_copy_never_stands_for_the_production_event_and_never_teaches_the_learner() {
    use capi_relay::store::{EventRow, credit_requests, insert_rows_with_outbox};

    let pool = relay_database().await;
    let source = source_for(&pool, &["100000000000001"]).await;
    let mut attributed = purchase(Some("order-7"), "ana@example.com");
    attributed.body.insert(
        "custom_data".into(),
        json!({ "value": 10, "currency": "EUR", "ad_id": "120330000000000001" }),
    );
    let row = |test_code: Option<&str>| EventRow::new("100000000000001", source, attributed.clone(), test_code);
    let store = |rows: Vec<EventRow>| {
        let pool = pool.clone();
        async move {
            let inserted = insert_rows_with_outbox(&pool, &rows.iter().collect::<Vec<_>>(), true)
                .await
                .unwrap();
            credit_requests(&[&rows], &inserted)[0]
        }
    };
    // A developer sends the event to the test view first, then production sends the real one.
    let test_copy = store(vec![row(Some("TEST123"))]).await;
    let production = store(vec![row(None)]).await;
    let repeated_test = store(vec![row(Some("TEST123"))]).await;
    let other_test_code = store(vec![row(Some("TEST999"))]).await;
    assert_eq!(
        [test_copy, production, repeated_test, other_test_code].map(|stored| (stored.stored, stored.deduplicated)),
        [(1, 0), (1, 0), (0, 1), (1, 0)],
        "test events repeat only test events with their code"
    );
    let production_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_id = 'order-7' AND test_event_code IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        production_rows, 1,
        "the production event is stored and will be delivered"
    );
    let queued_for_learning: i64 = sqlx::query_scalar("SELECT count(*) FROM learning_outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(queued_for_learning, 1, "only the production event teaches the learner");
}
