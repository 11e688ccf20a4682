//! Pacing from Meta's usage headers, shared across workers and replicas through Postgres: when a response
//! says an account is throttled (`estimated_time_to_regain_access`, a reset time) or its usage is above
//! `slow_down_above_percent`, the account is blocked for that long, and no worker claims its changes until
//! then. The decision is pure (`pause_for`); `record` writes it only when there is something to record.

use std::time::Duration;

use serde::Deserialize;
use sqlx::PgPool;

use super::graph_outcome::{AccountUsage, UsageReport};
use super::queue::QueueError;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PacingSettings {
    /// Above this usage (the highest of an account's percentages), the account pauses before Meta
    /// throttles it: from 0 s at this percentage up to `max_slow_down_seconds` at 100%.
    pub slow_down_above_percent: f64,
    pub max_slow_down_seconds: f64,
    /// Writes per ad account per window of `MUTATION_WINDOW` across every worker (Meta allows 100 a second;
    /// the window is a little longer than a second so requests that arrive late still fit).
    pub max_mutations_per_second_per_account: u32,
    /// Whether writes are paced at all. Only for a Graph API without Meta's per-account mutation limit
    /// (meta-sim with its limit raised, as the executor benchmark runs it): at Meta this must stay on.
    pub pace_mutations: bool,
}

/// The window mutations are counted in: a second plus a margin for the time a request takes to reach Meta.
pub const MUTATION_WINDOW: Duration = Duration::from_millis(1100);

impl Default for PacingSettings {
    fn default() -> Self {
        PacingSettings {
            slow_down_above_percent: 75.0,
            max_slow_down_seconds: 60.0,
            max_mutations_per_second_per_account: 90,
            pace_mutations: true,
        }
    }
}

impl PacingSettings {
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(0.0..100.0).contains(&self.slow_down_above_percent) {
            return Err(("slow_down_above_percent", "must be at least 0 and below 100"));
        }
        if !(0.0..=3600.0).contains(&self.max_slow_down_seconds) {
            return Err(("max_slow_down_seconds", "must be between 0 and 3600"));
        }
        if !(1..=100).contains(&self.max_mutations_per_second_per_account) {
            return Err((
                "max_mutations_per_second_per_account",
                "must be between 1 and 100 (Meta's limit)",
            ));
        }
        Ok(())
    }
}

/// Reserves up to `wanted` writes to `ad_account_id` in the current shared window. Returns how many were
/// granted and, when fewer than wanted, how long until the window starts over.
pub async fn reserve_mutations(
    pool: &PgPool,
    settings: &PacingSettings,
    ad_account_id: &str,
    wanted: u32,
) -> Result<(u32, Duration), QueueError> {
    let mut transaction = pool.begin().await?;
    sqlx::query("INSERT INTO graph_account_pacing (ad_account_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(ad_account_id)
        .execute(&mut *transaction)
        .await?;
    // (seconds since the window started, or none; writes counted in it), under the row's lock.
    let (elapsed, used): (Option<f64>, i32) = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM now() - mutation_window_start)::float8, mutations_in_window \
         FROM graph_account_pacing WHERE ad_account_id = $1 FOR UPDATE",
    )
    .bind(ad_account_id)
    .fetch_one(&mut *transaction)
    .await?;
    let window = MUTATION_WINDOW.as_secs_f64();
    let fresh_window = elapsed.is_none_or(|elapsed| elapsed >= window || elapsed < 0.0);
    let used = if fresh_window { 0 } else { used.max(0) as u32 };
    let granted = wanted.min(settings.max_mutations_per_second_per_account.saturating_sub(used));
    sqlx::query(
        "UPDATE graph_account_pacing SET \
             mutation_window_start = CASE WHEN $2 THEN now() ELSE mutation_window_start END, \
             mutations_in_window = $3, updated_at = now() \
         WHERE ad_account_id = $1",
    )
    .bind(ad_account_id)
    .bind(fresh_window)
    .bind((used + granted) as i32)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    let until_next_window = if fresh_window {
        MUTATION_WINDOW
    } else {
        Duration::from_secs_f64((window - elapsed.unwrap_or(0.0)).max(0.0))
    };
    Ok((granted, until_next_window))
}

/// How long an account should pause after a response reported `usage`, and why (`None`: no pause).
pub fn pause_for(settings: &PacingSettings, usage: &AccountUsage) -> Option<(Duration, &'static str)> {
    if let Some(regain) = usage.regain_access_after.filter(|regain| !regain.is_zero()) {
        return Some((regain, "meta throttled the account"));
    }
    let threshold = settings.slow_down_above_percent;
    if usage.highest_percent < threshold {
        return None;
    }
    let share_of_headroom_used = ((usage.highest_percent - threshold) / (100.0 - threshold)).clamp(0.0, 1.0);
    let seconds = (settings.max_slow_down_seconds * share_of_headroom_used).max(1.0);
    Some((Duration::from_secs_f64(seconds), "usage above the slow-down threshold"))
}

/// Blocks the accounts the reports say should pause (never shortening a block already recorded).
pub async fn record(pool: &PgPool, settings: &PacingSettings, reports: &[&UsageReport]) -> Result<(), QueueError> {
    for usage in reports.iter().flat_map(|report| report.accounts.iter()) {
        let Some((pause, reason)) = pause_for(settings, usage) else {
            continue;
        };
        sqlx::query(
            "INSERT INTO graph_account_pacing (ad_account_id, highest_percent, blocked_until, reason) \
             VALUES ($1, $2, now() + make_interval(secs => $3), $4) \
             ON CONFLICT (ad_account_id) DO UPDATE SET highest_percent = $2, \
                 blocked_until = GREATEST(graph_account_pacing.blocked_until, EXCLUDED.blocked_until), \
                 reason = $4, updated_at = now()",
        )
        .bind(format!("act_{}", usage.account_id))
        .bind(usage.highest_percent)
        .bind(pause.as_secs_f64())
        .bind(reason)
        .execute(pool)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(percent: f64, regain_seconds: Option<u64>) -> AccountUsage {
        AccountUsage {
            account_id: "1".into(),
            highest_percent: percent,
            regain_access_after: regain_seconds.map(Duration::from_secs),
        }
    }

    #[test]
    fn meta_saying_wait_wins_and_high_usage_slows_down_in_proportion() {
        let settings = PacingSettings::default();
        assert_eq!(pause_for(&settings, &usage(40.0, None)), None);
        assert_eq!(
            pause_for(&settings, &usage(40.0, Some(300))).map(|(pause, _)| pause),
            Some(Duration::from_secs(300))
        );
        let at_90 = pause_for(&settings, &usage(90.0, None)).unwrap().0;
        assert_eq!(at_90, Duration::from_secs(36), "60 s × (90 − 75) / 25");
        assert_eq!(
            pause_for(&settings, &usage(130.0, None)).unwrap().0,
            Duration::from_secs(60)
        );
        assert_eq!(
            pause_for(&settings, &usage(75.0, None)).unwrap().0,
            Duration::from_secs(1),
            "at the threshold: a short pause"
        );
    }
}
