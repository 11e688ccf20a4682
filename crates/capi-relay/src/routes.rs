//! The relay's HTTP routes.

use std::sync::Arc;

use adloop_service_kit::health::{DependencyCheck, ReadinessReport, answers_in_time, liveness};
use adloop_service_kit::postgres::database_answers;
use adloop_telemetry::metrics::{Registry, render_prometheus_text};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use sqlx::PgPool;

#[derive(Clone)]
pub struct AppState {
    pub database_pool: PgPool,
    pub metrics_registry: Arc<Registry>,
}

pub fn api_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(liveness))
        .route("/readyz", get(readiness))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Ready when Postgres answers: the relay acknowledges nothing it has not committed there.
async fn readiness(State(state): State<AppState>) -> ReadinessReport {
    let postgres_answered = answers_in_time(database_answers(&state.database_pool)).await;
    ReadinessReport::from_checks(
        crate::SERVICE_NAME,
        crate::SERVICE_VERSION,
        vec![DependencyCheck::required("postgres", postgres_answered)],
    )
}

async fn metrics(State(state): State<AppState>) -> String {
    render_prometheus_text(&state.metrics_registry)
}
