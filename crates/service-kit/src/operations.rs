//! Commands every service answers besides serving, for deployment steps: `migrate` (a Kubernetes init
//! container or a Cloud Run job, before the serving containers start with `database.migrate_on_start` off),
//! `check-settings` (a manifest's settings, loaded exactly as start-up loads them) and `probe` (the
//! container's health check, in an image without curl; over TLS when the service serves TLS).

use std::time::Duration;

use adloop_config::{DatabaseSettings, ServerSettings};
use sqlx::migrate::Migrator;

use crate::postgres::{DatabaseError, connect_and_migrate};

const PROBE_TIME_OUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("probe of 127.0.0.1:{port}/healthz failed: {reason}")]
    ProbeFailed { port: u16, reason: String },
}

#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum OperationCommand {
    /// Apply this service's database migrations, then exit.
    Migrate,
    /// Load the settings as start-up does (defaults, ADLOOP_CONFIG_FILE, ADLOOP_* variables, *_FILE secrets)
    /// and exit: 0 when they hold, otherwise the error names the key.
    CheckSettings,
    /// Ask the service running in this container for `/healthz` on its port: exit 0 when it answers 200.
    Probe,
}

/// A service's command line below its name: an operation every service answers, or the service's own
/// admin commands `A`. Without a command the service serves.
#[derive(Debug, clap::Subcommand)]
pub enum ServiceCommand<A: clap::Subcommand> {
    #[command(flatten)]
    Operation(OperationCommand),
    #[command(flatten)]
    Admin(A),
}

/// Runs an operation for a service whose settings already loaded; returns what to print.
pub async fn run_operation(
    command: OperationCommand,
    service_name: &str,
    server: &ServerSettings,
    database: &DatabaseSettings,
    migrator: &Migrator,
) -> Result<String, OperationError> {
    match command {
        OperationCommand::CheckSettings => Ok(format!("{service_name}: settings hold")),
        OperationCommand::Probe => {
            probe_liveness(server).await?;
            Ok(format!("{service_name}: live"))
        }
        OperationCommand::Migrate => {
            let pool = connect_and_migrate(database, migrator).await?;
            pool.close().await;
            let known = migrator.iter().count();
            Ok(format!(
                "{service_name}: schema `{}` has all {known} migrations",
                database.schema
            ))
        }
    }
}

/// `GET /healthz` on the loopback address, over TLS when the service serves TLS. The certificate is not
/// checked: it names the service's public host, and this asks the process in its own container.
pub async fn probe_liveness(server: &ServerSettings) -> Result<(), OperationError> {
    let failed = |reason: String| OperationError::ProbeFailed {
        port: server.port,
        reason,
    };
    let scheme = if server.tls_certificate_path.is_some() {
        "https"
    } else {
        "http"
    };
    let http = reqwest::Client::builder()
        .timeout(PROBE_TIME_OUT)
        .tls_danger_accept_invalid_certs(true)
        .build()
        .map_err(|error| failed(error.to_string()))?;
    let answer = http
        .get(format!("{scheme}://127.0.0.1:{}/healthz", server.port))
        .send()
        .await
        .map_err(|error| failed(error.to_string()))?;
    if answer.status() != reqwest::StatusCode::OK {
        return Err(failed(format!("answered HTTP {}", answer.status().as_u16())));
    }
    Ok(())
}
