//! The ad-change API through the gateway: bearer keys per tenant, validation naming the field,
//! idempotent enqueue, tenant isolation, cancel and approve, and the audit trail.

use serde_json::{Value, json};

use crate::helpers::{
    RunningService, gateway_key_for, gateway_pool, http_refusal, spawn_gateway, spawn_ml_service, spawn_stack,
};
use adloop_test_support::TestDatabase;

fn budget_change(ad_set: &str, amount: i64, key: &str) -> Value {
    json!({
        "ad_account_id": "act_100000001",
        "campaign_id": "23850000000001",
        "ad_set_id": ad_set,
        "kind": "budget_set",
        "currency": "USD",
        "amount": amount,
        "reason": "reallocation",
        "confidence": 0.8,
        "idempotency_key": key,
    })
}

async fn post(gateway: &RunningService, key: Option<&str>, path: &str, body: &Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", gateway.base_url()))
        .json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(gateway: &RunningService, key: &str, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", gateway.base_url()))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_route_but_health_needs_a_key_and_says_so() {
    let stack = spawn_stack().await;
    let gateway = &stack.gateway;
    let (status, body) = post(gateway, None, "/v1/ad-changes", &budget_change("s1", 1_000, "k")).await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"),
        "{body}"
    );
    let (status, body) = post(
        gateway,
        Some("adl_not-a-key"),
        "/v1/ad-changes",
        &budget_change("s1", 1_000, "k"),
    )
    .await;
    assert_eq!((status, body["error"]["code"].clone()), (401, json!("unauthenticated")));
    for open in ["/healthz", "/readyz", "/metrics"] {
        let status = reqwest::get(format!("{}{open}", gateway.base_url()))
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{open}: {status}");
    }
}

#[tokio::test]
async fn an_unknown_path_a_wrong_method_and_a_body_too_large_are_answered_with_errors_that_say_so() {
    let stack = spawn_stack().await;
    let gateway = &stack.gateway;
    let (status, answer) = get(gateway, gateway.api_key(), "/v1/ad-change").await;
    assert_eq!(status, 404);
    assert_eq!(answer["error"]["message"], "no route GET /v1/ad-change", "{answer}");

    let response = reqwest::Client::new()
        .delete(format!("{}/v1/audit", gateway.base_url()))
        .bearer_auth(gateway.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert!(response.headers()["allow"].to_str().unwrap().contains("GET"));
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["message"], "/v1/audit does not take DELETE", "{answer}");

    // A body over `http_limits.max_body_kib` (2 MiB) is refused before it is read, naming the setting.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/ad-changes", gateway.base_url()))
        .bearer_auth(gateway.api_key())
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    let (field, message) = http_refusal(response, 413).await;
    assert_eq!(field, "body");
    assert!(message.contains("http_limits.max_body_kib"), "{message}");
}

#[tokio::test]
async fn a_key_of_one_tenant_can_neither_read_nor_change_another_tenants_changes() {
    let stack = spawn_stack().await;
    let gateway = &stack.gateway;
    let other_tenant = gateway_key_for(&stack.database, "tenant-b").await;
    let (_, body) = post(
        gateway,
        Some(gateway.api_key()),
        "/v1/ad-changes",
        &budget_change("s1", 1_000, "k"),
    )
    .await;
    let id = body["changes"][0]["id"].as_i64().unwrap();
    assert_eq!(
        get(gateway, &other_tenant, &format!("/v1/ad-changes/{id}")).await.0,
        404
    );
    let (status, _) = post(
        gateway,
        Some(&other_tenant),
        &format!("/v1/ad-changes/{id}/cancel"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 404);
    let (_, listed) = get(gateway, &other_tenant, "/v1/ad-changes").await;
    assert!(listed["changes"].as_array().unwrap().is_empty());
    // The same idempotency key in another tenant is another change.
    let (_, body) = post(
        gateway,
        Some(&other_tenant),
        "/v1/ad-changes",
        &budget_change("s1", 1_000, "k"),
    )
    .await;
    assert_eq!(body["changes"][0]["created"], true);
    let (_, mine) = get(gateway, gateway.api_key(), &format!("/v1/ad-changes/{id}")).await;
    assert_eq!(mine["state"], "available", "untouched by the other tenant");
}

#[tokio::test]
async fn changes_are_enqueued_once_per_key_read_back_cancelled_and_audited() {
    let stack = spawn_stack().await;
    let gateway = &stack.gateway;
    let key = gateway.api_key();
    let (status, body) = post(
        gateway,
        Some(key),
        "/v1/ad-changes",
        &budget_change("23851000000001", 11_000, "raise-1"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["changes"][0]["id"].as_i64().unwrap();
    assert_eq!(body["changes"][0]["created"], true);
    let (_, again) = post(
        gateway,
        Some(key),
        "/v1/ad-changes",
        &budget_change("23851000000001", 11_000, "raise-1"),
    )
    .await;
    assert_eq!(
        again["changes"][0],
        json!({"id": id, "created": false}),
        "a retried request enqueues nothing"
    );

    let (status, change) = get(gateway, key, &format!("/v1/ad-changes/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (change["state"].clone(), change["amount"].clone()),
        (json!("available"), json!(11_000))
    );
    let (_, listed) = get(gateway, key, "/v1/ad-changes?state=available&account=act_100000001").await;
    assert_eq!(listed["changes"].as_array().unwrap().len(), 1);

    let (status, cancelled) = post(gateway, Some(key), &format!("/v1/ad-changes/{id}/cancel"), &json!({})).await;
    assert_eq!((status, cancelled["state"].clone()), (200, json!("cancelled")));
    let (status, body) = post(gateway, Some(key), &format!("/v1/ad-changes/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 409, "{body}");
    let (_, audit) = get(gateway, key, "/v1/audit?object=23851000000001").await;
    let events: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["enqueued", "cancel"]);
}

#[tokio::test]
async fn the_change_list_and_the_audit_trail_are_read_a_page_at_a_time_to_the_end() {
    let stack = spawn_stack().await;
    let gateway = &stack.gateway;
    let key = gateway.api_key();
    let changes: Vec<Value> = (1..=5)
        .map(|number| budget_change(&format!("2385100000000{number}"), 11_000, &format!("page-{number}")))
        .collect();
    let (status, enqueued) = post(gateway, Some(key), "/v1/ad-changes", &json!({ "changes": changes })).await;
    assert_eq!(status, 200, "{enqueued}");
    let mut ids: Vec<i64> = enqueued["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["id"].as_i64().unwrap())
        .collect();

    // Newest first, two a page, each page's `next_before` leading to the next, null after the last.
    let (mut listed, mut path) = (Vec::new(), "/v1/ad-changes?limit=2".to_owned());
    loop {
        let (status, page) = get(gateway, key, &path).await;
        assert_eq!(status, 200, "{page}");
        listed.extend(
            page["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|change| change["id"].as_i64().unwrap()),
        );
        let Some(before) = page["next_before"].as_i64() else {
            break;
        };
        path = format!("/v1/ad-changes?limit=2&before={before}");
    }
    ids.reverse();
    assert_eq!(listed, ids, "every change once, newest first");

    // Oldest first from `after`: the five enqueue entries, then nothing more.
    let (mut events, mut path) = (Vec::new(), "/v1/audit?limit=2".to_owned());
    loop {
        let (status, page) = get(gateway, key, &path).await;
        assert_eq!(status, 200, "{page}");
        events.extend(page["entries"].as_array().unwrap().iter().map(|entry| {
            (
                entry["ad_change_id"].as_i64().unwrap(),
                entry["event"].as_str().unwrap().to_owned(),
            )
        }));
        let Some(after) = page["next_after"].as_i64() else {
            break;
        };
        path = format!("/v1/audit?limit=2&after={after}");
    }
    ids.reverse();
    let expected: Vec<(i64, String)> = ids.iter().map(|id| (*id, "enqueued".to_owned())).collect();
    assert_eq!(events, expected);

    // Newest first from `before` (the operator page's view): the same entries the other way round.
    let (mut newest_first, mut path) = (Vec::new(), "/v1/audit?order=newest&limit=2".to_owned());
    loop {
        let (status, page) = get(gateway, key, &path).await;
        assert_eq!(status, 200, "{page}");
        newest_first.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|entry| entry["ad_change_id"].as_i64().unwrap()),
        );
        let Some(before) = page["next_before"].as_i64() else {
            break;
        };
        path = format!("/v1/audit?order=newest&limit=2&before={before}");
    }
    ids.reverse();
    assert_eq!(newest_first, ids);
}

#[tokio::test]
async fn bad_changes_are_refused_naming_the_field_and_nothing_is_written() {
    let stack = spawn_stack().await;
    let gateway = &stack.gateway;
    let key = gateway.api_key();
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut negative = budget_change("s1", 1_000, "a");
    negative["amount"] = json!(-5);
    cases.push((negative, "amount"));
    let mut no_key = budget_change("s1", 1_000, "b");
    no_key.as_object_mut().unwrap().remove("idempotency_key");
    cases.push((no_key, "idempotency_key"));
    let mut delete = budget_change("s1", 1_000, "c");
    delete["kind"] = json!("status_change");
    delete["status"] = json!("DELETED");
    cases.push((delete, "status"));
    let mut bad_account = budget_change("s1", 1_000, "d");
    bad_account["ad_account_id"] = json!("100000001");
    cases.push((bad_account, "ad_account_id"));
    let mut bad_currency = budget_change("s1", 1_000, "e");
    bad_currency["currency"] = json!("XYZ");
    cases.push((bad_currency, "currency"));
    let mut negative_old_budget = budget_change("s1", 1_000, "g");
    negative_old_budget["old_budget"] = json!(-207);
    cases.push((negative_old_budget, "old_budget"));
    // A wrong type is named by its field, not answered "did not match any variant" of the two body forms.
    let mut text_amount = budget_change("s1", 1_000, "h");
    text_amount["amount"] = json!("ten");
    cases.push((text_amount, "amount"));
    for (body, field) in cases {
        let (status, answer) = post(gateway, Some(key), "/v1/ad-changes", &body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    // An Idempotency-Key header that cannot be used is refused, even when the body has its own key.
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/ad-changes", gateway.base_url()))
        .bearer_auth(key)
        .header("Idempotency-Key", "k".repeat(201))
        .json(&budget_change("s1", 1_000, "i"))
        .send()
        .await
        .unwrap();
    assert_eq!(http_refusal(refused, 400).await.0, "Idempotency-Key");
    let many = json!({"changes": [budget_change("s1", 1_000, "f"), {"kind": "budget_set"}]});
    let (status, answer) = post(gateway, Some(key), "/v1/ad-changes", &many).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "changes[1]", "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("ad_account_id"),
        "{answer}"
    );
    let (_, listed) = get(gateway, key, "/v1/ad-changes").await;
    assert!(
        listed["changes"].as_array().unwrap().is_empty(),
        "nothing was written: {listed}"
    );

    // Query strings too: a bad or unknown parameter is named in the same JSON error.
    for (path, field, named) in [
        ("/v1/ad-changes?limit=ten", "limit", "invalid digit"),
        ("/v1/audit?after=x", "after", "invalid digit"),
        ("/v1/audit?objects=1", "objects", "unknown field"),
        ("/v1/guardrails?acount=act_1", "acount", "unknown field"),
        ("/v1/audit?order=sideways", "order", "oldest or newest"),
        ("/v1/audit?order=newest&after=3", "after", "order=oldest"),
        ("/v1/audit?before=3", "before", "order=newest"),
        ("/v1/ad-changes?account=", "account", "act_"),
        ("/v1/ad-changes?account=100000001", "account", "act_"),
    ] {
        let (status, answer) = get(gateway, key, path).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{path}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(named),
            "{path}: {answer}"
        );
    }
}

#[tokio::test]
async fn a_tenant_pauses_and_resumes_its_own_executor_and_a_bad_account_is_refused() {
    let stack = spawn_stack().await;
    let gateway = &stack.gateway;
    let key = gateway.api_key();
    let (status, body) = post(
        gateway,
        Some(key),
        "/v1/executor/pause",
        &json!({ "ad_account_id": "100" }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "ad_account_id", "{body}");
    let (_, status_body) = get(gateway, key, "/v1/executor/status").await;
    assert_eq!(status_body["paused"], false, "a refused pause wrote nothing");

    let (status, body) = post(
        gateway,
        Some(key),
        "/v1/executor/pause",
        &json!({ "ad_account_id": "act_100000001", "reason": "launch review" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pauses"][0]["reason"], "launch review");
    let other_tenant = gateway_key_for(&stack.database, "tenant-b").await;
    let (_, theirs) = get(gateway, &other_tenant, "/v1/executor/status").await;
    assert_eq!(theirs["paused"], false, "one tenant's pause is not another's");

    let (status, body) = post(
        gateway,
        Some(key),
        "/v1/executor/resume",
        &json!({ "ad_account_id": "act_100000001" }),
    )
    .await;
    assert_eq!((status, body["paused"].clone()), (200, json!(false)), "{body}");

    // Both are in the tenant's audit trail with who and why; the other tenant's trail has neither.
    let (_, audit) = get(gateway, key, "/v1/audit?order=newest&object=act_100000001").await;
    let entries: Vec<(&str, &str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["event"].as_str().unwrap(),
                entry["actor"].as_str().unwrap(),
                entry["detail"]["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("executor_resumed", "api:test-tenant", ""),
            ("executor_paused", "api:test-tenant", "launch review"),
        ]
    );
    let (_, theirs) = get(gateway, &other_tenant, "/v1/audit").await;
    assert_eq!(theirs["entries"], json!([]));
}

#[tokio::test]
async fn with_enqueue_jitter_each_change_waits_a_random_delay_in_the_configured_range() {
    adloop_telemetry::init_telemetry_for_tests();
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service(&database).await;
    let gateway = spawn_gateway(
        &database,
        &ml_service.base_url(),
        &[
            ("ADLOOP_EXECUTOR__ENQUEUE_JITTER__MIN_SECONDS", "100"),
            ("ADLOOP_EXECUTOR__ENQUEUE_JITTER__MAX_SECONDS", "200"),
        ],
    )
    .await;
    let changes: Vec<Value> = (0..20)
        .map(|index| budget_change(&format!("set-{index}"), 1_000, &format!("jitter-{index}")))
        .collect();
    let (status, body) = post(
        &gateway,
        Some(gateway.api_key()),
        "/v1/ad-changes",
        &json!({ "changes": changes }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let delays: Vec<f64> =
        sqlx::query_scalar("SELECT EXTRACT(EPOCH FROM run_at - created_at)::float8 FROM ad_changes ORDER BY id")
            .fetch_all(&gateway_pool(&database).await)
            .await
            .unwrap();
    assert_eq!(delays.len(), 20);
    assert!(delays.iter().all(|delay| (99.0..=201.0).contains(delay)), "{delays:?}");
    let spread = delays.iter().cloned().fold(f64::MIN, f64::max) - delays.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 10.0, "the delays are drawn, not one constant: {delays:?}");
    let id = body["changes"][0]["id"].as_i64().unwrap();
    let (_, change) = get(&gateway, gateway.api_key(), &format!("/v1/ad-changes/{id}")).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let due_in = change["run_at_unix"].as_f64().unwrap() - now;
    assert!(
        (95.0..=205.0).contains(&due_in),
        "the API says when the change is due: {due_in} s; {change}"
    );
}

#[tokio::test]
async fn the_openapi_document_lists_only_routes_the_gateway_serves_and_marks_which_need_a_key() {
    let stack = spawn_stack().await;
    let base_url = stack.gateway.base_url();
    let document: Value = reqwest::get(format!("{base_url}/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 17, "{}", paths.len());
    let client = reqwest::Client::new();
    for (path, operations) in paths {
        let path_with_values = path.replace("{id}", "1").replace("{account_id}", "act_1");
        for (method, operation) in operations.as_object().unwrap() {
            // Path-level fields shared by the operations, not operations themselves.
            if ["parameters", "summary", "description", "servers"].contains(&method.as_str()) {
                continue;
            }
            let open = operation["security"].as_array().is_some_and(Vec::is_empty);
            let url = format!("{base_url}{path_with_values}");
            let request = match method.as_str() {
                "get" => client.get(url),
                "post" => client.post(url).json(&json!({})),
                "put" => client.put(url).json(&json!({})),
                other => panic!("{path}: unexpected method {other}"),
            };
            let status = request.send().await.unwrap().status().as_u16();
            if open {
                assert!(status == 200 || status == 503, "{method} {path}: {status}");
            } else {
                // 401, not 404 or 405: the route exists and wants a key.
                assert_eq!(status, 401, "{method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn a_tenant_sets_its_guardrails_and_bad_keys_are_refused_naming_them() {
    let stack = spawn_stack().await;
    let gateway = &stack.gateway;
    let key = gateway.api_key();
    let put = |body: Value| {
        let url = format!("{}/v1/guardrails", gateway.base_url());
        async move {
            let response = reqwest::Client::new()
                .put(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = put(json!({ "settings": { "min_confidence": 2 } })).await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("settings.min_confidence")),
        "{body}"
    );
    let (status, body) = put(json!({ "settings": { "max_step": 0.1 } })).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("max_step"),
        "{body}"
    );

    let (status, body) = put(json!({ "settings": { "max_budget_changes_per_ad_set_per_hour": 3.5 } })).await;
    assert_eq!(status, 400, "a fraction of a count: {body}");

    let (status, body) = put(json!({
        "settings": { "min_confidence": 0.4, "max_budget_changes_per_ad_set_per_hour": 3.0 }
    }))
    .await;
    assert_eq!(status, 200, "a count written as 3.0 is the count 3: {body}");
    assert_eq!(body["effective"]["max_budget_changes_per_ad_set_per_hour"], 3, "{body}");
    let (status, body) = put(json!({
        "ad_account_id": "act_100000001",
        "settings": { "max_change_fraction_per_step": 0.1 },
    }))
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, effective) = get(gateway, key, "/v1/guardrails?account=act_100000001").await;
    assert_eq!(effective["effective"]["min_confidence"], 0.4, "{effective}");
    assert_eq!(effective["effective"]["max_change_fraction_per_step"], 0.1);
    let other_tenant = gateway_key_for(&stack.database, "tenant-b").await;
    let (_, theirs) = get(gateway, &other_tenant, "/v1/guardrails?account=act_100000001").await;
    assert_eq!(
        theirs["effective"]["min_confidence"], 0.0,
        "another tenant keeps the defaults"
    );
}
