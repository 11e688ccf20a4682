//! The cross-learner through the gateway (ml-service's `FindSimilarPatterns` and pattern sharing):
//!
//! - `POST /v1/patterns/similar`: creative patterns other sharing accounts ran that resemble the given
//!   features (or the caller's embedding of the creative), as lifts over their accounts' averages, and the
//!   prior the allocator would take from them.
//! - `GET` / `PUT /v1/accounts/{account_id}/pattern-sharing`: whether the ad account shares (and so
//!   receives) pattern performance. Off until turned on.

use std::collections::BTreeMap;

use adloop_proto::ml::v1 as proto;
use adloop_service_kit::error::ServiceError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::learning::creative_features;
use super::request_input::null_as_default;
use super::request_input::parse_json_body;
use crate::ml_client::ml_service_call_failed;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarPatternsBody {
    /// The asking ad account: its own patterns are left out, and it must share to receive.
    pub account_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub features: BTreeMap<String, Value>,
    /// Instead of `features`: the caller's own embedding of the creative.
    #[serde(default, deserialize_with = "null_as_default")]
    pub embedding: Vec<f32>,
    /// 1 to 100; 5 when absent.
    #[serde(default)]
    pub top_k: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct PatternAnswer {
    pub pattern_id: String,
    pub similarity: f64,
    pub accounts: u32,
    pub impressions: f64,
    pub clicks: f64,
    pub conversions: f64,
    pub ctr_lift: f64,
    pub conversion_lift: f64,
}

#[derive(Debug, Serialize)]
pub struct PriorAnswer {
    pub ctr_lift: f64,
    pub conversion_lift: f64,
    pub ctr_strength_impressions: f64,
    pub conversion_strength_conversions: f64,
}

#[derive(Debug, Serialize)]
pub struct SimilarPatternsAnswer {
    pub patterns: Vec<PatternAnswer>,
    pub prior: Option<PriorAnswer>,
}

pub async fn post_similar_patterns(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<SimilarPatternsAnswer>, ServiceError> {
    let body: SimilarPatternsBody = parse_json_body(&body)?;
    let response = state
        .ml_service
        .client()
        .find_similar_patterns(proto::FindSimilarPatternsRequest {
            creative_features: creative_features(&body.features)?,
            top_k: body.top_k.unwrap_or(0),
            account_id: body.account_id.clone(),
            embedding: body.embedding.clone(),
        })
        .await
        .map_err(|status| in_body_terms(ml_service_call_failed(status)))?
        .into_inner();
    Ok(Json(SimilarPatternsAnswer {
        patterns: response
            .patterns
            .into_iter()
            .map(|pattern| PatternAnswer {
                pattern_id: pattern.pattern_id,
                similarity: pattern.similarity,
                accounts: pattern.accounts,
                impressions: pattern.impressions,
                clicks: pattern.clicks,
                conversions: pattern.conversions,
                ctr_lift: pattern.ctr_lift,
                conversion_lift: pattern.conversion_lift,
            })
            .collect(),
        prior: response.prior.map(|prior| PriorAnswer {
            ctr_lift: prior.expected_ctr,
            conversion_lift: prior.expected_conversions_per_click,
            ctr_strength_impressions: prior.ctr_strength_impressions,
            conversion_strength_conversions: prior.conversion_strength_conversions,
        }),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternSharingBody {
    pub shares: bool,
}

#[derive(Debug, Serialize)]
pub struct PatternSharingAnswer {
    pub account_id: String,
    pub shares: bool,
}

pub async fn get_pattern_sharing(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
) -> Result<Json<PatternSharingAnswer>, ServiceError> {
    let sharing = state
        .ml_service
        .client()
        .get_pattern_sharing(proto::GetPatternSharingRequest { account_id })
        .await
        .map_err(ml_service_call_failed)?
        .into_inner();
    Ok(Json(PatternSharingAnswer {
        account_id: sharing.account_id,
        shares: sharing.shares,
    }))
}

pub async fn put_pattern_sharing(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    body: Bytes,
) -> Result<Json<PatternSharingAnswer>, ServiceError> {
    let body: PatternSharingBody = parse_json_body(&body)?;
    let sharing = state
        .ml_service
        .client()
        .set_pattern_sharing(proto::SetPatternSharingRequest {
            account_id,
            shares: body.shares,
        })
        .await
        .map_err(ml_service_call_failed)?
        .into_inner();
    Ok(Json(PatternSharingAnswer {
        account_id: sharing.account_id,
        shares: sharing.shares,
    }))
}

/// ml-service names `creative_features.x`; the caller sent `features.x`.
fn in_body_terms(mut error: ServiceError) -> ServiceError {
    error.message = error.message.replace("creative_features", "features");
    error.field = error.field.map(|field| field.replace("creative_features", "features"));
    error
}
