//! capi-relay's durable ingest under load (see `adloop_load::relay_bench`).
//!
//!     relay-bench [--seconds 15] [--batch-clients 8] [--single-clients 64] [--rate 2000]
//!                 [--relay-setting ADLOOP_INGEST__COMMIT_WRITERS=8 …] [--binaries-dir target/release]
//!
//! Needs the dev stack (`scripts/dev-stack up`) and a release build of capi-relay. Prints a Markdown table:
//! each relay figure beside the bare Postgres ceiling measured in the same run on the same machine.

use std::time::Duration;

use adloop_load::relay_bench::{self, LoadFigures, RelayBenchPlan};

#[derive(Debug, clap::Parser)]
#[command(about = "capi-relay's durable ingest under load")]
struct Arguments {
    /// Length of each load phase and each ceiling measurement.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    #[arg(long, default_value_t = 8)]
    batch_clients: usize,
    #[arg(long, default_value_t = 64)]
    single_clients: usize,
    /// Requests a second (1 event each) in the latency phase.
    #[arg(long, default_value_t = 2000)]
    rate: u32,
    /// A setting for the relay, as its environment variable (repeatable): `--relay-setting ADLOOP_INGEST__COMMIT_WRITERS=8`.
    #[arg(long = "relay-setting", value_parser = parse_setting)]
    relay_settings: Vec<(String, String)>,
    /// Where the release binary of capi-relay is (default: beside this program).
    #[arg(long)]
    binaries_dir: Option<std::path::PathBuf>,
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if key.starts_with("ADLOOP_") => Ok((key.to_owned(), value.to_owned())),
        _ => Err("must be ADLOOP_<SECTION>__<KEY>=VALUE".into()),
    }
}

fn row(label: &str, figures: &LoadFigures, ceiling: Option<f64>) -> String {
    let events_per_second = figures.events_per_second();
    let (ceiling_text, share) = match ceiling {
        Some(ceiling) => (
            format!("{ceiling:.0}"),
            format!("{:.2}", events_per_second / ceiling.max(1e-9)),
        ),
        None => ("–".into(), "–".into()),
    };
    format!(
        "| {label} | {:.0} | {events_per_second:.0} | {} | {:.1} | {:.1} | {:.1} | {ceiling_text} | {share} |",
        figures.requests_per_second(),
        figures.failed_requests,
        figures.latency_milliseconds(0.5),
        figures.latency_milliseconds(0.99),
        figures.latency_milliseconds(0.999),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = <Arguments as clap::Parser>::parse();
    let plan = RelayBenchPlan {
        binaries_dir: arguments
            .binaries_dir
            .clone()
            .unwrap_or_else(adloop_load::processes::default_binaries_dir),
        phase: Duration::from_secs(arguments.seconds),
        batch_clients: arguments.batch_clients,
        single_clients: arguments.single_clients,
        latency_requests_per_second: arguments.rate,
        relay_settings: arguments.relay_settings.clone(),
    };
    let figures = relay_bench::run(&plan).await?;
    println!(
        "| load | requests/s | events/s acknowledged | failed requests | p50 ms | p99 ms | p99.9 ms | bare Postgres rows/s, same run | relay / bare |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "{}",
        row(
            &format!("100 events/request, {} clients", plan.batch_clients),
            &figures.batch_requests,
            Some(figures.raw_batch_ceiling)
        )
    );
    println!(
        "{}",
        row(
            &format!("1 event/request, {} clients", plan.single_clients),
            &figures.single_requests,
            Some(figures.raw_single_ceiling)
        )
    );
    println!(
        "{}",
        row(
            &format!("1 event/request at {} requests/s", plan.latency_requests_per_second),
            &figures.fixed_rate,
            None
        )
    );
    println!();
    for (label, commits) in ["100 events/request", "1 event/request", "fixed rate"]
        .iter()
        .zip(&figures.commits)
    {
        println!(
            "- group commit, {label}: {:.0} inserts, {:.1} requests and {:.0} events per insert, {:.1} ms per insert",
            commits.inserts,
            commits.requests_per_insert(),
            commits.events / commits.inserts.max(1.0),
            commits.milliseconds_per_insert(),
        );
    }
    let delivery = &figures.delivery;
    println!(
        "- delivery to meta-sim, one relay (2 delivery workers, batches of 1,000): {} events in {:.1} s (start-up included), {:.0} events/s",
        delivery.one_relay_events,
        delivery.one_relay_seconds,
        delivery.one_relay_events as f64 / delivery.one_relay_seconds.max(1e-9),
    );
    println!(
        "- then two relays on the same database: {} events in {:.1} s, {:.0} events/s; left pending: {}",
        delivery.two_relays_events,
        delivery.two_relays_seconds,
        delivery.two_relays_events as f64 / delivery.two_relays_seconds.max(1e-9),
        delivery.left_pending,
    );
    println!(
        "- exactly once: meta-sim received {} events, the relays marked {} delivered ({} sent twice)",
        delivery.received_at_meta_sim,
        delivery.marked_delivered,
        delivery.received_at_meta_sim - delivery.marked_delivered,
    );
    println!(
        "acknowledged events: {}; events in the relay's table: {}",
        figures.acknowledged_events, figures.stored_events
    );
    if figures.stored_events < figures.acknowledged_events as i64 {
        anyhow::bail!("the relay acknowledged events it did not store");
    }
    if delivery.left_pending == 0 && delivery.received_at_meta_sim != delivery.marked_delivered {
        anyhow::bail!("meta-sim did not receive each delivered event exactly once");
    }
    Ok(())
}
