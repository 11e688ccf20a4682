//! Each account's reporting-delay schedule, learned cycle by cycle: every cycle reads the account's
//! conversions by day (`AccountSnapshot::daily_conversions`), the allocator library's
//! `ReportingDelayEstimator` records how each day's count grew since the previous cycle's read, and its
//! estimate (from `autopilot.reporting_delay_prior`, worth `reporting_delay_prior_conversions`) goes with
//! the allocation request and matures the learner's clicks. The estimator's memory is kept per
//! account in Postgres (`cycle_memory`).

use adloop_allocator::{ReportingDelay, ReportingDelayEstimator};
use sqlx::PgPool;

use super::account_reader::AccountSnapshot;
use super::cycle_memory::{self, CycleMemory};
use super::settings::AutopilotSettings;

/// The account's schedule after this cycle's read (recorded once per cycle: a rerun of the cycle finds the
/// estimator already at its slot and only estimates).
pub async fn account_schedule(
    pool: &PgPool,
    tenant_id: &str,
    ad_account_id: &str,
    cycle_slot: i64,
    clock_unix: i64,
    snapshot: &AccountSnapshot,
    settings: &AutopilotSettings,
) -> Result<ReportingDelay, sqlx::Error> {
    let stored: Option<(i64, ReportingDelayEstimator)> =
        cycle_memory::load(pool, CycleMemory::ReportingDelays, tenant_id, ad_account_id).await?;
    let already_recorded = stored.as_ref().is_some_and(|(slot, _)| *slot >= cycle_slot);
    let mut estimator = stored.map(|(_, estimator)| estimator).unwrap_or_default();
    if !already_recorded {
        // The report's days are the account's: its clock, in hours since its own 1970-01-01.
        let account_hour = clock_unix as f64 / 3600.0 + snapshot.timezone_offset_hours;
        estimator.record_report(account_hour, &snapshot.daily_conversions);
        cycle_memory::store(
            pool,
            CycleMemory::ReportingDelays,
            tenant_id,
            ad_account_id,
            cycle_slot,
            &estimator,
        )
        .await?;
    }
    // The fit takes ~0.3 ms on six weeks of daily reports (`allocation_speed` bench; more on hourly ones):
    // off the runtime's threads.
    let prior = settings.reporting_delay_prior.clone();
    let prior_conversions = settings.reporting_delay_prior_conversions;
    let fitted = tokio::task::spawn_blocking(move || estimator.estimate(&prior, prior_conversions)).await;
    Ok(fitted.unwrap_or_else(|error| {
        tracing::warn!(%error, ad_account_id, "autopilot: the reporting-delay fit failed; using the prior schedule");
        settings.reporting_delay_prior.clone()
    }))
}

/// The schedule as the run's summary shows it: the share reported after a day, a week and two weeks.
pub fn summary_of(schedule: &ReportingDelay) -> serde_json::Value {
    serde_json::json!({
        "reported_within_1_day": schedule.reported_share_at(24.0),
        "reported_within_7_days": schedule.reported_share_at(168.0),
        "reported_within_14_days": schedule.reported_share_at(336.0),
    })
}
