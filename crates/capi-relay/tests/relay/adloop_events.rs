//! `POST /v1/events`: adloop's own event shape (plain customer field names, money in minor units, the
//! attributed ad) stored exactly as a drop-in event would be, with refusals naming the client's fields.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::ingest::{PIXEL, Relay, spawn_relay_with};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn purchase(event_id: Option<&str>) -> Value {
    let mut event = json!({
        "event_name": "Purchase",
        "event_time": now() - 30,
        "action_source": "website",
        "event_source_url": "https://shop.example/checkout",
        "customer": {
            "email": " Ana.Silva@Example.com ",
            "phone": "+1 (650) 555-1212",
            "first_name": "Ana",
            "client_user_agent": "Mozilla/5.0",
        },
        "value_minor": 4299,
        "currency": "USD",
        "ad_id": "120330000000000001",
    });
    if let Some(event_id) = event_id {
        event["event_id"] = json!(event_id);
    }
    event
}

async fn post(relay: &Relay, body: &Value, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/events", relay.base_url))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn stored_bodies(relay: &Relay) -> Vec<Value> {
    sqlx::query_scalar("SELECT body FROM events ORDER BY event_id")
        .fetch_all(&relay.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn plain_names_and_minor_units_are_stored_in_metas_shape_hashed() {
    let relay = spawn_relay_with(&[]).await;
    let body = json!({ "pixel_id": PIXEL, "events": [purchase(Some("order-1")), purchase(None)] });
    let (status, answer) = post(&relay, &body, Some(&relay.token)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stored"], 2);
    assert_eq!(answer["accepted"][0], json!({ "index": 0, "event_id": "order-1" }));
    let derived_id = answer["accepted"][1]["event_id"].as_str().unwrap().to_owned();
    assert!(derived_id.starts_with("adl-"), "{answer}");

    let stored = stored_bodies(&relay).await;
    let order = stored.iter().find(|body| body["event_id"] == "order-1").unwrap();
    assert_eq!(order["user_data"]["em"], json!(sha256_hex("ana.silva@example.com")));
    assert_eq!(order["user_data"]["ph"], json!(sha256_hex("16505551212")));
    assert_eq!(order["user_data"]["fn"], json!(sha256_hex("ana")));
    assert_eq!(order["user_data"]["client_user_agent"], "Mozilla/5.0");
    assert_eq!(
        order["custom_data"],
        json!({ "value": 42.99, "currency": "USD", "ad_id": "120330000000000001" })
    );
    let everything = serde_json::to_string(&stored).unwrap();
    assert!(
        !everything.contains("Silva") && !everything.contains("555-1212"),
        "raw PII stored"
    );

    // The same request again is de-duplicated, the derived id included.
    let (_, again) = post(&relay, &body, Some(&relay.token)).await;
    assert_eq!(
        (again["stored"].as_u64(), again["deduplicated"].as_u64()),
        (Some(0), Some(2))
    );
    let status_of_derived = reqwest::Client::new()
        .get(format!("{}/v1/events/{derived_id}?pixel_id={PIXEL}", relay.base_url))
        .bearer_auth(&relay.token)
        .send()
        .await
        .unwrap();
    assert_eq!(status_of_derived.status().as_u16(), 200);
}

#[tokio::test]
async fn refusals_name_the_clients_field_and_store_nothing_unless_partial() {
    let relay = spawn_relay_with(&[]).await;
    let mut bad_phone = purchase(Some("order-2"));
    bad_phone["customer"]["phone"] = json!("12");
    let mut unknown_field = purchase(Some("order-3"));
    unknown_field["customer"]["mail"] = json!("x@example.com");

    let cases = [
        (bad_phone.clone(), "events[0].customer.phone"),
        (unknown_field, "events[0].customer.mail"),
        (
            json!({ "event_name": "Purchase", "value_minor": 100 }),
            "events[0].currency",
        ),
    ];
    for (event, field) in cases {
        let (status, answer) = post(
            &relay,
            &json!({ "pixel_id": PIXEL, "events": [event] }),
            Some(&relay.token),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "invalid_argument");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    assert!(stored_bodies(&relay).await.is_empty());

    let body = json!({ "pixel_id": PIXEL, "partial": true, "events": [purchase(Some("order-1")), bad_phone] });
    let (status, answer) = post(&relay, &body, Some(&relay.token)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["stored"], 1);
    assert_eq!(answer["refused"][0]["index"], 1);
    assert_eq!(answer["refused"][0]["field"], "events[1].customer.phone");
    assert_eq!(stored_bodies(&relay).await.len(), 1);
}

#[tokio::test]
async fn the_token_is_required_and_scoped_to_its_pixels() {
    let relay = spawn_relay_with(&[]).await;
    let body = json!({ "pixel_id": PIXEL, "events": [purchase(Some("order-1"))] });
    let (status, answer) = post(&relay, &body, None).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = post(&relay, &body, Some("adlr_not-a-token")).await;
    assert_eq!(status, 401);
    let other_pixel = json!({ "pixel_id": "100000000000009", "events": [purchase(Some("order-1"))] });
    let (status, answer) = post(&relay, &other_pixel, Some(&relay.token)).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (403, Some("pixel_id")));
    assert!(stored_bodies(&relay).await.is_empty());
}
