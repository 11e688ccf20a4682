//! `POST /v1/allocations`: split a daily budget across ads with ml-service's allocator.
//!
//! Money is integer minor units in the request's `currency`. The answer explains every recommendation.

use std::collections::BTreeMap;

use adloop_proto::ml::v1 as proto;
use adloop_service_kit::error::ServiceError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::json_body::parse_json_body;
use crate::ml_client::ml_service_call_failed;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationBody {
    pub currency: String,
    pub total_daily_budget: i64,
    #[serde(default)]
    pub constraints: Option<ConstraintsBody>,
    /// 0 (the default) lets ml-service pick its stable default seed.
    #[serde(default)]
    pub seed: u64,
    pub ads: Vec<AdBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintsBody {
    #[serde(default)]
    pub per_ad_floor: i64,
    /// 0 means no cap.
    #[serde(default)]
    pub per_ad_cap: i64,
    /// 0 means the default, 0.5 (±50% per step).
    #[serde(default)]
    pub max_change_fraction: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdBody {
    #[serde(default)]
    pub account_id: String,
    #[serde(default)]
    pub campaign_id: String,
    #[serde(default)]
    pub ad_set_id: String,
    pub ad_id: String,
    pub impressions: i64,
    pub clicks: i64,
    #[serde(default)]
    pub conversions: i64,
    pub spend: i64,
    #[serde(default)]
    pub conversion_value: i64,
    pub age_hours: f64,
    pub current_daily_budget: i64,
    #[serde(default)]
    pub status: AdStatusBody,
    #[serde(default)]
    pub creative_features: BTreeMap<String, f64>,
    #[serde(default)]
    pub creative_dna_score: Option<f64>,
    #[serde(default)]
    pub priors: Vec<PriorBody>,
    #[serde(default)]
    pub recent: Option<RecentBody>,
    #[serde(default)]
    pub frequency: Option<f64>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdStatusBody {
    #[default]
    Active,
    Paused,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorBody {
    pub source: String,
    pub expected_ctr: f64,
    pub expected_roas: f64,
    pub strength_impressions: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecentBody {
    pub hours: f64,
    pub impressions: i64,
    pub clicks: i64,
    pub spend: i64,
    #[serde(default)]
    pub conversions: i64,
    #[serde(default)]
    pub conversion_value: i64,
}

fn money(minor_units: i64, currency: &str) -> Option<proto::Money> {
    Some(proto::Money {
        minor_units,
        currency: currency.to_owned(),
    })
}

pub fn allocate_request(body: &AllocationBody) -> proto::AllocateRequest {
    let currency = body.currency.as_str();
    proto::AllocateRequest {
        ads: body
            .ads
            .iter()
            .map(|ad| proto::AdState {
                ids: Some(proto::AdIds {
                    account_id: ad.account_id.clone(),
                    campaign_id: ad.campaign_id.clone(),
                    ad_set_id: ad.ad_set_id.clone(),
                    ad_id: ad.ad_id.clone(),
                }),
                impressions: ad.impressions,
                clicks: ad.clicks,
                conversions: ad.conversions,
                spend: money(ad.spend, currency),
                conversion_value: money(ad.conversion_value, currency),
                age_hours: ad.age_hours,
                current_daily_budget: money(ad.current_daily_budget, currency),
                status: match ad.status {
                    AdStatusBody::Active => proto::AdStatus::Active,
                    AdStatusBody::Paused => proto::AdStatus::Paused,
                } as i32,
                creative_features: ad
                    .creative_features
                    .iter()
                    .map(|(name, value)| (name.clone(), *value))
                    .collect(),
                creative_dna_score: ad.creative_dna_score,
                priors: ad
                    .priors
                    .iter()
                    .map(|prior| proto::AdPrior {
                        source: prior.source.clone(),
                        expected_ctr: prior.expected_ctr,
                        expected_roas: prior.expected_roas,
                        strength_impressions: prior.strength_impressions,
                    })
                    .collect(),
                recent: ad.recent.as_ref().map(|recent| proto::RecentWindow {
                    hours: recent.hours,
                    impressions: recent.impressions,
                    clicks: recent.clicks,
                    spend: money(recent.spend, currency),
                    conversions: recent.conversions,
                    conversion_value: money(recent.conversion_value, currency),
                }),
                frequency: ad.frequency,
            })
            .collect(),
        total_daily_budget: money(body.total_daily_budget, currency),
        constraints: body
            .constraints
            .as_ref()
            .map(|constraints| proto::AllocationConstraints {
                per_ad_floor: money(constraints.per_ad_floor, currency),
                per_ad_cap: money(constraints.per_ad_cap, currency),
                max_change_fraction: constraints.max_change_fraction,
            }),
        seed: body.seed,
    }
}

#[derive(Debug, Serialize)]
pub struct IntervalBody {
    pub mean: f64,
    pub lower_95: f64,
    pub upper_95: f64,
}

#[derive(Debug, Serialize)]
pub struct RecommendationBody {
    pub account_id: String,
    pub campaign_id: String,
    pub ad_set_id: String,
    pub ad_id: String,
    pub current_daily_budget: i64,
    pub recommended_daily_budget: i64,
    pub change_fraction: Option<f64>,
    pub probability_best: f64,
    pub ctr: Option<IntervalBody>,
    pub roas: Option<IntervalBody>,
    pub ctr_blend_weight: f64,
    pub fatigue_factor: f64,
    pub prior_source: String,
    pub decision: &'static str,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct AllocationAnswer {
    pub currency: String,
    pub total_daily_budget: i64,
    pub model_version: String,
    pub seed: u64,
    pub change_limit_relaxed: bool,
    pub recommendations: Vec<RecommendationBody>,
}

fn interval(interval: Option<proto::Interval>) -> Option<IntervalBody> {
    interval.map(|interval| IntervalBody {
        mean: interval.mean,
        lower_95: interval.lower_95,
        upper_95: interval.upper_95,
    })
}

pub fn allocation_answer(response: proto::AllocateResponse, currency: &str) -> AllocationAnswer {
    AllocationAnswer {
        currency: currency.to_owned(),
        total_daily_budget: response.total_daily_budget.map(|money| money.minor_units).unwrap_or(0),
        model_version: response.model_version,
        seed: response.seed,
        change_limit_relaxed: response.change_limit_relaxed,
        recommendations: response
            .recommendations
            .into_iter()
            .map(|recommendation| {
                let ids = recommendation.ids.unwrap_or_default();
                RecommendationBody {
                    account_id: ids.account_id,
                    campaign_id: ids.campaign_id,
                    ad_set_id: ids.ad_set_id,
                    ad_id: ids.ad_id,
                    current_daily_budget: recommendation
                        .current_daily_budget
                        .map(|money| money.minor_units)
                        .unwrap_or(0),
                    recommended_daily_budget: recommendation
                        .recommended_daily_budget
                        .map(|money| money.minor_units)
                        .unwrap_or(0),
                    change_fraction: recommendation.change_fraction,
                    probability_best: recommendation.probability_best,
                    ctr: interval(recommendation.ctr),
                    roas: interval(recommendation.roas),
                    ctr_blend_weight: recommendation.ctr_blend_weight,
                    fatigue_factor: recommendation.fatigue_factor,
                    prior_source: recommendation.prior_source,
                    decision: match proto::Decision::try_from(recommendation.decision) {
                        Ok(proto::Decision::Kill) => "kill",
                        Ok(proto::Decision::Scale) => "scale",
                        _ => "maintain",
                    },
                    reason: recommendation.reason,
                }
            })
            .collect(),
    }
}

pub async fn post_allocation(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<AllocationAnswer>, ServiceError> {
    let body: AllocationBody = parse_json_body(&body)?;
    let response = state
        .ml_service
        .client()
        .allocate(allocate_request(&body))
        .await
        .map_err(ml_service_call_failed)?
        .into_inner();
    Ok(Json(allocation_answer(response, &body.currency)))
}
