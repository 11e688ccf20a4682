//! The instant learner's durable intake and read-your-writes latency (see `adloop_load::learning_bench`).
//!
//!     learning-bench [--seconds 15] [--clients 4] [--events-per-request 1000] [--visibility-samples 2000]
//!
//! Needs the dev stack (`scripts/dev-stack up`) and release builds of ml-service and gateway-api.

use std::time::Duration;

use adloop_load::learning_bench::{self, LearningBenchPlan, milliseconds};

#[derive(Debug, clap::Parser)]
#[command(about = "the instant learner's durable intake and read-your-writes latency")]
struct Arguments {
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    #[arg(long, default_value_t = 4)]
    clients: usize,
    #[arg(long, default_value_t = 1000)]
    events_per_request: usize,
    #[arg(long, default_value_t = 2000)]
    visibility_samples: usize,
    /// Where the release binaries are (default: beside this program).
    #[arg(long)]
    binaries_dir: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = <Arguments as clap::Parser>::parse();
    let plan = LearningBenchPlan {
        binaries_dir: arguments
            .binaries_dir
            .clone()
            .unwrap_or_else(adloop_load::processes::default_binaries_dir),
        phase: Duration::from_secs(arguments.seconds),
        clients: arguments.clients,
        events_per_request: arguments.events_per_request,
        visibility_samples: arguments.visibility_samples,
    };
    let figures = learning_bench::run(&plan).await?;
    println!("| measurement | figure |");
    println!("|---|---|");
    println!(
        "| RecordEvent, {} clients × {} events/request: events/s acknowledged (committed and applied) | {:.0} |",
        plan.clients,
        plan.events_per_request,
        figures.events_per_second()
    );
    println!(
        "| RecordEvent latency p50 / p99 (ms) | {:.1} / {:.1} |",
        milliseconds(&figures.request_latency, 0.5),
        milliseconds(&figures.request_latency, 0.99)
    );
    println!("| failed requests | {} |", figures.failed_requests);
    println!(
        "| event → visible through HTTP (POST event, GET /api/weights), p50 / p99 / max (ms), {} samples | {:.2} / {:.2} / {:.2} |",
        plan.visibility_samples,
        milliseconds(&figures.visibility_latency, 0.5),
        milliseconds(&figures.visibility_latency, 0.99),
        milliseconds(&figures.visibility_latency, 1.0)
    );
    println!(
        "acknowledged events: {}; events in the learner's log: {}; round trips not reflecting their event: {}",
        figures.acknowledged_events, figures.logged_events, figures.not_visible
    );
    if figures.logged_events < figures.acknowledged_events as i64 {
        anyhow::bail!("ml-service acknowledged learning events it did not log");
    }
    if figures.not_visible > 0 {
        anyhow::bail!("an acknowledged event was not visible through the gateway");
    }
    Ok(())
}
