use adloop_config::EnvironmentVariables;
use adloop_service_kit::serve::stop_signal;
use adloop_telemetry::{init_telemetry, otlp_endpoint_from_environment};
use ml_service::settings::MlServiceSettings;
use ml_service::startup::Application;

/// mimalloc returns freed memory to the system and keeps fragmentation low under the cache's churn; with
/// glibc's allocator a full cache under churn grew ml-service past its 512 MiB limit (BENCHMARKS.md).
#[global_allocator]
static GLOBAL_ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = MlServiceSettings::load(&EnvironmentVariables::from_process())?;
    let otlp_endpoint = otlp_endpoint_from_environment();
    let telemetry = init_telemetry(ml_service::SERVICE_NAME, &settings.telemetry, otlp_endpoint.as_deref())?;

    let application = Application::build(settings).await?;
    tracing::info!(address = %application.local_address(), "ml-service listening");
    let served = application.run_until_stopped(stop_signal()).await;
    tracing::info!("ml-service stopped");
    telemetry.shutdown().await;
    Ok(served?)
}
