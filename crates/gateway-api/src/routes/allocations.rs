//! `POST /v1/allocations`: split a daily budget across ads with ml-service's allocator.
//!
//! Money is integer minor units in the request's `currency`. The answer explains every recommendation.

use std::collections::BTreeMap;

use adloop_allocator::{
    AdIds, AdInput, AdStatus, AllocationConstraints, AllocationRequest, DelayComponent, DeliveryCurve, Prior,
    RecentWindow, ReportingDelay,
};
use adloop_money::{Currency, MinorUnits};
use adloop_proto::ml::v1 as proto;
use adloop_service_kit::error::ServiceError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::request_input::{
    null_as_default, objects, objects_by_key, objects_or_null_as_empty, optional_object, parse_json_body,
};
use crate::ml_client::ml_service_call_failed;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationBody {
    pub currency: String,
    pub total_daily_budget: i64,
    #[serde(default, deserialize_with = "optional_object")]
    pub constraints: Option<ConstraintsBody>,
    /// 0 (the default) lets ml-service pick its stable default seed.
    #[serde(default, deserialize_with = "null_as_default")]
    pub seed: u64,
    /// Accounts whose conversions report on their own schedule, by account id (the allocator's own type:
    /// `components` of `share`, `min_hours`, `max_hours`, unknown fields refused).
    #[serde(default, deserialize_with = "objects_by_key")]
    pub reporting_delays: BTreeMap<String, ReportingDelayBody>,
    #[serde(deserialize_with = "objects")]
    pub ads: Vec<AdBody>,
}

/// The allocator's `ReportingDelay`, its components read from objects only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingDelayBody {
    #[serde(deserialize_with = "objects")]
    pub components: Vec<DelayComponent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintsBody {
    #[serde(default, deserialize_with = "null_as_default")]
    pub per_ad_floor: i64,
    /// 0 means no cap.
    #[serde(default, deserialize_with = "null_as_default")]
    pub per_ad_cap: i64,
    /// 0 means the default, 0.5 (±50% per step).
    #[serde(default, deserialize_with = "null_as_default")]
    pub max_change_fraction: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdBody {
    #[serde(default, deserialize_with = "null_as_default")]
    pub account_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub campaign_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ad_set_id: String,
    pub ad_id: String,
    pub impressions: i64,
    pub clicks: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub conversions: i64,
    pub spend: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub conversion_value: i64,
    pub age_hours: f64,
    pub current_daily_budget: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: AdStatusBody,
    #[serde(default, deserialize_with = "null_as_default")]
    pub creative_features: BTreeMap<String, f64>,
    #[serde(default)]
    pub creative_dna_score: Option<f64>,
    #[serde(default, deserialize_with = "objects_or_null_as_empty")]
    pub priors: Vec<PriorBody>,
    #[serde(default, deserialize_with = "optional_object")]
    pub recent: Option<RecentBody>,
    /// A shorter window inside `recent`.
    #[serde(default, deserialize_with = "optional_object")]
    pub latest: Option<RecentBody>,
    #[serde(default)]
    pub frequency: Option<f64>,
    /// How the ad's CPM rises with its daily volume (the allocator's `DeliveryCurve`).
    #[serde(default, deserialize_with = "optional_object")]
    pub delivery_curve: Option<DeliveryCurveBody>,
    /// The ad's CTR over the coming day against its week's, from its own weekday rhythm (0.1 to 10).
    #[serde(default)]
    pub weekday_ctr_multiplier: Option<f64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryCurveBody {
    pub base_cpm: f64,
    pub cpm_doubling_daily_impressions: f64,
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
    pub ctr_strength_impressions: f64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub expected_conversions_per_click: f64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub conversion_strength_conversions: f64,
    /// The rates are lifts over the ad's account average (1.2 = 20% above).
    #[serde(default, deserialize_with = "null_as_default")]
    pub rates_are_lifts: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecentBody {
    pub hours: f64,
    pub impressions: i64,
    pub clicks: i64,
    pub spend: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub conversions: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub conversion_value: i64,
}

/// The body as the allocator's request, sent on through the contract's one conversion
/// (`adloop_proto::allocation`). Counts and money must not be negative; the allocator's own rules (clicks
/// within impressions, one currency, ...) are checked by ml-service, which names the field the same way.
pub fn allocation_request(body: &AllocationBody) -> Result<AllocationRequest, ServiceError> {
    let currency = Currency::parse(&body.currency).map_err(|error| ServiceError::invalid_field("currency", error))?;
    let constraints = body.constraints.as_ref();
    Ok(AllocationRequest {
        ads: body
            .ads
            .iter()
            .enumerate()
            .map(|(index, ad)| ad_input(index, ad))
            .collect::<Result<_, _>>()?,
        total_daily_budget: amount("total_daily_budget".into(), body.total_daily_budget)?,
        currency,
        constraints: AllocationConstraints {
            per_ad_floor: amount(
                "constraints.per_ad_floor".into(),
                constraints.map_or(0, |constraints| constraints.per_ad_floor),
            )?,
            per_ad_cap: amount(
                "constraints.per_ad_cap".into(),
                constraints.map_or(0, |constraints| constraints.per_ad_cap),
            )?,
            max_change_fraction: constraints.map_or(0.0, |constraints| constraints.max_change_fraction),
        },
        seed: body.seed,
        reporting_delays: body
            .reporting_delays
            .iter()
            .map(|(account_id, delay)| {
                let components = delay.components.clone();
                (account_id.clone(), ReportingDelay { components })
            })
            .collect(),
    })
}

fn count(field: String, value: i64) -> Result<u64, ServiceError> {
    u64::try_from(value).map_err(|_| ServiceError::invalid_field(field, "must not be negative"))
}

fn amount(field: String, minor_units: i64) -> Result<MinorUnits, ServiceError> {
    if minor_units < 0 {
        return Err(ServiceError::invalid_field(field, "must not be negative"));
    }
    Ok(MinorUnits(minor_units))
}

fn ad_input(index: usize, ad: &AdBody) -> Result<AdInput, ServiceError> {
    let field = |name: &str| format!("ads[{index}].{name}");
    let window_input = |name: &str, window: &RecentBody| -> Result<RecentWindow, ServiceError> {
        let window_field = |part: &str| field(&format!("{name}.{part}"));
        Ok(RecentWindow {
            hours: window.hours,
            impressions: count(window_field("impressions"), window.impressions)?,
            clicks: count(window_field("clicks"), window.clicks)?,
            spend: amount(window_field("spend"), window.spend)?,
            conversions: count(window_field("conversions"), window.conversions)?,
            conversion_value: amount(window_field("conversion_value"), window.conversion_value)?,
        })
    };
    let recent = ad
        .recent
        .as_ref()
        .map(|window| window_input("recent", window))
        .transpose()?;
    let latest = ad
        .latest
        .as_ref()
        .map(|window| window_input("latest", window))
        .transpose()?;
    Ok(AdInput {
        ids: AdIds {
            account_id: ad.account_id.clone(),
            campaign_id: ad.campaign_id.clone(),
            ad_set_id: ad.ad_set_id.clone(),
            ad_id: ad.ad_id.clone(),
        },
        impressions: count(field("impressions"), ad.impressions)?,
        clicks: count(field("clicks"), ad.clicks)?,
        conversions: count(field("conversions"), ad.conversions)?,
        spend: amount(field("spend"), ad.spend)?,
        conversion_value: amount(field("conversion_value"), ad.conversion_value)?,
        age_hours: ad.age_hours,
        current_daily_budget: amount(field("current_daily_budget"), ad.current_daily_budget)?,
        status: match ad.status {
            AdStatusBody::Active => AdStatus::Active,
            AdStatusBody::Paused => AdStatus::Paused,
        },
        creative_features: ad.creative_features.clone(),
        creative_dna_score: ad.creative_dna_score,
        priors: ad
            .priors
            .iter()
            .map(|prior| Prior {
                source: prior.source.clone(),
                expected_ctr: prior.expected_ctr,
                ctr_strength_impressions: prior.ctr_strength_impressions,
                expected_conversions_per_click: prior.expected_conversions_per_click,
                conversion_strength_conversions: prior.conversion_strength_conversions,
                rates_are_lifts: prior.rates_are_lifts,
            })
            .collect(),
        recent,
        latest,
        frequency: ad.frequency,
        delivery_curve: ad.delivery_curve.map(|curve| DeliveryCurve {
            base_cpm: curve.base_cpm,
            cpm_doubling_daily_impressions: curve.cpm_doubling_daily_impressions,
        }),
        weekday_ctr_multiplier: ad.weekday_ctr_multiplier,
    })
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
    let request = allocation_request(&body)?;
    let response = state
        .ml_service
        .client()
        .allocate(proto::AllocateRequest::from(&request))
        .await
        .map_err(ml_service_call_failed)?
        .into_inner();
    Ok(Json(allocation_answer(response, &body.currency)))
}
