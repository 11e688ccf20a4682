use std::time::Duration;

use tokio::net::TcpListener;

use crate::helpers::{spawn_capi_relay, spawn_gateway, spawn_ml_service};

#[tokio::test]
async fn stopping_a_service_finishes_cleanly_and_closes_its_port() {
    adloop_telemetry::init_telemetry_for_tests();
    let database = adloop_test_support::TestDatabase::create().await;
    for mut service in [spawn_ml_service(&database).await, spawn_capi_relay(&database).await] {
        service.stop();
        let served = tokio::time::timeout(Duration::from_secs(15), service.task)
            .await
            .expect("service stops within its grace period")
            .unwrap();
        assert!(served.is_ok(), "{served:?}");
        let connection = tokio::net::TcpStream::connect(service.address).await;
        assert!(connection.is_err(), "{} still accepts connections", service.address);
    }
}

#[tokio::test]
async fn stopping_the_gateway_lets_an_in_flight_request_finish() {
    adloop_telemetry::init_telemetry_for_tests();
    let database = adloop_test_support::TestDatabase::create().await;
    // An "ml-service" that accepts connections and never answers: the gateway's call stays in flight until
    // its 1.5 s request timeout.
    let silent_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_address = silent_listener.local_addr().unwrap();
    let silent_server = tokio::spawn(async move {
        let mut open_connections = Vec::new();
        while let Ok((connection, _)) = silent_listener.accept().await {
            open_connections.push(connection);
        }
    });
    let mut gateway = spawn_gateway(
        &database,
        &format!("http://{silent_address}"),
        &[("ADLOOP_ML_SERVICE__REQUEST_TIMEOUT_MS", "1500")],
    )
    .await;

    let request = reqwest::Client::new()
        .get(format!("{}/v1/ml/service-info", gateway.base_url()))
        .bearer_auth(gateway.api_key());
    let in_flight_request = tokio::spawn(request.send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateway.stop();

    let response = in_flight_request
        .await
        .unwrap()
        .expect("the in-flight request gets an answer");
    assert_eq!(
        response.status(),
        504,
        "the request ran to its own timeout instead of being cut off"
    );
    let served = tokio::time::timeout(Duration::from_secs(15), gateway.task)
        .await
        .expect("gateway stops after draining")
        .unwrap();
    assert!(served.is_ok(), "{served:?}");
    silent_server.abort();
}
