use adloop_config::EnvironmentVariables;
use adloop_service_kit::serve::stop_signal;
use adloop_telemetry::{init_telemetry, otlp_endpoint_from_environment};
use clap::Parser as _;
use meta_sim::settings::MetaSimSettings;
use meta_sim::startup::Application;

/// mimalloc instead of glibc's allocator: the executor benchmark spent about a twentieth of the service's
/// CPU in glibc's free lists (`perf`), and ml-service and capi-relay already run on it.
#[global_allocator]
static GLOBAL_ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Without a command meta-sim serves.
#[derive(Debug, clap::Parser)]
#[command(
    name = "meta-sim",
    about = "A local Graph API and Conversions API over a simulated campaign world"
)]
struct Command {
    #[command(subcommand)]
    operation: Option<Operation>,
}

#[derive(Debug, Clone, Copy, clap::Subcommand)]
enum Operation {
    /// Load the settings as start-up does and exit: 0 when they hold, otherwise the error names the key.
    CheckSettings,
    /// Ask the meta-sim running in this container for `/healthz` on its port: exit 0 when it answers 200.
    Probe,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Command::parse();
    let settings = MetaSimSettings::load(&EnvironmentVariables::from_process())?;
    match command.operation {
        None => {}
        Some(Operation::CheckSettings) => {
            println!("meta-sim: settings hold");
            return Ok(());
        }
        Some(Operation::Probe) => {
            adloop_service_kit::operations::probe_liveness(&settings.server).await?;
            println!("meta-sim: live");
            return Ok(());
        }
    }
    let otlp_endpoint = otlp_endpoint_from_environment();
    let telemetry = init_telemetry(meta_sim::SERVICE_NAME, &settings.telemetry, otlp_endpoint.as_deref())?;

    let application = Application::build(settings).await?;
    tracing::info!(address = %application.local_address(), "meta-sim listening");
    let served = application.run_until_stopped(stop_signal()).await;
    tracing::info!("meta-sim stopped");
    telemetry.shutdown().await;
    Ok(served?)
}
