//! The relay benchmark (`relay-bench`): the release binary of capi-relay as users run it, on a fresh
//! database of the dev stack's Postgres (fsync on), loaded over HTTP through its drop-in endpoint with
//! website purchases carrying raw customer information. Measures durable ingest with 100-event requests and
//! with 1-event requests from many clients, accept latency at a fixed request rate, and — in the same run,
//! on the same table shape — what bare Postgres commits with 100 rows and with 1 row per commit.

mod load;
mod raw_insert;

use std::path::PathBuf;
use std::time::Duration;

pub use load::{LoadFigures, Target, closed_loop, open_loop, purchase_event};
pub use raw_insert::raw_insert_ceiling;

use crate::processes::{ProcessError, ServiceProcess, pairs, run_to_completion};

pub const BENCH_PIXEL: &str = "100000000000001";
/// The token meta-sim's default settings accept for every pixel.
const META_SIM_TOKEN: &str = "meta-sim-dev-token";

#[derive(Debug, thiserror::Error)]
pub enum RelayBenchError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Unexpected(String),
}

/// The run's set-up.
#[derive(Debug, Clone)]
pub struct RelayBenchPlan {
    pub binaries_dir: PathBuf,
    /// How long each load phase and each ceiling runs.
    pub phase: Duration,
    /// Concurrent clients sending 100-event requests.
    pub batch_clients: usize,
    /// Concurrent clients sending 1-event requests.
    pub single_clients: usize,
    /// The fixed rate of the latency phase (1-event requests).
    pub latency_requests_per_second: u32,
    /// Settings the relay starts with besides the bench's own (`ADLOOP_INGEST__COMMIT_WRITERS=8`, …).
    pub relay_settings: Vec<(String, String)>,
}

/// The relay's group-commit counters (from its `/metrics`): inserts, and the requests, events and seconds
/// they summed to.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommitCounters {
    pub inserts: f64,
    pub requests: f64,
    pub events: f64,
    pub seconds: f64,
}

impl CommitCounters {
    async fn scrape(base_url: &str) -> CommitCounters {
        let text = match reqwest::get(format!("{base_url}/metrics")).await {
            Ok(answer) => answer.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let value = |name: &str| adloop_telemetry::metrics::sample_value(&text, name).unwrap_or(0.0);
        CommitCounters {
            inserts: value("adloop_relay_commit_requests_count"),
            requests: value("adloop_relay_commit_requests_sum"),
            events: value("adloop_relay_commit_events_sum"),
            seconds: value("adloop_relay_commit_seconds_sum"),
        }
    }

    fn since(self, earlier: CommitCounters) -> CommitCounters {
        CommitCounters {
            inserts: self.inserts - earlier.inserts,
            requests: self.requests - earlier.requests,
            events: self.events - earlier.events,
            seconds: self.seconds - earlier.seconds,
        }
    }

    pub fn requests_per_insert(&self) -> f64 {
        self.requests / self.inserts.max(1.0)
    }

    pub fn milliseconds_per_insert(&self) -> f64 {
        1000.0 * self.seconds / self.inserts.max(1.0)
    }
}

/// What the run measured.
#[derive(Debug, Clone)]
pub struct RelayBenchFigures {
    pub batch_requests: LoadFigures,
    pub single_requests: LoadFigures,
    pub fixed_rate: LoadFigures,
    /// Group commit during each of the three phases.
    pub commits: [CommitCounters; 3],
    pub delivery: DeliveryFigures,
    /// Bare Postgres, 100 rows per commit, `batch_clients` connections: rows/s.
    pub raw_batch_ceiling: f64,
    /// Bare Postgres, 1 row per commit, `single_clients` connections: rows/s.
    pub raw_single_ceiling: f64,
    /// Events the relay's table holds at the end (every acknowledged one must be there).
    pub stored_events: i64,
    pub acknowledged_events: u64,
}

/// A relay on a fresh database with one ingest source for `BENCH_PIXEL`, delivery off (ingest alone).
struct RelayUnderTest {
    relay: ServiceProcess,
    database_url: String,
    target: Target,
}

async fn start_relay(plan: &RelayBenchPlan) -> Result<RelayUnderTest, RelayBenchError> {
    let database = adloop_test_support::TestDatabase::create().await;
    let environment = pairs(&[
        ("ADLOOP_DATABASE__URL", &database.url),
        ("ADLOOP_TELEMETRY__LOG_FILTER", "info"),
        ("ADLOOP_DELIVERY__ENABLED", "false"),
    ]);
    let environment: Vec<(String, String)> = environment.into_iter().chain(plan.relay_settings.clone()).collect();
    let ingest_token = run_to_completion(
        &plan.binaries_dir,
        "capi-relay",
        &["sources", "create", "--name", "bench", "--pixel", BENCH_PIXEL],
        &environment,
    )?;
    let relay = ServiceProcess::start(&plan.binaries_dir, "capi-relay", &environment)?;
    let target = Target {
        base_url: relay.base_url(),
        ingest_token,
        pixel_id: BENCH_PIXEL.to_owned(),
    };
    Ok(RelayUnderTest {
        relay,
        database_url: database.url,
        target,
    })
}

/// Runs every phase once, one after another.
pub async fn run(plan: &RelayBenchPlan) -> Result<RelayBenchFigures, RelayBenchError> {
    let under_test = start_relay(plan).await?;
    let target = &under_test.target;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(plan.single_clients.max(plan.batch_clients) as u32 + 2)
        .connect(&under_test.database_url)
        .await?;
    eprintln!("relay-bench: warming up…");
    let warm_up = closed_loop(target, "warm", 2, 100, Duration::from_secs(2)).await;
    // The ceilings first, on a small table and with the relay idle, so they are not measured in the
    // relay's wake (its table grown, checkpoints running): the ratios err against the relay.
    let body: serde_json::Value = sqlx::query_scalar("SELECT body FROM capi.events LIMIT 1")
        .fetch_optional(&pool)
        .await?
        .ok_or_else(|| RelayBenchError::Unexpected("the relay stored no event".into()))?;
    eprintln!("relay-bench: bare Postgres, 100 rows per commit…");
    let raw_batch_ceiling = raw_insert_ceiling(&pool, &body, plan.batch_clients, 100, plan.phase).await?;
    eprintln!("relay-bench: bare Postgres, 1 row per commit…");
    let raw_single_ceiling = raw_insert_ceiling(&pool, &body, plan.single_clients, 1, plan.phase).await?;

    let before_batch = CommitCounters::scrape(&target.base_url).await;
    eprintln!("relay-bench: 100-event requests, {} clients…", plan.batch_clients);
    let batch_requests = closed_loop(target, "batch", plan.batch_clients, 100, plan.phase).await;
    let before_single = CommitCounters::scrape(&target.base_url).await;
    eprintln!("relay-bench: 1-event requests, {} clients…", plan.single_clients);
    let single_requests = closed_loop(target, "single", plan.single_clients, 1, plan.phase).await;
    let before_rate = CommitCounters::scrape(&target.base_url).await;
    eprintln!(
        "relay-bench: 1-event requests at {} a second…",
        plan.latency_requests_per_second
    );
    let fixed_rate = open_loop(target, "rate", plan.latency_requests_per_second, plan.phase, 4096).await;
    let after_rate = CommitCounters::scrape(&target.base_url).await;
    drop(under_test.relay);
    let commits = [
        before_single.since(before_batch),
        before_rate.since(before_single),
        after_rate.since(before_rate),
    ];
    let stored_events: i64 = sqlx::query_scalar("SELECT count(*) FROM capi.events")
        .fetch_one(&pool)
        .await?;
    eprintln!("relay-bench: delivering the backlog to meta-sim: one relay, then two…");
    let delivery = deliver_backlog(plan, &under_test.database_url, &pool).await?;
    let acknowledged_events = warm_up.events + batch_requests.events + single_requests.events + fixed_rate.events;
    Ok(RelayBenchFigures {
        batch_requests,
        single_requests,
        fixed_rate,
        commits,
        delivery,
        raw_batch_ceiling,
        raw_single_ceiling,
        stored_events,
        acknowledged_events,
    })
}

/// Delivery to meta-sim of the backlog the ingest phases left.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeliveryFigures {
    /// One relay (its delivery workers) for one phase.
    pub one_relay_events: i64,
    pub one_relay_seconds: f64,
    /// Then a second relay on the same database, until the backlog is gone (or the time limit).
    pub two_relays_events: i64,
    pub two_relays_seconds: f64,
    /// Still pending at the end (0 unless the time limit cut the run).
    pub left_pending: i64,
    /// Events meta-sim received (it de-duplicates nothing here) against events the relays marked delivered:
    /// any excess was sent twice.
    pub received_at_meta_sim: i64,
    pub marked_delivered: i64,
}

async fn any_pending(pool: &sqlx::PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM capi.events WHERE state = 'pending')")
        .fetch_one(pool)
        .await
}

async fn count_in_state(pool: &sqlx::PgPool, state: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM capi.events WHERE state = $1")
        .bind(state)
        .fetch_one(pool)
        .await
}

/// Starts meta-sim and one relay with delivery on (batches of 1,000, Meta's most) against the backlog for
/// one phase, then a second relay until the backlog is delivered; counts what meta-sim received.
async fn deliver_backlog(
    plan: &RelayBenchPlan,
    database_url: &str,
    pool: &sqlx::PgPool,
) -> Result<DeliveryFigures, RelayBenchError> {
    let meta_sim = ServiceProcess::start(
        &plan.binaries_dir,
        "meta-sim",
        &pairs(&[("ADLOOP_TELEMETRY__LOG_FILTER", "warn,meta_sim=info")]),
    )?;
    let environment = pairs(&[
        ("ADLOOP_DATABASE__URL", database_url),
        ("ADLOOP_TELEMETRY__LOG_FILTER", "info"),
        ("ADLOOP_DELIVERY__ENABLED", "true"),
        ("ADLOOP_DELIVERY__BASE_URL", &meta_sim.base_url()),
        ("ADLOOP_DELIVERY__ACCESS_TOKEN", META_SIM_TOKEN),
        ("ADLOOP_DELIVERY__POLL_INTERVAL_MILLISECONDS", "100"),
    ]);
    let mut figures = DeliveryFigures::default();
    let started = std::time::Instant::now();
    let first_relay = ServiceProcess::start(&plan.binaries_dir, "capi-relay", &environment)?;
    tokio::time::sleep(plan.phase).await;
    figures.one_relay_events = count_in_state(pool, "delivered").await?;
    figures.one_relay_seconds = started.elapsed().as_secs_f64();

    let second_started = std::time::Instant::now();
    let second_relay = ServiceProcess::start(&plan.binaries_dir, "capi-relay", &environment)?;
    let time_limit = Duration::from_secs(300);
    // Asks only whether anything is pending (the partial index answers at once): counting every pending row
    // while the relays deliver would load the database the run measures.
    while any_pending(pool).await? && second_started.elapsed() <= time_limit {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    figures.left_pending = count_in_state(pool, "pending").await?;
    figures.two_relays_seconds = second_started.elapsed().as_secs_f64();
    drop((first_relay, second_relay));
    figures.marked_delivered = count_in_state(pool, "delivered").await?;
    figures.two_relays_events = figures.marked_delivered - figures.one_relay_events;
    let state: serde_json::Value = reqwest::get(format!("{}/_sim/state", meta_sim.base_url()))
        .await
        .map_err(|error| RelayBenchError::Unexpected(format!("meta-sim state: {error}")))?
        .json()
        .await
        .map_err(|error| RelayBenchError::Unexpected(format!("meta-sim state: {error}")))?;
    figures.received_at_meta_sim = state["counters"]["capi_events_received"].as_i64().unwrap_or(-1);
    Ok(figures)
}
