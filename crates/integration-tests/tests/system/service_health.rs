use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::helpers::spawn_stack;

async fn grpc_channel(base_url: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(base_url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_service_is_live_and_ready_against_real_postgres_and_redis() {
    let stack = spawn_stack().await;
    let http = reqwest::Client::new();

    for service in [&stack.ml_service, &stack.gateway, &stack.capi_relay] {
        let liveness = http
            .get(format!("{}/healthz", service.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(liveness.status(), 200, "{} /healthz", service.base_url());

        let readiness = http.get(format!("{}/readyz", service.base_url())).send().await.unwrap();
        assert_eq!(readiness.status(), 200, "{} /readyz", service.base_url());
        let report: serde_json::Value = readiness.json().await.unwrap();
        assert_eq!(report["ready"], true);
        for check in report["checks"].as_array().unwrap() {
            assert_eq!(check["status"], "ok", "{} reports {check}", report["service"]);
        }
    }
}

#[tokio::test]
async fn ml_service_answers_the_standard_grpc_health_check() {
    let stack = spawn_stack().await;
    let mut health_client = HealthClient::new(grpc_channel(&stack.ml_service.base_url()).await);
    let response = health_client
        .check(HealthCheckRequest {
            service: "adloop.ml.v1.MlService".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.status, ServingStatus::Serving as i32);
}

#[tokio::test]
async fn ml_service_grpc_reflection_lists_the_ml_service() {
    let stack = spawn_stack().await;
    let mut reflection_client = ServerReflectionClient::new(grpc_channel(&stack.ml_service.base_url()).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection_client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(listed)) = response.message_response else {
        panic!("expected a list of services, got {:?}", response.message_response);
    };
    let names: Vec<String> = listed.service.into_iter().map(|service| service.name).collect();
    assert!(names.contains(&"adloop.ml.v1.MlService".to_owned()), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health".to_owned()), "{names:?}");
}

#[tokio::test]
async fn metrics_count_served_requests_by_route() {
    let stack = spawn_stack().await;
    let http = reqwest::Client::new();
    http.get(format!("{}/healthz", stack.gateway.base_url()))
        .send()
        .await
        .unwrap();

    let metrics_text = http
        .get(format!("{}/metrics", stack.gateway.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let healthz_line = metrics_text
        .lines()
        .find(|line| line.starts_with("adloop_gateway_http_requests_total") && line.contains("route=\"/healthz\""))
        .unwrap_or_else(|| panic!("no /healthz counter in:\n{metrics_text}"));
    assert!(healthz_line.contains("status=\"200\""), "{healthz_line}");
    assert!(healthz_line.ends_with(" 1"), "{healthz_line}");
}

#[tokio::test]
async fn readiness_answers_inside_the_probe_time_out_when_ml_service_hangs() {
    adloop_telemetry::init_telemetry_for_tests();
    let database = adloop_test_support::TestDatabase::create().await;
    // An "ml-service" that accepts connections and never answers.
    let silent_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_address = silent_listener.local_addr().unwrap();
    let silent_server = tokio::spawn(async move {
        let mut open_connections = Vec::new();
        while let Ok((connection, _)) = silent_listener.accept().await {
            open_connections.push(connection);
        }
    });
    let gateway = crate::helpers::spawn_gateway(&database, &format!("http://{silent_address}"), &[]).await;
    let started = std::time::Instant::now();
    let report: serde_json::Value = reqwest::get(format!("{}/readyz", gateway.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The Kubernetes probes give /readyz 2 s (timeoutSeconds); ml-service's own call time-out is 5 s.
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(report["ready"], true, "{report}");
    assert!(report.to_string().contains("unavailable"), "{report}");
    silent_server.abort();
}

#[tokio::test]
async fn gateway_stays_ready_but_reports_ml_service_down() {
    adloop_telemetry::init_telemetry_for_tests();
    let database = adloop_test_support::TestDatabase::create().await;
    // Nothing listens on port 1: ml-service is unreachable.
    let gateway = crate::helpers::spawn_gateway(
        &database,
        "http://127.0.0.1:1",
        &[("ADLOOP_ML_SERVICE__CONNECT_TIMEOUT_MS", "200")],
    )
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let report: serde_json::Value = http
        .get(format!("{}/readyz", gateway.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["ready"], true);
    let ml_check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "ml-service")
        .unwrap();
    assert_eq!(ml_check["status"], "unavailable");

    let info = http
        .get(format!("{}/v1/ml/service-info", gateway.base_url()))
        .bearer_auth(gateway.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(
        info.status(),
        503,
        "an unreachable ml-service is reported as unavailable"
    );
    let body: serde_json::Value = info.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
}
