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
        json!({"received": 2, "unique": 2, "deduplicated": 0, "browser": 0, "server": 2})
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
    assert_eq!(body["error"]["message"], "Invalid parameter", "as Meta words it");
    assert!(
        body["error"]["error_user_msg"].as_str().unwrap().contains("data[1]"),
        "{body}"
    );
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
    assert_eq!(error_code(&body), (100, Some(2_804_003)));
    assert_eq!(body["error"]["error_user_title"], "Event Timestamp Too Old");
    assert!(body["error"]["error_user_msg"].as_str().unwrap().contains("7 days"));

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
            body["error"]["error_user_msg"].as_str().unwrap().contains(field),
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
async fn with_server_deduplication_on_repeats_within_48_hours_are_received_but_deduplicated() {
    let sim = spawn_meta_sim(&[("ADLOOP_CAPI__DEDUPLICATE_SERVER_EVENTS", "true")]).await;
    let now = now_unix(&sim).await;
    send(&sim, vec![purchase("order-1", now)]).await;
    let (status, body) = send(&sim, vec![purchase("order-1", now)]).await;
    assert_eq!((status, body["events_received"].clone()), (200, json!(1)));
    assert_eq!(
        stored_counts(&sim).await,
        json!({"received": 2, "unique": 1, "deduplicated": 1, "browser": 0, "server": 2})
    );

    // 47 simulated hours after the first sighting: still within the window.
    sim.advance_hours(47.0).await;
    send(&sim, vec![purchase("order-1", now_unix(&sim).await)]).await;
    assert_eq!(
        stored_counts(&sim).await,
        json!({"received": 3, "unique": 1, "deduplicated": 2, "browser": 0, "server": 3})
    );
    // 49 hours after it: past the window, the same id counts again.
    sim.advance_hours(2.0).await;
    send(&sim, vec![purchase("order-1", now_unix(&sim).await)]).await;
    assert_eq!(
        stored_counts(&sim).await,
        json!({"received": 4, "unique": 2, "deduplicated": 2, "browser": 0, "server": 4})
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

#[tokio::test]
async fn by_default_a_server_event_sent_twice_counts_twice() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    send(&sim, vec![purchase("order-1", now)]).await;
    send(&sim, vec![purchase("order-1", now)]).await;
    assert_eq!(
        stored_counts(&sim).await,
        json!({"received": 2, "unique": 2, "deduplicated": 0, "browser": 0, "server": 2}),
        "Meta promises de-duplication between browser and server events, not of a repeated server event"
    );
}

#[tokio::test]
async fn the_sdks_name_part_keys_must_be_hashed_like_the_others() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    let mut hashed = purchase("order-1", now);
    for key in ["f5first", "f5last", "fi", "dobd", "dobm", "doby"] {
        hashed["user_data"][key] = json!(HASHED_EMAIL);
    }
    assert_eq!(send(&sim, vec![hashed]).await.0, 200);
    let mut clear = purchase("order-2", now);
    clear["user_data"]["f5first"] = json!("perso");
    let (_, body) = send(&sim, vec![clear]).await;
    assert_eq!(error_code(&body), (100, Some(2_804_016)), "{body}");
}

#[tokio::test]
async fn an_event_that_identifies_nobody_is_refused_with_2804050() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    let mut thin = purchase("order-1", now);
    thin["user_data"] = json!({"country": [HASHED_EMAIL], "client_user_agent": "Mozilla/5.0"});
    let (_, body) = send(&sim, vec![thin]).await;
    assert_eq!(error_code(&body), (100, Some(2_804_050)), "{body}");
    let mut by_ip_and_agent = purchase("order-2", now);
    by_ip_and_agent["user_data"] = json!({"client_ip_address": "203.0.113.9", "client_user_agent": "Mozilla/5.0"});
    assert_eq!(send(&sim, vec![by_ip_and_agent]).await.0, 200);
}

#[tokio::test]
async fn the_token_may_come_as_a_bearer_header_and_an_app_secret_demands_its_proof() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    let url = format!("{}/{VERSION}/{PIXEL_ID}/events", sim.base_url);
    let response = sim
        .http
        .post(&url)
        .header("Authorization", format!("Bearer {TOKEN}"))
        .json(&json!({"data": [purchase("order-1", now)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let guarded = spawn_meta_sim(&[("ADLOOP_ACCESS__APP_SECRET", "shh")]).await;
    let now = now_unix(&guarded).await;
    let path = format!("{VERSION}/{PIXEL_ID}/events");
    let body_with_proof = |proof: Option<&str>| {
        let mut body = json!({"data": [purchase("order-1", now)], "access_token": TOKEN});
        if let Some(proof) = proof {
            body["appsecret_proof"] = json!(proof);
        }
        body
    };
    let (_, body) = guarded.post_json(&path, &body_with_proof(None)).await;
    assert_eq!(error_code(&body).0, 100);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("appsecret_proof"),
        "{body}"
    );
    let (_, body) = guarded.post_json(&path, &body_with_proof(Some("00"))).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid appsecret_proof"),
        "{body}"
    );
    // HMAC-SHA256 of "meta-sim-dev-token" keyed with "shh" (Python: hmac.new(b"shh", token, sha256)).
    let right_proof = "e610fc285ae004925d407fe0b3cfab16fa940e16234a08e36597f2bf5eac5d40";
    let (status, body) = guarded.post_json(&path, &body_with_proof(Some(right_proof))).await;
    assert_eq!(status, 200, "the right proof: {body}");
}

#[tokio::test]
async fn limited_data_use_needs_its_country_and_state() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    let with_options = |options: Value, country: Option<i64>, state: Option<i64>| {
        let mut event = purchase("order-1", now);
        event["data_processing_options"] = options;
        if let Some(country) = country {
            event["data_processing_options_country"] = json!(country);
        }
        if let Some(state) = state {
            event["data_processing_options_state"] = json!(state);
        }
        event
    };
    for (event, accepted) in [
        (with_options(json!([]), None, None), true),
        (with_options(json!(["LDU"]), Some(1), Some(1000)), true),
        (with_options(json!(["LDU"]), None, None), false),
        (with_options(json!(["LDU"]), Some(1), None), false),
        (with_options(json!(["LDU"]), Some(7), Some(1000)), false),
        (with_options(json!(["LDU"]), Some(0), Some(0)), false),
        (with_options(json!(["GDPR"]), None, None), false),
    ] {
        let (status, body) = send(&sim, vec![event.clone()]).await;
        assert_eq!(status == 200, accepted, "{event}: {body}");
    }
    let mut geolocated = with_options(json!(["LDU"]), Some(0), Some(0));
    geolocated["user_data"]["client_ip_address"] = json!("203.0.113.9");
    assert_eq!(
        send(&sim, vec![geolocated]).await.0,
        200,
        "geolocation with the client's IP address"
    );
}

#[tokio::test]
async fn website_events_without_a_user_agent_are_refused_unless_the_setting_allows_them() {
    let mut without_agent = purchase("order-1", 0);
    without_agent["user_data"]
        .as_object_mut()
        .unwrap()
        .remove("client_user_agent");
    let strict = spawn_meta_sim(&[]).await;
    without_agent["event_time"] = json!(now_unix(&strict).await);
    assert_eq!(send(&strict, vec![without_agent.clone()]).await.0, 400);
    let lenient = spawn_meta_sim(&[("ADLOOP_CAPI__WEBSITE_EVENTS_REQUIRE_CLIENT_USER_AGENT", "false")]).await;
    assert_eq!(send(&lenient, vec![without_agent]).await.0, 200);
}

#[tokio::test]
async fn a_pixel_event_and_its_server_copy_count_once_and_unshared_ids_count_apart() {
    let sim = spawn_meta_sim(&[]).await;
    let now = now_unix(&sim).await;
    let pixel = |event_id: &str| {
        format!(
            "tr/?id={PIXEL_ID}&ev=Purchase&eid={event_id}&cd[value]=49.5&cd[currency]=USD&ts={}",
            now * 1000
        )
    };
    let response = sim
        .http
        .get(format!("{}/{}", sim.base_url, pixel("order-1")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/gif");
    sim.http
        .get(format!("{}/{}", sim.base_url, pixel("order-2")))
        .send()
        .await
        .unwrap();
    // The server sends both orders and a third the browser never reported (an ad blocker, say).
    let (status, body) = send(
        &sim,
        vec![
            purchase("order-1", now),
            purchase("order-2", now),
            purchase("order-3", now),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stored_counts(&sim).await,
        json!({"received": 5, "unique": 3, "deduplicated": 2, "browser": 2, "server": 3})
    );
    let (status, refused) = sim.get("tr?id=999&ev=Purchase").await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (400, Some("id")),
        "{refused}"
    );
    let (status, _) = sim.get(&format!("tr?id={PIXEL_ID}")).await;
    assert_eq!(status, 400, "an event name is required");
}
