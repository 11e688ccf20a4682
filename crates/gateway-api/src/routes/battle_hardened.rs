//! `POST /api/v1/ml/battle-hardened/select`: the original system's endpoint and body shape, so its callers
//! keep working, answered by adloop's allocator.
//!
//! The original body is `{ad_states: [{ad_id, impressions, clicks, spend, pipeline_value?, cash_revenue?,
//! age_hours}], total_budget, creative_dna_scores?}` with money as floats of major units. It carries neither
//! a currency, a conversion count nor the real current budget, so: `currency` may be added (default USD);
//! `conversions` may be added per ad (default: one per 100.00 of pipeline value, at least one when there is
//! any); `current_budget` may be added per ad (default: lifetime average daily spend, as the original used).

use std::collections::{BTreeMap, HashMap};

use adloop_money::{Currency, MinorUnits};
use adloop_proto::ml::v1 as proto;
use adloop_service_kit::error::ServiceError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::allocations::{
    AdBody, AdStatusBody, AllocationBody, ConstraintsBody, allocation_answer, allocation_request,
};
use super::request_input::{null_as_default, objects, parse_json_body};
use crate::ml_client::ml_service_call_failed;

/// Value (major units) that counts as one conversion when the caller gives no conversion count.
const VALUE_PER_ASSUMED_CONVERSION: f64 = 100.0;

#[derive(Debug, Deserialize)]
pub struct SelectBody {
    #[serde(deserialize_with = "objects")]
    pub ad_states: Vec<OriginalAdState>,
    pub total_budget: f64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub creative_dna_scores: HashMap<String, f64>,
    #[serde(default)]
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OriginalAdState {
    pub ad_id: String,
    pub impressions: i64,
    pub clicks: i64,
    pub spend: f64,
    /// CRM pipeline value (major units). The original's `cash_revenue` is accepted and, as in the original,
    /// not used.
    #[serde(default, deserialize_with = "null_as_default")]
    pub pipeline_value: f64,
    pub age_hours: f64,
    #[serde(default)]
    pub conversions: Option<i64>,
    #[serde(default)]
    pub current_budget: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct SelectMetrics {
    pub impressions: i64,
    pub clicks: i64,
    /// Percent, two decimals, as the original reported it.
    pub ctr: f64,
    pub pipeline_roas: f64,
    pub ctr_weight: f64,
    pub roas_weight: f64,
    pub probability_best: f64,
    pub decay_factor: f64,
    pub age_hours: f64,
}

#[derive(Debug, Serialize)]
pub struct SelectRecommendation {
    pub ad_id: String,
    pub current_budget: f64,
    pub recommended_budget: f64,
    pub change_percentage: f64,
    /// The ad's probability of being the best.
    pub confidence: f64,
    pub reason: String,
    pub decision: &'static str,
    pub metrics: SelectMetrics,
}

#[derive(Debug, Serialize)]
pub struct SelectAnswer {
    pub total_budget: f64,
    pub recommendations: Vec<SelectRecommendation>,
    pub num_ads: usize,
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

/// ml-service names the fields of its own contract (`ads[2].conversion_value`); this route's callers sent
/// `ad_states[2].pipeline_value`, so errors are given back in their terms.
fn in_original_terms(mut error: ServiceError) -> ServiceError {
    let Some(field) = error.field.take() else {
        return error;
    };
    let original = original_field_path(&field);
    error.message = error.message.replacen(&field, &original, 1);
    error.field = Some(original);
    error
}

fn original_field_path(field: &str) -> String {
    if field == "total_daily_budget" || field.starts_with("total_daily_budget.") {
        return field.replacen("total_daily_budget", "total_budget", 1);
    }
    let Some(after_ads) = field.strip_prefix("ads") else {
        return field.to_owned();
    };
    let renamed_leaf = [
        (".ids.ad_id", ".ad_id"),
        (".conversion_value", ".pipeline_value"),
        (".current_daily_budget", ".current_budget"),
    ]
    .iter()
    .fold(after_ads.to_owned(), |path, (contract_name, original_name)| {
        path.replacen(contract_name, original_name, 1)
    });
    format!("ad_states{renamed_leaf}")
}

pub async fn post_select(State(state): State<AppState>, body: Bytes) -> Result<Json<SelectAnswer>, ServiceError> {
    let body: SelectBody = parse_json_body(&body)?;
    let currency_code = body.currency.clone().unwrap_or_else(|| "USD".to_owned());
    let currency = Currency::parse(&currency_code).map_err(|error| ServiceError::invalid_field("currency", error))?;
    if !(body.total_budget.is_finite() && body.total_budget > 0.0) {
        return Err(ServiceError::invalid_field("total_budget", "must be a positive amount"));
    }
    let minor = |major: f64| MinorUnits::from_major_rounded(major, currency).get();
    if minor(body.total_budget) <= 0 {
        // A positive amount below half a cent rounds to nothing: say so instead of "must be positive".
        let smallest = MinorUnits(1).to_major(currency);
        return Err(ServiceError::invalid_field(
            "total_budget",
            format!("must be at least one minor unit of {currency_code} ({smallest})"),
        ));
    }
    let mut ads = Vec::with_capacity(body.ad_states.len());
    for (index, state) in body.ad_states.iter().enumerate() {
        for (field, value) in [
            ("spend", state.spend),
            ("pipeline_value", state.pipeline_value),
            ("age_hours", state.age_hours),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ServiceError::invalid_field(
                    format!("ad_states[{index}].{field}"),
                    "must be a non-negative number",
                ));
            }
        }
        let assumed_conversions = if state.pipeline_value > 0.0 {
            (state.pipeline_value / VALUE_PER_ASSUMED_CONVERSION).round().max(1.0) as i64
        } else {
            0
        };
        let lifetime_average_daily_spend = state.spend / (state.age_hours / 24.0).max(1.0);
        ads.push(AdBody {
            account_id: String::new(),
            campaign_id: String::new(),
            ad_set_id: String::new(),
            ad_id: state.ad_id.clone(),
            impressions: state.impressions,
            clicks: state.clicks,
            conversions: state.conversions.unwrap_or(assumed_conversions),
            spend: minor(state.spend),
            conversion_value: minor(state.pipeline_value),
            age_hours: state.age_hours,
            current_daily_budget: minor(state.current_budget.unwrap_or(lifetime_average_daily_spend)),
            status: AdStatusBody::Active,
            creative_features: Default::default(),
            creative_dna_score: body.creative_dna_scores.get(&state.ad_id).copied(),
            priors: Vec::new(),
            recent: None,
            latest: None,
            frequency: None,
            delivery_curve: None,
            weekday_ctr_multiplier: None,
        });
    }
    let allocation_body = AllocationBody {
        currency: currency_code.clone(),
        total_daily_budget: minor(body.total_budget),
        constraints: Some(ConstraintsBody {
            per_ad_floor: 0,
            per_ad_cap: 0,
            max_change_fraction: 0.5,
        }),
        seed: 0,
        reporting_delays: BTreeMap::new(),
        ads,
    };
    let request = allocation_request(&allocation_body).map_err(in_original_terms)?;
    let response = state
        .ml_service
        .client()
        .allocate(proto::AllocateRequest::from(&request))
        .await
        .map_err(|status| in_original_terms(ml_service_call_failed(status)))?
        .into_inner();
    let answer = allocation_answer(response, &currency_code);
    let major = |minor_units: i64| MinorUnits(minor_units).to_major(currency);
    let recommendations: Vec<SelectRecommendation> = answer
        .recommendations
        .into_iter()
        .zip(&body.ad_states)
        .map(|(recommendation, state)| SelectRecommendation {
            ad_id: recommendation.ad_id,
            current_budget: round_to(major(recommendation.current_daily_budget), 2),
            recommended_budget: round_to(major(recommendation.recommended_daily_budget), 2),
            change_percentage: round_to(recommendation.change_fraction.unwrap_or(0.0) * 100.0, 2),
            confidence: round_to(recommendation.probability_best, 4),
            reason: recommendation.reason,
            decision: recommendation.decision,
            metrics: SelectMetrics {
                impressions: state.impressions,
                clicks: state.clicks,
                ctr: round_to(state.clicks as f64 / (state.impressions.max(1) as f64) * 100.0, 2),
                pipeline_roas: round_to(state.pipeline_value / state.spend.max(0.01), 2),
                ctr_weight: recommendation.ctr_blend_weight,
                roas_weight: 1.0 - recommendation.ctr_blend_weight,
                probability_best: recommendation.probability_best,
                decay_factor: recommendation.fatigue_factor,
                age_hours: round_to(state.age_hours, 1),
            },
        })
        .collect();
    Ok(Json(SelectAnswer {
        total_budget: body.total_budget,
        num_ads: recommendations.len(),
        recommendations,
    }))
}
