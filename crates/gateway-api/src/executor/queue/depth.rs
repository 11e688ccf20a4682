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

/// One pass over the open changes (through the open-state indexes); the completed history is never scanned.
pub async fn queue_depth(pool: &PgPool) -> Result<QueueDepth, sqlx::Error> {
    let rows: Vec<(String, i64, Option<f64>)> = sqlx::query_as(
        "SELECT state, count(*), \
                EXTRACT(EPOCH FROM now() - min(run_at) FILTER (WHERE run_at <= now()))::float8 \
         FROM ad_changes WHERE state IN ('available', 'retryable', 'running', 'awaiting_approval') GROUP BY state",
    )
    .fetch_all(pool)
    .await?;
    let open_by_state = OPEN_STATES
        .iter()
        .map(|state| {
            let count = rows
                .iter()
                .find(|(counted, _, _)| counted == state)
                .map_or(0, |(_, count, _)| *count);
            (*state, count)
        })
        .collect();
    let oldest_due_seconds = rows
        .iter()
        .filter(|(state, _, _)| state == "available" || state == "retryable")
        .filter_map(|(_, _, waited)| *waited)
        .fold(0.0_f64, f64::max);
    Ok(QueueDepth {
        open_by_state,
        oldest_due_seconds,
    })
}
