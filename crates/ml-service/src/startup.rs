//! Wiring: connect Postgres and Redis, bind the listener, assemble gRPC and HTTP routes on one router.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use adloop_proto::ml::v1::ml_service_server::MlServiceServer;
use adloop_service_kit::postgres::{DatabaseError, connect_for_serving};
use adloop_service_kit::serve::{BindError, BoundServer, ServeError};
use adloop_telemetry::http_middleware::traced_and_measured;
use adloop_telemetry::metrics::{HttpMetrics, Registry};
use axum::Router;
use prometheus_client::metrics::counter::Counter;
use sqlx::PgPool;

use crate::admission::Admission;
use crate::allocation_service::AllocationService;
use crate::grpc::MlServiceHandler;
use crate::http_routes::{HttpState, http_router};
use crate::learning::{LearningError, LearningMetrics, LearningService, spawn_catch_up};
use crate::score_cache::{CacheMetrics, ScoreCache};
use crate::settings::MlServiceSettings;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/ml-service");

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("invalid value for `redis.url`: {0}")]
    Redis(#[from] deadpool_redis::CreatePoolError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot build the grpc reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("cannot start the instant learner: {0}")]
    Learning(#[from] LearningError),
}

pub struct Application {
    server: BoundServer,
    health_reporter: tonic_health::server::HealthReporter,
    stop_background: tokio::sync::watch::Sender<bool>,
}

impl Application {
    pub async fn build(settings: MlServiceSettings) -> Result<Self, StartupError> {
        let database_pool = connect_for_serving(&settings.database, &MIGRATOR).await?;
        let redis_pool = build_redis_pool(&settings)?;

        let (health_reporter, grpc_health_service) = tonic_health::server::health_reporter();
        health_reporter.set_serving::<MlServiceServer<MlServiceHandler>>().await;
        let mut metrics_registry = Registry::with_prefix("adloop_ml");
        let http_metrics = HttpMetrics::register(&mut metrics_registry);
        let cache_metrics = CacheMetrics::register(&mut metrics_registry);
        let score_cache = Arc::new(
            ScoreCache::builder(settings.score_cache.clone(), cache_metrics)
                .redis(redis_pool.clone())
                .build(),
        );
        let shed_allocations = Counter::default();
        metrics_registry.register(
            "allocations_shed",
            "Allocate and Score requests refused because too many were running and waiting",
            shed_allocations.clone(),
        );
        let admission = Admission::new(settings.allocation_limits.clone(), shed_allocations);
        let allocation = Arc::new(AllocationService::new(
            settings.allocator.clone(),
            score_cache,
            admission,
        ));
        let learning_metrics = LearningMetrics::register(&mut metrics_registry);
        let learning = LearningService::start(
            database_pool.clone(),
            settings.learner.clone(),
            settings.learning.clone(),
            settings.cross_learner.clone(),
            learning_metrics,
        )
        .await?;
        let (stop_background, stop_receiver) = tokio::sync::watch::channel(false);
        spawn_catch_up(learning.clone(), stop_receiver);
        let router = build_router(
            database_pool,
            redis_pool,
            grpc_health_service,
            MlServiceHandler::new(allocation, learning),
            metrics_registry,
            http_metrics,
        )?;

        let server = BoundServer::bind(&settings.server, router).await?;
        Ok(Application {
            server,
            health_reporter,
            stop_background,
        })
    }

    /// The address actually bound (port 0 in the settings becomes a real port here).
    pub fn local_address(&self) -> SocketAddr {
        self.server.local_address()
    }

    /// Serves until `stop` resolves; then reports NOT_SERVING on gRPC health and drains in-flight calls.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let health_reporter = self.health_reporter;
        let stop_background = self.stop_background;
        let stop_and_report_not_serving = async move {
            stop.await;
            let _ = stop_background.send(true);
            health_reporter
                .set_not_serving::<MlServiceServer<MlServiceHandler>>()
                .await;
        };
        self.server.run_until_stopped(stop_and_report_not_serving).await
    }
}

fn build_redis_pool(settings: &MlServiceSettings) -> Result<deadpool_redis::Pool, StartupError> {
    let mut redis_config = deadpool_redis::Config::from_url(settings.redis.url.expose().clone());
    redis_config.pool = Some(deadpool_redis::PoolConfig::new(settings.redis.pool_size));
    Ok(redis_config.create_pool(Some(deadpool_redis::Runtime::Tokio1))?)
}

fn build_router(
    database_pool: PgPool,
    redis_pool: deadpool_redis::Pool,
    grpc_health_service: tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ml_service_handler: MlServiceHandler,
    metrics_registry: Registry,
    http_metrics: HttpMetrics,
) -> Result<Router, StartupError> {
    let reflection_service = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(adloop_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let grpc_router = tonic::service::Routes::new(MlServiceServer::new(ml_service_handler))
        .add_service(grpc_health_service)
        .add_service(reflection_service)
        .into_axum_router();

    let http_state = HttpState {
        database_pool,
        redis_pool,
        metrics_registry: Arc::new(metrics_registry),
    };
    Ok(traced_and_measured(
        http_router(http_state).merge(grpc_router),
        http_metrics,
    ))
}
