//! ml-service's resident memory with its pattern stores full (see `adloop_load::learner_memory`), against
//! its Kubernetes limit.
//!
//!     learner-memory [--feature-patterns 200000] [--embedding-dimensions 0 [--embedded-patterns 20000]]
//!                    [--settle-seconds 900] [--limit-mib 1024]
//!
//! Needs the dev stack (`scripts/dev-stack up`) and a release build of ml-service.

use std::time::Duration;

use adloop_load::learner_memory::{self, LearnerMemoryPlan};

#[derive(Debug, clap::Parser)]
#[command(about = "ml-service's resident memory with its pattern stores full")]
struct Arguments {
    /// Feature patterns to send (default: the store's capacity as shipped).
    #[arg(long, default_value_t = shipped_cross_learner().store.max_patterns)]
    feature_patterns: usize,
    /// `cross_learner.embedding_dimensions` for the run (0, as shipped, sends no embeddings).
    #[arg(long, default_value_t = 0)]
    embedding_dimensions: usize,
    /// Embedded patterns to send when embeddings are on (default: that store's capacity as shipped).
    #[arg(long, default_value_t = shipped_cross_learner().max_embedded_patterns)]
    embedded_patterns: usize,
    /// The limit to hold the peak against: `deploy/kubernetes/base/ml-service.yaml`'s (1Gi).
    #[arg(long, default_value_t = 1_024.0)]
    limit_mib: f64,
    /// How long to wait after the fill for the approximate index and a snapshot: the index over 200,000
    /// patterns took more than five minutes on a busy two-core machine (2026-12-04).
    #[arg(long, default_value_t = 900)]
    settle_seconds: u64,
    /// Where the release binaries are (default: beside this program).
    #[arg(long)]
    binaries_dir: Option<std::path::PathBuf>,
}

/// ml-service's cross-learner settings as shipped (its compiled defaults): the stores' capacities.
fn shipped_cross_learner() -> ml_service::learning::CrossLearnerSettings {
    adloop_load::learner_memory::shipped_settings().cross_learner
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = <Arguments as clap::Parser>::parse();
    let plan = LearnerMemoryPlan {
        binaries_dir: arguments
            .binaries_dir
            .clone()
            .unwrap_or_else(adloop_load::processes::default_binaries_dir),
        feature_patterns: arguments.feature_patterns,
        embedding_dimensions: arguments.embedding_dimensions,
        embedded_patterns: arguments.embedded_patterns,
        settle: Duration::from_secs(arguments.settle_seconds),
    };
    let figures = learner_memory::run(&plan).await?;
    let limit_mib = arguments.limit_mib;
    println!("| ml-service resident memory (MiB) | figure |");
    println!("|---|---|");
    println!("| at start | {:.0} |", figures.started);
    println!(
        "| after {} feature patterns × 3 accounts | {:.0} |",
        plan.feature_patterns, figures.after_feature_patterns
    );
    println!(
        "| after {} embedded patterns of {} dimensions × 3 accounts | {:.0} |",
        figures.embedded_patterns, plan.embedding_dimensions, figures.after_embedded_patterns
    );
    println!(
        "| after the approximate index ({}) and a snapshot ({}) | {:.0} |",
        if figures.index_built {
            "built"
        } else {
            "not built in time"
        },
        figures
            .snapshot_bytes
            .map_or("none in time".to_owned(), |bytes| format!(
                "{:.0} MB",
                bytes as f64 / 1e6
            )),
        figures.after_settling
    );
    println!("| peak over the run (sampled every 200 ms) | {:.0} |", figures.peak);
    println!(
        "fill took {:.0} s; the limit is {limit_mib:.0} MiB",
        figures.fill_seconds
    );
    let sent = 3 * (plan.feature_patterns + figures.embedded_patterns) as i64;
    if figures.logged_events != sent {
        anyhow::bail!(
            "{} events in the learning log, {sent} sent: the fill did not reach the stores",
            figures.logged_events
        );
    }
    if (figures.index_expected && !figures.index_built) || figures.snapshot_bytes.is_none() {
        anyhow::bail!(
            "the approximate index or a snapshot did not come within --settle-seconds: the peak leaves them out"
        );
    }
    if figures.peak > limit_mib {
        anyhow::bail!(
            "ml-service peaked at {:.0} MiB, above the limit of {limit_mib:.0} MiB",
            figures.peak
        );
    }
    Ok(())
}
