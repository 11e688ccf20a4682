//! Pacing from Meta's usage headers, shared across workers and replicas through Postgres: when a response
//! says an account is throttled (`estimated_time_to_regain_access`, a reset time) or its usage is above
//! `slow_down_above_percent`, the account is blocked for that long, and no worker claims its changes until
//! then. The decision is pure (`pause_for`); `record` writes it only when there is something to record.
//! Writes per account are reserved in a shared sliding window (`reserve_mutations`), and Meta's hour-long
//! budget lock on an ad set is remembered (`remember_budget_lock`) so its changes wait instead of being
//! refused again.

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
    /// Writes per ad account within any `MUTATION_WINDOW` across every worker (Meta allows 100 a second;
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

/// Reserves up to `wanted` writes to `ad_account_id` within the shared sliding window: the writes reserved
/// by every worker in the last `MUTATION_WINDOW` never exceed the limit, whatever the boundaries. Returns
/// how many were granted and, when fewer than wanted, how long until the oldest reservation leaves the
/// window.
pub async fn reserve_mutations(
    pool: &PgPool,
    settings: &PacingSettings,
    ad_account_id: &str,
    wanted: u32,
) -> Result<(u32, Duration), QueueError> {
    let window_seconds = MUTATION_WINDOW.as_secs_f64();
    let mut transaction = pool.begin().await?;
    // The account's pacing row serialises reservations for the account across workers.
    sqlx::query("INSERT INTO graph_account_pacing (ad_account_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(ad_account_id)
        .execute(&mut *transaction)
        .await?;
    sqlx::query("SELECT 1 FROM graph_account_pacing WHERE ad_account_id = $1 FOR UPDATE")
        .bind(ad_account_id)
        .execute(&mut *transaction)
        .await?;
    sqlx::query(
        "DELETE FROM graph_account_mutations \
         WHERE ad_account_id = $1 AND reserved_at <= clock_timestamp() - make_interval(secs => $2)",
    )
    .bind(ad_account_id)
    .bind(window_seconds)
    .execute(&mut *transaction)
    .await?;
    // (writes in the window, seconds until its oldest reservation leaves it)
    let (used, oldest_leaves_in): (i64, Option<f64>) = sqlx::query_as(
        "SELECT COALESCE(sum(writes), 0)::bigint, \
             EXTRACT(EPOCH FROM min(reserved_at) + make_interval(secs => $2) - clock_timestamp())::float8 \
         FROM graph_account_mutations WHERE ad_account_id = $1",
    )
    .bind(ad_account_id)
    .bind(window_seconds)
    .fetch_one(&mut *transaction)
    .await?;
    let room = i64::from(settings.max_mutations_per_second_per_account)
        .saturating_sub(used)
        .max(0);
    let granted = wanted.min(u32::try_from(room).unwrap_or(u32::MAX));
    if granted > 0 {
        sqlx::query("INSERT INTO graph_account_mutations (ad_account_id, writes) VALUES ($1, $2)")
            .bind(ad_account_id)
            .bind(granted as i32)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    let until_room = oldest_leaves_in.map_or(MUTATION_WINDOW, |seconds| Duration::from_secs_f64(seconds.max(0.01)));
    Ok((granted, until_room))
}

/// Usage at which even a round already under way stops writing to the account: the slow-down below it
/// only keeps new rounds from claiming the account's changes (writes already read for are worth sending).
pub const STOP_WRITES_AT_PERCENT: f64 = 95.0;

/// The accounts among `ad_account_ids` that must not be written to now (Meta throttled them, or their
/// usage is at `STOP_WRITES_AT_PERCENT`), with how long they still wait. A round checks before each write:
/// its claim saw the accounts free, but a read of the same round (or another worker) may have reported
/// otherwise since.
pub async fn waiting_accounts(
    pool: &PgPool,
    ad_account_ids: &[&str],
) -> Result<std::collections::HashMap<String, Duration>, QueueError> {
    let waiting: Vec<(String, f64)> = sqlx::query_as(
        "SELECT ad_account_id, EXTRACT(EPOCH FROM blocked_until - now())::float8 FROM graph_account_pacing \
         WHERE ad_account_id = ANY($1) AND blocked_until > now() AND (reason = $2 OR highest_percent >= $3)",
    )
    .bind(ad_account_ids)
    .bind(THROTTLED_BY_META)
    .bind(STOP_WRITES_AT_PERCENT)
    .fetch_all(pool)
    .await?;
    Ok(waiting
        .into_iter()
        .map(|(account, seconds)| (account, Duration::from_secs_f64(seconds.max(0.0))))
        .collect())
}

/// Why an account pauses, as `graph_account_pacing.reason` records it.
pub const THROTTLED_BY_META: &str = "meta throttled the account";
pub const SLOWING_DOWN: &str = "usage above the slow-down threshold";

/// How long an account should pause after a response reported `usage`, and why (`None`: no pause).
pub fn pause_for(settings: &PacingSettings, usage: &AccountUsage) -> Option<(Duration, &'static str)> {
    if let Some(regain) = usage.regain_access_after.filter(|regain| !regain.is_zero()) {
        return Some((regain, THROTTLED_BY_META));
    }
    let threshold = settings.slow_down_above_percent;
    if usage.highest_percent < threshold {
        return None;
    }
    let share_of_headroom_used = ((usage.highest_percent - threshold) / (100.0 - threshold)).clamp(0.0, 1.0);
    let seconds = (settings.max_slow_down_seconds * share_of_headroom_used).max(1.0);
    Some((Duration::from_secs_f64(seconds), SLOWING_DOWN))
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

/// How long Meta keeps an ad set's budget locked after refusing a change with 613 / 1487632.
pub const META_BUDGET_LOCK: Duration = Duration::from_secs(3600);

/// Remembers that Meta locked `object_id`'s budget from now for `META_BUDGET_LOCK` (never shortening a lock).
/// `simulated_now` is the time on a simulated clock (the lock is then in that clock's time); `None`: the
/// database's.
pub async fn remember_budget_lock(
    pool: &PgPool,
    object_id: &str,
    simulated_now: Option<f64>,
) -> Result<(), QueueError> {
    sqlx::query(
        "INSERT INTO graph_budget_locks (object_id, locked_until) \
         VALUES ($1, COALESCE(to_timestamp($3), now()) + make_interval(secs => $2)) \
         ON CONFLICT (object_id) DO UPDATE \
             SET locked_until = GREATEST(graph_budget_locks.locked_until, EXCLUDED.locked_until)",
    )
    .bind(object_id)
    .bind(META_BUDGET_LOCK.as_secs_f64())
    .bind(simulated_now)
    .execute(pool)
    .await?;
    Ok(())
}

/// The budget locks still in force among `object_ids` (at `simulated_now` on a simulated clock), as Unix
/// seconds when each ends. A lock ending more than a lock's length from now was taken on a simulated clock
/// in an earlier run of its world (that clock went back) and no longer holds.
pub async fn budget_locks(
    pool: &PgPool,
    object_ids: &[&str],
    simulated_now: Option<f64>,
) -> Result<std::collections::HashMap<String, f64>, QueueError> {
    let locks: Vec<(String, f64)> = sqlx::query_as(
        "SELECT object_id, EXTRACT(EPOCH FROM locked_until)::float8 FROM graph_budget_locks \
         WHERE object_id = ANY($1) AND locked_until > COALESCE(to_timestamp($2), now()) \
             AND locked_until <= COALESCE(to_timestamp($2), now()) + make_interval(secs => $3)",
    )
    .bind(object_ids)
    .bind(simulated_now)
    .bind(META_BUDGET_LOCK.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(locks.into_iter().collect())
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
