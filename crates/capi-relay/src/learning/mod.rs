//! Attributed conversions to ml-service's learner: events that name their ad (`custom_data.ad_id`) are
//! queued in `learning_outbox` by the statement that stores them (`store::insert_rows_with_outbox`), and a
//! forwarder sends them to ml-service's `RecordEvent` as conversions, a leased round in one request, so the
//! learner learns from them.
//! ml-service takes an event id once, so a re-send after a crash is harmless. Until ml-service accepts
//! them (it may be down, or not yet serving `RecordEvent`), conversions wait with backoff; only one
//! ml-service calls invalid is a dead letter.

pub mod event;
pub mod outbox;

use std::time::Duration;

use adloop_proto::ml::v1::RecordEventRequest;
use adloop_proto::ml::v1::ml_service_client::MlServiceClient;
use adloop_service_kit::google_id_token::{IdTokenInterceptor, IdTokens};
use adloop_service_kit::grpc_client::{GrpcEndpointError, GrpcEndpointSettings, grpc_endpoint};
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

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
    /// The CA (PEM) that signed ml-service's certificate when the endpoint is https:// and not signed by a
    /// public CA.
    pub ml_service_ca_certificate_path: Option<String>,
    /// Attach a Google-signed ID token of this relay's service account (ml-service on Cloud Run behind
    /// IAM), fetched from `google_metadata_url`.
    pub ml_service_google_id_token: bool,
    pub google_metadata_url: String,
    pub request_timeout_ms: u64,
    /// Conversions leased per round (sent in one request; ml-service takes up to 5,000).
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
    client: MlServiceClient<InterceptedService<Channel, IdTokenInterceptor>>,
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
    ) -> Result<LearningForwarder, GrpcEndpointError> {
        let channel = grpc_endpoint(&GrpcEndpointSettings {
            url: &settings.ml_service_endpoint,
            url_key: "learning.ml_service_endpoint",
            ca_certificate_path: settings.ml_service_ca_certificate_path.as_deref(),
            ca_certificate_key: "learning.ml_service_ca_certificate_path",
            connect_timeout: Duration::from_millis(settings.request_timeout_ms),
            request_timeout: Duration::from_millis(settings.request_timeout_ms),
        })?
        .connect_lazy();
        let id_tokens = settings
            .ml_service_google_id_token
            .then(|| IdTokens::start(&settings.google_metadata_url, &settings.ml_service_endpoint));
        Ok(LearningForwarder {
            pool,
            client: MlServiceClient::with_interceptor(channel, IdTokenInterceptor(id_tokens)),
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
        if conversions.is_empty() {
            return Ok(report);
        }
        let mut forwarded = Vec::new();
        let whole_round = RecordEventRequest {
            events: conversions.iter().map(learning_event_of).collect(),
        };
        match self.client.clone().record_event(whole_round).await {
            Ok(_) => forwarded.extend(conversions.iter().map(|conversion| (conversion.id, conversion.attempt))),
            // One conversion ml-service refuses must not hold back the rest: find it by sending one by one.
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                for conversion in &conversions {
                    let single = RecordEventRequest {
                        events: vec![learning_event_of(conversion)],
                    };
                    match self.client.clone().record_event(single).await {
                        Ok(_) => forwarded.push((conversion.id, conversion.attempt)),
                        Err(status) => self.postpone_after(conversion, &status, &mut report).await?,
                    }
                }
            }
            Err(status) => {
                for conversion in &conversions {
                    self.postpone_after(conversion, &status, &mut report).await?;
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

impl LearningForwarder {
    /// Retries the conversion later, or gives up on it when ml-service calls it invalid.
    async fn postpone_after(
        &self,
        conversion: &event::QueuedConversion,
        status: &tonic::Status,
        report: &mut ForwardReport,
    ) -> Result<(), sqlx::Error> {
        let error = format!("{:?}: {}", status.code(), status.message());
        let delay = match status.code() {
            tonic::Code::InvalidArgument => None,
            _ => Some(backoff(conversion.attempt)),
        };
        let held = (conversion.id, conversion.attempt);
        if postpone(&self.pool, &self.worker_name, held, delay, &error).await? > 0 {
            match delay {
                Some(_) => report.retried += 1,
                None => report.dead += 1,
            }
        }
        Ok(())
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
