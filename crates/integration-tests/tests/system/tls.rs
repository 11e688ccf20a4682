//! ml-service at an https:// endpoint, as on Cloud Run or behind any TLS terminator: ml-service serves TLS
//! with a test certificate from a test CA, the gateway reaches it through its gRPC client with TLS on, and
//! a gateway that does not trust the CA is refused (the server is verified, not just encrypted to). The
//! executor's Graph client speaks TLS to https:// too, verifying against the public roots.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// Writes a test CA and a certificate for 127.0.0.1 signed by it; returns (ca, certificate, key) paths.
fn write_test_certificates(directory: &Path) -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "adloop test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_certificate = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let write = |name: &str, contents: String| {
        let path = directory.join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    };
    (
        write("ca.pem", ca.pem()),
        write("server.pem", server_certificate.pem()),
        write("server-key.pem", server_key.serialize_pem()),
    )
}

#[tokio::test]
async fn the_gateway_reaches_a_tls_serving_ml_service_and_refuses_one_it_cannot_verify() {
    let database = adloop_test_support::TestDatabase::create().await;
    let directory = tempfile::tempdir().unwrap();
    let (ca_path, certificate_path, key_path) = write_test_certificates(directory.path());
    let ml_service = crate::helpers::spawn_ml_service_with(
        &database,
        &[
            ("ADLOOP_SERVER__TLS_CERTIFICATE_PATH", &certificate_path),
            ("ADLOOP_SERVER__TLS_PRIVATE_KEY_PATH", &key_path),
        ],
    )
    .await;
    let https_endpoint = format!("https://127.0.0.1:{}", ml_service.address.port());

    // The container's health check (`ml-service probe`) speaks TLS to a TLS-serving service.
    let probe_settings = ml_service::settings::MlServiceSettings::load(&adloop_test_support::service_environment(
        &database,
        &[
            ("ADLOOP_SERVER__PORT", &ml_service.address.port().to_string()),
            ("ADLOOP_SERVER__TLS_CERTIFICATE_PATH", &certificate_path),
            ("ADLOOP_SERVER__TLS_PRIVATE_KEY_PATH", &key_path),
            ("ADLOOP_REDIS__URL", &adloop_test_support::redis_url()),
        ],
    ))
    .unwrap();
    adloop_service_kit::operations::run_operation(
        adloop_service_kit::operations::OperationCommand::Probe,
        "ml-service",
        &probe_settings.server,
        &probe_settings.database,
        &ml_service::startup::MIGRATOR,
    )
    .await
    .unwrap();

    let trusting_gateway = crate::helpers::spawn_gateway(
        &database,
        &https_endpoint,
        &[("ADLOOP_ML_SERVICE__CA_CERTIFICATE_PATH", &ca_path)],
    )
    .await;
    let http = reqwest::Client::new();
    let info = http
        .get(format!("{}/v1/ml/service-info", trusting_gateway.base_url()))
        .bearer_auth(trusting_gateway.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200, "{}", info.text().await.unwrap());

    // Plain HTTP/2 to a TLS port gets nowhere: the endpoint really is TLS.
    let plain_text_gateway = crate::helpers::spawn_gateway(
        &database,
        &format!("http://127.0.0.1:{}", ml_service.address.port()),
        &[("ADLOOP_ML_SERVICE__REQUEST_TIMEOUT_MS", "2000")],
    )
    .await;
    let plain_text_info = http
        .get(format!("{}/v1/ml/service-info", plain_text_gateway.base_url()))
        .bearer_auth(plain_text_gateway.api_key())
        .send()
        .await
        .unwrap();
    assert_ne!(plain_text_info.status(), 200);

    // Without the test CA the public roots do not vouch for the certificate: refused.
    let untrusting_gateway = crate::helpers::spawn_gateway(&database, &https_endpoint, &[]).await;
    let refused = http
        .get(format!("{}/v1/ml/service-info", untrusting_gateway.base_url()))
        .bearer_auth(untrusting_gateway.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503, "an unverifiable ml-service is unavailable");

    // The executor's Graph client speaks TLS to an https:// base URL (Meta's) and verifies the server
    // against the public roots: this test certificate is refused during the handshake.
    let graph =
        gateway_api::executor::graph_client::GraphClient::new(gateway_api::executor::graph_client::GraphSettings {
            base_url: https_endpoint.clone(),
            api_version: "v25.0".into(),
            access_token: None,
            app_secret: None,
            request_timeout_ms: 5000,
        })
        .unwrap();
    let handshake_refused = graph.get("23851000000001", "daily_budget").await.unwrap_err();
    let error_chain = format!("{handshake_refused:?}").to_lowercase();
    assert!(error_chain.contains("certificate"), "{error_chain}");
}
