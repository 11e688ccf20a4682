//! The safe executor end to end under load (see `adloop_load::executor_bench`).
//!
//!     executor-bench [--changes 10000] [--single-changes 10000] [--binaries-dir target/release]
//!                    [--runs batch-1,batch-2,single,…] [--gateway-setting ADLOOP_…=VALUE]… [--repeat N]
//!                    [--relative]
//!     executor-bench --pacing-flood [--flood-seconds 60] [--flood-changes-per-second 100]
//!
//! Throughput (the default) runs, one after another on fresh databases and worlds: batch mode with one
//! gateway replica, batch mode with two, single-request mode with one, and the scale-out pair (one replica
//! and two, at one executor worker each); then the bare Postgres claim ceiling. Prints a Markdown table.
//! `--repeat N` makes the whole sequence N times (the runs and the ceiling alternate, so each repetition's
//! ratio compares figures from the same minutes) and ends with each run's median, lowest and highest: on a
//! shared 2-core machine one run says little.
//! `--pacing-flood` instead pours changes into two ad accounts of a meta-sim at Meta's default limits for
//! a minute and checks no throttling answer reached a change (exits non-zero if one did). Needs the dev
//! stack (`scripts/dev-stack up`) and release builds of gateway-api and meta-sim.

use std::time::Duration;

use adloop_load::executor_bench::{self, FloodPlan, RunFigures, RunPlan, WorldShape, WriteMode};

#[derive(Debug, clap::Parser)]
#[command(about = "The safe executor end to end under load")]
struct Arguments {
    /// Budget changes in each batch-mode run (one per ad set; the world has 10,000).
    #[arg(long, default_value_t = 10_000)]
    changes: usize,
    /// Budget changes in the single-request-mode run.
    #[arg(long, default_value_t = 10_000)]
    single_changes: usize,
    /// Where the release binaries of gateway-api and meta-sim are (default: beside this program).
    #[arg(long)]
    binaries_dir: Option<std::path::PathBuf>,
    /// Run the pacing flood instead of the throughput runs.
    #[arg(long)]
    pacing_flood: bool,
    #[arg(long, default_value_t = 60)]
    flood_seconds: u64,
    /// Changes a second during the flood (one per ad set, the first account's ad sets first: at 100 a
    /// second each account gets 3,000 changes in 30 s, more than its score allows).
    #[arg(long, default_value_t = 100)]
    flood_changes_per_second: u32,
    /// Which throughput runs to make: any of batch-1, batch-2, single, and the scale-out pair at one worker
    /// per gateway, batch-1-one-worker and batch-2-one-worker (default: all five).
    #[arg(long, value_delimiter = ',', default_values_t = ALL_RUNS.map(str::to_owned))]
    runs: Vec<String>,
    /// An extra setting for every gateway of the throughput runs, as NAME=VALUE (e.g.
    /// ADLOOP_EXECUTOR__CLAIM_BATCH_SIZE=500); may be repeated.
    #[arg(long = "gateway-setting", value_parser = parse_setting)]
    gateway_settings: Vec<(String, String)>,
    /// How many times to make the runs and the ceiling (at least 1); the tables describe the first
    /// repetition, a summary line per run all of them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    /// Enqueue each change as an increase by a tenth (`budget_increase`) instead of as the new budget
    /// (`budget_set`): the same writes at Meta, through the enqueue's folding of queued relative changes.
    #[arg(long)]
    relative: bool,
}

/// One repetition: each run's figures, the bare loop's rows per second and WAL bytes per row.
struct Repetition {
    results: Vec<(&'static str, RunFigures)>,
    ceiling: f64,
    bare_wal_bytes_per_row: f64,
}

async fn measure_once(runs: &[(&'static str, RunPlan)]) -> anyhow::Result<Repetition> {
    let mut results = Vec::new();
    for (label, plan) in runs {
        eprintln!("executor-bench: {label}, {} changes…", plan.changes);
        let figures = executor_bench::run(plan).await?;
        eprintln!(
            "executor-bench: {label}: {:.2} s, {:.0} changes/s",
            figures.end_to_end_seconds,
            figures.changes_per_second()
        );
        results.push((*label, figures));
    }
    eprintln!("executor-bench: bare SKIP LOCKED claim-50/complete ceiling…");
    let database = adloop_test_support::TestDatabase::create().await;
    let pool = sqlx::PgPool::connect(&database.url).await?;
    let bare_wal_before = executor_bench::wal_position(&pool).await?;
    let ceiling = executor_bench::bare_claim_ceiling(&pool, BARE_LOOP_ROWS, 2).await?;
    let bare_wal_bytes_per_row =
        (executor_bench::wal_position(&pool).await? - bare_wal_before) as f64 / BARE_LOOP_ROWS as f64;
    pool.close().await;
    Ok(Repetition {
        results,
        ceiling,
        bare_wal_bytes_per_row,
    })
}

/// The median, lowest and highest of `values` (not empty).
fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    let median = if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    };
    (median, values[0], values[values.len() - 1])
}

/// Each run's changes/s and ratio to the same repetition's ceiling, over every repetition.
fn print_repetition_summary(repetitions: &[Repetition]) {
    println!();
    println!("over {} repetitions (median [lowest, highest]):", repetitions.len());
    let labels: Vec<&str> = repetitions[0].results.iter().map(|(label, _)| *label).collect();
    for label in labels {
        let figures: Vec<(f64, f64)> = repetitions
            .iter()
            .filter_map(|repetition| {
                let (_, figures) = repetition.results.iter().find(|(run_label, _)| *run_label == label)?;
                let changes_per_second = figures.changes_per_second();
                Some((changes_per_second, changes_per_second / repetition.ceiling.max(1e-9)))
            })
            .collect();
        let (median, lowest, highest) = spread(&mut figures.iter().map(|(rate, _)| *rate).collect::<Vec<_>>());
        let (ratio, lowest_ratio, highest_ratio) =
            spread(&mut figures.iter().map(|(_, ratio)| *ratio).collect::<Vec<_>>());
        println!(
            "- {label}: {median:.0} [{lowest:.0}, {highest:.0}] changes/s; / bare ceiling {ratio:.2} [{lowest_ratio:.2}, {highest_ratio:.2}]"
        );
    }
    let (ceiling, lowest, highest) = spread(
        &mut repetitions
            .iter()
            .map(|repetition| repetition.ceiling)
            .collect::<Vec<_>>(),
    );
    println!("- bare ceiling: {ceiling:.0} [{lowest:.0}, {highest:.0}] rows/s");
}

/// Rows the bare claim/complete loop works through for the ceiling.
const BARE_LOOP_ROWS: i64 = 10_000;

const ALL_RUNS: [&str; 5] = [
    "batch-1",
    "batch-2",
    "single",
    "batch-1-one-worker",
    "batch-2-one-worker",
];

fn parse_setting(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("--gateway-setting {text:?}: expected NAME=VALUE"))?;
    if !name.starts_with("ADLOOP_") {
        return Err(format!("--gateway-setting {name}: gateway settings start with ADLOOP_"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

async fn pacing_flood(arguments: &Arguments, binaries_dir: std::path::PathBuf) -> anyhow::Result<()> {
    let plan = FloodPlan {
        shape: WorldShape {
            accounts: 2,
            campaigns_per_account: 10,
            ad_sets_per_campaign: 300,
        },
        flood_seconds: arguments.flood_seconds,
        changes_per_second: arguments.flood_changes_per_second,
        binaries_dir,
        time_limit: Duration::from_secs(3600),
    };
    eprintln!(
        "executor-bench: pacing flood, {} changes a second for {} s into two accounts at Meta's default limits…",
        plan.changes_per_second, plan.flood_seconds
    );
    let figures = executor_bench::run_flood(&plan).await?;
    println!(
        "| changes | drained after | states | changes that saw a throttling answer | error answers at meta-sim (any call) | Graph requests | status samples with an account waiting | last recorded usage, highest account |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {:.0} s | {:?} | {} | {} | {} | {} | {:.0}% |",
        figures.enqueued,
        figures.drain_seconds,
        figures.changes_by_state,
        figures.changes_that_saw_throttling,
        figures.graph_errors_at_meta,
        figures.graph_requests,
        figures.samples_with_an_account_waiting,
        figures.last_recorded_usage_percent,
    );
    if figures.changes_that_saw_throttling > 0 {
        anyhow::bail!(
            "{} changes saw a throttling answer",
            figures.changes_that_saw_throttling
        );
    }
    Ok(())
}

fn row(label: &str, figures: &RunFigures) -> String {
    format!(
        "| {label} | {} | {:.2} s | {:.2} s | {:.0} | {} | {:.1} | {:?} | {} | {} |",
        figures.changes,
        figures.enqueue_seconds,
        figures.end_to_end_seconds,
        figures.changes_per_second(),
        figures.graph_requests,
        figures.changes as f64 / figures.graph_requests.max(1) as f64,
        figures.changes_by_state,
        figures.audit_entries,
        figures.ad_sets_written_more_than_once,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = <Arguments as clap::Parser>::parse();
    let binaries_dir = arguments
        .binaries_dir
        .clone()
        .unwrap_or_else(executor_bench::default_binaries_dir);
    if arguments.pacing_flood {
        return pacing_flood(&arguments, binaries_dir).await;
    }
    let plan = |changes: usize, write_mode: WriteMode, gateway_replicas: usize| RunPlan {
        shape: WorldShape::TEN_THOUSAND_AD_SETS,
        changes,
        write_mode,
        gateway_replicas,
        binaries_dir: binaries_dir.clone(),
        time_limit: Duration::from_secs(900),
        extra_gateway_settings: arguments.gateway_settings.clone(),
        relative_changes: arguments.relative,
    };
    // On 2 cores one gateway's workers already keep the machine busy; the scale-out pair shows how
    // replicas share the work at one worker each.
    let one_worker = |mut plan: RunPlan| {
        plan.extra_gateway_settings
            .push(("ADLOOP_EXECUTOR__WORKERS".to_owned(), "1".to_owned()));
        plan
    };
    let mut runs = Vec::new();
    for run in &arguments.runs {
        runs.push(match run.as_str() {
            "batch-1" => ("batch, 1 replica", plan(arguments.changes, WriteMode::Batch, 1)),
            "batch-2" => ("batch, 2 replicas", plan(arguments.changes, WriteMode::Batch, 2)),
            "single" => (
                "single, 1 replica",
                plan(arguments.single_changes, WriteMode::Single, 1),
            ),
            "batch-1-one-worker" => (
                "batch, 1 replica × 1 worker",
                one_worker(plan(arguments.changes, WriteMode::Batch, 1)),
            ),
            "batch-2-one-worker" => (
                "batch, 2 replicas × 1 worker",
                one_worker(plan(arguments.changes, WriteMode::Batch, 2)),
            ),
            other => anyhow::bail!("--runs: unknown run {other:?} (one of {})", ALL_RUNS.join(", ")),
        });
    }
    let mut repetitions = Vec::new();
    for repetition in 1..=arguments.repeat {
        if arguments.repeat > 1 {
            eprintln!("executor-bench: repetition {repetition} of {}", arguments.repeat);
        }
        repetitions.push(measure_once(&runs).await?);
    }
    let Repetition {
        results,
        ceiling,
        bare_wal_bytes_per_row,
    } = &repetitions[0];
    let (ceiling, bare_wal_bytes_per_row) = (*ceiling, *bare_wal_bytes_per_row);

    println!(
        "| run | changes | enqueue (API) | end to end | changes/s | Graph requests | changes per request | states | audit entries | ad sets written twice |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (label, figures) in results {
        println!("{}", row(label, figures));
    }
    println!();
    println!(
        "seconds the executor's rounds spent per phase (summed over replicas; read and history run side by side, finish overlaps decide and write):"
    );
    for (label, figures) in results {
        let phases: Vec<String> = figures
            .round_phase_seconds
            .iter()
            .map(|(phase, seconds)| format!("{phase} {seconds:.2}"))
            .collect();
        println!("- {label}: {}", phases.join(", "));
    }
    println!();
    println!("Postgres WAL bytes per change over each run (the whole cluster; write work, steady where time is not):");
    for (label, figures) in results {
        println!("- {label}: {:.0}", figures.wal_bytes_per_change);
    }
    println!("- bare claim-50 + complete loop, its table's setup included: {bare_wal_bytes_per_row:.0} per row");
    println!();
    println!("bare Postgres SKIP LOCKED claim-50 + complete, 2 workers, 10,000 rows: {ceiling:.0} rows/s");
    let figures_of = |label: &str| {
        results
            .iter()
            .find(|(run_label, _)| *run_label == label)
            .map(|(_, figures)| figures)
    };
    let requests_per_change = |figures: &RunFigures| figures.graph_requests as f64 / figures.changes.max(1) as f64;
    let mut ratios = Vec::new();
    if let Some(batch) = figures_of("batch, 1 replica") {
        if let Some(single) = figures_of("single, 1 replica") {
            ratios.push(format!(
                "single/batch Graph requests per change: {:.1}x",
                requests_per_change(single) / requests_per_change(batch).max(1e-9)
            ));
        }
        if let Some(two_replicas) = figures_of("batch, 2 replicas") {
            ratios.push(format!(
                "two replicas / one, changes/s: {:.2}x",
                two_replicas.changes_per_second() / batch.changes_per_second().max(1e-9)
            ));
        }
        if let (Some(one), Some(two)) = (
            figures_of("batch, 1 replica × 1 worker"),
            figures_of("batch, 2 replicas × 1 worker"),
        ) {
            ratios.push(format!(
                "at one worker each, two replicas / one: {:.2}x",
                two.changes_per_second() / one.changes_per_second().max(1e-9)
            ));
        }
        ratios.push(format!(
            "batch changes/s / bare ceiling: {:.2}",
            batch.changes_per_second() / ceiling.max(1e-9)
        ));
    }
    println!("{}", ratios.join("; "));
    if repetitions.len() > 1 {
        print_repetition_summary(&repetitions);
    }
    Ok(())
}
