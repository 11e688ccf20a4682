use adloop_config::EnvironmentVariables;
use adloop_service_kit::serve::stop_signal;
use adloop_telemetry::{init_telemetry, otlp_endpoint_from_environment};
use capi_relay::admin::{Command, run_command};
use capi_relay::settings::RelaySettings;
use capi_relay::startup::Application;
use clap::Parser as _;

/// mimalloc: ingest allocates and frees many small maps and strings per event; with glibc's allocator
/// malloc and free took about a third of the relay's CPU under load (relay-bench, perf).
#[global_allocator]
static GLOBAL_ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command_line = Command::parse();
    let settings = RelaySettings::load(&EnvironmentVariables::from_process())?;
    if let Some(command) = command_line.command {
        println!("{}", run_command(&settings, command).await?);
        return Ok(());
    }
    let otlp_endpoint = otlp_endpoint_from_environment();
    let telemetry = init_telemetry(capi_relay::SERVICE_NAME, &settings.telemetry, otlp_endpoint.as_deref())?;

    let application = Application::build(settings).await?;
    tracing::info!(address = %application.local_address(), "capi-relay listening");
    let served = application.run_until_stopped(stop_signal()).await;
    tracing::info!("capi-relay stopped");
    telemetry.shutdown().await;
    Ok(served?)
}
