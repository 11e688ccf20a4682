use serde_json::{Value, json};

use crate::helpers::*;

const HASHED_EMAIL: &str = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b";

async fn now_unix(sim: &MetaSim) -> i64 {
    sim.get("_sim/clock").await.1["now_unix"].as_i64().unwrap()
}

fn purchase(event_id: &str, event_time: i64) -> Value {
    json!({
        "event_name": "Purchase",
        "event_time": event_time,
        "event_id": event_id,
        "action_source": "website",
        "event_source_url": "https://shop.example/checkout",
        "user_data": {"em": [HASHED_EMAIL], "client_user_agent": "Mozilla/5.0", "fbp": "fb.1.1596403881668.1116446470"},
        "custom_data": {"value": 49.5, "currency": "USD"}
    })
}

async fn send(sim: &MetaSim, events: Vec<Value>) -> (u16, Value) {
    sim.post_json(
        &format!("{VERSION}/{PIXEL_ID}/events"),
        &json!({"data": events, "access_token": TOKEN}),
    )
    .await
}

async fn stored_counts(sim: &MetaSim) -> Value {
    sim.get(&format!("_sim/capi/events?pixel_id={PIXEL_ID}")).await.1["counts"].clone()
}

#[tokio::test]
async fn valid_events_are_received_and_stored() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    let (status, body) = send(&sim, vec![purchase("order-1", now - 60), purchase("order-2", now - 30)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events_received"], 2);
    assert_eq!(body["messages"], json!([]));
    assert!(body["fbtrace_id"].as_str().is_some());
    assert_eq!(
        stored_counts(&sim).await,
        json!({"received": 2, "unique": 2, "deduplicated": 0})
    );
}

#[tokio::test]
async fn form_bodies_with_data_as_a_json_string_are_accepted_as_the_sdks_send_them() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    // The Python SDK encodes each event as its own JSON string inside the data array.
    let data = Value::Array(vec![Value::String(purchase("order-9", now).to_string())]).to_string();
    let (status, body) = sim
        .post_form(
            &format!("{VERSION}/{PIXEL_ID}/events"),
            &[
                ("data", &data),
                ("access_token", TOKEN),
                ("test_event_code", "TEST123"),
                ("partner_agent", "adloop"),
            ],
        )
        .await;
    assert_eq!((status, body["events_received"].clone()), (200, json!(1)), "{body}");
    let (_, stored) = sim.get("_sim/capi/events").await;
    assert_eq!(stored["events"][0]["test_event_code"], "TEST123");
    assert_eq!(stored["events"][0]["partner_agent"], "adloop");
}

#[tokio::test]
async fn one_unhashed_email_rejects_the_whole_request_with_2804016() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    let mut bad = purchase("order-2", now);
    bad["user_data"]["em"] = json!("person@example.com");
    let (status, body) = send(&sim, vec![purchase("order-1", now), bad]).await;
    assert_eq!((status, error_code(&body)), (400, (100, Some(2_804_016))));
    assert!(body["error"]["message"].as_str().unwrap().contains("data[1]"));
    assert_eq!(
        stored_counts(&sim).await["received"],
        0,
        "nothing from a rejected request is kept"
    );
}

#[tokio::test]
async fn events_older_than_7_days_are_rejected_but_store_events_may_be_62_days_old() {
    let sim = spawn_meta_sim(&[]).await;
    sim.advance_hours(24.0 * 70.0).await;
    let now = now_unix(&sim).await;
    let (_, body) = send(&sim, vec![purchase("old", now - 8 * 86_400)]).await;
    assert_eq!(error_code(&body).0, 100);
    assert!(body["error"]["message"].as_str().unwrap().contains("7 days"));

    let store_event = json!({
        "event_name": "Purchase", "event_time": now - 40 * 86_400, "action_source": "physical_store",
        "user_data": {"ph": [HASHED_EMAIL]}
    });
    assert_eq!(send(&sim, vec![store_event.clone()]).await.0, 200);
    let mut too_old_store_event = store_event;
    too_old_store_event["event_time"] = json!(now - 63 * 86_400);
    assert_eq!(send(&sim, vec![too_old_store_event]).await.0, 400);
}

#[tokio::test]
async fn required_fields_and_enums_are_enforced() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    type BreakEvent = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(BreakEvent, &str)> = vec![
        (
            Box::new(|event| {
                event.as_object_mut().unwrap().remove("event_name");
            }),
            "event_name",
        ),
        (
            Box::new(|event| {
                event.as_object_mut().unwrap().remove("action_source");
            }),
            "action_source",
        ),
        (Box::new(|event| event["action_source"] = json!("fax")), "action_source"),
        (
            Box::new(|event| {
                event.as_object_mut().unwrap().remove("event_source_url");
            }),
            "event_source_url",
        ),
        (
            Box::new(|event| {
                event["user_data"].as_object_mut().unwrap().remove("client_user_agent");
            }),
            "client_user_agent",
        ),
        (Box::new(|event| event["user_data"]["fbp"] = json!(HASHED_EMAIL)), "fbp"),
        (
            Box::new(|event| event["user_data"]["client_ip_address"] = json!("not-an-ip")),
            "client_ip_address",
        ),
        (
            Box::new(|event| event["custom_data"]["currency"] = json!("dollars")),
            "currency",
        ),
    ];
    for (break_event, field) in cases {
        let mut event = purchase("order-1", now);
        break_event(&mut event);
        let (status, body) = send(&sim, vec![event]).await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{field}: {body}"
        );
    }
    assert_eq!(stored_counts(&sim).await["received"], 0);
}

#[tokio::test]
async fn at_most_1000_events_per_request() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    let events: Vec<Value> = (0..1001)
        .map(|index| purchase(&format!("order-{index}"), now))
        .collect();
    let (status, body) = send(&sim, events).await;
    assert_eq!((status, error_code(&body).0), (400, 100));
    let events: Vec<Value> = (0..1000)
        .map(|index| purchase(&format!("order-{index}"), now))
        .collect();
    assert_eq!(send(&sim, events).await.1["events_received"], 1000);
}

#[tokio::test]
async fn repeats_of_an_event_id_within_48_hours_are_received_but_deduplicated() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    send(&sim, vec![purchase("order-1", now)]).await;
    let (status, body) = send(&sim, vec![purchase("order-1", now)]).await;
    assert_eq!((status, body["events_received"].clone()), (200, json!(1)));
    assert_eq!(
        stored_counts(&sim).await,
        json!({"received": 2, "unique": 1, "deduplicated": 1})
    );

    // 47 simulated hours after the first sighting: still within the window.
    sim.advance_hours(47.0).await;
    send(&sim, vec![purchase("order-1", now_unix(&sim).await)]).await;
    assert_eq!(
        stored_counts(&sim).await,
        json!({"received": 3, "unique": 1, "deduplicated": 2})
    );
    // 49 hours after it: past the window, the same id counts again.
    sim.advance_hours(2.0).await;
    send(&sim, vec![purchase("order-1", now_unix(&sim).await)]).await;
    assert_eq!(
        stored_counts(&sim).await,
        json!({"received": 4, "unique": 2, "deduplicated": 2})
    );
}

#[tokio::test]
async fn tokens_and_pixels_are_checked() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    let (_, body) = sim
        .post_json(
            &format!("{VERSION}/{PIXEL_ID}/events"),
            &json!({"data": [purchase("a", now)], "access_token": "nope"}),
        )
        .await;
    assert_eq!(error_code(&body).0, 190);
    let (_, body) = sim
        .post_json(
            &format!("{VERSION}/999/events"),
            &json!({"data": [purchase("a", now)], "access_token": TOKEN}),
        )
        .await;
    assert_eq!(error_code(&body), (100, Some(33)));
}
