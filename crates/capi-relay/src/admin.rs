//! The relay's command line: without arguments it serves; `capi-relay sources create --name N --pixel P`
//! creates an ingest source for pixel P and prints its token (the only time it is shown).

use adloop_service_kit::postgres::connect_and_migrate;

use crate::settings::RelaySettings;

#[derive(Debug, clap::Parser)]
#[command(name = "capi-relay", about = "adloop's durable Conversions API relay")]
pub struct Command {
    #[command(subcommand)]
    pub admin: Option<AdminCommand>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Manage ingest sources (who may send events, to which pixels).
    Sources {
        #[command(subcommand)]
        action: SourceAction,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum SourceAction {
    /// Create a source and print its ingest token.
    Create {
        #[arg(long)]
        name: String,
        /// A pixel the source may write to (repeat for several).
        #[arg(long = "pixel", required = true)]
        pixels: Vec<String>,
    },
}

/// Runs an admin command against the configured database; returns what to print.
pub async fn run_admin_command(settings: &RelaySettings, command: AdminCommand) -> anyhow::Result<String> {
    let pool = connect_and_migrate(&settings.database, &crate::startup::MIGRATOR).await?;
    match command {
        AdminCommand::Sources {
            action: SourceAction::Create { name, pixels },
        } => {
            if name.trim().is_empty() || name.len() > 100 {
                anyhow::bail!("--name must be 1 to 100 characters");
            }
            if let Some(bad) = pixels
                .iter()
                .find(|pixel| pixel.is_empty() || !pixel.bytes().all(|byte| byte.is_ascii_digit()))
            {
                anyhow::bail!("--pixel must be a pixel id (digits), got {bad:?}");
            }
            Ok(crate::sources::create_source(&pool, &name, &pixels).await?)
        }
    }
}
