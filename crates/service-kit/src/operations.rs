//! Commands every service answers besides serving, for deployment steps: `migrate` (a Kubernetes init
//! container or a Cloud Run job, before the serving containers start with `database.migrate_on_start` off)
//! and `check-settings` (a manifest's settings, loaded exactly as start-up loads them).

use adloop_config::DatabaseSettings;
use sqlx::migrate::Migrator;

use crate::postgres::{DatabaseError, connect_and_migrate};

#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum OperationCommand {
    /// Apply this service's database migrations, then exit.
    Migrate,
    /// Load the settings as start-up does (defaults, ADLOOP_CONFIG_FILE, ADLOOP_* variables, *_FILE secrets)
    /// and exit: 0 when they hold, otherwise the error names the key.
    CheckSettings,
}

/// Runs an operation for a service whose settings already loaded; returns what to print.
pub async fn run_operation(
    command: OperationCommand,
    service_name: &str,
    database: &DatabaseSettings,
    migrator: &Migrator,
) -> Result<String, DatabaseError> {
    match command {
        OperationCommand::CheckSettings => Ok(format!("{service_name}: settings hold")),
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
