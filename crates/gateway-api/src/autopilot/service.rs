//! The autopilot's scheduler in the gateway: every tick it reads the autopilot clock, claims the cycles
//! that are due (at most `max_concurrent_cycles`), runs them side by side and records each outcome. Any
//! number of gateways may run it: the run rows decide who runs which cycle.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use adloop_service_kit::clock::Clock;

use super::cycle::{CycleContext, cycle_deadline, run_cycle};
use super::metrics::{AutopilotMetrics, CycleLabels};
use super::runs::{self, ClaimRules, ClaimedRun, RunOutcome};

pub struct Scheduler {
    pub context: CycleContext,
    pub clock: Clock,
    pub runner: String,
    pub metrics: AutopilotMetrics,
}

impl Scheduler {
    fn claim_rules(&self) -> ClaimRules {
        let settings = &self.context.settings;
        ClaimRules {
            runner: self.runner.clone(),
            lease: Duration::from_secs(settings.run_lease_seconds),
            failed_run_retry: Duration::from_secs(settings.failed_run_retry_seconds),
            max_attempts: settings.max_attempts,
            limit: settings.max_concurrent_cycles as i64,
        }
    }

    /// One tick: claims the due cycles and runs them to their outcomes. Returns how many ran.
    pub async fn run_due_cycles(&self) -> anyhow::Result<usize> {
        let clock_unix = self.clock.now_unix().await?.floor() as i64;
        let claimed = runs::claim_due(&self.context.pool, clock_unix, &self.claim_rules()).await?;
        let cycles = claimed.iter().map(|run| self.run_and_record(run));
        let ran = futures_util::future::join_all(cycles).await.len();
        Ok(ran)
    }

    async fn run_and_record(&self, run: &ClaimedRun) {
        let deadline = cycle_deadline(&self.context.settings);
        let outcome = match tokio::time::timeout(deadline, run_cycle(&self.context, run)).await {
            Ok(outcome) => outcome,
            Err(_) => RunOutcome {
                error: Some(format!(
                    "the cycle took longer than {} s (autopilot.run_lease_seconds × 0.8)",
                    deadline.as_secs()
                )),
                ..RunOutcome::default()
            },
        };
        let recorded = runs::finish(&self.context.pool, run, &self.runner, &outcome).await;
        let label = match (&recorded, &outcome.error) {
            (Ok(false), _) => "lease_lost",
            (_, Some(_)) => "failed",
            (_, None) => "completed",
        };
        self.metrics.cycles.get_or_create(&CycleLabels { outcome: label }).inc();
        self.metrics
            .changes_planned
            .inc_by(outcome.changes_planned.max(0) as u64);
        self.metrics
            .changes_enqueued
            .inc_by(outcome.changes_enqueued.max(0) as u64);
        match recorded {
            Ok(true) => tracing::info!(
                run = run.id,
                account = %run.ad_account_id,
                cycle_slot = run.cycle_slot,
                mode = %run.mode,
                ads_read = outcome.ads_read,
                changes_planned = outcome.changes_planned,
                changes_enqueued = outcome.changes_enqueued,
                error = outcome.error.as_deref().unwrap_or(""),
                "autopilot cycle"
            ),
            Ok(false) => tracing::warn!(
                run = run.id,
                "autopilot cycle outlived its lease; another runner took it over"
            ),
            Err(error) => tracing::warn!(run = run.id, %error, "autopilot cycle outcome not recorded"),
        }
    }
}

/// Runs ticks until `stop` says so; a tick in progress finishes first.
pub fn spawn_scheduler(scheduler: Scheduler, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let tick = Duration::from_millis(scheduler.context.settings.tick_milliseconds);
        loop {
            if *stop.borrow() {
                break;
            }
            if let Err(error) = scheduler.run_due_cycles().await {
                tracing::warn!(error = %error, "autopilot tick failed");
            }
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!("autopilot stopped");
    })
}
