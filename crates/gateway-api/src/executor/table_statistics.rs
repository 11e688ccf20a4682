//! Keeps the planner's statistics on the queue fresh. A queue table can grow by tens of thousands of rows
//! between two autovacuum visits (at most one a minute), and a planner that still believes the table is
//! empty picks full scans for the guardrails' history reads (measured: 10 ms instead of 0.3 ms a round at
//! 10,000 rows). So the executor analyses `ad_changes` itself once enough of it changed since the last
//! analysis; one replica at a time (an advisory lock), and never waiting for the lock.

use sqlx::PgPool;

/// Rows changed since the last analysis before the executor analyses again: at least this many…
const MIN_CHANGED_ROWS: i64 = 1_000;
/// …and at least this share of the live rows.
const MIN_CHANGED_SHARE: f64 = 0.2;

/// An arbitrary constant naming the analysis lock among the database's advisory locks.
const ANALYZE_LOCK_KEY: i64 = 0x0AD1_00A5;

/// Whether a table with `live_rows` rows and `changed_rows` changes since its last analysis needs one.
pub fn needs_analysis(live_rows: i64, changed_rows: i64) -> bool {
    changed_rows >= MIN_CHANGED_ROWS && changed_rows as f64 >= MIN_CHANGED_SHARE * live_rows as f64
}

/// Analyses `ad_changes` when it changed enough since the last analysis; returns whether it did.
pub async fn analyze_queue_if_stale(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let counts: Option<(i64, i64)> = sqlx::query_as(
        "SELECT n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables WHERE relid = 'ad_changes'::regclass",
    )
    .fetch_optional(pool)
    .await?;
    let Some((live_rows, changed_rows)) = counts else {
        return Ok(false);
    };
    if !needs_analysis(live_rows, changed_rows) {
        return Ok(false);
    }
    let mut transaction = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(ANALYZE_LOCK_KEY)
        .fetch_one(&mut *transaction)
        .await?;
    if locked {
        sqlx::query("ANALYZE ad_changes").execute(&mut *transaction).await?;
    }
    transaction.commit().await?;
    Ok(locked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_analysed_after_many_changes_relative_to_its_size() {
        assert!(!needs_analysis(0, 999), "a few changes never");
        assert!(needs_analysis(0, 1_000), "a fresh table that grew");
        assert!(needs_analysis(10_000, 2_000));
        assert!(
            !needs_analysis(100_000, 5_000),
            "a small share of a large table waits for autovacuum"
        );
    }
}
