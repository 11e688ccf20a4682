//! The executor benchmark (`executor-bench`): budget changes enqueued through gateway-api's HTTP API,
//! claimed, checked against the guardrails, written to meta-sim (in Graph batches or one request each),
//! completed and audited, by the release binaries as users run them, against the dev stack's Postgres.
//! Reports wall time, changes per second, the Graph HTTP requests meta-sim received, and checks that no ad
//! set was written twice. The limits that exist to protect Meta (meta-sim's quotas and mutation limits,
//! the executor's own mutation pacing, the per-campaign action guardrail) are raised for the run, so it
//! measures adloop's own overhead; at Meta each batched operation still counts against the rate limits.

mod pacing_flood;

mod raw_claim;
pub(crate) mod stack;
mod world;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;

use crate::processes::pairs;
pub use crate::processes::{ProcessError, ServiceProcess, default_binaries_dir};
pub use pacing_flood::{FloodFigures, FloodPlan, run_flood};
pub use raw_claim::bare_claim_ceiling;
pub(crate) use stack::BenchStack;
pub use world::WorldShape;

const META_SIM_TOKEN: &str = "meta-sim-dev-token";
const CHANGES_PER_REQUEST: usize = 500;
const ENQUEUE_CONCURRENCY: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Unexpected(String),
}

/// How the executor writes to the Graph API in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Batch,
    Single,
}

impl WriteMode {
    fn setting(self) -> &'static str {
        match self {
            WriteMode::Batch => "batch",
            WriteMode::Single => "single",
        }
    }
}

/// One run's set-up.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub shape: WorldShape,
    /// Changes to enqueue (one per ad set, at most the world's ad sets).
    pub changes: usize,
    pub write_mode: WriteMode,
    pub gateway_replicas: usize,
    pub binaries_dir: PathBuf,
    /// Give up waiting for the changes after this long.
    pub time_limit: Duration,
    /// Settings for every gateway beyond the run's own (`ADLOOP_…` names and values).
    pub extra_gateway_settings: Vec<(String, String)>,
    /// Enqueue relative changes (`budget_increase` by a tenth) instead of absolute ones (`budget_set` to
    /// 110%): the same writes at Meta, but each enqueue request also looks for queued changes to fold.
    pub relative_changes: bool,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunFigures {
    pub changes: usize,
    /// From the first enqueue request to the last answer.
    pub enqueue_seconds: f64,
    /// From the first enqueue request until every change reached a terminal state.
    pub end_to_end_seconds: f64,
    /// HTTP requests meta-sim's Graph API received during the run.
    pub graph_requests: u64,
    pub changes_by_state: BTreeMap<String, i64>,
    pub audit_entries: i64,
    /// Ad sets whose budget meta-sim saw written more than once (a double-applied change).
    pub ad_sets_written_more_than_once: usize,
    /// Ad sets written once, as planned.
    pub ad_sets_written_once: usize,
    /// Seconds the executor's rounds spent per phase, summed over replicas (from their `/metrics`).
    pub round_phase_seconds: BTreeMap<String, f64>,
    /// Bytes of Postgres WAL written during the run (the whole cluster), per change: the run's write work, a
    /// figure the machine's noise hardly moves.
    pub wal_bytes_per_change: f64,
}

impl RunFigures {
    pub fn changes_per_second(&self) -> f64 {
        self.changes as f64 / self.end_to_end_seconds.max(1e-9)
    }
}

/// Runs the plan once on a fresh database and a fresh meta-sim world.
pub async fn run(plan: &RunPlan) -> Result<RunFigures, BenchError> {
    let mut stack = BenchStack::start(
        &plan.binaries_dir,
        &plan.shape,
        &[
            ("ADLOOP_INSPECTION__REQUEST_LOG_CAPACITY", "100"),
            ("ADLOOP_RATE_LIMITS__APP_CALLS_PER_WINDOW", "1000000000"),
            ("ADLOOP_RATE_LIMITS__ADS_MANAGEMENT_BASE_CALLS", "1000000000"),
            ("ADLOOP_RATE_LIMITS__AD_ACCOUNT_SCORE_LIMIT", "1000000000000"),
            ("ADLOOP_RATE_LIMITS__MUTATIONS_PER_SECOND_PER_ACCOUNT", "1000000000"),
        ],
        &[
            ("ADLOOP_EXECUTOR__WRITE_MODE", plan.write_mode.setting()),
            (
                "ADLOOP_EXECUTOR__GUARDRAILS__MAX_ACTIONS_PER_CAMPAIGN_PER_HOUR",
                "1000000",
            ),
            ("ADLOOP_EXECUTOR__PACING__PACE_MUTATIONS", "false"),
        ],
    )
    .await?;
    stack
        .gateway_environment
        .extend(plan.extra_gateway_settings.iter().cloned());
    let gateways = (0..plan.gateway_replicas.max(1))
        .map(|_| stack.start_gateway())
        .collect::<Result<Vec<_>, _>>()?;
    let (meta_sim, api_key) = (&stack.meta_sim, &stack.api_key);
    let pool = PgPool::connect(&stack.database_url).await?;
    let http = reqwest::Client::new();

    let world_before = sim_state(&http, meta_sim).await?;
    let changes = budget_changes(&world_before, plan.changes, plan.relative_changes);
    let requests_before = world_before["counters"]["requests"].as_u64().unwrap_or(0);

    // The request bodies are written before the clock starts: the load client shares the machine's two
    // cores with what it measures, and its own JSON work is not adloop's.
    let requests = enqueue_requests(&gateways, &changes)?;
    let wal_before = wal_position(&pool).await?;
    let started = Instant::now();
    let started_unix = unix_seconds_now();
    enqueue_through_the_api(&http, api_key, requests).await?;
    let enqueue_seconds = started.elapsed().as_secs_f64();
    let changes_by_state = wait_until_terminal(&pool, plan.time_limit).await?;
    // The clock stops when the last change was finalised, not when the poll that saw it came round (every
    // 100 ms: up to a tenth of a run).
    let last_finalized_unix: Option<f64> =
        sqlx::query_scalar("SELECT EXTRACT(EPOCH FROM max(finalized_at))::float8 FROM gateway.ad_changes")
            .fetch_one(&pool)
            .await?;
    let end_to_end_seconds = match last_finalized_unix {
        Some(last) if last > started_unix => last - started_unix,
        _ => started.elapsed().as_secs_f64(),
    };
    let wal_bytes_per_change = (wal_position(&pool).await? - wal_before) as f64 / changes.len().max(1) as f64;

    let mut round_phase_seconds = BTreeMap::new();
    for gateway in &gateways {
        let metrics = http
            .get(format!("{}/metrics", gateway.base_url()))
            .send()
            .await?
            .text()
            .await?;
        for (phase, seconds) in phase_seconds(&metrics) {
            *round_phase_seconds.entry(phase).or_insert(0.0) += seconds;
        }
    }
    let world_after = sim_state(&http, meta_sim).await?;
    let graph_requests = world_after["counters"]["requests"].as_u64().unwrap_or(0) - requests_before;
    let (ad_sets_written_once, ad_sets_written_more_than_once) = budget_writes_per_ad_set(&world_after);
    let audit_entries: i64 = sqlx::query_scalar("SELECT count(*) FROM gateway.audit_log")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    drop(gateways);
    drop(stack);
    Ok(RunFigures {
        changes: changes.len(),
        enqueue_seconds,
        end_to_end_seconds,
        graph_requests,
        changes_by_state,
        audit_entries,
        ad_sets_written_more_than_once,
        ad_sets_written_once,
        round_phase_seconds,
        wal_bytes_per_change,
    })
}

/// The system clock in Unix seconds (the clock Postgres's `now()` reads on this machine).
fn unix_seconds_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(0.0)
}

/// Where the Postgres cluster's WAL insertion stands, in bytes: two readings bracket what was written between.
pub async fn wal_position(pool: &PgPool) -> Result<i64, BenchError> {
    Ok(
        sqlx::query_scalar("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint")
            .fetch_one(pool)
            .await?,
    )
}

/// `(phase, seconds)` from the executor's `round_phase_seconds` counters in Prometheus text.
fn phase_seconds(metrics_text: &str) -> Vec<(String, f64)> {
    adloop_telemetry::metrics::samples_by_label(
        metrics_text,
        "adloop_gateway_executor_round_phase_seconds_total",
        "phase",
    )
}

async fn sim_state(http: &reqwest::Client, meta_sim: &ServiceProcess) -> Result<Value, BenchError> {
    Ok(http
        .get(format!("{}/_sim/state", meta_sim.base_url()))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// One budget change per ad set (up to `limit`): 10% above its current budget, within every guardrail, as
/// the new budget or (`relative`) as the increase.
fn budget_changes(world: &Value, limit: usize, relative: bool) -> Vec<Value> {
    let empty = Vec::new();
    world["objects"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter(|object| object["kind"] == "ad_set")
        .take(limit)
        .map(|ad_set| {
            let budget = ad_set["daily_budget"].as_i64().unwrap_or(5_000);
            let id = ad_set["id"].as_str().unwrap_or_default();
            let (kind, amount) = if relative {
                ("budget_increase", budget / 10)
            } else {
                ("budget_set", budget + budget / 10)
            };
            json!({
                "ad_account_id": ad_set["account_id"],
                "campaign_id": ad_set["campaign_id"],
                "ad_set_id": id,
                "kind": kind,
                "currency": "USD",
                "amount": amount,
                "reason": "executor benchmark",
                "confidence": 0.9,
                "idempotency_key": format!("bench-{id}"),
            })
        })
        .collect()
}

/// The bulk enqueue requests: (gateway URL, JSON body) per 500 changes, spread over the gateways, in order.
fn enqueue_requests(gateways: &[ServiceProcess], changes: &[Value]) -> Result<Vec<(String, Vec<u8>)>, BenchError> {
    let urls: Vec<String> = gateways
        .iter()
        .map(|gateway| format!("{}/v1/ad-changes", gateway.base_url()))
        .collect();
    changes
        .chunks(CHANGES_PER_REQUEST)
        .enumerate()
        .map(|(index, chunk)| {
            let body = serde_json::to_vec(&json!({ "changes": chunk }))
                .map_err(|error| BenchError::Unexpected(format!("enqueue body: {error}")))?;
            Ok((urls[index % urls.len()].clone(), body))
        })
        .collect()
}

/// Posts the bulk requests, a few at a time.
async fn enqueue_through_the_api(
    http: &reqwest::Client,
    api_key: &str,
    mut requests: Vec<(String, Vec<u8>)>,
) -> Result<(), BenchError> {
    requests.reverse();
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        while in_flight.len() < ENQUEUE_CONCURRENCY
            && let Some((url, body)) = requests.pop()
        {
            let request = http
                .post(url)
                .bearer_auth(api_key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            in_flight.spawn(async move { request.send().await?.error_for_status() });
        }
        match in_flight.join_next().await {
            Some(answer) => {
                answer.map_err(|error| BenchError::Unexpected(format!("enqueue task: {error}")))??;
            }
            None => return Ok(()),
        }
    }
}

/// Waits until no change is open (available, retryable or running), then counts them by state. Starts
/// after every change was enqueued; the count of open changes uses the queue's own partial indexes, so
/// polling costs the database little.
async fn wait_until_terminal(pool: &PgPool, time_limit: Duration) -> Result<BTreeMap<String, i64>, BenchError> {
    let started = Instant::now();
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM gateway.ad_changes WHERE state IN ('available', 'retryable')) \
                  + (SELECT count(*) FROM gateway.ad_changes WHERE state = 'running')",
        )
        .fetch_one(pool)
        .await?;
        if open == 0 {
            break;
        }
        if started.elapsed() > time_limit {
            return Err(BenchError::Unexpected(format!(
                "{open} changes still open after {} s",
                time_limit.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(changes_by_state(pool).await?)
}

/// The gateway's ad changes counted by state.
pub(crate) async fn changes_by_state(pool: &PgPool) -> Result<BTreeMap<String, i64>, sqlx::Error> {
    let counts: Vec<(String, i64)> = sqlx::query_as("SELECT state, count(*) FROM gateway.ad_changes GROUP BY state")
        .fetch_all(pool)
        .await?;
    Ok(counts.into_iter().collect())
}

/// (ad sets whose budget the API wrote once, more than once), from meta-sim's change history.
fn budget_writes_per_ad_set(world: &Value) -> (usize, usize) {
    let empty = Vec::new();
    let mut once = 0;
    let mut more = 0;
    for object in world["objects"].as_array().unwrap_or(&empty) {
        let writes = object["history"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .filter(|record| record["field"] == "daily_budget" && record["source"] != "scenario")
            .count();
        match writes {
            0 => {}
            1 => once += 1,
            _ => more += 1,
        }
    }
    (once, more)
}
