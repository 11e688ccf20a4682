use adloop_config::EnvironmentVariables;
use adloop_service_kit::serve::stop_signal;
use adloop_telemetry::{init_telemetry, otlp_endpoint_from_environment};
use clap::Parser as _;
use gateway_api::admin::{Command, run_command};
use gateway_api::settings::GatewaySettings;
use gateway_api::startup::Application;

/// mimalloc instead of glibc's allocator: the executor benchmark spent about a twentieth of the service's
/// CPU in glibc's free lists (`perf`), and ml-service and capi-relay already run on it.
#[global_allocator]
static GLOBAL_ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command_line = Command::parse();
    let settings = GatewaySettings::load(&EnvironmentVariables::from_process())?;
    if let Some(command) = command_line.command {
        println!("{}", run_command(&settings, command).await?);
        return Ok(());
    }
    let otlp_endpoint = otlp_endpoint_from_environment();
    let telemetry = init_telemetry(gateway_api::SERVICE_NAME, &settings.telemetry, otlp_endpoint.as_deref())?;

    let application = Application::build(settings).await?;
    tracing::info!(address = %application.local_address(), "gateway-api listening");
    let served = application.run_until_stopped(stop_signal()).await;
    tracing::info!("gateway-api stopped");
    telemetry.shutdown().await;
    Ok(served?)
}
