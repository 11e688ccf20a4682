//! The learning outbox's SQL: lease due conversions (`FOR UPDATE SKIP LOCKED`, an expired lease makes them
//! claimable again), delete the ones ml-service has, and schedule or dead-letter the rest — every outcome
//! fenced on (id, lease owner, attempt).

use std::time::Duration;

use sqlx::PgPool;

use super::event::QueuedConversion;

pub async fn claim_conversions(
    pool: &PgPool,
    worker: &str,
    limit: i64,
    lease: Duration,
) -> Result<Vec<QueuedConversion>, sqlx::Error> {
    sqlx::query_as(
        "WITH chosen AS ( \
             SELECT id FROM learning_outbox \
             WHERE state = 'pending' AND next_attempt_at <= now() \
                 AND (lease_expires_at IS NULL OR lease_expires_at < now()) \
             ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         UPDATE learning_outbox o SET lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3), \
             attempt = o.attempt + 1 \
         FROM chosen WHERE o.id = chosen.id \
         RETURNING o.id, o.attempt, o.pixel_id, o.event_id, o.event_name, o.event_time, o.ad_id, o.custom_data",
    )
    .bind(limit)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// ml-service has these: they leave the outbox.
pub async fn forget_forwarded(pool: &PgPool, worker: &str, conversions: &[(i64, i32)]) -> Result<u64, sqlx::Error> {
    let (ids, attempts): (Vec<i64>, Vec<i32>) = conversions.iter().copied().unzip();
    let deleted = sqlx::query(
        "DELETE FROM learning_outbox o USING unnest($1::bigint[], $2::int[]) AS held(id, attempt) \
         WHERE o.id = held.id AND o.attempt = held.attempt AND o.lease_owner = $3",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(worker)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}

/// Sends the conversion again after `delay` (`None`: never — a dead letter kept with `error`).
pub async fn postpone(
    pool: &PgPool,
    worker: &str,
    conversion: (i64, i32),
    delay: Option<Duration>,
    error: &str,
) -> Result<u64, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE learning_outbox SET lease_owner = NULL, lease_expires_at = NULL, last_error = $4, \
             state = CASE WHEN $5::float8 IS NULL THEN 'dead' ELSE 'pending' END, \
             next_attempt_at = now() + make_interval(secs => COALESCE($5::float8, 0)) \
         WHERE id = $1 AND attempt = $2 AND lease_owner = $3",
    )
    .bind(conversion.0)
    .bind(conversion.1)
    .bind(worker)
    .bind(error)
    .bind(delay.map(|delay| delay.as_secs_f64()))
    .execute(pool)
    .await?;
    Ok(updated.rows_affected())
}
