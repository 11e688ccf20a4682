//! The pacing flood: meta-sim at Meta's default rate limits (nothing raised), a minute of budget changes
//! poured into a few ad accounts faster than Meta lets an account write, and the executor left to pace
//! itself from the usage headers. Passes when every change completes and no change's attempt log holds a
//! throttling answer (codes 4, 17, 32, 613 and 80000–80014, whether on a write or on the read before it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use super::stack::BenchStack;
use super::{BenchError, ServiceProcess, WorldShape, budget_changes, sim_state};

/// One flood's set-up.
#[derive(Debug, Clone)]
pub struct FloodPlan {
    pub shape: WorldShape,
    /// How long changes keep arriving.
    pub flood_seconds: u64,
    pub changes_per_second: u32,
    pub binaries_dir: PathBuf,
    /// Give up waiting for the queue to drain after this long.
    pub time_limit: Duration,
}

/// What a flood measured.
#[derive(Debug, Clone)]
pub struct FloodFigures {
    pub enqueued: usize,
    /// From the first change enqueued until the last one reached a terminal state.
    pub drain_seconds: f64,
    pub changes_by_state: BTreeMap<String, i64>,
    /// Changes whose attempt log holds a throttling answer from Meta (the figure that must be 0).
    pub changes_that_saw_throttling: i64,
    /// Error answers meta-sim gave to any Graph call (reads included).
    pub graph_errors_at_meta: u64,
    pub graph_requests: u64,
    /// How many once-a-second samples of the executor's status found an account waiting on Meta's usage.
    pub samples_with_an_account_waiting: usize,
    /// The highest usage percentage among the accounts, as the executor last recorded it.
    pub last_recorded_usage_percent: f64,
}

/// Runs the flood once on a fresh database and world.
pub async fn run_flood(plan: &FloodPlan) -> Result<FloodFigures, BenchError> {
    // Meta's limits as meta-sim ships them: nothing raised. The original's own 15-an-hour rule would hold
    // most of a campaign's flood; Meta's limits are the subject here.
    let stack = BenchStack::start(
        &plan.binaries_dir,
        &plan.shape,
        &[],
        &[(
            "ADLOOP_EXECUTOR__GUARDRAILS__MAX_ACTIONS_PER_CAMPAIGN_PER_HOUR",
            "1000000",
        )],
    )
    .await?;
    let gateway = stack.start_gateway()?;
    let (meta_sim, api_key) = (&stack.meta_sim, stack.api_key.clone());
    let pool = PgPool::connect(&stack.database_url).await?;
    let http = reqwest::Client::new();

    let world_before = sim_state(&http, meta_sim).await?;
    let wanted = (plan.flood_seconds * u64::from(plan.changes_per_second)) as usize;
    let changes = budget_changes(&world_before, wanted, false);
    let requests_before = world_before["counters"]["requests"].as_u64().unwrap_or(0);
    let errors_before = world_before["counters"]["graph_errors"].as_u64().unwrap_or(0);

    let started = Instant::now();
    let per_tick = (plan.changes_per_second / 10).max(1) as usize;
    let url = format!("{}/v1/ad-changes", gateway.base_url());
    let mut samples_with_an_account_waiting = 0;
    let mut last_sample = Instant::now();
    let mut status_of_the_executor = |status: &Value| {
        if status["accounts_waiting_on_meta"]
            .as_array()
            .is_some_and(|waiting| !waiting.is_empty())
        {
            samples_with_an_account_waiting += 1;
        }
    };
    for (tick, chunk) in changes.chunks(per_tick).enumerate() {
        let due = Duration::from_millis(100 * tick as u64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        http.post(&url)
            .bearer_auth(&api_key)
            .json(&json!({ "changes": chunk }))
            .send()
            .await?
            .error_for_status()?;
        if last_sample.elapsed() >= Duration::from_secs(1) {
            status_of_the_executor(&executor_status(&http, &gateway, &api_key).await?);
            last_sample = Instant::now();
        }
    }
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM gateway.ad_changes WHERE state IN ('available', 'retryable', 'running')",
        )
        .fetch_one(&pool)
        .await?;
        if open == 0 {
            break;
        }
        if started.elapsed() > plan.time_limit {
            return Err(BenchError::Unexpected(format!(
                "{open} changes still open after {} s",
                plan.time_limit.as_secs()
            )));
        }
        status_of_the_executor(&executor_status(&http, &gateway, &api_key).await?);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let drain_seconds = started.elapsed().as_secs_f64();

    let changes_by_state = super::changes_by_state(&pool).await?;
    let changes_that_saw_throttling: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM gateway.ad_changes c WHERE EXISTS ( \
             SELECT 1 FROM jsonb_array_elements(c.errors) AS logged(entry) \
             CROSS JOIN LATERAL (SELECT COALESCE(logged.entry ->> 'code', logged.entry -> 'detail' ->> 'code')::int AS code) AS answer \
             WHERE answer.code IN (4, 17, 32, 613) OR answer.code BETWEEN 80000 AND 80014)",
    )
    .fetch_one(&pool)
    .await?;
    let last_recorded_usage_percent: Option<f64> =
        sqlx::query_scalar("SELECT max(highest_percent) FROM gateway.graph_account_pacing")
            .fetch_one(&pool)
            .await?;
    let world_after = sim_state(&http, meta_sim).await?;
    pool.close().await;
    drop(gateway);
    drop(stack);
    Ok(FloodFigures {
        enqueued: changes.len(),
        drain_seconds,
        changes_by_state,
        changes_that_saw_throttling,
        graph_errors_at_meta: world_after["counters"]["graph_errors"].as_u64().unwrap_or(0) - errors_before,
        graph_requests: world_after["counters"]["requests"].as_u64().unwrap_or(0) - requests_before,
        samples_with_an_account_waiting,
        last_recorded_usage_percent: last_recorded_usage_percent.unwrap_or(0.0),
    })
}

async fn executor_status(http: &reqwest::Client, gateway: &ServiceProcess, api_key: &str) -> Result<Value, BenchError> {
    Ok(http
        .get(format!("{}/v1/executor/status", gateway.base_url()))
        .bearer_auth(api_key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}
