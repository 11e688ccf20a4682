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

#[tokio::test]
async fn a_batch_runs_each_operation_and_one_failure_does_not_fail_the_others() {
    let sim = spawn_meta_sim(&[]).await;
    let operations = json!([
        {"method": "GET", "relative_url": format!("{FIRST_AD_SET}?fields=daily_budget")},
        {"method": "POST", "relative_url": FIRST_AD_SET, "body": "daily_budget=20000"},
        {"method": "POST", "relative_url": "23851000000002", "body": "daily_budget=1"},
        {"method": "POST", "relative_url": "23851000000003", "body": "status=PAUSED"},
    ]);
    let (status, _, results) = post_batch(&sim, &operations).await;
    assert_eq!(status, 200);
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["code"], 200);
    assert_eq!(body_of(&results[0])["daily_budget"], "10000");
    assert_eq!(body_of(&results[1]), json!({"success": true}));
    assert_eq!(results[2]["code"], 400);
    assert_eq!(body_of(&results[2])["error"]["error_subcode"], 1_885_272);
    assert_eq!(results[3]["code"], 200);
    assert!(results[0]["headers"].as_array().is_some());

    assert_eq!(sim.ad_set_budget(FIRST_AD_SET).await, 20000);
    assert_eq!(sim.ad_set_budget("23851000000002").await, 10000);
    let (_, state) = sim.get("_sim/state").await;
    let paused = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|object| object["id"] == "23851000000003")
        .unwrap();
    assert_eq!(paused["status"], "PAUSED");
    assert_eq!(paused["history"][0]["source"], "batch");
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
    let operations: Vec<Value> = (0..5)
        .map(|index| json!({"method": "POST", "relative_url": format!("2385100000000{}", index + 1), "body": "daily_budget=20000"}))
        .collect();
    let (_, _, results) = post_batch(&sim, &Value::Array(operations)).await;
    let results = results.as_array().unwrap();
    assert_eq!(results[0]["code"], 200);
    assert_eq!(results[1]["code"], 200);
    assert!(results[2..].iter().all(Value::is_null), "{results:?}");
    assert_eq!(
        sim.ad_set_budget("23851000000003").await,
        10000,
        "a null operation did not run"
    );
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
