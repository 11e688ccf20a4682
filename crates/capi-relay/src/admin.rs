//! The relay's command line: without arguments it serves; `capi-relay sources create --name N --pixel P
//! [--test-event-code C]` creates an ingest source for pixel P and prints its token (the only time it is
//! shown); `capi-relay pixels resume --pixel P` ends a pixel's pause after its token was fixed;
//! `capi-relay events requeue --pixel P [--event-id E]` sends dead letters again; `migrate`, `check-settings`
//! and `probe` are every service's deployment commands (`adloop_service_kit::operations`).

use adloop_service_kit::operations::{ServiceCommand, run_operation};
use adloop_service_kit::postgres::connect_and_migrate;

use crate::settings::RelaySettings;

#[derive(Debug, clap::Parser)]
#[command(name = "capi-relay", about = "adloop's durable Conversions API relay")]
pub struct Command {
    #[command(subcommand)]
    pub command: Option<ServiceCommand<AdminCommand>>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Manage ingest sources (who may send events, to which pixels).
    Sources {
        #[command(subcommand)]
        action: SourceAction,
    },
    /// Delivery per pixel.
    Pixels {
        #[command(subcommand)]
        action: PixelAction,
    },
    /// Stored events.
    Events {
        #[command(subcommand)]
        action: EventAction,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum EventAction {
    /// Send a pixel's dead letters again (after what Meta refused was fixed at its cause).
    Requeue {
        #[arg(long)]
        pixel: String,
        /// Only this event id (every dead letter of the pixel otherwise).
        #[arg(long)]
        event_id: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum PixelAction {
    /// Deliver a paused pixel's events again now (after its access token was fixed).
    Resume {
        #[arg(long)]
        pixel: String,
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
        /// Send this source's events to Meta's test view with this code (unless a request names its own).
        #[arg(long)]
        test_event_code: Option<String>,
    },
}

/// Runs a command given on the command line; returns what to print.
pub async fn run_command(settings: &RelaySettings, command: ServiceCommand<AdminCommand>) -> anyhow::Result<String> {
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
pub async fn run_admin_command(settings: &RelaySettings, command: AdminCommand) -> anyhow::Result<String> {
    let pool = connect_and_migrate(&settings.database, &crate::startup::MIGRATOR).await?;
    match command {
        AdminCommand::Events {
            action: EventAction::Requeue { pixel, event_id },
        } => {
            check_pixel_argument(&pixel)?;
            let requeued = crate::delivery::queue::requeue_dead(&pool, &pixel, event_id.as_deref()).await?;
            Ok(format!(
                "{requeued} dead letters of pixel {pixel} are due for delivery again"
            ))
        }
        AdminCommand::Pixels {
            action: PixelAction::Resume { pixel },
        } => {
            check_pixel_argument(&pixel)?;
            if crate::delivery::queue::resume_pixel(&pool, &pixel).await? {
                Ok(format!("pixel {pixel} resumed: its pending events are due now"))
            } else {
                Ok(format!("pixel {pixel} was not paused; its pending events are due now"))
            }
        }
        AdminCommand::Sources {
            action:
                SourceAction::Create {
                    name,
                    pixels,
                    test_event_code,
                },
        } => {
            if !crate::sources::is_valid_source_name(&name) {
                anyhow::bail!("--name must be 1 to 100 characters, not only spaces and no control character");
            }
            for pixel in &pixels {
                check_pixel_argument(pixel)?;
            }
            if test_event_code
                .as_deref()
                .is_some_and(|code| !crate::sources::is_valid_test_event_code(code))
            {
                anyhow::bail!("--test-event-code must be 1 to 64 printable characters");
            }
            Ok(crate::sources::create_source_with_test_code(&pool, &name, &pixels, test_event_code.as_deref()).await?)
        }
    }
}

fn check_pixel_argument(pixel: &str) -> anyhow::Result<()> {
    if !crate::sources::is_valid_pixel_id(pixel) {
        anyhow::bail!("--pixel must be a pixel id (1 to 20 digits), got {pixel:?}");
    }
    Ok(())
}
