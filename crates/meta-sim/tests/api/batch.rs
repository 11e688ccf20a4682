use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::*;

async fn post_batch(sim: &MetaSim, operations: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = sim
        .http
        .post(format!("{}/{VERSION}/", sim.base_url))
        .form(&[("access_token", TOKEN), ("batch", &operations.to_string())])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

fn body_of(result: &Value) -> Value {
    serde_json::from_str(result["body"].as_str().unwrap()).unwrap()
}

/// The n-th ad of the simulated account (1-based).
fn ad(number: u32) -> String {
    format!("2385200000000{number}")
}

fn ad_set(number: u32) -> String {
    format!("2385100000000{number}")
}

async fn status_of(sim: &MetaSim, object_id: &str) -> Value {
    let (_, object) = sim
        .get(&format!("{VERSION}/{object_id}?fields=status&access_token={TOKEN}"))
        .await;
    object["status"].clone()
}

#[tokio::test]
async fn a_batch_runs_each_operation_and_one_failure_does_not_fail_the_others() {
    let sim = spawn_meta_sim(&[]).await;
    let operations = json!([
        {"method": "GET", "relative_url": format!("{}?fields=daily_budget", ad_set(2))},
        {"method": "POST", "relative_url": ad_set(1), "body": "daily_budget=20000"},
        {"method": "POST", "relative_url": ad(3), "body": "status=SLEEPING"},
        {"method": "POST", "relative_url": ad(4), "body": "status=PAUSED"},
    ]);
    let (status, _, results) = post_batch(&sim, &operations).await;
    assert_eq!(status, 200);
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["code"], 200);
    assert_eq!(body_of(&results[0])["daily_budget"], "10000");
    assert_eq!(body_of(&results[1]), json!({"success": true}));
    assert_eq!(results[2]["code"], 400);
    assert_eq!(body_of(&results[2])["error"]["code"], 100);
    assert_eq!(results[3]["code"], 200);

    assert_eq!(sim.ad_set_budget(&ad_set(1)).await, 20000);
    assert_eq!(status_of(&sim, &ad(3)).await, "ACTIVE");
    let (_, state) = sim.get("_sim/state").await;
    let paused = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|object| object["id"] == ad(4))
        .unwrap();
    assert_eq!(paused["status"], "PAUSED");
    assert_eq!(paused["history"][0]["source"], "batch");
}

#[tokio::test]
async fn a_batch_may_write_to_only_one_ad_set_per_campaign() {
    let sim = spawn_meta_sim(&[]).await;
    let operations = json!([
        {"method": "POST", "relative_url": ad_set(1), "body": "daily_budget=20000"},
        {"method": "POST", "relative_url": ad_set(2), "body": "daily_budget=20000"},
        {"method": "POST", "relative_url": ad_set(1), "body": "status=ACTIVE"},
        {"method": "GET", "relative_url": format!("{}?fields=daily_budget", ad_set(3))},
    ]);
    let (_, _, results) = post_batch(&sim, &operations).await;
    assert_eq!(results[0]["code"], 200);
    assert_eq!(results[1]["code"], 400, "a second ad set of the campaign");
    let error = body_of(&results[1])["error"].clone();
    assert_eq!(error["code"], 100);
    assert!(error["message"].as_str().unwrap().contains("same campaign"), "{error}");
    assert_eq!(results[2]["code"], 200, "the same ad set again is fine");
    assert_eq!(results[3]["code"], 200, "reads are not limited");
    assert_eq!(sim.ad_set_budget(&ad_set(2)).await, 10000, "nothing was written");

    let relaxed = spawn_meta_sim(&[("ADLOOP_GRAPH__BATCH_ONE_AD_SET_PER_CAMPAIGN", "false")]).await;
    let (_, _, results) = post_batch(&relaxed, &operations).await;
    assert_eq!(results[1]["code"], 200, "the rule is a setting");
}

#[tokio::test]
async fn operations_without_depends_on_run_in_no_promised_order() {
    let sim = spawn_meta_sim(&[]).await;
    let pause_then_activate = json!([
        {"method": "POST", "relative_url": ad(1), "body": "status=PAUSED"},
        {"method": "POST", "relative_url": ad(1), "body": "status=ACTIVE"},
    ]);
    let mut final_statuses = HashSet::new();
    for _ in 0..12 {
        post_batch(&sim, &pause_then_activate).await;
        final_statuses.insert(status_of(&sim, &ad(1)).await.to_string());
    }
    assert_eq!(
        final_statuses.len(),
        2,
        "two writes to one object without depends_on end either way: {final_statuses:?}"
    );

    let in_sequence = json!([
        {"method": "POST", "relative_url": ad(1), "body": "status=PAUSED", "name": "pause"},
        {"method": "POST", "relative_url": ad(1), "body": "status=ACTIVE", "depends_on": "pause"},
    ]);
    for _ in 0..12 {
        post_batch(&sim, &in_sequence).await;
        assert_eq!(status_of(&sim, &ad(1)).await, "ACTIVE", "depends_on orders them");
    }

    let in_request_order = spawn_meta_sim(&[("ADLOOP_GRAPH__BATCH_SHUFFLE_INDEPENDENT_OPERATIONS", "false")]).await;
    for _ in 0..6 {
        post_batch(&in_request_order, &pause_then_activate).await;
        assert_eq!(status_of(&in_request_order, &ad(1)).await, "ACTIVE");
    }
}

#[tokio::test]
async fn a_successful_operation_another_depends_on_answers_null_unless_asked_not_to_omit_it() {
    let sim = spawn_meta_sim(&[]).await;
    let operations = json!([
        {"method": "POST", "relative_url": ad(1), "body": "status=PAUSED", "name": "pause"},
        {"method": "GET", "relative_url": format!("{}?fields=status", ad(1)), "depends_on": "pause"},
    ]);
    let (_, _, results) = post_batch(&sim, &operations).await;
    assert!(results[0].is_null(), "omitted, though it ran: {results}");
    assert_eq!(body_of(&results[1])["status"], "PAUSED", "it ran");

    let kept = json!([
        {"method": "POST", "relative_url": ad(2), "body": "status=PAUSED", "name": "pause", "omit_response_on_success": false},
        {"method": "GET", "relative_url": format!("{}?fields=status", ad(2)), "depends_on": "pause"},
    ]);
    let (_, _, results) = post_batch(&sim, &kept).await;
    assert_eq!(results[0]["code"], 200);
    assert_eq!(body_of(&results[0]), json!({"success": true}));
}

#[tokio::test]
async fn an_operation_body_must_be_a_url_encoded_string() {
    let sim = spawn_meta_sim(&[]).await;
    let operations = json!([
        {"method": "POST", "relative_url": ad_set(1), "body": {"daily_budget": 20000}},
    ]);
    let (_, _, results) = post_batch(&sim, &operations).await;
    assert_eq!(results[0]["code"], 400);
    let error = body_of(&results[0])["error"].clone();
    assert_eq!(error["code"], 100);
    assert!(error["message"].as_str().unwrap().contains("URL-encoded"), "{error}");
    assert_eq!(sim.ad_set_budget(&ad_set(1)).await, 10000);
}

#[tokio::test]
async fn each_operation_carries_the_usage_headers_unless_include_headers_is_false() {
    let sim = spawn_meta_sim(&[]).await;
    let operations = json!([{"method": "GET", "relative_url": ad_set(1)}]);
    let (_, _, results) = post_batch(&sim, &operations).await;
    let header_names: Vec<String> = results[0]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|header| header["name"].as_str().unwrap().to_owned())
        .collect();
    for usage_header in ["X-App-Usage", "X-Ad-Account-Usage", "X-Business-Use-Case-Usage"] {
        assert!(header_names.iter().any(|name| name == usage_header), "{header_names:?}");
    }
    let response = sim
        .http
        .post(format!("{}/{VERSION}/", sim.base_url))
        .form(&[
            ("access_token", TOKEN),
            ("include_headers", "false"),
            ("batch", &operations.to_string()),
        ])
        .send()
        .await
        .unwrap();
    let results: Value = response.json().await.unwrap();
    assert!(results[0].get("headers").is_none(), "{results}");
    assert_eq!(results[0]["code"], 200);
}

#[tokio::test]
async fn more_than_50_operations_are_refused_whole() {
    let sim = spawn_meta_sim(&[]).await;
    let operations: Vec<Value> = (0..51)
        .map(|_| json!({"method": "GET", "relative_url": FIRST_AD_SET}))
        .collect();
    let (status, _, body) = post_batch(&sim, &Value::Array(operations)).await;
    assert_eq!((status, error_code(&body).0), (400, 100));
    assert!(body["error"]["message"].as_str().unwrap().contains("50"));
}

#[tokio::test]
async fn each_operation_counts_as_one_call() {
    let sim = spawn_meta_sim(&[]).await;
    let operations: Vec<Value> = (0..10)
        .map(|_| json!({"method": "GET", "relative_url": format!("{VERSION}/{FIRST_AD_SET}")}))
        .collect();
    let (_, _, results) = post_batch(&sim, &Value::Array(operations)).await;
    assert_eq!(results.as_array().unwrap().len(), 10);
    let (_, requests) = sim.get("_sim/requests").await;
    let batch_request = requests["requests"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(batch_request["graph_calls"], 10);
    let (_, state) = sim.get("_sim/state").await;
    assert_eq!(state["counters"]["graph_calls"], 10);
}

#[tokio::test]
async fn dependent_operations_do_not_run_when_their_dependency_failed() {
    let sim = spawn_meta_sim(&[]).await;
    let operations = json!([
        {"method": "POST", "relative_url": FIRST_AD_SET, "body": "daily_budget=1", "name": "shrink"},
        {"method": "POST", "relative_url": FIRST_AD_SET, "body": "status=PAUSED", "depends_on": "shrink"},
    ]);
    let (_, _, results) = post_batch(&sim, &operations).await;
    assert_eq!(results[0]["code"], 400);
    assert_eq!(results[1]["code"], 400);
    let (_, ad_set) = sim
        .get(&format!("{VERSION}/{FIRST_AD_SET}?fields=status&access_token={TOKEN}"))
        .await;
    assert_eq!(ad_set["status"], "ACTIVE");
}

#[tokio::test]
async fn operations_past_the_batch_time_out_come_back_null() {
    let sim = spawn_meta_sim(&[("ADLOOP_GRAPH__BATCH_TIMEOUT_MILLISECONDS", "250")]).await;
    let faults =
        json!({"latency": [{"endpoint": "batch_operation", "min_milliseconds": 100, "max_milliseconds": 100}]});
    assert_eq!(sim.post_json("_sim/faults", &faults).await.0, 200);
    let operations: Vec<Value> = (1..=5)
        .map(|number| json!({"method": "POST", "relative_url": ad(number), "body": "status=PAUSED"}))
        .collect();
    let (_, _, results) = post_batch(&sim, &Value::Array(operations)).await;
    let results = results.as_array().unwrap();
    let ran: Vec<u32> = (1..=5)
        .filter(|number| !results[*number as usize - 1].is_null())
        .collect();
    assert_eq!(ran.len(), 2, "two operations fit in 250 ms: {results:?}");
    for number in 1..=5 {
        let expected = if ran.contains(&number) { "PAUSED" } else { "ACTIVE" };
        assert_eq!(
            status_of(&sim, &ad(number)).await,
            expected,
            "ad {number}: a null operation did not run"
        );
    }
}

#[tokio::test]
async fn injected_operation_failures_hit_single_operations() {
    let sim = spawn_meta_sim(&[]).await;
    let faults = json!({"seed": 7, "rules": [
        {"endpoint": "batch_operation", "probability": 0.5, "fault": {"kind": "graph_error", "code": 2, "http_status": 500}}
    ]});
    sim.post_json("_sim/faults", &faults).await;
    let operations: Vec<Value> = (0..20)
        .map(|_| json!({"method": "GET", "relative_url": FIRST_AD_SET}))
        .collect();
    let (status, _, results) = post_batch(&sim, &Value::Array(operations)).await;
    assert_eq!(status, 200);
    let codes: Vec<u64> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["code"].as_u64().unwrap())
        .collect();
    let failures = codes.iter().filter(|code| **code == 500).count();
    assert!(failures > 0 && failures < 20, "{codes:?}");
    let failed = results
        .as_array()
        .unwrap()
        .iter()
        .find(|result| result["code"] == 500)
        .unwrap();
    assert_eq!(body_of(failed)["error"]["code"], 2);
    assert_eq!(body_of(failed)["error"]["is_transient"], true);
}
