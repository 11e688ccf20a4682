//! The HTTP side of ml-service: liveness, readiness and Prometheus metrics.

use std::sync::Arc;

use adloop_service_kit::health::{DependencyCheck, ReadinessReport, answers_in_time, liveness};
use adloop_service_kit::postgres::database_answers;
use adloop_telemetry::metrics::{Registry, render_prometheus_text};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use deadpool_redis::redis;
use sqlx::PgPool;

#[derive(Clone)]
pub struct HttpState {
    pub database_pool: PgPool,
    pub redis_pool: deadpool_redis::Pool,
    pub metrics_registry: Arc<Registry>,
}

pub fn http_router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(liveness))
        .route("/readyz", get(readiness))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Ready when Postgres answers. Redis only holds the shared score cache: without it ml-service keeps
/// serving from its in-process cache, so Redis is reported but not required.
async fn readiness(State(state): State<HttpState>) -> ReadinessReport {
    let (postgres_answered, redis_answered) = tokio::join!(
        answers_in_time(database_answers(&state.database_pool)),
        answers_in_time(redis_answers(&state.redis_pool))
    );
    ReadinessReport::from_checks(
        crate::SERVICE_NAME,
        crate::SERVICE_VERSION,
        vec![
            DependencyCheck::required("postgres", postgres_answered),
            DependencyCheck::optional("redis", redis_answered),
        ],
    )
}

async fn redis_answers(redis_pool: &deadpool_redis::Pool) -> bool {
    let ping = async {
        let mut connection = redis_pool.get().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut connection).await.ok()
    };
    ping.await.is_some()
}

async fn metrics(State(state): State<HttpState>) -> String {
    render_prometheus_text(&state.metrics_registry)
}
