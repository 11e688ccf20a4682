//! The instant learner through the gateway (ml-service's `RecordEvent` / `GetWeights`):
//!
//! - `POST /api/internal/learning/event`: one learning event, in the recovery plan's shape (`ad_id`,
//!   `event_type`, `ctr`, `predicted_ctr`, boolean `features`) or the general one (counts, value). Answers
//!   with the predictions before and after, once the event is committed and applied.
//! - `GET /api/weights`: the click-through head's weights as a flat object, `has_` dropped from names.
//! - `GET /v1/learner`: both heads, bias, version, events applied, drift state.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use adloop_proto::ml::v1 as proto;
use adloop_service_kit::error::{ErrorCode, ServiceError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::request_input::null_as_default;
use super::request_input::parse_json_body;
use crate::ml_client::ml_service_call_failed;

/// Feature weights `GET /api/weights` always reports (0 until learned): the recovery plan's creative flags.
const STANDARD_FEATURES: [&str; 3] = ["has_pain_point", "has_number", "has_question"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearningEventBody {
    /// Makes a retry safe (the same id is applied once); one is generated when absent.
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ad_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub account_id: String,
    /// impression, click, conversion, or delivery (counts only; the default).
    #[serde(default)]
    pub event_type: Option<String>,
    /// Booleans, numbers, or strings (a category: `"hook_type": "question"`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub features: BTreeMap<String, Value>,
    /// An observed click-through rate; alone it counts as one impression with that rate.
    #[serde(default)]
    pub ctr: Option<f64>,
    /// The caller's own prediction, echoed back beside the learner's.
    #[serde(default)]
    pub predicted_ctr: Option<f64>,
    #[serde(default)]
    pub impressions: Option<f64>,
    #[serde(default)]
    pub clicks: Option<f64>,
    #[serde(default)]
    pub matured_clicks: Option<f64>,
    #[serde(default)]
    pub conversions: Option<f64>,
    /// Conversion value in minor units of `currency`.
    #[serde(default)]
    pub value: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub event_time: Option<i64>,
    /// When the ad was created (Unix seconds): an ad older than a week at the event's time teaches its
    /// conversions but not its impressions and clicks (ml-service's `learning.ctr_learning_max_ad_age_hours`).
    #[serde(default)]
    pub ad_created_time: Option<i64>,
    /// The caller's own embedding of the creative (ml-service's `cross_learner.embedding_dimensions` values),
    /// pooled by the cross-learner so `POST /v1/patterns/similar` can search by it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub embedding: Vec<f32>,
}

#[derive(Debug, Serialize)]
pub struct Predictions {
    pub ctr: f64,
    pub conversion_rate: f64,
}

#[derive(Debug, Serialize)]
pub struct LearningEventAnswer {
    pub status: &'static str,
    pub event_id: String,
    pub duplicate: bool,
    pub model_version: String,
    pub events_applied: i64,
    pub prediction_before: Predictions,
    pub prediction_after: Predictions,
    pub drift_detected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_ctr: Option<f64>,
}

pub async fn post_learning_event(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<LearningEventAnswer>, ServiceError> {
    let body: LearningEventBody = parse_json_body(&body)?;
    let event = learning_event(&body)?;
    let event_id = event.event_id.clone();
    let response = state
        .ml_service
        .client()
        .record_event(proto::RecordEventRequest { events: vec![event] })
        .await
        .map_err(|status| in_body_terms(ml_service_call_failed(status)))?
        .into_inner();
    let outcome = response.outcomes.into_iter().next().unwrap_or_default();
    Ok(Json(LearningEventAnswer {
        status: if outcome.duplicate { "duplicate" } else { "learned" },
        event_id,
        duplicate: outcome.duplicate,
        model_version: response.model_version,
        events_applied: response.events_applied,
        prediction_before: Predictions {
            ctr: outcome.ctr_before,
            conversion_rate: outcome.conversion_rate_before,
        },
        prediction_after: Predictions {
            ctr: outcome.ctr_after,
            conversion_rate: outcome.conversion_rate_after,
        },
        drift_detected: outcome.drift_detected,
        predicted_ctr: body.predicted_ctr,
    }))
}

pub async fn get_weights(State(state): State<AppState>) -> Result<Json<BTreeMap<String, f64>>, ServiceError> {
    let response = fetch_weights(&state).await?;
    let mut flat: BTreeMap<String, f64> = STANDARD_FEATURES
        .iter()
        .map(|name| (adloop_learner::display_name(name).to_owned(), 0.0))
        .collect();
    // Names with `has_` last, so `has_number` wins over a plain `number` that shares its display name.
    let mut learned: Vec<(String, f64)> = response.weights.into_iter().collect();
    learned.sort_by_key(|(name, _)| (name.starts_with("has_"), name.clone()));
    for (name, weight) in learned {
        flat.insert(adloop_learner::display_name(&name).to_owned(), weight);
    }
    Ok(Json(flat))
}

#[derive(Debug, Serialize)]
pub struct HeadAnswer {
    pub bias: f64,
    pub weights: BTreeMap<String, f64>,
    pub drifts_detected: i64,
    pub drift_statistic: f64,
    pub drift_threshold: f64,
}

#[derive(Debug, Serialize)]
pub struct LearnerAnswer {
    pub model_version: String,
    pub events_applied: i64,
    pub ctr: HeadAnswer,
    pub conversions_per_click: HeadAnswer,
}

pub async fn get_learner(State(state): State<AppState>) -> Result<Json<LearnerAnswer>, ServiceError> {
    let response = fetch_weights(&state).await?;
    Ok(Json(LearnerAnswer {
        model_version: response.model_version,
        events_applied: response.events_applied,
        ctr: head_answer(response.ctr.unwrap_or_default()),
        conversions_per_click: head_answer(response.conversion.unwrap_or_default()),
    }))
}

async fn fetch_weights(state: &AppState) -> Result<proto::GetWeightsResponse, ServiceError> {
    Ok(state
        .ml_service
        .client()
        .get_weights(proto::GetWeightsRequest {})
        .await
        .map_err(ml_service_call_failed)?
        .into_inner())
}

fn head_answer(head: proto::LearnerHead) -> HeadAnswer {
    HeadAnswer {
        bias: head.bias,
        weights: head.weights.into_iter().collect(),
        drifts_detected: head.drifts_detected,
        drift_statistic: head.drift_statistic,
        drift_threshold: head.drift_threshold,
    }
}

/// The body as ml-service's learning event; shape errors name the body's own fields.
fn learning_event(body: &LearningEventBody) -> Result<proto::LearningEvent, ServiceError> {
    let kind = match body.event_type.as_deref().map(str::trim) {
        None | Some("") | Some("delivery") => proto::EventKind::Unspecified,
        Some("impression") => proto::EventKind::Impression,
        Some("click") => proto::EventKind::Click,
        Some("conversion") => proto::EventKind::Conversion,
        Some(other) => {
            return Err(ServiceError::invalid_field(
                "event_type",
                format!("`{other}` is not one of impression, click, conversion, delivery"),
            ));
        }
    };
    let mut impressions = body.impressions.unwrap_or(0.0);
    let mut clicks = body.clicks.unwrap_or(0.0);
    if let Some(ctr) = body.ctr {
        if !(0.0..=1.0).contains(&ctr) {
            return Err(ServiceError::invalid_field("ctr", "must be between 0 and 1"));
        }
        if body.clicks.is_some() {
            return Err(ServiceError::invalid_field("ctr", "give `ctr` or `clicks`, not both"));
        }
        if body.impressions.is_none() {
            impressions = 1.0;
        }
        clicks = ctr * impressions;
    }
    let mut conversions = body.conversions.unwrap_or(0.0);
    if kind == proto::EventKind::Conversion && body.conversions.is_none() {
        conversions = 1.0;
    }
    let value = match (body.value, &body.currency) {
        (None, None) => None,
        (Some(minor_units), Some(currency)) => Some(proto::Money {
            minor_units,
            currency: currency.trim().to_ascii_uppercase(),
        }),
        (Some(_), None) => return Err(ServiceError::invalid_field("currency", "is required with `value`")),
        (None, Some(_)) => return Err(ServiceError::invalid_field("value", "is required with `currency`")),
    };
    Ok(proto::LearningEvent {
        event_id: body.event_id.clone().unwrap_or_else(generated_event_id),
        ids: Some(proto::AdIds {
            account_id: body.account_id.clone(),
            ad_id: body.ad_id.clone(),
            ..proto::AdIds::default()
        }),
        kind: kind as i32,
        event_time_unix_seconds: body.event_time.unwrap_or(0),
        ad_created_unix_seconds: body.ad_created_time.unwrap_or(0),
        creative_features: creative_features(&body.features)?,
        value,
        impressions,
        clicks,
        matured_clicks: body.matured_clicks.unwrap_or(0.0),
        conversions,
        creative_embedding: body.embedding.clone(),
    })
}

pub(super) fn creative_features(features: &BTreeMap<String, Value>) -> Result<HashMap<String, f64>, ServiceError> {
    let mut encoded = HashMap::with_capacity(features.len());
    for (name, value) in features {
        match value {
            Value::Bool(flag) => {
                encoded.insert(name.clone(), if *flag { 1.0 } else { 0.0 });
            }
            Value::Number(number) => {
                let number = number.as_f64().ok_or_else(|| {
                    ServiceError::invalid_field(format!("features.{name}"), "must be a finite number")
                })?;
                encoded.insert(name.clone(), number);
            }
            Value::String(category) => {
                // `"": ""` would become the feature `=`: a category needs its name and its value.
                if name.trim().is_empty() || category.trim().is_empty() {
                    return Err(ServiceError::invalid_field(
                        format!("features.{name}"),
                        "a category needs a name and a non-empty value (e.g. \"hook_type\": \"question\")",
                    ));
                }
                encoded.insert(adloop_learner::categorical_feature_name(name, category), 1.0);
            }
            _ => {
                return Err(ServiceError::invalid_field(
                    format!("features.{name}"),
                    "must be a boolean, a number or a string (a category)",
                ));
            }
        }
    }
    Ok(encoded)
}

/// An id for an event sent without one: unique, so it is applied once (a retry without an id is not
/// recognised as a retry; send `event_id` for that).
fn generated_event_id() -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    let random: u64 = rand::random();
    format!(
        "gateway:{nanos}:{random:016x}:{}",
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// ml-service names `events[0].creative_features.x`; the caller sent `features.x`.
fn in_body_terms(mut error: ServiceError) -> ServiceError {
    if error.code != ErrorCode::InvalidArgument {
        return error;
    }
    error.message = body_field_names(&error.message);
    error.field = error.field.as_deref().map(body_field_names);
    error
}

fn body_field_names(text: &str) -> String {
    text.replace("events[0].creative_features", "features")
        .replace("events[0].creative_embedding", "embedding")
        .replace("events[0].event_time_unix_seconds", "event_time")
        .replace("events[0].ad_created_unix_seconds", "ad_created_time")
        .replace("events[0].value.minor_units", "value")
        .replace("events[0].ids.", "")
        .replace("events[0].value.", "")
        .replace("events[0].", "")
}
