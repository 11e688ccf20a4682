//! The gateway's HTTP routes, one module per resource.

mod allocations;
mod battle_hardened;
mod health;
mod json_body;
mod ml_service_info;

use std::sync::Arc;

use adloop_telemetry::metrics::Registry;
use axum::Router;
use axum::routing::{get, post};
use sqlx::PgPool;

use crate::ml_client::MlServiceConnection;

#[derive(Clone)]
pub struct AppState {
    pub database_pool: PgPool,
    pub ml_service: MlServiceConnection,
    pub metrics_registry: Arc<Registry>,
}

pub fn api_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(adloop_service_kit::health::liveness))
        .route("/readyz", get(health::readiness))
        .route("/metrics", get(health::metrics))
        .route("/v1/ml/service-info", get(ml_service_info::get_ml_service_info))
        .route("/v1/allocations", post(allocations::post_allocation))
        .route("/api/v1/ml/battle-hardened/select", post(battle_hardened::post_select))
        .with_state(state)
}
