use adloop_config::EnvironmentVariables;
use adloop_service_kit::serve::stop_signal;
use adloop_telemetry::{init_telemetry, otlp_endpoint_from_environment};
use meta_sim::settings::MetaSimSettings;
use meta_sim::startup::Application;

/// mimalloc instead of glibc's allocator: the executor benchmark spent about a twentieth of the service's
/// CPU in glibc's free lists (`perf`), and ml-service and capi-relay already run on it.
#[global_allocator]
static GLOBAL_ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = MetaSimSettings::load(&EnvironmentVariables::from_process())?;
    let otlp_endpoint = otlp_endpoint_from_environment();
    let telemetry = init_telemetry(meta_sim::SERVICE_NAME, &settings.telemetry, otlp_endpoint.as_deref())?;

    let application = Application::build(settings).await?;
    tracing::info!(address = %application.local_address(), "meta-sim listening");
    let served = application.run_until_stopped(stop_signal()).await;
    tracing::info!("meta-sim stopped");
    telemetry.shutdown().await;
    Ok(served?)
}
