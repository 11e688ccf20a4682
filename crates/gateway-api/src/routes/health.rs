use adloop_service_kit::health::{DependencyCheck, ReadinessReport, answers_in_time};
use adloop_service_kit::postgres::database_answers;
use adloop_telemetry::metrics::render_prometheus_text;
use axum::extract::State;

use super::AppState;

/// Ready when Postgres answers (the executor queue lives there). ml-service is reported too; without it the
/// gateway still serves what does not need a model, so it is not required.
pub async fn readiness(State(state): State<AppState>) -> ReadinessReport {
    let (postgres_answered, ml_service_serving) = tokio::join!(
        answers_in_time(database_answers(&state.database_pool)),
        answers_in_time(state.ml_service.is_serving())
    );
    ReadinessReport::from_checks(
        crate::SERVICE_NAME,
        crate::SERVICE_VERSION,
        vec![
            DependencyCheck::required("postgres", postgres_answered),
            DependencyCheck::optional("ml-service", ml_service_serving),
        ],
    )
}

pub async fn metrics(State(state): State<AppState>) -> String {
    render_prometheus_text(&state.metrics_registry)
}

/// The gateway's OpenAPI document, kept beside the routes (`src/openapi.json`); a test checks that every
/// path and method in it is served.
pub const OPENAPI_DOCUMENT: &str = include_str!("../openapi.json");

pub async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI_DOCUMENT,
    )
}

/// `GET /v1/relay/health`: capi-relay's readiness and event counts, for the operator's page.
pub async fn relay_health(State(state): State<AppState>) -> axum::Json<crate::relay_health::RelayHealth> {
    axum::Json(state.relay_health.read().await)
}

#[cfg(test)]
mod tests {
    use adloop_test_support::openapi_schema_enum;

    use super::OPENAPI_DOCUMENT;

    #[test]
    fn the_documented_currencies_are_the_ones_the_gateway_accepts() {
        let accepted: Vec<String> = adloop_money::Currency::supported_codes().map(str::to_owned).collect();
        assert_eq!(openapi_schema_enum(OPENAPI_DOCUMENT, "Currency"), accepted);
    }
}
