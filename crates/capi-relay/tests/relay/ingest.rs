//! `POST /{version}/{pixel_id}/events` through the real relay: Meta's request shape (JSON or form), ingest
//! tokens scoped to pixels, one bad event refusing the request with nothing stored (unless partial=true),
//! re-sent events stored once.

use adloop_test_support::{TestDatabase, service_environment};
use capi_relay::settings::RelaySettings;
use capi_relay::startup::Application;
use serde_json::{Value, json};
use sqlx::PgPool;

pub const PIXEL: &str = "100000000000001";

pub struct Relay {
    pub base_url: String,
    pub pool: PgPool,
    pub token: String,
}

async fn spawn_relay() -> Relay {
    spawn_relay_with(&[]).await
}

pub async fn spawn_relay_with(overrides: &[(&str, &str)]) -> Relay {
    let database = TestDatabase::create().await;
    let mut environment = vec![("ADLOOP_INGEST__DEFAULT_CALLING_CODE", "1")];
    environment.extend_from_slice(overrides);
    let settings = RelaySettings::load(&service_environment(&database, &environment)).unwrap();
    let application = Application::build(settings).await.unwrap();
    let base_url = format!("http://{}", application.local_address());
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    let pool = PgPool::connect(&format!("{}?options=-csearch_path%3Dcapi", database.url))
        .await
        .unwrap();
    let token = capi_relay::sources::create_source(&pool, "shop", &[PIXEL.to_owned()])
        .await
        .unwrap();
    Relay { base_url, pool, token }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn purchase(order: &str) -> Value {
    json!({
        "event_name": "Purchase",
        "event_time": now() - 60,
        "action_source": "website",
        "event_source_url": "https://shop.example.com/checkout",
        "event_id": order,
        "user_data": { "em": "Person@Example.com", "ph": "(650) 555-1212", "client_user_agent": "Mozilla/5.0" },
        "custom_data": { "value": 42.5, "currency": "USD" },
    })
}

async fn stored_events(pool: &PgPool) -> Vec<Value> {
    sqlx::query_scalar("SELECT body FROM events ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn post_json(relay: &Relay, pixel: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v25.0/{pixel}/events", relay.base_url))
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn events_in_metas_shape_are_stored_once_hashed_and_acknowledged() {
    let relay = spawn_relay().await;
    let body = json!({ "data": [purchase("order-1"), purchase("order-2")], "access_token": relay.token });
    let (status, answer) = post_json(&relay, PIXEL, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["events_received"], 2);
    assert_eq!(answer["adloop"]["stored"], 2);

    // The same events again, as a form body with `data` as a JSON string and the token as a bearer.
    let form = format!(
        "data={}",
        adloop_service_kit::percent_encoding::percent_encode(
            &json!([purchase("order-1"), purchase("order-2")]).to_string()
        )
    );
    let response = reqwest::Client::new()
        .post(format!("{}/v25.0/{PIXEL}/events", relay.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .bearer_auth(&relay.token)
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        (
            answer["adloop"]["stored"].clone(),
            answer["adloop"]["deduplicated"].clone()
        ),
        (json!(0), json!(2))
    );

    let stored = stored_events(&relay.pool).await;
    assert_eq!(stored.len(), 2);
    let text = serde_json::to_string(&stored).unwrap();
    // The raw email and phone, in any form they could be stored (a bare "555" also occurs by chance in the
    // event time or a hash, which made this check flaky).
    for raw in [
        "Person@Example.com",
        "person@example.com",
        "(650) 555-1212",
        "6505551212",
    ] {
        assert!(!text.contains(raw), "raw PII stored: {raw}");
    }
    assert_eq!(
        stored[0]["user_data"]["em"],
        "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"
    );
}

#[tokio::test]
async fn tokens_are_required_and_scoped_to_their_pixels() {
    let relay = spawn_relay().await;
    let without_token = json!({ "data": [purchase("order-1")] });
    let (status, answer) = post_json(&relay, PIXEL, &without_token).await;
    assert_eq!((status, answer["error"]["code"].clone()), (401, json!(190)));
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );

    let wrong = json!({ "data": [purchase("order-1")], "access_token": "adlr_not-a-token" });
    assert_eq!(post_json(&relay, PIXEL, &wrong).await.0, 401);
    let other_pixel = json!({ "data": [purchase("order-1")], "access_token": relay.token });
    let (status, answer) = post_json(&relay, "100000000000009", &other_pixel).await;
    assert_eq!((status, answer["error"]["code"].clone()), (403, json!(200)));
    assert!(stored_events(&relay.pool).await.is_empty());
}

#[tokio::test]
async fn one_bad_event_refuses_the_request_unless_partial_is_asked_for() {
    let relay = spawn_relay().await;
    let mut stale = purchase("order-old");
    stale["event_time"] = json!(now() - 8 * 86_400);
    let body = json!({ "data": [purchase("order-1"), stale], "access_token": relay.token });
    let (status, answer) = post_json(&relay, PIXEL, &body).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("data[1].event_time"),
        "{answer}"
    );
    assert!(
        stored_events(&relay.pool).await.is_empty(),
        "nothing of a refused request is stored"
    );

    let mut partial = body;
    partial["partial"] = json!(true);
    let (status, answer) = post_json(&relay, PIXEL, &partial).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["events_received"].clone(), answer["adloop"]["refused"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(stored_events(&relay.pool).await.len(), 1);

    let metrics = reqwest::get(format!("{}/metrics", relay.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "adloop_relay_event_refusals_total{field=\"event_time\"} 2",
        "adloop_relay_events_total{outcome=\"refused\"} 3",
        "adloop_relay_events_total{outcome=\"stored\"} 1",
        // The match-quality estimate: of the pixel's one accepted event, one carried an email and a phone.
        "adloop_relay_pixel_events_total{pixel_id=\"100000000000001\"} 1",
        "adloop_relay_pixel_identifiers_total{pixel_id=\"100000000000001\",identifier=\"em\"} 1",
        "adloop_relay_pixel_identifiers_total{pixel_id=\"100000000000001\",identifier=\"ph\"} 1",
    ] {
        assert!(metrics.contains(expected), "{expected} in\n{metrics}");
    }
}

#[tokio::test]
async fn an_events_status_is_readable_with_a_token_for_its_pixel() {
    let relay = spawn_relay().await;
    let body = json!({ "data": [purchase("order-7")], "access_token": relay.token });
    assert_eq!(post_json(&relay, PIXEL, &body).await.0, 200);
    let client = reqwest::Client::new();
    let status = |path: String| {
        let request = client
            .get(format!("{}{path}", relay.base_url))
            .bearer_auth(&relay.token);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (code, answer) = status(format!("/v1/events/order-7?pixel_id={PIXEL}")).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["events"][0]["state"], "pending", "delivery is off in this relay");
    assert_eq!(answer["events"][0]["event_name"], "Purchase");
    assert_eq!(status(format!("/v1/events/order-8?pixel_id={PIXEL}")).await.0, 404);
    assert_eq!(
        status("/v1/events/order-7?pixel_id=100000000000009".into()).await.0,
        403
    );
    assert_eq!(status("/v1/events/order-7".into()).await.0, 400);
    let (code, refused) = status(format!("/v1/events/order%007?pixel_id={PIXEL}")).await;
    assert_eq!(
        (code, refused["error"]["field"].as_str()),
        (400, Some("event_id")),
        "{refused}"
    );
}

#[tokio::test]
async fn an_unknown_path_a_wrong_method_or_a_repeated_query_field_is_answered_with_an_error_that_says_so() {
    let relay = spawn_relay().await;
    let client = reqwest::Client::new();
    let response = client.get(format!("{}/v1/event", relay.base_url)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["message"], "no route GET /v1/event", "{answer}");

    let response = client
        .get(format!("{}/v1/events", relay.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "method_not_allowed", "{answer}");

    // A repeated query field on the drop-in route: Meta's error shape, naming the rule, not the token.
    let response = client
        .post(format!(
            "{}/v25.0/{PIXEL}/events?access_token=secret-one&access_token=secret-two",
            relay.base_url
        ))
        .json(&json!({ "data": [purchase("order-9")] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let answer = response.text().await.unwrap();
    assert!(
        answer.contains("may each appear once") && answer.contains("OAuthException"),
        "{answer}"
    );
    assert!(!answer.contains("secret-"), "{answer}");
}

/// The recovery plan's own check, with its body exactly as the plan shows it.
fn plan_body() -> Value {
    json!({
        "event_name": "Purchase",
        "event_time": now(),
        "user_data": { "em": "test@example.com" },
        "custom_data": { "value": 100, "currency": "USD" },
    })
}

#[tokio::test]
async fn the_plans_test_request_is_answered_with_its_hashes_and_stores_nothing() {
    let relay = spawn_relay().await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/meta/capi/test", relay.base_url))
        .bearer_auth(&relay.token)
        .json(&plan_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["accepted"], true);
    assert_eq!(answer["pixel_id"], PIXEL);
    assert_eq!(
        answer["event"]["user_data"]["em"],
        "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    );
    assert_eq!(answer["defaulted"], json!(["action_source"]));
    assert!(
        !answer.to_string().contains("test@example.com"),
        "never the raw value: {answer}"
    );
    assert!(answer["meta"].as_str().unwrap().contains("test_event_code"), "{answer}");
    assert!(stored_events(&relay.pool).await.is_empty(), "a check stores nothing");
}

/// The plan's curl sends no token: a relay that names a pixel for such checks answers it for that pixel;
/// one that does not, or a wrong token, or another pixel, is refused.
#[tokio::test]
async fn the_plans_check_without_a_token_is_answered_only_where_a_pixel_is_set_for_it() {
    let closed = spawn_relay().await;
    let open = spawn_relay_with(&[("ADLOOP_INGEST__CAPI_TEST_PIXEL_WITHOUT_TOKEN", PIXEL)]).await;
    let check = |relay: &Relay, query: &'static str, token: Option<&'static str>| {
        let client = reqwest::Client::new();
        let mut request = client
            .post(format!("{}/api/meta/capi/test{query}", relay.base_url))
            .json(&plan_body());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, answer) = check(&closed, "", None).await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = check(&open, "", None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], true);
    assert_eq!(answer["pixel_id"], PIXEL);
    assert_eq!(
        answer["event"]["user_data"]["em"],
        "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    );
    let (status, answer) = check(&open, "?pixel_id=999", None).await;
    assert_eq!(status, 400, "another pixel: {answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("pixel_id"),
        "{answer}"
    );
    let (status, answer) = check(&open, "", Some("adlr_wrong")).await;
    assert_eq!(status, 401, "a token sent is checked: {answer}");
    assert!(stored_events(&open.pool).await.is_empty(), "a check stores nothing");
}

#[tokio::test]
async fn with_a_test_event_code_the_plans_check_shows_what_meta_answered() {
    let meta_sim_url = crate::delivery::spawn_meta_sim().await;
    let relay = spawn_relay_with(&[
        ("ADLOOP_DELIVERY__ENABLED", "true"),
        ("ADLOOP_DELIVERY__BASE_URL", &meta_sim_url),
        ("ADLOOP_DELIVERY__ACCESS_TOKEN", "meta-sim-dev-token"),
    ])
    .await;
    let mut body = plan_body();
    body["test_event_code"] = json!("TEST4242");
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/api/meta/capi/test", relay.base_url))
        .bearer_auth(&relay.token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["meta"]["status"], 200, "{answer}");
    assert_eq!(answer["meta"]["answer"]["events_received"], 1);
    let at_meta: Value = reqwest::get(format!("{meta_sim_url}/_sim/capi/events?pixel_id={PIXEL}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(at_meta["events"][0]["test_event_code"], "TEST4242", "{at_meta}");
}

#[tokio::test]
async fn the_plans_check_holds_a_test_event_code_to_the_same_rule_as_ingest() {
    let relay = spawn_relay().await;
    let check = |body: Value, query: &'static str| {
        let client = reqwest::Client::new();
        let request = client
            .post(format!("{}/api/meta/capi/test{query}", relay.base_url))
            .bearer_auth(&relay.token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let mut with_control_character = plan_body();
    with_control_character["test_event_code"] = json!("TEST\u{9b}");
    let mut not_a_string = plan_body();
    not_a_string["test_event_code"] = json!(4242);
    for (status, answer) in [
        check(with_control_character, "").await,
        check(not_a_string, "").await,
        check(plan_body(), "?test_event_code=").await,
    ] {
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains("test_event_code"),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn request_fields_of_the_wrong_type_are_refused_rather_than_dropped() {
    let relay = spawn_relay().await;
    // A test_event_code given as a number used to be dropped, sending a test event to production.
    for (field, value) in [
        ("test_event_code", json!(4242)),
        ("partial", json!("yes")),
        ("partial", json!(1.5)),
    ] {
        let mut body = json!({ "data": [purchase("order-typed")], "access_token": relay.token });
        body[field] = value;
        let (status, answer) = post_json(&relay, PIXEL, &body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(field), "{answer}");
    }
    assert!(stored_events(&relay.pool).await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn a_test_event_code_is_measured_in_characters_as_the_rule_says() {
    let relay = spawn_relay().await;
    let with_code =
        |code: String| json!({ "data": [purchase("order-1")], "access_token": relay.token, "test_event_code": code });
    // 64 characters of two bytes each: within the rule of 1 to 64 printable characters.
    let (status, answer) = post_json(&relay, PIXEL, &with_code("é".repeat(64))).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post_json(&relay, PIXEL, &with_code("é".repeat(65))).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("test_event_code"),
        "{answer}"
    );
    let (status, _) = post_json(&relay, PIXEL, &with_code("TEST\u{7}".into())).await;
    assert_eq!(status, 400, "a control character");
}

#[tokio::test]
async fn a_relay_with_delivery_on_sends_what_it_accepts_and_counts_it() {
    let meta_sim_url = crate::delivery::spawn_meta_sim().await;
    let relay = spawn_relay_with(&[
        ("ADLOOP_DELIVERY__ENABLED", "true"),
        ("ADLOOP_DELIVERY__BASE_URL", &meta_sim_url),
        ("ADLOOP_DELIVERY__ACCESS_TOKEN", "meta-sim-dev-token"),
        ("ADLOOP_DELIVERY__POLL_INTERVAL_MILLISECONDS", "50"),
        // One delivery loop, so the three events go in one request: loops that poll at the same moment may
        // split a pixel's due events between them (each event is still sent once).
        ("ADLOOP_DELIVERY__WORKERS", "1"),
    ])
    .await;
    let body = json!({ "data": [purchase("d-1"), purchase("d-2"), purchase("d-3")], "access_token": relay.token });
    assert_eq!(post_json(&relay, PIXEL, &body).await.0, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let delivered: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE state = 'delivered'")
            .fetch_one(&relay.pool)
            .await
            .unwrap();
        if delivered == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{delivered} of 3 delivered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let metrics = reqwest::get(format!("{}/metrics", relay.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("adloop_relay_delivered_events_total{outcome=\"delivered\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("adloop_relay_delivery_requests_total 1"), "{metrics}");
    assert!(
        metrics.contains("adloop_relay_delivery_lag_seconds_count 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn on_meta_sims_clock_event_times_are_judged_by_the_simulated_calendar() {
    let meta_sim_url = crate::delivery::spawn_meta_sim_with(&[("ADLOOP_CLOCK__MODE", "manual")]).await;
    // Ten simulated days ahead of the machine's calendar, as in a simulated month.
    let response = reqwest::Client::new()
        .post(format!("{meta_sim_url}/_sim/clock"))
        .json(&json!({ "advance_hours": 240 }))
        .send()
        .await
        .unwrap();
    let simulated_now = response.json::<Value>().await.unwrap()["now_unix"].as_i64().unwrap();
    let mut purchase_in_the_simulated_month = purchase("order-sim-1");
    purchase_in_the_simulated_month["event_time"] = json!(simulated_now - 60);
    let body = json!({ "data": [purchase_in_the_simulated_month], "access_token": "" });

    let on_the_system_clock = spawn_relay_with(&[("ADLOOP_DELIVERY__BASE_URL", meta_sim_url.as_str())]).await;
    let mut request = body.clone();
    request["access_token"] = json!(on_the_system_clock.token);
    let (status, refused) = post_json(&on_the_system_clock, PIXEL, &request).await;
    assert_eq!(status, 400, "days in the machine's future: {refused}");
    assert!(
        refused["error"]["error_user_msg"].to_string().contains("event_time"),
        "{refused}"
    );

    let on_the_simulated_clock = spawn_relay_with(&[
        ("ADLOOP_DELIVERY__BASE_URL", meta_sim_url.as_str()),
        ("ADLOOP_CLOCK__SOURCE", "meta_sim"),
    ])
    .await;
    let mut request = body;
    request["access_token"] = json!(on_the_simulated_clock.token);
    let (status, accepted) = post_json(&on_the_simulated_clock, PIXEL, &request).await;
    assert_eq!(status, 200, "a minute ago on the simulated calendar: {accepted}");
    assert_eq!(accepted["events_received"], 1);
}

#[tokio::test]
async fn the_openapi_document_lists_only_routes_the_relay_serves() {
    let relay = spawn_relay().await;
    let document: Value = reqwest::get(format!("{}/openapi.json", relay.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let client = reqwest::Client::new();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v1/events") && paths.contains_key("/{version}/{pixel_id}/events"));
    for (path, operations) in paths {
        let url = format!(
            "{}{}",
            relay.base_url,
            path.replace("{version}", "v25.0")
                .replace("{pixel_id}", PIXEL)
                .replace("{event_id}", "order-1")
        );
        for method in operations
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| *key != "parameters")
        {
            let request = match method.as_str() {
                "get" => client.get(&url),
                "post" => client.post(&url).json(&json!({})),
                other => panic!("{path}: unexpected method {other}"),
            };
            let status = request.send().await.unwrap().status().as_u16();
            assert!(status != 404 && status != 405, "{method} {path}: {status}");
        }
    }
}
