//! How long finished changes, the audit trail, idempotency keys and the autopilot's finished cycles are
//! kept, and the pruning that enforces it. A queue that keeps every change forever grows without bound: its tables and indexes, the planner's
//! statistics and every scan that is not an index look-up (the status counts) with it. Housekeeping prunes
//! on `prune_interval_seconds`, in batches of `batch_rows` under `SKIP LOCKED`, so several replicas can
//! prune at once without waiting on each other, and a pass stops after `max_batches_per_pass` batches so a
//! long backlog is worked off over several passes instead of in one long one. A setting of 0 days keeps
//! that kind of row forever.

use serde::Deserialize;
use sqlx::PgPool;

/// The longest window any guardrail may look back over (`net_change_window_seconds`,
/// `min_seconds_between_changes`), in days: a week. Finished changes are kept at least a day longer, so
/// pruning can never hide from a guardrail a change it must count.
const MAX_GUARDRAIL_WINDOW_DAYS: u32 = 7;

/// The same window in seconds, as the guardrail settings count it.
pub const MAX_GUARDRAIL_WINDOW_SECONDS: f64 = MAX_GUARDRAIL_WINDOW_DAYS as f64 * 24.0 * 3600.0;

/// Fewest days finished changes may be kept when they are pruned at all.
const MIN_FINISHED_CHANGE_DAYS: u32 = MAX_GUARDRAIL_WINDOW_DAYS + 1;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Completed and cancelled changes, counted from when they finished (a rollback needs its change).
    pub finished_change_days: u32,
    /// Discarded changes (the dead letters), counted from when they were discarded.
    pub dead_letter_days: u32,
    /// Audit entries, counted from when they were written.
    pub audit_days: u32,
    /// Idempotency keys: a request retried with a key older than this enqueues again.
    pub idempotency_key_days: u32,
    /// The autopilot's finished cycles (`autopilot_runs`, each with its plan and every recommendation's
    /// reason), counted from when they finished.
    pub autopilot_run_days: u32,
    pub prune_interval_seconds: u64,
    pub batch_rows: i64,
    pub max_batches_per_pass: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            finished_change_days: 30,
            dead_letter_days: 90,
            audit_days: 400,
            idempotency_key_days: 7,
            autopilot_run_days: 90,
            prune_interval_seconds: 3600,
            batch_rows: 5_000,
            max_batches_per_pass: 100,
        }
    }
}

impl RetentionSettings {
    /// Every setting in its range; the error names the setting (under `executor.retention.`) and the rule.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        for (key, days) in [
            ("finished_change_days", self.finished_change_days),
            ("dead_letter_days", self.dead_letter_days),
        ] {
            if days != 0 && days < MIN_FINISHED_CHANGE_DAYS {
                return Err((
                    key,
                    "must be 0 (keep forever) or at least 8 days (a guardrail looks back up to 7)",
                ));
            }
        }
        let shortest_change_days = [self.finished_change_days, self.dead_letter_days]
            .into_iter()
            .filter(|days| *days > 0)
            .min();
        if let Some(shortest) = shortest_change_days
            && (self.idempotency_key_days == 0 || self.idempotency_key_days > shortest)
        {
            return Err((
                "idempotency_key_days",
                "must be at least 1 and at most the days changes are kept (a key must not outlive its change)",
            ));
        }
        if self.prune_interval_seconds == 0 {
            return Err(("prune_interval_seconds", "must be at least 1"));
        }
        if !(1..=100_000).contains(&self.batch_rows) {
            return Err(("batch_rows", "must be between 1 and 100000"));
        }
        if self.max_batches_per_pass == 0 {
            return Err(("max_batches_per_pass", "must be at least 1"));
        }
        Ok(())
    }
}

/// Rows one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub changes: u64,
    pub audit_entries: u64,
    pub idempotency_keys: u64,
    pub autopilot_runs: u64,
}

impl PruneReport {
    pub fn total(&self) -> u64 {
        self.changes + self.audit_entries + self.idempotency_keys + self.autopilot_runs
    }
}

/// What is pruned, each by its own retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prunable {
    FinishedChanges,
    DeadLetters,
    AuditEntries,
    IdempotencyKeys,
    AutopilotRuns,
}

impl Prunable {
    const ALL: [Prunable; 5] = [
        Prunable::FinishedChanges,
        Prunable::DeadLetters,
        Prunable::AuditEntries,
        Prunable::IdempotencyKeys,
        Prunable::AutopilotRuns,
    ];

    fn retention_days(self, settings: &RetentionSettings) -> u32 {
        match self {
            Prunable::FinishedChanges => settings.finished_change_days,
            Prunable::DeadLetters => settings.dead_letter_days,
            Prunable::AuditEntries => settings.audit_days,
            Prunable::IdempotencyKeys => settings.idempotency_key_days,
            Prunable::AutopilotRuns => settings.autopilot_run_days,
        }
    }

    /// One batch's delete: `$1` days, `$2` rows. Each finds its rows through a BRIN index on the time it
    /// is counted from (rows are written in time order, so the old ones sit in the first pages). The keys
    /// of pruned changes are not deleted with them: keys are kept no longer than changes (checked at start).
    fn statement(self) -> &'static str {
        match self {
            Prunable::FinishedChanges => {
                "DELETE FROM ad_changes WHERE id IN ( \
                     SELECT id FROM ad_changes \
                     WHERE finalized_at < now() - make_interval(days => $1) AND state IN ('completed', 'cancelled') \
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"
            }
            Prunable::DeadLetters => {
                "DELETE FROM ad_changes WHERE id IN ( \
                     SELECT id FROM ad_changes \
                     WHERE finalized_at < now() - make_interval(days => $1) AND state = 'discarded' \
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"
            }
            Prunable::AuditEntries => {
                "DELETE FROM audit_log WHERE id IN ( \
                     SELECT id FROM audit_log WHERE at < now() - make_interval(days => $1) \
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"
            }
            Prunable::IdempotencyKeys => {
                "DELETE FROM ad_change_idempotency_keys WHERE (tenant_id, idempotency_key) IN ( \
                     SELECT tenant_id, idempotency_key FROM ad_change_idempotency_keys \
                     WHERE created_at < now() - make_interval(days => $1) \
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"
            }
            // One row per account and cycle: small enough to find without an index of its own.
            Prunable::AutopilotRuns => {
                "DELETE FROM autopilot_runs WHERE id IN ( \
                     SELECT id FROM autopilot_runs \
                     WHERE finished_at < now() - make_interval(days => $1) AND state IN ('completed', 'failed') \
                     LIMIT $2 FOR UPDATE SKIP LOCKED)"
            }
        }
    }
}

/// One pass: each kind of row past its retention, a batch at a time, until a batch comes back short or the
/// pass has used its batches.
pub async fn prune_once(pool: &PgPool, settings: &RetentionSettings) -> Result<PruneReport, sqlx::Error> {
    let mut report = PruneReport::default();
    let mut batches_left = settings.max_batches_per_pass;
    for kind in Prunable::ALL {
        let days = kind.retention_days(settings);
        if days == 0 {
            continue;
        }
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        while batches_left > 0 {
            batches_left -= 1;
            let removed = sqlx::query(kind.statement())
                .bind(days)
                .bind(settings.batch_rows)
                .execute(pool)
                .await?
                .rows_affected();
            match kind {
                Prunable::FinishedChanges | Prunable::DeadLetters => report.changes += removed,
                Prunable::AuditEntries => report.audit_entries += removed,
                Prunable::IdempotencyKeys => report.idempotency_keys += removed,
                Prunable::AutopilotRuns => report.autopilot_runs += removed,
            }
            if removed < settings.batch_rows as u64 {
                break;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_retention_is_valid_and_short_retention_is_refused_by_name() {
        assert_eq!(RetentionSettings::default().validate(), Ok(()));
        let too_short = RetentionSettings {
            finished_change_days: 3,
            ..RetentionSettings::default()
        };
        assert_eq!(too_short.validate().unwrap_err().0, "finished_change_days");
        let keys_outlive_changes = RetentionSettings {
            idempotency_key_days: 31,
            ..RetentionSettings::default()
        };
        assert_eq!(keys_outlive_changes.validate().unwrap_err().0, "idempotency_key_days");
        let keep_everything = RetentionSettings {
            finished_change_days: 0,
            dead_letter_days: 0,
            audit_days: 0,
            idempotency_key_days: 0,
            autopilot_run_days: 0,
            ..RetentionSettings::default()
        };
        assert_eq!(keep_everything.validate(), Ok(()), "0 keeps a kind forever");
    }
}
