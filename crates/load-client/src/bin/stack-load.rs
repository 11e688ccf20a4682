//! gateway-api, capi-relay and ml-service together under steady load with faults (see
//! `adloop_load::stack_load`).
//!
//!     stack-load [--seconds 180] [--change-requests 20] [--allocations 20] [--learning-events 20]
//!                [--relay-requests 20] [--redis-down-seconds 5] [--drain-seconds 300]
//!                [--binaries-dir target/release]
//!
//! Needs the dev stack's Postgres (`scripts/dev-stack up`), `redis-server`, and builds of meta-sim,
//! ml-service, gateway-api and capi-relay beside it (or in --binaries-dir). Prints what each stream sent and
//! got, the services' memory, and every check; exits 1 when a check fails.

use std::time::Duration;

use adloop_load::stack_load::{self, StackLoadFigures, StackLoadPlan, StreamTally};

#[derive(Debug, clap::Parser)]
#[command(about = "gateway-api, capi-relay and ml-service under steady load, with faults and a Redis crash")]
struct Arguments {
    /// How long the steady load runs.
    #[arg(long, default_value_t = 180)]
    seconds: u64,
    /// Requests a second of 5 budget changes each.
    #[arg(long, default_value_t = 20.0)]
    change_requests: f64,
    #[arg(long, default_value_t = 20.0)]
    allocations: f64,
    #[arg(long, default_value_t = 20.0)]
    learning_events: f64,
    /// Requests a second of 10 purchases each.
    #[arg(long, default_value_t = 20.0)]
    relay_requests: f64,
    #[arg(long, default_value_t = 5)]
    redis_down_seconds: u64,
    /// How long the services may take to finish the work once the load stops: at least as long as a change
    /// may wait to count as work left (300 s), or one waiting out its backoff reads as lost. A healthy run
    /// drains in seconds.
    #[arg(long, default_value_t = stack_load::WORK_DUE_WITHIN.as_secs())]
    drain_seconds: u64,
    /// Where the service binaries are (default: beside this program).
    #[arg(long)]
    binaries_dir: Option<std::path::PathBuf>,
}

fn stream_row(stream: &StreamTally) -> String {
    format!(
        "| {} | {} | {:.1} | {} | {} | {} | {} | {:.1} | {:.1} |",
        stream.name,
        stream.requests,
        stream.requests as f64 / stream.seconds.max(1e-9),
        stream.succeeded(),
        stream.shed(),
        stream.failed(),
        stream.not_sent,
        stream.latency_milliseconds(0.5),
        stream.latency_milliseconds(0.99),
    )
}

fn print_report(figures: &StackLoadFigures) {
    println!("| stream | requests | a second | 2xx | 429 shed | failed | not sent | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for stream in figures
        .streams
        .iter()
        .chain(std::iter::once(&figures.allocations_while_redis_down))
    {
        println!("{}", stream_row(stream));
    }
    println!();
    println!(
        "meta-sim: {} requests, {} faults injected, {} Conversions API events received; drained in {:.1} s after the load",
        figures.graph_requests,
        figures.faults_injected,
        figures.capi_events_received_at_meta_sim,
        figures.drain_seconds
    );
    let states: Vec<String> = figures
        .changes_by_state
        .iter()
        .map(|(state, count)| format!("{count} {state}"))
        .collect();
    println!("changes: {}", states.join(", "));
    println!();
    println!("| service | limit MiB | peak MiB | first third MiB | last third MiB |");
    println!("|---|---|---|---|---|");
    for (service, limit, trace) in &figures.memory {
        let (first, last) = trace.first_and_last_thirds();
        println!(
            "| {service} | {limit:.0} | {:.0} | {first:.0} | {last:.0} |",
            trace.peak()
        );
    }
    println!();
    for check in &figures.checks {
        println!(
            "{} {}: {}",
            if check.passed { "PASS" } else { "FAIL" },
            check.name,
            check.finding
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Arguments = clap::Parser::parse();
    let plan = StackLoadPlan {
        binaries_dir: arguments
            .binaries_dir
            .unwrap_or_else(adloop_load::processes::default_binaries_dir),
        duration: Duration::from_secs(arguments.seconds),
        change_requests_per_second: arguments.change_requests,
        allocations_per_second: arguments.allocations,
        learning_events_per_second: arguments.learning_events,
        relay_requests_per_second: arguments.relay_requests,
        redis_down_for: Duration::from_secs(arguments.redis_down_seconds),
        drain_limit: Duration::from_secs(arguments.drain_seconds),
    };
    let figures = stack_load::run(&plan).await?;
    print_report(&figures);
    if !figures.passed() {
        // Named last, alone on stderr: a log cut to its last lines (CI, `fresh-clone-test`) still says which
        // check failed and why, where an error with a backtrace would push the report out of sight.
        for check in figures.checks.iter().filter(|check| !check.passed) {
            eprintln!("stack-load: FAIL {}: {}", check.name, check.finding);
        }
        std::process::exit(1);
    }
    Ok(())
}
