use std::net::SocketAddr;

use adloop_service_kit::serve::ServeError;
use adloop_test_support::{TestDatabase, service_environment};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running service: its address, a way to stop it, and its task (which yields how serving ended).
pub struct RunningService {
    pub address: SocketAddr,
    stop_sender: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<Result<(), ServeError>>,
    /// For the gateway: an API key of the test tenant.
    pub api_key: Option<String>,
}

impl RunningService {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The service's `/metrics` page (Prometheus text).
    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base_url()))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// The gateway's API key for the test tenant (`Authorization: Bearer`).
    pub fn api_key(&self) -> &str {
        self.api_key.as_deref().expect("the gateway was spawned with a key")
    }

    /// Sends the stop signal; the service then drains and its task finishes.
    pub fn stop(&mut self) {
        if let Some(stop_sender) = self.stop_sender.take() {
            let _ = stop_sender.send(());
        }
    }
}

/// Runs a built service in the background with a stop signal the test controls.
fn run_in_background<Serving>(
    address: SocketAddr,
    run_until_stopped: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Serving,
) -> RunningService
where
    Serving: Future<Output = Result<(), ServeError>> + Send + 'static,
{
    let (stop_sender, stop_receiver) = oneshot::channel::<()>();
    let stop = Box::pin(async move {
        let _ = stop_receiver.await;
    });
    RunningService {
        address,
        stop_sender: Some(stop_sender),
        task: tokio::spawn(run_until_stopped(stop)),
        api_key: None,
    }
}

pub async fn spawn_ml_service(database: &TestDatabase) -> RunningService {
    spawn_ml_service_with(database, &[]).await
}

pub async fn spawn_ml_service_with(database: &TestDatabase, overrides: &[(&str, &str)]) -> RunningService {
    let redis_url = adloop_test_support::redis_url();
    let mut with_redis = vec![("ADLOOP_REDIS__URL", redis_url.as_str())];
    with_redis.extend_from_slice(overrides);
    let settings = ml_service::settings::MlServiceSettings::load(&service_environment(database, &with_redis))
        .expect("ml-service settings");
    let application = ml_service::startup::Application::build(settings)
        .await
        .expect("ml-service starts");
    run_in_background(application.local_address(), |stop| application.run_until_stopped(stop))
}

pub async fn spawn_gateway(
    database: &TestDatabase,
    ml_service_endpoint: &str,
    extra: &[(&str, &str)],
) -> RunningService {
    let mut overrides = vec![("ADLOOP_ML_SERVICE__ENDPOINT", ml_service_endpoint)];
    overrides.extend_from_slice(extra);
    let settings = gateway_api::settings::GatewaySettings::load(&service_environment(database, &overrides))
        .expect("gateway settings");
    let application = gateway_api::startup::Application::build(settings.clone())
        .await
        .expect("gateway starts");
    let pool = adloop_service_kit::postgres::connect_and_migrate(&settings.database, &gateway_api::startup::MIGRATOR)
        .await
        .expect("gateway database");
    let api_key = gateway_api::api_keys::create_api_key(&pool, "test-tenant", "integration tests")
        .await
        .expect("an API key");
    let mut running = run_in_background(application.local_address(), |stop| application.run_until_stopped(stop));
    running.api_key = Some(api_key);
    running
}

pub async fn spawn_capi_relay(database: &TestDatabase) -> RunningService {
    spawn_capi_relay_with(database, &[]).await
}

pub async fn spawn_capi_relay_with(database: &TestDatabase, overrides: &[(&str, &str)]) -> RunningService {
    let settings =
        capi_relay::settings::RelaySettings::load(&service_environment(database, overrides)).expect("relay settings");
    let application = capi_relay::startup::Application::build(settings)
        .await
        .expect("capi-relay starts");
    run_in_background(application.local_address(), |stop| application.run_until_stopped(stop))
}

/// All three services on port 0, sharing one fresh database (each in its own schema).
pub struct Stack {
    pub ml_service: RunningService,
    pub gateway: RunningService,
    pub capi_relay: RunningService,
    pub database: TestDatabase,
}

/// An API key for `tenant` on the gateway of `database`.
pub async fn gateway_key_for(database: &TestDatabase, tenant: &str) -> String {
    gateway_api::api_keys::create_api_key(&gateway_pool(database).await, tenant, "integration tests")
        .await
        .expect("an API key")
}

/// A pool on the gateway's schema of `database`, for reading what the gateway stored.
pub async fn gateway_pool(database: &TestDatabase) -> sqlx::PgPool {
    let settings =
        gateway_api::settings::GatewaySettings::load(&service_environment(database, &[])).expect("gateway settings");
    adloop_service_kit::postgres::connect_and_migrate(&settings.database, &gateway_api::startup::MIGRATOR)
        .await
        .expect("gateway database")
}

pub async fn spawn_stack() -> Stack {
    adloop_telemetry::init_telemetry_for_tests();
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service(&database).await;
    let gateway = spawn_gateway(&database, &ml_service.base_url(), &[]).await;
    let capi_relay = spawn_capi_relay(&database).await;
    Stack {
        ml_service,
        gateway,
        capi_relay,
        database,
    }
}

/// meta-sim on port 0 with a manual clock, serving `scenarios/<scenario>.toml`, plus `extra` settings; its
/// base URL.
pub async fn spawn_manual_meta_sim(scenario: &str, extra: &[(&str, &str)]) -> String {
    let scenario_path = format!("{}/../../scenarios/{scenario}.toml", env!("CARGO_MANIFEST_DIR"));
    let mut variables = vec![
        ("ADLOOP_SERVER__HOST", "127.0.0.1"),
        ("ADLOOP_SERVER__PORT", "0"),
        ("ADLOOP_WORLD__SCENARIO_PATH", scenario_path.as_str()),
        ("ADLOOP_CLOCK__MODE", "manual"),
    ];
    variables.extend_from_slice(extra);
    let environment = adloop_config::EnvironmentVariables::from_pairs(variables);
    let settings = meta_sim::settings::MetaSimSettings::load(&environment).expect("meta-sim settings");
    let application = meta_sim::startup::Application::build(settings)
        .await
        .expect("meta-sim starts");
    let base_url = format!("http://{}", application.local_address());
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    base_url
}

/// An HTTP error answer: asserts its status, and returns its `error.field` (empty when it names none) and its
/// `error.message`.
pub async fn http_refusal(response: reqwest::Response, status: u16) -> (String, String) {
    assert_eq!(response.status().as_u16(), status);
    let answer: serde_json::Value = response.json().await.unwrap();
    let field = answer["error"]["field"].as_str().unwrap_or_default().to_owned();
    let Some(message) = answer["error"]["message"].as_str() else {
        panic!("no error.message: {answer}");
    };
    (field, message.to_owned())
}
