//! The relay's HTTP routes.

mod adloop_events;
mod capi_test;
mod drop_in;
mod event_status;
mod ingest_common;
mod ingest_pipeline;

use std::sync::Arc;

use adloop_service_kit::health::{DependencyCheck, ReadinessReport, answers_in_time, liveness};
use adloop_service_kit::postgres::database_answers;
use adloop_telemetry::metrics::{Registry, render_prometheus_text};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::routing::{get, post};
use sqlx::PgPool;

use crate::delivery::DeliverySettings;
use crate::metrics::IngestMetrics;
use crate::settings::IngestSettings;
use crate::sources::SourceCache;
use crate::store::group_commit::GroupCommitter;

#[derive(Clone)]
pub struct AppState {
    pub database_pool: PgPool,
    pub metrics_registry: Arc<Registry>,
    pub ingest: Arc<IngestSettings>,
    pub ingest_metrics: IngestMetrics,
    /// Where accepted events are committed (shared transactions for concurrent requests).
    pub committer: GroupCommitter,
    pub sources: SourceCache,
    /// KiB of request bodies the ingest routes may hold at once.
    pub bodies_in_flight: Arc<tokio::sync::Semaphore>,
    /// Where and how the relay sends to Meta (the test endpoint sends with it too).
    pub delivery: Arc<DeliverySettings>,
    pub http: reqwest::Client,
    /// The time events are judged by: the system's, or meta-sim's simulated clock in development.
    pub clock: adloop_service_kit::clock::Clock,
}

/// The largest request body: 1,000 events of a few kilobytes each.
pub(crate) const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

pub fn api_router(state: AppState) -> Router {
    Router::new()
        .route("/{version}/{pixel_id}/events", post(drop_in::post_events))
        .route("/v1/events", post(adloop_events::post_adloop_events))
        .route("/v1/events/{event_id}", get(event_status::get_event))
        .route("/api/meta/capi/test", post(capi_test::post_capi_test))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route("/healthz", get(liveness))
        .route("/readyz", get(readiness))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(adloop_service_kit::error::no_such_route)
        .method_not_allowed_fallback(adloop_service_kit::error::method_not_allowed)
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

/// The relay's OpenAPI document, kept beside the routes (`src/openapi.json`).
pub const OPENAPI_DOCUMENT: &str = include_str!("../openapi.json");

async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI_DOCUMENT,
    )
}

async fn metrics(State(state): State<AppState>) -> String {
    render_prometheus_text(&state.metrics_registry)
}

#[cfg(test)]
mod tests {
    use adloop_test_support::openapi_schema_enum;

    use super::OPENAPI_DOCUMENT;

    #[test]
    fn the_documented_country_codes_are_the_ones_the_relay_accepts() {
        let mut accepted: Vec<String> = adloop_capi_events::user_data::rules::country_codes()
            .map(str::to_owned)
            .collect();
        accepted.sort();
        assert_eq!(openapi_schema_enum(OPENAPI_DOCUMENT, "CountryCode"), accepted);
    }

    #[test]
    fn the_documented_identifying_keys_are_the_ones_the_relay_requires() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI_DOCUMENT).unwrap();
        let required_sets = |schema: &str| -> Vec<Vec<String>> {
            let alternatives = document["components"]["schemas"][schema]["anyOf"].as_array().unwrap();
            alternatives
                .iter()
                .map(|alternative| serde_json::from_value(alternative["required"].clone()).unwrap())
                .collect()
        };
        // adloop's own shape names some keys its own way (email for em, …).
        let adloop_name = |key: &str| {
            adloop_capi_events::friendly::CUSTOMER_FIELDS
                .iter()
                .find(|(_, meta_key)| *meta_key == key)
                .map_or(key, |(adloop_key, _)| *adloop_key)
                .to_owned()
        };
        let expected = |name: &dyn Fn(&str) -> String| {
            let mut sets: Vec<Vec<String>> = adloop_capi_events::user_data::keys::IDENTIFYING_KEYS
                .iter()
                .map(|key| vec![name(key)])
                .collect();
            sets.push(vec!["client_ip_address".to_owned(), "client_user_agent".to_owned()]);
            sets
        };
        assert_eq!(required_sets("UserData"), expected(&|key: &str| key.to_owned()));
        assert_eq!(required_sets("Customer"), expected(&adloop_name));
    }

    #[test]
    fn the_plans_check_takes_a_meta_event_whose_action_source_may_be_left_out() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI_DOCUMENT).unwrap();
        let schemas = &document["components"]["schemas"];
        let mut meta_event = schemas["MetaEvent"].clone();
        let mut plan_check = schemas["PlanCheckEvent"].clone();
        for schema in [&mut meta_event, &mut plan_check] {
            schema.as_object_mut().unwrap().remove("description");
        }
        meta_event["required"]
            .as_array_mut()
            .unwrap()
            .retain(|field| field != "action_source");
        assert_eq!(plan_check, meta_event);
    }

    #[test]
    fn every_event_field_documented_as_nullable_is_read_as_absent_and_dropped() {
        use adloop_capi_events::event::{TimeRules, validate_event};
        use serde_json::{Value, json};

        let document: Value = serde_json::from_str(OPENAPI_DOCUMENT).unwrap();
        let is_nullable = |schema: &Value| {
            schema["type"]
                .as_array()
                .is_some_and(|types| types.contains(&json!("null")))
                || schema["anyOf"]
                    .as_array()
                    .is_some_and(|alternatives| alternatives.contains(&json!({ "type": "null" })))
        };
        let now = 1_780_000_000;
        let event = json!({
            "event_name": "Purchase",
            "event_time": now - 60,
            "action_source": "app",
            "user_data": { "em": "person@example.com", "external_id": "customer-7" },
            "custom_data": { "value": 12.5, "currency": "USD" },
        });
        let normalise = adloop_capi_events::user_data::rules::NormaliseSettings::default();
        let mut checked = Vec::new();
        for (schema, container) in [("MetaEvent", None), ("UserData", Some("user_data"))] {
            let properties = document["components"]["schemas"][schema]["properties"]
                .as_object()
                .unwrap();
            for field in properties
                .iter()
                .filter(|(_, field_schema)| is_nullable(field_schema))
                .map(|(field, _)| field)
            {
                let mut with_null = event.clone();
                match container {
                    None => with_null[field] = Value::Null,
                    Some(container) => with_null[container][field] = Value::Null,
                }
                let validated = validate_event(0, &with_null, now, &TimeRules::default(), &normalise)
                    .unwrap_or_else(|error| panic!("{schema}.{field} null refused: {error}"));
                let body = Value::Object(validated.body);
                let kept = match container {
                    None => body.get(field.as_str()),
                    Some(container) => body[container].get(field.as_str()),
                };
                assert!(kept.is_none(), "{schema}.{field}: a null is kept as {kept:?}");
                checked.push(format!("{schema}.{field}"));
            }
        }
        assert!(
            checked.len() > 30,
            "the document marks the optional fields nullable: {checked:?}"
        );
    }

    #[test]
    fn the_documented_currencies_are_the_ones_the_relay_accepts() {
        let accepted: Vec<String> = adloop_money::Currency::supported_codes().map(str::to_owned).collect();
        assert_eq!(openapi_schema_enum(OPENAPI_DOCUMENT, "Currency"), accepted);
    }
}
