//! Wiring: connect Postgres, bind the listener, assemble the routes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use adloop_service_kit::postgres::{DatabaseError, connect_for_serving};
use adloop_service_kit::serve::{BindError, BoundServer, ServeError};
use adloop_telemetry::http_middleware::traced_and_measured;
use adloop_telemetry::metrics::{HttpMetrics, Registry};

use crate::delivery::{Deliverer, spawn_delivery};
use crate::learning::{LearningForwarder, spawn_forwarder};
use crate::metrics::{CommitMetrics, DeliveryMetrics, IngestMetrics, LearningMetrics};
use crate::routes::{AppState, api_router};
use crate::settings::RelaySettings;
use crate::sources::SourceCache;
use crate::store::group_commit::{GroupCommitSettings, GroupCommitter};

/// capi-relay's migrations (its schema: the event store).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/capi-relay");

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot build the HTTP client for delivery: {0}")]
    DeliveryClient(reqwest::Error),
    #[error(transparent)]
    MlServiceEndpoint(adloop_service_kit::grpc_client::GrpcEndpointError),
}

pub struct Application {
    server: BoundServer,
    /// The background workers (delivery, learning forwarder) and their stop signal.
    background: (tokio::sync::watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>),
}

impl Application {
    pub async fn build(settings: RelaySettings) -> Result<Self, StartupError> {
        let database_pool = connect_for_serving(&settings.database, &MIGRATOR).await?;
        let mut metrics_registry = Registry::with_prefix("adloop_relay");
        let http_metrics = HttpMetrics::register(&mut metrics_registry);
        let ingest_metrics = IngestMetrics::register(&mut metrics_registry);
        let delivery_metrics = DeliveryMetrics::register(&mut metrics_registry);
        let commit_metrics = CommitMetrics::register(&mut metrics_registry);
        let learning_metrics = LearningMetrics::register(&mut metrics_registry);
        let instance = adloop_service_kit::instance::instance_name(crate::SERVICE_NAME);
        let (stop_sender, stop_receiver) = tokio::sync::watch::channel(false);
        let mut workers = Vec::new();
        if settings.learning.enabled {
            let forwarder = LearningForwarder::new(
                database_pool.clone(),
                settings.learning.clone(),
                format!("{instance}-learning"),
                learning_metrics,
            )
            .map_err(StartupError::MlServiceEndpoint)?;
            workers.push(spawn_forwarder(forwarder, stop_receiver.clone()));
        }
        if settings.delivery.enabled {
            for worker in 0..settings.delivery.workers {
                let deliverer = Deliverer::new(
                    database_pool.clone(),
                    settings.delivery.clone(),
                    format!("{instance}-{worker}"),
                )
                .map_err(StartupError::DeliveryClient)?
                .with_metrics(delivery_metrics.clone());
                workers.push(spawn_delivery(
                    deliverer,
                    stop_receiver.clone(),
                    worker,
                    settings.delivery.workers,
                ));
            }
        }
        let background = (stop_sender, workers);
        let ingest = &settings.ingest;
        let committer = GroupCommitter::start(
            database_pool.clone(),
            GroupCommitSettings {
                writers: ingest.commit_writers,
                max_events_per_commit: ingest.max_events_per_commit,
                queue_capacity: ingest.commit_queue_requests,
                learning_outbox: settings.learning.enabled,
            },
            commit_metrics,
        );
        if let Some(pixel_id) = &ingest.capi_test_pixel_without_token {
            tracing::warn!(
                pixel_id,
                "POST /api/meta/capi/test answers requests without a token (ingest.capi_test_pixel_without_token)"
            );
        }
        let state = AppState {
            committer,
            sources: SourceCache::new(std::time::Duration::from_secs(ingest.remember_tokens_seconds)),
            bodies_in_flight: Arc::new(tokio::sync::Semaphore::new(ingest.max_body_kib_in_flight)),
            database_pool,
            metrics_registry: Arc::new(metrics_registry),
            ingest: Arc::new(settings.ingest.clone()),
            ingest_metrics,
            delivery: Arc::new(settings.delivery.clone()),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_millis(settings.delivery.request_timeout_ms))
                .build()
                .map_err(StartupError::DeliveryClient)?,
            clock: adloop_service_kit::clock::Clock::new(settings.clock.source, &settings.delivery.base_url),
        };
        let router = traced_and_measured(api_router(state), http_metrics);
        let server = BoundServer::bind(&settings.server, router).await?;
        Ok(Application { server, background })
    }

    pub fn local_address(&self) -> SocketAddr {
        self.server.local_address()
    }

    /// Serves until `stop` resolves, then drains in-flight requests and lets delivery finish its round.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let served = self.server.run_until_stopped(stop).await;
        let (stop_background, workers) = self.background;
        let _ = stop_background.send(true);
        for worker in workers {
            let _ = worker.await;
        }
        served
    }
}
