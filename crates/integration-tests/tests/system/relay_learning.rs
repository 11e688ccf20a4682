//! Attributed conversions from capi-relay towards ml-service's learner, through the real services: an
//! accepted event that names its ad is queued in the same commit that stores it (and only once, however
//! often it is re-sent); an event without an ad is not; and while ml-service does not take the conversion,
//! it waits in the outbox with the reason — never dropped.

use adloop_test_support::TestDatabase;
use serde_json::{Value, json};

use crate::helpers::{spawn_capi_relay_with, spawn_ml_service};

const PIXEL: &str = "100000000000001";

fn purchase(order: &str, ad_id: Option<&str>) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut event = json!({
        "event_name": "Purchase",
        "event_time": now - 30,
        "event_id": order,
        "action_source": "email",
        "customer": { "email": "ana@example.com" },
        "value_minor": 4299,
        "currency": "USD",
    });
    if let Some(ad_id) = ad_id {
        event["ad_id"] = json!(ad_id);
    }
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributed_conversions_are_queued_with_their_event_and_wait_for_the_learner() {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service(&database).await;
    let endpoint = ml_service.base_url();
    let relay = spawn_capi_relay_with(
        &database,
        &[
            ("ADLOOP_LEARNING__ENABLED", "true"),
            ("ADLOOP_LEARNING__ML_SERVICE_ENDPOINT", &endpoint),
            ("ADLOOP_LEARNING__POLL_INTERVAL_MILLISECONDS", "50"),
        ],
    )
    .await;
    let pool = sqlx::PgPool::connect(&format!("{}?options=-csearch_path%3Dcapi", database.url))
        .await
        .unwrap();
    let token = capi_relay::sources::create_source(&pool, "shop", &[PIXEL.to_owned()])
        .await
        .unwrap();
    let body = json!({
        "pixel_id": PIXEL,
        "events": [purchase("order-1", Some("120330000000000001")), purchase("order-2", None)],
    });
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let answer = http
            .post(format!("{}/v1/events", relay.base_url()))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200);
    }
    // Acknowledged means queued: no waiting for the forwarder.
    let queued: Vec<(String, String, Value)> =
        sqlx::query_as("SELECT event_id, ad_id, custom_data FROM learning_outbox ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        queued.len(),
        1,
        "one attributed conversion, queued once although sent twice: {queued:?}"
    );
    assert_eq!(
        (queued[0].0.as_str(), queued[0].1.as_str()),
        ("order-1", "120330000000000001")
    );
    assert_eq!(queued[0].2["value"], json!(42.99));

    // ml-service does not serve RecordEvent yet: the forwarder tries, and the conversion waits with why.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (attempts, last_error): (i32, Option<String>) =
            sqlx::query_as("SELECT attempt, last_error FROM learning_outbox WHERE event_id = 'order-1'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if let Some(last_error) = last_error {
            assert!(attempts >= 1);
            assert!(last_error.contains("Unimplemented"), "{last_error}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the forwarder never tried");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let state: String = sqlx::query_scalar("SELECT state FROM learning_outbox WHERE event_id = 'order-1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(state, "pending", "kept for when ml-service takes it");
}
