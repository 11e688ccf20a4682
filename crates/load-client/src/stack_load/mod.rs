//! The stack under load (`stack-load`): gateway-api, capi-relay and ml-service together, as the binaries users
//! run, loaded at steady rates from this second process for a while, with faults injected in meta-sim (Graph
//! errors, dropped connections, slow answers, failed batch operations, Conversions API outages) and the
//! score cache's Redis crashed and restarted once. Then it checks what a user relies on:
//! - no lost change: every change the API acknowledged reached a final state, and each ad set's budget at
//!   meta-sim is the one its last completed change set;
//! - no stuck lease: nothing is left running or due once the faults stop;
//! - no lost event: every purchase the relay acknowledged was delivered to meta-sim, and every learning event
//!   the gateway acknowledged is in ml-service's log;
//! - no server error or unanswered request at any time, Redis down included (429 is a correct answer to
//!   overload; anything else is a defect);
//! - memory flat: each service's resident memory, sampled every second, stays under its deployment manifest's
//!   limit, and its last third is compared with its first.

mod checks;
mod redis;
mod traffic;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use crate::memory::MemoryTrace;
pub use crate::open_loop::StreamTally;
use crate::open_loop::{Answer, run_stream};
pub use checks::{Check, WORK_DUE_WITHIN, checks_of};
use redis::{RedisProcess, free_port};
use traffic::{Targets, ad_sets_of, allocation_request, change_request, learning_request, relay_request};

use crate::executor_bench::{BenchError, BenchStack, WorldShape};
use crate::memory::sample_until_stopped;
use crate::processes::{ServiceProcess, pairs, run_to_completion};

const PIXEL_ID: &str = "100000000000001";
const META_SIM_TOKEN: &str = "meta-sim-dev-token";
/// Requests one stream may have outstanding; more are counted as not sent.
const MAX_IN_FLIGHT_PER_STREAM: usize = 64;

/// The run's set-up.
#[derive(Debug, Clone)]
pub struct StackLoadPlan {
    pub binaries_dir: PathBuf,
    /// How long the steady load runs.
    pub duration: Duration,
    /// Requests a second per stream.
    pub change_requests_per_second: f64,
    pub allocations_per_second: f64,
    pub learning_events_per_second: f64,
    pub relay_requests_per_second: f64,
    /// How long Redis stays down (it crashes a third of the way in).
    pub redis_down_for: Duration,
    /// How long the services may take to finish the work once the load and the faults stop.
    pub drain_limit: Duration,
}

/// What the run measured.
#[derive(Debug, Clone)]
pub struct StackLoadFigures {
    pub streams: Vec<StreamTally>,
    /// Allocation answers while Redis was down, by status.
    pub allocations_while_redis_down: StreamTally,
    pub changes_by_state: std::collections::BTreeMap<String, i64>,
    pub drain_seconds: f64,
    pub memory: Vec<(&'static str, f64, MemoryTrace)>,
    /// Faults meta-sim injected (its own count).
    pub faults_injected: u64,
    pub graph_requests: u64,
    pub capi_events_received_at_meta_sim: u64,
    pub checks: Vec<Check>,
}

impl StackLoadFigures {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.passed)
    }
}

/// The faults meta-sim injects while the load runs: transient Graph errors, slow and dropped Graph calls,
/// partial batch failures, and Conversions API outages; every one of them is retried by the executor or
/// the relay.
fn fault_schedule() -> Value {
    json!({
        "seed": 7,
        "rules": [
            { "endpoint": "graph_write", "probability": 0.03, "fault": { "kind": "graph_error", "code": 2 } },
            { "endpoint": "graph_read", "probability": 0.02, "fault": { "kind": "http_status", "status": 502 } },
            { "endpoint": "batch", "probability": 0.03, "fault": { "kind": "drop_connection" } },
            { "endpoint": "batch_operation", "probability": 0.03, "fault": { "kind": "graph_error", "code": 1 } },
            { "endpoint": "capi", "probability": 0.05, "fault": { "kind": "http_status", "status": 503 } },
            { "endpoint": "capi", "probability": 0.01, "fault": { "kind": "drop_connection" } }
        ],
        "latency": [ { "endpoint": "any", "min_milliseconds": 0, "max_milliseconds": 40 } ]
    })
}

/// Every service's limit in its Kubernetes manifest (deploy/kubernetes/base), MiB.
const MEMORY_LIMITS_MEBIBYTES: [(&str, f64); 3] =
    [("gateway-api", 512.0), ("capi-relay", 512.0), ("ml-service", 1024.0)];

/// The services under load, each killed when this is dropped.
struct RunningStack {
    redis: RedisProcess,
    bench: BenchStack,
    ml_service: ServiceProcess,
    relay: ServiceProcess,
    gateway: ServiceProcess,
    targets: Targets,
}

/// Starts a private Redis, meta-sim's world, ml-service, capi-relay and gateway-api on a fresh database, and
/// turns meta-sim's faults on.
async fn start_stack(plan: &StackLoadPlan, http: &reqwest::Client) -> Result<RunningStack, BenchError> {
    let redis = RedisProcess::start(free_port().map_err(BenchError::Unexpected)?).map_err(BenchError::Unexpected)?;
    // 200 ad sets over 4 accounts and 20 campaigns, meta-sim on the real clock (the relay's purchases are
    // stamped now) at Meta's own rate limits.
    let shape = WorldShape {
        accounts: 4,
        campaigns_per_account: 5,
        ad_sets_per_campaign: 10,
    };
    let stack = BenchStack::start(
        &plan.binaries_dir,
        &shape,
        &[
            ("ADLOOP_CLOCK__MODE", "real"),
            ("ADLOOP_INSPECTION__REQUEST_LOG_CAPACITY", "100"),
        ],
        // The per-ad-set and per-campaign hourly counts would hold most of a random stream for an hour; the
        // step and net-change guardrails stay as shipped.
        &[
            (
                "ADLOOP_EXECUTOR__GUARDRAILS__MAX_BUDGET_CHANGES_PER_AD_SET_PER_HOUR",
                "100000",
            ),
            (
                "ADLOOP_EXECUTOR__GUARDRAILS__MAX_ACTIONS_PER_CAMPAIGN_PER_HOUR",
                "100000",
            ),
            ("ADLOOP_EXECUTOR__RESCUE_INTERVAL_SECONDS", "5"),
        ],
    )
    .await?;
    let database_url = stack.database_url.clone();
    let ml_service = ServiceProcess::start(
        &plan.binaries_dir,
        "ml-service",
        &pairs(&[
            ("ADLOOP_DATABASE__URL", &database_url),
            ("ADLOOP_REDIS__URL", &redis.url()),
            ("ADLOOP_TELEMETRY__LOG_FILTER", "info"),
        ]),
    )?;
    let relay_environment = pairs(&[
        ("ADLOOP_DATABASE__URL", &database_url),
        ("ADLOOP_TELEMETRY__LOG_FILTER", "info"),
        ("ADLOOP_DELIVERY__ENABLED", "true"),
        ("ADLOOP_DELIVERY__BASE_URL", &stack.meta_sim.base_url()),
        ("ADLOOP_DELIVERY__ACCESS_TOKEN", META_SIM_TOKEN),
        ("ADLOOP_LEARNING__ENABLED", "true"),
        ("ADLOOP_LEARNING__ML_SERVICE_ENDPOINT", &ml_service.base_url()),
    ]);
    let ingest_token = run_to_completion(
        &plan.binaries_dir,
        "capi-relay",
        &["sources", "create", "--name", "stack load", "--pixel", PIXEL_ID],
        &relay_environment,
    )?;
    let relay = ServiceProcess::start(&plan.binaries_dir, "capi-relay", &relay_environment)?;
    let mut gateway_environment = stack.gateway_environment.clone();
    gateway_environment.extend(pairs(&[
        ("ADLOOP_ML_SERVICE__ENDPOINT", &ml_service.base_url()),
        ("ADLOOP_RELAY__URL", &relay.base_url()),
        ("ADLOOP_TELEMETRY__LOG_FILTER", "info"),
    ]));
    let gateway = ServiceProcess::start(&plan.binaries_dir, "gateway-api", &gateway_environment)?;

    let meta_sim_url = stack.meta_sim.base_url();
    let world: Value = http
        .get(format!("{meta_sim_url}/_sim/state"))
        .send()
        .await?
        .json()
        .await?;
    let targets = Targets {
        http: http.clone(),
        gateway_url: gateway.base_url(),
        api_key: stack.api_key.clone(),
        relay_url: relay.base_url(),
        ingest_token,
        pixel_id: PIXEL_ID.to_owned(),
        ad_sets: Arc::new(ad_sets_of(&world)),
        run_id: format!("load{}", std::process::id()),
    };
    if targets.ad_sets.is_empty() {
        return Err(BenchError::Unexpected("meta-sim's world has no ad sets".into()));
    }
    http.post(format!("{meta_sim_url}/_sim/faults"))
        .json(&fault_schedule())
        .send()
        .await?
        .error_for_status()?;

    Ok(RunningStack {
        redis,
        bench: stack,
        ml_service,
        relay,
        gateway,
        targets,
    })
}

/// Runs the plan on a fresh database, a fresh meta-sim world and a private Redis.
pub async fn run(plan: &StackLoadPlan) -> Result<StackLoadFigures, BenchError> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let RunningStack {
        mut redis,
        bench: stack,
        ml_service,
        relay,
        gateway,
        targets,
    } = start_stack(plan, &http).await?;
    let database_url = stack.database_url.clone();
    let meta_sim_url = stack.meta_sim.base_url();
    // In the order of MEMORY_LIMITS_MEBIBYTES.
    let pids = vec![gateway.id(), relay.id(), ml_service.id()];
    let (memory_stop, memory_stopped) = tokio::sync::watch::channel(false);
    let memory_sampler = tokio::spawn(sample_until_stopped(pids, Duration::from_secs(1), memory_stopped));

    let (streams, allocations_while_redis_down) = apply_load(plan, &targets, &mut redis).await?;

    eprintln!("stack-load: load stopped; faults off; waiting for the queue and the relay to drain…");
    http.delete(format!("{meta_sim_url}/_sim/faults"))
        .send()
        .await?
        .error_for_status()?;
    let pool = sqlx::PgPool::connect(&database_url).await?;
    let drain_started = Instant::now();
    while checks::work_left(&pool).await? && drain_started.elapsed() < plan.drain_limit {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    let _ = memory_stop.send(true);
    let traces = memory_sampler
        .await
        .map_err(|error| BenchError::Unexpected(format!("the memory sampler panicked: {error}")))?;
    let memory: Vec<(&'static str, f64, MemoryTrace)> = MEMORY_LIMITS_MEBIBYTES
        .iter()
        .zip(traces)
        .map(|((name, limit), trace)| (*name, *limit, trace))
        .collect();

    let world_after: Value = http
        .get(format!("{meta_sim_url}/_sim/state"))
        .send()
        .await?
        .json()
        .await?;
    let capi_events: Value = http
        .get(format!("{meta_sim_url}/_sim/capi/events"))
        .send()
        .await?
        .json()
        .await?;
    let checks = checks_of(
        &pool,
        &streams,
        &allocations_while_redis_down,
        &world_after,
        &capi_events,
        &memory,
    )
    .await?;
    let changes_by_state = crate::executor_bench::changes_by_state(&pool).await?;
    pool.close().await;
    drop((gateway, relay, ml_service, stack));
    Ok(StackLoadFigures {
        streams,
        allocations_while_redis_down,
        changes_by_state,
        drain_seconds,
        memory,
        faults_injected: world_after["counters"]["faults_injected"].as_u64().unwrap_or(0),
        graph_requests: world_after["counters"]["requests"].as_u64().unwrap_or(0),
        capi_events_received_at_meta_sim: capi_events["counts"]["received"].as_u64().unwrap_or(0),
        checks,
    })
}

/// The steady load, with Redis crashed a third of the way in; each stream's tally, and the allocations'
/// during the outage.
async fn apply_load(
    plan: &StackLoadPlan,
    targets: &Targets,
    redis: &mut RedisProcess,
) -> Result<(Vec<StreamTally>, StreamTally), BenchError> {
    eprintln!(
        "stack-load: {} s of steady load with faults in meta-sim…",
        plan.duration.as_secs()
    );
    let duration = plan.duration;
    let changes = spawn_stream(
        "ad changes (5 a request)",
        plan.change_requests_per_second,
        duration,
        targets,
        change_request,
    );
    let allocations = spawn_stream(
        "allocations",
        plan.allocations_per_second,
        duration,
        targets,
        allocation_request,
    );
    let learning = spawn_stream(
        "learning events",
        plan.learning_events_per_second,
        duration,
        targets,
        learning_request,
    );
    let purchases = spawn_stream(
        "purchases via the relay (10 a request)",
        plan.relay_requests_per_second,
        duration,
        targets,
        relay_request,
    );

    // A third of the way in, Redis crashes; allocations go on meanwhile (ml-service's L1 only).
    tokio::time::sleep(duration / 3).await;
    eprintln!("stack-load: Redis crashes for {} s…", plan.redis_down_for.as_secs());
    let outage_targets = targets.clone();
    let during_outage = tokio::spawn(run_stream(
        "allocations while Redis is down",
        plan.allocations_per_second,
        plan.redis_down_for,
        MAX_IN_FLIGHT_PER_STREAM,
        // Sequence numbers far from the main stream's: states the cache has not seen.
        move |sequence| allocation_request(&outage_targets, 1_000_000 + sequence),
    ));
    redis
        .crash_and_restart(plan.redis_down_for)
        .await
        .map_err(BenchError::Unexpected)?;
    eprintln!("stack-load: Redis is back");
    let join = |handle: tokio::task::JoinHandle<StreamTally>| async move {
        handle
            .await
            .map_err(|error| BenchError::Unexpected(format!("a load stream panicked: {error}")))
    };
    let allocations_while_redis_down = join(during_outage).await?;
    let streams = vec![
        join(changes).await?,
        join(allocations).await?,
        join(learning).await?,
        join(purchases).await?,
    ];

    Ok((streams, allocations_while_redis_down))
}

/// One of the load's streams, on a task of its own.
fn spawn_stream<Request>(
    name: &'static str,
    rate_per_second: f64,
    duration: Duration,
    targets: &Targets,
    request: fn(&Targets, u64) -> Request,
) -> tokio::task::JoinHandle<StreamTally>
where
    Request: std::future::Future<Output = Answer> + Send + 'static,
{
    let targets = targets.clone();
    tokio::spawn(run_stream(
        name,
        rate_per_second,
        duration,
        MAX_IN_FLIGHT_PER_STREAM,
        move |sequence| request(&targets, sequence),
    ))
}
