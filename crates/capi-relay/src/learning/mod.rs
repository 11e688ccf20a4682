//! Attributed conversions to ml-service's learner: events that name their ad (`custom_data.ad_id`) are
//! queued in `learning_outbox` by the statement that stores them (`store::insert_rows_with_outbox`), and a
//! forwarder sends each to ml-service's `RecordEvent` as a conversion, so the allocator learns from them.
//! ml-service takes an event id once, so a re-send after a crash is harmless. Until ml-service accepts
//! them (it may be down, or not yet serving `RecordEvent`), conversions wait with backoff; only one
//! ml-service calls invalid is a dead letter.

pub mod event;
pub mod outbox;

use std::time::Duration;

use adloop_proto::ml::v1::RecordEventRequest;
use adloop_proto::ml::v1::ml_service_client::MlServiceClient;
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use crate::metrics::LearningMetrics;
use event::learning_event_of;
use outbox::{claim_conversions, forget_forwarded, postpone};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearningSettings {
    /// Queue attributed conversions and forward them to ml-service.
    pub enabled: bool,
    /// ml-service's gRPC endpoint.
    pub ml_service_endpoint: String,
    pub request_timeout_ms: u64,
    /// Conversions leased per round (sent concurrently).
    pub batch_size: i64,
    pub lease_seconds: f64,
    pub poll_interval_milliseconds: u64,
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardReport {
    pub claimed: usize,
    pub forwarded: usize,
    pub retried: usize,
    pub dead: usize,
}

pub struct LearningForwarder {
    pool: PgPool,
    client: MlServiceClient<Channel>,
    settings: LearningSettings,
    worker_name: String,
    metrics: LearningMetrics,
}

fn backoff(attempt: i32) -> Duration {
    Duration::from_secs(2_u64.saturating_pow(attempt.clamp(0, 9) as u32).min(300))
}

impl LearningForwarder {
    /// Connects lazily: the relay starts, and conversions wait, while ml-service is down.
    pub fn new(
        pool: PgPool,
        settings: LearningSettings,
        worker_name: String,
        metrics: LearningMetrics,
    ) -> Result<LearningForwarder, tonic::transport::Error> {
        let channel = Endpoint::from_shared(settings.ml_service_endpoint.clone())?
            .connect_timeout(Duration::from_millis(settings.request_timeout_ms))
            .timeout(Duration::from_millis(settings.request_timeout_ms))
            .connect_lazy();
        Ok(LearningForwarder {
            pool,
            client: MlServiceClient::new(channel),
            settings,
            worker_name,
            metrics,
        })
    }

    pub async fn run_once(&self) -> Result<ForwardReport, sqlx::Error> {
        let lease = Duration::from_secs_f64(self.settings.lease_seconds);
        let conversions = claim_conversions(&self.pool, &self.worker_name, self.settings.batch_size, lease).await?;
        let mut report = ForwardReport {
            claimed: conversions.len(),
            ..ForwardReport::default()
        };
        let answers = futures_util::future::join_all(conversions.iter().map(|conversion| {
            let mut client = self.client.clone();
            let request = RecordEventRequest {
                event: Some(learning_event_of(conversion)),
            };
            async move { client.record_event(request).await }
        }))
        .await;
        let mut forwarded = Vec::new();
        for (conversion, answer) in conversions.iter().zip(answers) {
            let held = (conversion.id, conversion.attempt);
            match answer {
                Ok(_) => forwarded.push(held),
                Err(status) => {
                    let error = format!("{:?}: {}", status.code(), status.message());
                    let delay = match status.code() {
                        tonic::Code::InvalidArgument => None,
                        _ => Some(backoff(conversion.attempt)),
                    };
                    if postpone(&self.pool, &self.worker_name, held, delay, &error).await? > 0 {
                        match delay {
                            Some(_) => report.retried += 1,
                            None => report.dead += 1,
                        }
                    }
                }
            }
        }
        if !forwarded.is_empty() {
            report.forwarded = forget_forwarded(&self.pool, &self.worker_name, &forwarded).await? as usize;
        }
        self.metrics.count("forwarded", report.forwarded);
        self.metrics.count("retried", report.retried);
        self.metrics.count("dead", report.dead);
        Ok(report)
    }
}

/// Forwards until `stop`; logs when ml-service is not taking conversions (once per change, not per round).
pub fn spawn_forwarder(forwarder: LearningForwarder, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let poll_interval = Duration::from_millis(forwarder.settings.poll_interval_milliseconds);
        let mut waiting_for_ml_service = false;
        while !*stop.borrow() {
            match forwarder.run_once().await {
                Ok(round) if round.forwarded > 0 => {
                    waiting_for_ml_service = false;
                    tracing::debug!(forwarded = round.forwarded, "conversions forwarded to ml-service");
                    continue;
                }
                Ok(round) if round.retried > 0 && !waiting_for_ml_service => {
                    waiting_for_ml_service = true;
                    tracing::warn!(
                        waiting = round.retried,
                        "ml-service is not taking conversions yet; they wait in the learning outbox"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "learning forwarder round failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(poll_interval) => {}
                _ = stop.changed() => {}
            }
        }
    })
}
