//! Attributed conversions from capi-relay towards ml-service's learner, through the real services: an
//! accepted event that names its ad is queued in the same commit that stores it (and only once, however
//! often it is re-sent); an event without an ad is not; the forwarder hands it to ml-service's learner,
//! which logs it exactly once.

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
async fn attributed_conversions_are_queued_with_their_event_and_reach_the_learner_once() {
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
    // Acknowledged means queued: no waiting for the forwarder. It polls every 50 ms, so on a busy machine it
    // may have handed the conversion to ml-service already (and emptied the outbox) by the time we look.
    let ml_pool = sqlx::PgPool::connect(&format!("{}?options=-csearch_path%3Dml", database.url))
        .await
        .unwrap();
    let queued: Vec<(String, String, Value)> =
        sqlx::query_as("SELECT event_id, ad_id, custom_data FROM learning_outbox ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let logged_so_far: Vec<String> = sqlx::query_scalar("SELECT event_id FROM learning_events")
        .fetch_all(&ml_pool)
        .await
        .unwrap();
    assert!(
        queued.len() <= 1,
        "one attributed conversion, queued once although sent twice: {queued:?}"
    );
    match queued.first() {
        Some((event_id, ad_id, custom_data)) => {
            assert_eq!((event_id.as_str(), ad_id.as_str()), ("order-1", "120330000000000001"));
            assert_eq!(custom_data["value"], json!(42.99));
        }
        None => assert_eq!(
            logged_so_far,
            vec![format!("capi:{PIXEL}:Purchase:order-1")],
            "acknowledged, so queued or already forwarded"
        ),
    }

    // The forwarder hands the conversion to ml-service's learner, which logs it once (durably) and
    // borrows the ad's creative features it learned earlier.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM learning_outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the conversion was never forwarded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    type LoggedConversion = (String, String, f64, Option<i64>, Option<String>);
    let logged: Vec<LoggedConversion> = sqlx::query_as(
        "SELECT event_id, ad_id, conversions, value_minor_units, currency FROM learning_events ORDER BY seq",
    )
    .fetch_all(&ml_pool)
    .await
    .unwrap();
    assert_eq!(
        logged,
        vec![(
            format!("capi:{PIXEL}:Purchase:order-1"),
            "120330000000000001".to_owned(),
            1.0,
            Some(4299),
            Some("USD".to_owned())
        )]
    );
}
