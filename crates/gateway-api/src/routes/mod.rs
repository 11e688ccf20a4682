//! The gateway's HTTP routes, one module per resource.

mod ad_changes;
pub(crate) mod allocations;
pub mod auth;
mod autopilot;
mod battle_hardened;
mod guardrails;
mod health;
mod learning;
mod ml_service_info;
mod patterns;
mod request_input;
mod ui;

use std::sync::Arc;

use adloop_service_kit::request_bounds::{RequestBounds, bounded};
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
    pub enqueue_jitter: crate::executor::enqueue_jitter::EnqueueJitter,
    /// The deployment's guardrails, under each tenant's and account's own keys.
    pub guardrail_defaults: crate::executor::guardrails::GuardrailSettings,
    pub relay_health: crate::relay_health::RelayHealthReader,
    /// `api_keys.open_recovery_plan_routes`: the recovery plan's routes also serve keyless requests.
    pub open_recovery_plan_routes: bool,
}

/// The gateway's routes; `bounds` apply to every route but health, readiness, metrics, the OpenAPI
/// document and the operator page's static files, which must answer under load.
pub fn api_router(state: AppState, bounds: RequestBounds) -> Router {
    // The original system's routes, whose callers (and the recovery plan's own test) send no key: a setting
    // may open them to keyless requests. Their handlers act for no tenant.
    let recovery_plan_routes = Router::new()
        .route("/api/v1/ml/battle-hardened/select", post(battle_hardened::post_select))
        .route("/api/internal/learning/event", post(learning::post_learning_event))
        .route("/api/weights", get(learning::get_weights))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key_unless_recovery_plan_routes_open,
        ));
    let protected = Router::new()
        .route("/v1/ml/service-info", get(ml_service_info::get_ml_service_info))
        .route("/v1/allocations", post(allocations::post_allocation))
        .route(
            "/v1/ad-changes",
            post(ad_changes::post_ad_changes).get(ad_changes::list_ad_changes),
        )
        .route("/v1/learner", get(learning::get_learner))
        .route("/v1/patterns/similar", post(patterns::post_similar_patterns))
        .route(
            "/v1/accounts/{account_id}/pattern-sharing",
            get(patterns::get_pattern_sharing).put(patterns::put_pattern_sharing),
        )
        .route("/v1/accounts", get(autopilot::list_accounts))
        .route(
            "/v1/accounts/{account_id}/autopilot",
            get(autopilot::get_autopilot).post(autopilot::post_autopilot),
        )
        .route(
            "/v1/accounts/{account_id}/autopilot/runs",
            get(autopilot::list_autopilot_runs),
        )
        .route("/v1/ad-changes/{id}", get(ad_changes::get_ad_change))
        .route("/v1/ad-changes/{id}/cancel", post(ad_changes::cancel_ad_change))
        .route("/v1/ad-changes/{id}/approve", post(ad_changes::approve_ad_change))
        .route("/v1/ad-changes/{id}/rollback", post(ad_changes::rollback_ad_change))
        .route("/v1/executor/pause", post(ad_changes::pause_executor))
        .route("/v1/executor/resume", post(ad_changes::resume_executor))
        .route("/v1/executor/status", get(ad_changes::executor_status))
        .route("/v1/audit", get(ad_changes::get_audit))
        .route("/v1/relay/health", get(health::relay_health))
        .route(
            "/v1/guardrails",
            get(guardrails::get_guardrails).put(guardrails::put_guardrails),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ))
        .merge(recovery_plan_routes);
    let protected = bounded(protected, bounds, "http_limits");
    Router::new()
        .route("/healthz", get(adloop_service_kit::health::liveness))
        .route("/readyz", get(health::readiness))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi))
        .route("/ui", get(ui::index))
        .route("/ui/", get(ui::index))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/app.css", get(ui::stylesheet))
        .merge(protected)
        .fallback(adloop_service_kit::error::no_such_route)
        .method_not_allowed_fallback(adloop_service_kit::error::method_not_allowed)
        .with_state(state)
}
