//! The gateway's command line: without arguments it serves; `gateway-api keys create --tenant T` issues an
//! API key for tenant T and prints it (the only time the key is shown); `migrate`, `check-settings` and `probe`
//! are every service's deployment commands (`adloop_service_kit::operations`).

use adloop_service_kit::operations::{ServiceCommand, run_operation};
use adloop_service_kit::postgres::connect_and_migrate;

use crate::executor::controls::{self, PauseScope};
use crate::settings::GatewaySettings;

#[derive(Debug, clap::Parser)]
#[command(name = "gateway-api", about = "adloop's HTTP front door and safe executor")]
pub struct Command {
    #[command(subcommand)]
    pub command: Option<ServiceCommand<AdminCommand>>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// The executor's global kill switch (tenants pause themselves through the API).
    Executor {
        #[command(subcommand)]
        action: ExecutorAction,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ExecutorAction {
    /// Stop claiming changes for every tenant, at once.
    Pause {
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift the global pause.
    Resume,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeyAction {
    /// Issue a key for a tenant and print it.
    Create {
        #[arg(long)]
        tenant: String,
        /// A label to tell keys apart.
        #[arg(long, default_value = "")]
        name: String,
    },
}

/// Runs a command given on the command line; returns what to print.
pub async fn run_command(settings: &GatewaySettings, command: ServiceCommand<AdminCommand>) -> anyhow::Result<String> {
    match command {
        ServiceCommand::Operation(operation) => Ok(run_operation(
            operation,
            crate::SERVICE_NAME,
            &settings.server,
            &settings.database,
            &crate::startup::MIGRATOR,
        )
        .await?),
        ServiceCommand::Admin(admin) => run_admin_command(settings, admin).await,
    }
}

/// Runs an admin command against the configured database; returns what to print.
pub async fn run_admin_command(settings: &GatewaySettings, command: AdminCommand) -> anyhow::Result<String> {
    let pool = connect_and_migrate(&settings.database, &crate::startup::MIGRATOR).await?;
    match command {
        AdminCommand::Keys {
            action: KeyAction::Create { tenant, name },
        } => {
            if !crate::api_keys::is_valid_tenant_id(&tenant) {
                anyhow::bail!("--tenant must be 1 to 100 ASCII letters, digits, '-', '_' or '.', got {tenant:?}");
            }
            if !crate::api_keys::is_valid_key_name(&name) {
                anyhow::bail!("--name must be at most 100 characters, none of them a control character");
            }
            Ok(crate::api_keys::create_api_key(&pool, &tenant, &name).await?)
        }
        AdminCommand::Executor {
            action: ExecutorAction::Pause { reason },
        } => {
            controls::pause(&pool, &PauseScope::Global, &reason, "admin").await?;
            Ok("the executor is paused for every tenant".to_owned())
        }
        AdminCommand::Executor {
            action: ExecutorAction::Resume,
        } => {
            let was_paused = controls::resume(&pool, &PauseScope::Global, "admin").await?;
            Ok(if was_paused {
                "the global pause is lifted".to_owned()
            } else {
                "there was no global pause".to_owned()
            })
        }
    }
}
