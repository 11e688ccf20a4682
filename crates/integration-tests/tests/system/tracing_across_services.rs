use crate::helpers::spawn_stack;

const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn gateway_call_reaches_ml_service_over_grpc_within_the_callers_trace() {
    let stack = spawn_stack().await;
    let response = reqwest::Client::new()
        .get(format!("{}/v1/ml/service-info", stack.gateway.base_url()))
        .bearer_auth(stack.gateway.api_key())
        .header("traceparent", format!("00-{CALLER_TRACE_ID}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();

    assert_eq!(body["gateway"]["trace_id"], CALLER_TRACE_ID);
    assert_eq!(body["ml_service"]["trace_id"], CALLER_TRACE_ID, "{body}");
    assert_eq!(body["ml_service"]["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn a_call_without_a_trace_starts_one_that_ml_service_joins() {
    let stack = spawn_stack().await;
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/ml/service-info", stack.gateway.base_url()))
        .bearer_auth(stack.gateway.api_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let gateway_trace_id = body["gateway"]["trace_id"].as_str().unwrap();
    assert_eq!(gateway_trace_id.len(), 32);
    assert_ne!(gateway_trace_id, CALLER_TRACE_ID);
    assert_eq!(body["ml_service"]["trace_id"], gateway_trace_id);
}
