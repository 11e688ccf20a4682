//! The ceiling bare Postgres reaches for durable event inserts on this machine, measured in the same run as
//! the relay: rows shaped like the relay's (a copy of its `events` table with every index, a real stored
//! event body), inserted by concurrent connections for a fixed time, each commit flushed to disk as
//! configured (fsync on). Nothing else: no HTTP, no validation, no hashing.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;

/// Rows committed per second by `connections` loops, each committing `rows_per_commit` rows per statement,
/// for `duration`. `body` is the event stored in every row.
pub async fn raw_insert_ceiling(
    pool: &PgPool,
    body: &Value,
    connections: usize,
    rows_per_commit: usize,
    duration: Duration,
) -> Result<f64, sqlx::Error> {
    sqlx::query("DROP TABLE IF EXISTS capi.raw_insert_ceiling")
        .execute(pool)
        .await?;
    sqlx::query("CREATE TABLE capi.raw_insert_ceiling (LIKE capi.events INCLUDING DEFAULTS INCLUDING INDEXES)")
        .execute(pool)
        .await?;
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for connection in 0..connections {
        let (pool, body) = (pool.clone(), body.clone());
        loops.spawn(async move {
            let mut committed = 0_u64;
            while started.elapsed() < duration {
                let event_ids: Vec<String> = (0..rows_per_commit)
                    .map(|offset| format!("raw-{connection}-{}", committed + offset as u64))
                    .collect();
                insert_rows(&pool, &event_ids, &body).await?;
                committed += rows_per_commit as u64;
            }
            Ok::<u64, sqlx::Error>(committed)
        });
    }
    let mut committed = 0_u64;
    while let Some(result) = loops.join_next().await {
        committed += result.expect("raw insert loop panicked")?;
    }
    let elapsed = started.elapsed();
    sqlx::query("DROP TABLE capi.raw_insert_ceiling").execute(pool).await?;
    Ok(committed as f64 / elapsed.as_secs_f64())
}

/// One statement (one commit) in the relay's own insert shape.
async fn insert_rows(pool: &PgPool, event_ids: &[String], body: &Value) -> Result<(), sqlx::Error> {
    let count = event_ids.len();
    sqlx::query(
        "INSERT INTO capi.raw_insert_ceiling (pixel_id, event_id, event_name, event_time, action_source, body) \
         SELECT '100000000000001', event_id, 'Purchase', 1800000000, 'website', body \
         FROM unnest($1::text[], $2::jsonb[]) AS new(event_id, body) \
         ON CONFLICT (pixel_id, event_name, event_id) DO NOTHING",
    )
    .bind(event_ids)
    .bind(vec![body.clone(); count])
    .execute(pool)
    .await?;
    Ok(())
}
