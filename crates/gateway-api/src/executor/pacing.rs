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
}

impl Default for PacingSettings {
    fn default() -> Self {
        PacingSettings {
            slow_down_above_percent: 75.0,
            max_slow_down_seconds: 60.0,
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
        Ok(())
    }
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
