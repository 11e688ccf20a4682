//! Commands every service answers besides serving, for deployment steps: `migrate` (a Kubernetes init
//! container or a Cloud Run job, before the serving containers start with `database.migrate_on_start` off),
//! `check-settings` (a manifest's settings, loaded exactly as start-up loads them) and `probe` (the
//! container's health check, in an image without curl).

use std::time::Duration;

use adloop_config::{DatabaseSettings, ServerSettings};
use sqlx::migrate::Migrator;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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
            let status_line = tokio::time::timeout(PROBE_TIME_OUT, liveness_status_line(server.port))
                .await
                .map_err(|_| OperationError::ProbeFailed {
                    port: server.port,
                    reason: format!("no answer within {PROBE_TIME_OUT:?}"),
                })?
                .map_err(|error| OperationError::ProbeFailed {
                    port: server.port,
                    reason: error.to_string(),
                })?;
            if status_line.split_whitespace().nth(1) != Some("200") {
                return Err(OperationError::ProbeFailed {
                    port: server.port,
                    reason: format!("answered `{status_line}`"),
                });
            }
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

/// The first line of the service's answer to `GET /healthz` on the loopback address.
async fn liveness_status_line(port: u16) -> std::io::Result<String> {
    let mut connection = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    connection
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::with_capacity(256);
    let mut buffer = [0_u8; 256];
    while !answer.contains(&b'\n') && answer.len() < 4096 {
        let read = connection.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&answer);
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}
