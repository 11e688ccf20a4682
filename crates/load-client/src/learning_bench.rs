//! The learning benchmark (`learning-bench`): ml-service and gateway-api as the release binaries users run,
//! on a fresh database of the dev stack's Postgres (fsync on). Measures durable learning-event intake through
//! batched `RecordEvent` calls (each answered after the batch is committed and applied), and how long an
//! event takes to be visible through HTTP: `POST /api/internal/learning/event` then `GET /api/weights`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adloop_proto::ml::v1 as proto;
use adloop_proto::ml::v1::ml_service_client::MlServiceClient;
use hdrhistogram::Histogram;

use crate::processes::{ProcessError, ServiceProcess, on_fresh_database, pairs, run_to_completion};

const FEATURES: [&str; 8] = [
    "has_pain_point",
    "has_number",
    "has_question",
    "has_face",
    "has_subtitles",
    "hook_type=demo",
    "hook_type=question",
    "duration_seconds@16",
];

#[derive(Debug, thiserror::Error)]
pub enum LearningBenchError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot reach ml-service: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("{0}")]
    Unexpected(String),
}

#[derive(Debug, Clone)]
pub struct LearningBenchPlan {
    pub binaries_dir: PathBuf,
    /// How long the intake phase runs.
    pub phase: Duration,
    /// Concurrent `RecordEvent` callers.
    pub clients: usize,
    /// Events per `RecordEvent` call.
    pub events_per_request: usize,
    /// Sequential event → weights round trips through the gateway.
    pub visibility_samples: usize,
}

#[derive(Debug)]
pub struct LearningBenchFigures {
    pub acknowledged_events: u64,
    pub intake_seconds: f64,
    pub failed_requests: u64,
    /// `RecordEvent` latency, microseconds.
    pub request_latency: Histogram<u64>,
    /// POST event + GET weights through the gateway, microseconds.
    pub visibility_latency: Histogram<u64>,
    /// Visible round trips whose weights did not reflect the event (must be 0).
    pub not_visible: u64,
    /// Rows in the learner's log at the end (every acknowledged event must be there).
    pub logged_events: i64,
}

impl LearningBenchFigures {
    pub fn events_per_second(&self) -> f64 {
        self.acknowledged_events as f64 / self.intake_seconds.max(1e-9)
    }
}

pub fn milliseconds(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

pub async fn run(plan: &LearningBenchPlan) -> Result<LearningBenchFigures, LearningBenchError> {
    on_fresh_database("learning-bench", async |database| run_on(plan, database).await).await
}

async fn run_on(
    plan: &LearningBenchPlan,
    database: &adloop_test_support::TestDatabase,
) -> Result<LearningBenchFigures, LearningBenchError> {
    let redis_url = adloop_test_support::redis_url();
    let ml_service = ServiceProcess::start(
        &plan.binaries_dir,
        "ml-service",
        &pairs(&[
            ("ADLOOP_DATABASE__URL", &database.url),
            ("ADLOOP_REDIS__URL", &redis_url),
            ("ADLOOP_TELEMETRY__LOG_FILTER", "info"),
        ]),
    )?;
    let gateway_environment = pairs(&[
        ("ADLOOP_DATABASE__URL", &database.url),
        ("ADLOOP_TELEMETRY__LOG_FILTER", "info"),
        ("ADLOOP_ML_SERVICE__ENDPOINT", &ml_service.base_url()),
    ]);
    let api_key = run_to_completion(
        &plan.binaries_dir,
        "gateway-api",
        &["keys", "create", "--tenant", "bench"],
        &gateway_environment,
    )?;
    let gateway = ServiceProcess::start(&plan.binaries_dir, "gateway-api", &gateway_environment)?;
    let client = MlServiceClient::connect(ml_service.base_url()).await?;

    eprintln!(
        "learning-bench: RecordEvent, {} clients × {} events per request…",
        plan.clients, plan.events_per_request
    );
    let intake = intake(plan, &client).await;
    eprintln!(
        "learning-bench: event → weights through the gateway, {} times…",
        plan.visibility_samples
    );
    let (visibility_latency, not_visible) = visibility(plan, &gateway.base_url(), &api_key).await?;
    let pool = sqlx::PgPool::connect(&database.url).await?;
    let logged_events: i64 = sqlx::query_scalar("SELECT count(*) FROM ml.learning_events")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    drop(gateway);
    drop(ml_service);
    Ok(LearningBenchFigures {
        acknowledged_events: intake.events,
        intake_seconds: intake.seconds,
        failed_requests: intake.failed,
        request_latency: intake.latency,
        visibility_latency,
        not_visible,
        logged_events: logged_events - plan.visibility_samples as i64,
    })
}

struct Intake {
    events: u64,
    seconds: f64,
    failed: u64,
    latency: Histogram<u64>,
}

fn bench_event(client: usize, sequence: u64, index: usize) -> proto::LearningEvent {
    let mix = (sequence as usize)
        .wrapping_mul(31)
        .wrapping_add(index * 7 + client * 13);
    let creative_features = (0..4)
        .map(|offset| (FEATURES[(mix + offset * 3) % FEATURES.len()].to_owned(), 1.0))
        .collect();
    proto::LearningEvent {
        event_id: format!("bench-{client}-{sequence}-{index}"),
        ids: Some(proto::AdIds {
            ad_id: format!("ad-{}", mix % 2_000),
            ..proto::AdIds::default()
        }),
        creative_features,
        impressions: 10.0 + (mix % 40) as f64,
        clicks: (mix % 3) as f64,
        matured_clicks: (mix % 2) as f64,
        conversions: if mix.is_multiple_of(17) { 1.0 } else { 0.0 },
        ..proto::LearningEvent::default()
    }
}

async fn intake(plan: &LearningBenchPlan, client: &MlServiceClient<tonic::transport::Channel>) -> Intake {
    let acknowledged = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + plan.phase;
    let callers: Vec<_> = (0..plan.clients)
        .map(|caller| {
            let mut client = client.clone();
            let acknowledged = acknowledged.clone();
            let failed = failed.clone();
            let events_per_request = plan.events_per_request;
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new(3).expect("histogram");
                let mut sequence = 0;
                while Instant::now() < deadline {
                    let events = (0..events_per_request)
                        .map(|index| bench_event(caller, sequence, index))
                        .collect();
                    sequence += 1;
                    let sent = Instant::now();
                    match client.record_event(proto::RecordEventRequest { events }).await {
                        Ok(_) => {
                            acknowledged.fetch_add(events_per_request as u64, Ordering::Relaxed);
                            let _ = latency.record(sent.elapsed().as_micros() as u64);
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latency
            })
        })
        .collect();
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    for caller in callers {
        if let Ok(caller_latency) = caller.await {
            let _ = latency.add(caller_latency);
        }
    }
    Intake {
        events: acknowledged.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        failed: failed.load(Ordering::Relaxed),
        latency,
    }
}

async fn visibility(
    plan: &LearningBenchPlan,
    gateway_url: &str,
    api_key: &str,
) -> Result<(Histogram<u64>, u64), LearningBenchError> {
    let http = reqwest::Client::new();
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    let mut not_visible = 0;
    let mut previous_weight = f64::NAN;
    for sample in 0..plan.visibility_samples {
        // Every click, then no click, in turn: each event must move the weight, up then down.
        let all_clicked = sample % 2 == 0;
        let body = serde_json::json!({
            "event_id": format!("visible-{sample}"),
            "ad_id": "visibility-ad",
            "features": { "has_pain_point": true, "has_number": true },
            "impressions": 20,
            "clicks": if all_clicked { 20 } else { 0 },
        });
        let sent = Instant::now();
        let answer = http
            .post(format!("{gateway_url}/api/internal/learning/event"))
            .bearer_auth(api_key)
            .json(&body)
            .send()
            .await
            .map_err(|error| LearningBenchError::Unexpected(format!("gateway: {error}")))?;
        if !answer.status().is_success() {
            return Err(LearningBenchError::Unexpected(format!(
                "the gateway refused a learning event: {}",
                answer.text().await.unwrap_or_default()
            )));
        }
        let weights: serde_json::Value = http
            .get(format!("{gateway_url}/api/weights"))
            .bearer_auth(api_key)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| LearningBenchError::Unexpected(format!("gateway: {error}")))?
            .json()
            .await
            .map_err(|error| LearningBenchError::Unexpected(format!("gateway: {error}")))?;
        let _ = latency.record(sent.elapsed().as_micros() as u64);
        let weight = weights["pain_point"].as_f64().unwrap_or(f64::NAN);
        let moved_as_the_event_says = if all_clicked {
            weight > previous_weight
        } else {
            weight < previous_weight
        };
        if sample > 0 && !moved_as_the_event_says {
            not_visible += 1;
        }
        previous_weight = weight;
    }
    Ok((latency, not_visible))
}
