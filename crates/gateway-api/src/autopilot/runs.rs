//! One row per cycle of one account (`autopilot_runs`): claimed by one runner under a lease, finished with
//! what it read, planned and enqueued, fenced on (id, runner, attempt) so a runner that lost its lease
//! cannot overwrite the runner that took over.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

/// A cycle this runner now owns.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClaimedRun {
    pub id: i64,
    pub tenant_id: String,
    pub ad_account_id: String,
    pub cycle_slot: i64,
    pub mode: String,
    pub attempt: i32,
    /// The autopilot clock's time when the cycle was claimed (Unix seconds).
    pub clock_unix: i64,
}

/// How runs are claimed: which runner, for how long, and when failed or abandoned ones are tried again.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    pub runner: String,
    pub lease: Duration,
    pub failed_run_retry: Duration,
    pub max_attempts: i32,
    pub limit: i64,
}

/// Claims the due cycles of enabled accounts at `clock_unix`: the slot `clock_unix / interval_seconds` of
/// each account that has no run for it yet, or whose run there crashed (its lease expired) or failed long
/// enough ago with attempts left. Every replica computes the same slots, so each cycle has one row and one
/// runner at a time.
pub async fn claim_due(pool: &PgPool, clock_unix: i64, rules: &ClaimRules) -> Result<Vec<ClaimedRun>, sqlx::Error> {
    sqlx::query_as(
        "WITH due AS (
             SELECT a.tenant_id, a.ad_account_id, a.mode, $1::bigint / a.interval_seconds AS cycle_slot
             FROM autopilot_accounts a
             WHERE a.enabled
               AND NOT EXISTS (
                   SELECT 1 FROM autopilot_runs r
                   WHERE r.tenant_id = a.tenant_id AND r.ad_account_id = a.ad_account_id
                     AND r.cycle_slot = $1::bigint / a.interval_seconds
                     AND NOT ((r.state = 'running' AND r.lease_expires_at < now())
                           OR (r.state = 'failed' AND r.attempt < $5
                               AND r.finished_at < now() - make_interval(secs => $4))))
             ORDER BY a.tenant_id, a.ad_account_id
             LIMIT $6
         )
         INSERT INTO autopilot_runs
             (tenant_id, ad_account_id, cycle_slot, mode, state, runner, lease_expires_at, clock_unix)
         SELECT tenant_id, ad_account_id, cycle_slot, mode, 'running', $2, now() + make_interval(secs => $3), $1
         FROM due
         ON CONFLICT (tenant_id, ad_account_id, cycle_slot) DO UPDATE SET
             state = 'running', attempt = autopilot_runs.attempt + 1, runner = EXCLUDED.runner,
             lease_expires_at = EXCLUDED.lease_expires_at, clock_unix = EXCLUDED.clock_unix,
             mode = EXCLUDED.mode, started_at = now(), finished_at = NULL, error = NULL
         WHERE (autopilot_runs.state = 'running' AND autopilot_runs.lease_expires_at < now())
            OR (autopilot_runs.state = 'failed' AND autopilot_runs.attempt < $5
                AND autopilot_runs.finished_at < now() - make_interval(secs => $4))
         RETURNING id, tenant_id, ad_account_id, cycle_slot, mode, attempt, clock_unix",
    )
    .bind(clock_unix)
    .bind(&rules.runner)
    .bind(rules.lease.as_secs_f64())
    .bind(rules.failed_run_retry.as_secs_f64())
    .bind(rules.max_attempts)
    .bind(rules.limit)
    .fetch_all(pool)
    .await
}

/// What a cycle did, as its run row keeps it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOutcome {
    pub ads_read: i32,
    pub changes_planned: i32,
    pub changes_enqueued: i32,
    pub model_version: Option<String>,
    /// Why the cycle failed; `None` when it completed.
    pub error: Option<String>,
    pub summary: Value,
}

/// Records the end of a run. `false` when this runner no longer owns it (its lease expired and another
/// runner took the cycle over): the other runner's record stands.
pub async fn finish(pool: &PgPool, run: &ClaimedRun, runner: &str, outcome: &RunOutcome) -> Result<bool, sqlx::Error> {
    let state = if outcome.error.is_some() { "failed" } else { "completed" };
    let updated = sqlx::query(
        "UPDATE autopilot_runs SET state = $4, finished_at = now(), ads_read = $5, changes_planned = $6,
             changes_enqueued = $7, model_version = $8, error = $9, summary = $10
         WHERE id = $1 AND runner = $2 AND attempt = $3 AND state = 'running'",
    )
    .bind(run.id)
    .bind(runner)
    .bind(run.attempt)
    .bind(state)
    .bind(outcome.ads_read)
    .bind(outcome.changes_planned)
    .bind(outcome.changes_enqueued)
    .bind(&outcome.model_version)
    .bind(&outcome.error)
    .bind(&outcome.summary)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// A run as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RunRecord {
    pub id: i64,
    pub ad_account_id: String,
    pub cycle_slot: i64,
    pub mode: String,
    pub state: String,
    pub attempt: i32,
    pub clock_unix: i64,
    /// Wall-clock Unix seconds.
    pub started_at_unix: f64,
    pub finished_at_unix: Option<f64>,
    pub ads_read: i32,
    pub changes_planned: i32,
    pub changes_enqueued: i32,
    pub model_version: Option<String>,
    pub error: Option<String>,
    pub summary: Option<Value>,
}

/// An account's runs, newest first, `limit` of them before the cycle slot `before` (exclusive).
pub async fn list(
    pool: &PgPool,
    tenant_id: &str,
    ad_account_id: &str,
    before_slot: Option<i64>,
    limit: i64,
) -> Result<Vec<RunRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, ad_account_id, cycle_slot, mode, state, attempt, clock_unix,
                EXTRACT(EPOCH FROM started_at)::float8 AS started_at_unix,
                EXTRACT(EPOCH FROM finished_at)::float8 AS finished_at_unix,
                ads_read, changes_planned, changes_enqueued, model_version, error, summary
         FROM autopilot_runs
         WHERE tenant_id = $1 AND ad_account_id = $2 AND ($3::bigint IS NULL OR cycle_slot < $3)
         ORDER BY cycle_slot DESC
         LIMIT $4",
    )
    .bind(tenant_id)
    .bind(ad_account_id)
    .bind(before_slot)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Each of `ad_account_ids`' latest completed run: the allocation it runs on now.
pub async fn latest_completed(
    pool: &PgPool,
    tenant_id: &str,
    ad_account_ids: &[String],
) -> Result<Vec<RunRecord>, sqlx::Error> {
    sqlx::query_as(
        // Per account, the unique (tenant, account, slot) index read backwards to its first completed run.
        "SELECT latest.* FROM unnest($2::text[]) AS account(id) CROSS JOIN LATERAL (
             SELECT id, ad_account_id, cycle_slot, mode, state, attempt, clock_unix,
                    EXTRACT(EPOCH FROM started_at)::float8 AS started_at_unix,
                    EXTRACT(EPOCH FROM finished_at)::float8 AS finished_at_unix,
                    ads_read, changes_planned, changes_enqueued, model_version, error, summary
             FROM autopilot_runs
             WHERE tenant_id = $1 AND ad_account_id = account.id AND state = 'completed'
             ORDER BY cycle_slot DESC LIMIT 1
         ) AS latest",
    )
    .bind(tenant_id)
    .bind(ad_account_ids)
    .fetch_all(pool)
    .await
}

/// The daily total the account's latest completed cycle split (minor units), if any: without a
/// configured total, cycles keep splitting it, so pausing an ad does not shrink the account's spend.
pub async fn last_total(pool: &PgPool, tenant_id: &str, ad_account_id: &str) -> Result<Option<i64>, sqlx::Error> {
    let total: Option<(Option<i64>,)> = sqlx::query_as(
        "SELECT (summary->>'total_daily_budget')::bigint FROM autopilot_runs
         WHERE tenant_id = $1 AND ad_account_id = $2 AND state = 'completed'
           AND summary ? 'total_daily_budget'
         ORDER BY cycle_slot DESC
         LIMIT 1",
    )
    .bind(tenant_id)
    .bind(ad_account_id)
    .fetch_optional(pool)
    .await?;
    Ok(total.and_then(|(total,)| total))
}
