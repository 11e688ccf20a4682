//! How much waits in the queue, for operators' dashboards and alerts: open changes by state, and how long
//! the oldest change that is due has waited (it grows while the executor is stuck, paused or throttled).

use sqlx::PgPool;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueDepth {
    /// (state, changes) for available, retryable, running and awaiting_approval; states with none are 0.
    pub open_by_state: Vec<(&'static str, i64)>,
    /// Seconds since the oldest due (available or retryable, run_at passed) change became due; 0 if none.
    pub oldest_due_seconds: f64,
}

pub const OPEN_STATES: [&str; 4] = ["available", "retryable", "running", "awaiting_approval"];

/// Counts through the partial indexes on open states; the table's completed history is never scanned.
pub async fn queue_depth(pool: &PgPool) -> Result<QueueDepth, sqlx::Error> {
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, count(*) FROM ad_changes \
         WHERE state IN ('available', 'retryable', 'running', 'awaiting_approval') GROUP BY state",
    )
    .fetch_all(pool)
    .await?;
    let oldest_due_seconds: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM now() - min(run_at))::float8 FROM ad_changes \
         WHERE state IN ('available', 'retryable') AND run_at <= now()",
    )
    .fetch_one(pool)
    .await?;
    let open_by_state = OPEN_STATES
        .iter()
        .map(|state| {
            let count = counts
                .iter()
                .find(|(counted, _)| counted == state)
                .map_or(0, |(_, count)| *count);
            (*state, count)
        })
        .collect();
    Ok(QueueDepth {
        open_by_state,
        oldest_due_seconds: oldest_due_seconds.unwrap_or(0.0).max(0.0),
    })
}
