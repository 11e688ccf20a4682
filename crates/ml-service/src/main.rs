use adloop_config::EnvironmentVariables;
use adloop_service_kit::operations::{OperationCommand, run_operation};
use adloop_service_kit::serve::stop_signal;
use adloop_telemetry::{init_telemetry, otlp_endpoint_from_environment};
use clap::Parser as _;
use ml_service::settings::MlServiceSettings;
use ml_service::startup::{Application, MIGRATOR};

/// Without a command ml-service serves.
#[derive(Debug, clap::Parser)]
#[command(
    name = "ml-service",
    about = "adloop's allocator, score cache and learners over gRPC"
)]
struct Command {
    #[command(subcommand)]
    operation: Option<OperationCommand>,
}

/// mimalloc returns freed memory to the system and keeps fragmentation low under the cache's churn; with
/// glibc's allocator a full cache under churn grew ml-service past its 512 MiB limit (BENCHMARKS.md).
#[global_allocator]
static GLOBAL_ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Command::parse();
    let settings = MlServiceSettings::load(&EnvironmentVariables::from_process())?;
    if let Some(operation) = command.operation {
        let printed = run_operation(
            operation,
            ml_service::SERVICE_NAME,
            &settings.server,
            &settings.database,
            &MIGRATOR,
        )
        .await?;
        println!("{printed}");
        return Ok(());
    }
    let otlp_endpoint = otlp_endpoint_from_environment();
    let telemetry = init_telemetry(ml_service::SERVICE_NAME, &settings.telemetry, otlp_endpoint.as_deref())?;

    let application = Application::build(settings).await?;
    tracing::info!(address = %application.local_address(), "ml-service listening");
    let served = application.run_until_stopped(stop_signal()).await;
    tracing::info!("ml-service stopped");
    telemetry.shutdown().await;
    Ok(served?)
}
