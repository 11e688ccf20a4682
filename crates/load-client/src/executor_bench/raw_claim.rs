//! The ceiling a bare Postgres queue reaches on this machine: `FOR UPDATE SKIP LOCKED` claims of 50 rows
//! marked running, then completed, by concurrent workers, with nothing else (no guardrails, no Graph call,
//! no audit). The executor's own throughput is published beside it, measured in the same run.

use std::time::{Duration, Instant};

use sqlx::PgPool;

/// Rows claimed and completed per second by `workers` loops over `rows` queued rows.
pub async fn bare_claim_ceiling(pool: &PgPool, rows: i64, workers: usize) -> Result<f64, sqlx::Error> {
    sqlx::query("DROP TABLE IF EXISTS bare_claim_bench")
        .execute(pool)
        .await?;
    sqlx::query(
        "CREATE TABLE bare_claim_bench (id bigserial PRIMARY KEY, state text NOT NULL DEFAULT 'available', \
             lease_owner text, lease_expires_at timestamptz, attempt int NOT NULL DEFAULT 0, \
             run_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(pool)
    .await?;
    sqlx::query("CREATE INDEX bare_claim_bench_due ON bare_claim_bench (run_at, id) WHERE state = 'available'")
        .execute(pool)
        .await?;
    sqlx::query("INSERT INTO bare_claim_bench (state) SELECT 'available' FROM generate_series(1, $1)")
        .bind(rows)
        .execute(pool)
        .await?;
    sqlx::query("ANALYZE bare_claim_bench").execute(pool).await?;
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let pool = pool.clone();
        loops.spawn(async move { claim_and_complete_until_empty(&pool, &format!("bare-{worker}")).await });
    }
    let mut done = 0_u64;
    while let Some(result) = loops.join_next().await {
        done += result.expect("bare claim loop panicked")?;
    }
    let elapsed = started.elapsed().max(Duration::from_millis(1));
    sqlx::query("DROP TABLE bare_claim_bench").execute(pool).await?;
    Ok(done as f64 / elapsed.as_secs_f64())
}

async fn claim_and_complete_until_empty(pool: &PgPool, worker: &str) -> Result<u64, sqlx::Error> {
    let mut completed = 0_u64;
    loop {
        let claimed: Vec<(i64, i32)> = sqlx::query_as(
            "WITH chosen AS (SELECT id FROM bare_claim_bench WHERE state = 'available' AND run_at <= now() \
                 ORDER BY run_at, id LIMIT 50 FOR UPDATE SKIP LOCKED) \
             UPDATE bare_claim_bench b SET state = 'running', lease_owner = $1, attempt = b.attempt + 1, \
                 lease_expires_at = now() + interval '60 seconds' \
             FROM chosen WHERE b.id = chosen.id RETURNING b.id, b.attempt",
        )
        .bind(worker)
        .fetch_all(pool)
        .await?;
        if claimed.is_empty() {
            return Ok(completed);
        }
        let ids: Vec<i64> = claimed.iter().map(|(id, _)| *id).collect();
        let attempts: Vec<i32> = claimed.iter().map(|(_, attempt)| *attempt).collect();
        let finished = sqlx::query(
            "UPDATE bare_claim_bench b SET state = 'completed', lease_owner = NULL \
             FROM unnest($1::bigint[], $2::int[]) AS held(id, attempt) \
             WHERE b.id = held.id AND b.attempt = held.attempt AND b.state = 'running' AND b.lease_owner = $3",
        )
        .bind(&ids)
        .bind(&attempts)
        .bind(worker)
        .execute(pool)
        .await?;
        completed += finished.rows_affected();
    }
}
