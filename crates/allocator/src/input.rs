//! What the allocator is given, and the checks that reject bad input naming the field and the rule.

use std::collections::{BTreeMap, HashSet};

use adloop_money::{Currency, MinorUnits};
use serde::{Deserialize, Serialize};

use crate::delay::ReportingDelay;
use crate::delivery_curve::DeliveryCurve;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AdIds {
    pub account_id: String,
    pub campaign_id: String,
    pub ad_set_id: String,
    pub ad_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdStatus {
    Active,
    Paused,
}

/// A learned belief about an ad (from the instant learner or the cross-learner), with a strength for each
/// rate. Its rates count as lifts against the other ads of the request carrying the same source, and move
/// the population prior's mean in proportion to their strength (`learned_prior`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    pub source: String,
    pub expected_ctr: f64,
    /// How many impressions of evidence the CTR belief is worth.
    pub ctr_strength_impressions: f64,
    pub expected_conversions_per_click: f64,
    /// How many conversions of evidence the conversions-per-click belief is worth.
    pub conversion_strength_conversions: f64,
    /// The rates are lifts over the ad's own account average (1.2 = 20% above it), as the cross-learner
    /// gives them, rather than rates to compare with the request's other ads of the same source.
    #[serde(default)]
    pub rates_are_lifts: bool,
}

/// Delivery over a trailing window (e.g. the last 72 hours), for forgetting and the fatigue trend.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RecentWindow {
    pub hours: f64,
    pub impressions: u64,
    pub clicks: u64,
    pub spend: MinorUnits,
    pub conversions: u64,
    pub conversion_value: MinorUnits,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdInput {
    pub ids: AdIds,
    /// Lifetime delivery and reported conversions.
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
    pub spend: MinorUnits,
    pub conversion_value: MinorUnits,
    pub age_hours: f64,
    /// The real current daily budget (as Meta reports it).
    pub current_daily_budget: MinorUnits,
    pub status: AdStatus,
    pub creative_features: BTreeMap<String, f64>,
    /// 0..=1; nudges the prior up by at most `creative_dna_max_boost`.
    pub creative_dna_score: Option<f64>,
    pub priors: Vec<Prior>,
    pub recent: Option<RecentWindow>,
    /// A shorter trailing window inside `recent` (the last 72 hours where `recent` is the last week), so a
    /// change inside it is still seen soon while `recent` averages a weekly rhythm out.
    #[serde(default)]
    pub latest: Option<RecentWindow>,
    pub frequency: Option<f64>,
    /// How the ad's cost per impression rises with its daily volume, where its daily reports show it
    /// ([`crate::estimate_delivery_curves`]); `None` splits it as an ad whose returns do not fall with spend.
    #[serde(default)]
    pub delivery_curve: Option<DeliveryCurve>,
    /// How the ad's CTR over the coming day compares with its week's, from its own weekday rhythm
    /// ([`crate::estimate_weekday_ctr_multipliers`]); `None` reads it as an ad without one.
    #[serde(default)]
    pub weekday_ctr_multiplier: Option<f64>,
}

impl AdInput {
    /// An active ad that has delivered nothing yet: no budget, features, priors or windows. The base a client,
    /// a benchmark or a test fills in with what it knows.
    pub fn not_yet_delivered(ids: AdIds) -> AdInput {
        AdInput {
            ids,
            impressions: 0,
            clicks: 0,
            conversions: 0,
            spend: MinorUnits::ZERO,
            conversion_value: MinorUnits::ZERO,
            age_hours: 0.0,
            current_daily_budget: MinorUnits::ZERO,
            status: AdStatus::Active,
            creative_features: BTreeMap::new(),
            creative_dna_score: None,
            priors: Vec::new(),
            recent: None,
            latest: None,
            frequency: None,
            delivery_curve: None,
            weekday_ctr_multiplier: None,
        }
    }

    /// [`Self::not_yet_delivered`] of account `act_1`: the base the unit tests fill in with what they vary.
    #[cfg(test)]
    pub(crate) fn blank_for_tests(ad_id: &str) -> AdInput {
        AdInput::not_yet_delivered(AdIds {
            account_id: "act_1".into(),
            campaign_id: "c".into(),
            ad_set_id: format!("set-{ad_id}"),
            ad_id: ad_id.into(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AllocationConstraints {
    /// Meta's minimum ad-set budget: each ad gets nothing or at least this (`allocate`: the ads whose share
    /// would fall below it wait, the least likely best first). Zero means no floor.
    pub per_ad_floor: MinorUnits,
    /// Zero means no cap.
    pub per_ad_cap: MinorUnits,
    /// Largest change per ad per step as a fraction of its current budget (0.5 = ±50%).
    pub max_change_fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllocationRequest {
    pub ads: Vec<AdInput>,
    pub total_daily_budget: MinorUnits,
    pub currency: Currency,
    pub constraints: AllocationConstraints,
    pub seed: u64,
    /// Each account's reporting-delay schedule as estimated from its own reports
    /// ([`crate::ReportingDelayEstimator`]), by account id; ads of other accounts use the configured one.
    #[serde(default)]
    pub reporting_delays: BTreeMap<String, ReportingDelay>,
}

/// Bad input: the field (with its index) and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct InputError {
    pub field: String,
    pub rule: String,
}

pub(crate) fn input_error(field: impl Into<String>, rule: impl Into<String>) -> InputError {
    InputError {
        field: field.into(),
        rule: rule.into(),
    }
}

/// The largest amount of money a request may carry, in minor units: 10¹⁵ (ten trillion dollars in cents) is
/// beyond any ad account, so an absurd amount is refused by name instead of reaching the arithmetic (sums of
/// budget bounds are taken in 128 bits as well, whatever `max_ads_per_request` allows).
pub const MAX_MONEY_MINOR_UNITS: i64 = 1_000_000_000_000_000;

/// The largest daily volume at which a delivery curve's CPM may double: 10¹², beyond the world's population
/// seeing an ad a hundred times a day (a curve that flat is no curve).
pub const MAX_CPM_DOUBLING_DAILY_IMPRESSIONS: f64 = 1e12;

/// The range of a weekday multiplier a request may carry: a day at a tenth of the ad's week or ten times it is
/// already beyond any weekly rhythm; outside it the number is a client's mistake.
pub const MIN_WEEKDAY_CTR_MULTIPLIER: f64 = 0.1;
pub const MAX_WEEKDAY_CTR_MULTIPLIER: f64 = 10.0;

fn check_money(field: String, amount: MinorUnits) -> Result<(), InputError> {
    if amount.get() < 0 {
        return Err(input_error(field, "must not be negative"));
    }
    if amount.get() > MAX_MONEY_MINOR_UNITS {
        return Err(input_error(
            field,
            format!("must be at most {MAX_MONEY_MINOR_UNITS} minor units"),
        ));
    }
    Ok(())
}

/// Checks one ad; `index` names it in errors.
pub fn validate_ad(index: usize, ad: &AdInput) -> Result<(), InputError> {
    let field = |name: &str| format!("ads[{index}].{name}");
    if ad.ids.ad_id.trim().is_empty() {
        return Err(input_error(field("ids.ad_id"), "must not be empty"));
    }
    if ad.clicks > ad.impressions {
        return Err(input_error(
            field("clicks"),
            format!("{} clicks cannot exceed {} impressions", ad.clicks, ad.impressions),
        ));
    }
    check_money(field("spend"), ad.spend)?;
    check_money(field("conversion_value"), ad.conversion_value)?;
    check_money(field("current_daily_budget"), ad.current_daily_budget)?;
    if !(ad.age_hours.is_finite() && ad.age_hours >= 0.0) {
        return Err(input_error(field("age_hours"), "must be a non-negative number"));
    }
    if let Some(score) = ad.creative_dna_score
        && !(0.0..=1.0).contains(&score)
    {
        return Err(input_error(field("creative_dna_score"), "must be between 0 and 1"));
    }
    for (prior_index, prior) in ad.priors.iter().enumerate() {
        let prior_field = |name: &str| format!("ads[{index}].priors[{prior_index}].{name}");
        if prior.rates_are_lifts {
            if !(prior.expected_ctr.is_finite() && (0.0..=100.0).contains(&prior.expected_ctr)) {
                return Err(input_error(
                    prior_field("expected_ctr"),
                    "a lift must be a number from 0 to 100",
                ));
            }
        } else if !(prior.expected_ctr.is_finite() && (0.0..1.0).contains(&prior.expected_ctr)) {
            return Err(input_error(prior_field("expected_ctr"), "must be in [0, 1)"));
        }
        // More than a hundred conversions a click, or a lift beyond a hundredfold, is a broken learner or a
        // unit error, not a prior: unbounded, it would decide the ad's prior alone.
        if !(prior.expected_conversions_per_click.is_finite()
            && (0.0..=100.0).contains(&prior.expected_conversions_per_click))
        {
            return Err(input_error(
                prior_field("expected_conversions_per_click"),
                "must be a number from 0 to 100",
            ));
        }
        for (name, strength) in [
            ("ctr_strength_impressions", prior.ctr_strength_impressions),
            ("conversion_strength_conversions", prior.conversion_strength_conversions),
        ] {
            if !(strength.is_finite() && strength >= 0.0) {
                return Err(input_error(prior_field(name), "must be a non-negative number"));
            }
        }
    }
    if let Some(recent) = &ad.recent {
        let lifetime = RecentWindow {
            hours: f64::INFINITY,
            impressions: ad.impressions,
            clicks: ad.clicks,
            spend: ad.spend,
            conversions: ad.conversions,
            conversion_value: ad.conversion_value,
        };
        check_window(
            &field,
            "recent",
            recent,
            &lifetime,
            "a recent window cannot exceed the lifetime counts",
        )?;
    }
    if let Some(latest) = &ad.latest {
        let Some(recent) = &ad.recent else {
            return Err(input_error(field("latest"), "needs a recent window to lie inside"));
        };
        check_window(
            &field,
            "latest",
            latest,
            recent,
            "the latest window cannot exceed the recent window's counts",
        )?;
    }
    if let Some(curve) = &ad.delivery_curve {
        for (name, value, largest) in [
            ("base_cpm", curve.base_cpm, MAX_MONEY_MINOR_UNITS as f64),
            (
                "cpm_doubling_daily_impressions",
                curve.cpm_doubling_daily_impressions,
                MAX_CPM_DOUBLING_DAILY_IMPRESSIONS,
            ),
        ] {
            if !(value.is_finite() && value > 0.0 && value <= largest) {
                return Err(input_error(
                    field(&format!("delivery_curve.{name}")),
                    format!("must be a positive number of at most {largest:e}"),
                ));
            }
        }
    }
    if let Some(multiplier) = ad.weekday_ctr_multiplier
        && !(multiplier.is_finite() && (MIN_WEEKDAY_CTR_MULTIPLIER..=MAX_WEEKDAY_CTR_MULTIPLIER).contains(&multiplier))
    {
        return Err(input_error(
            field("weekday_ctr_multiplier"),
            format!("must be a number from {MIN_WEEKDAY_CTR_MULTIPLIER} to {MAX_WEEKDAY_CTR_MULTIPLIER}"),
        ));
    }
    for (name, value) in &ad.creative_features {
        if !value.is_finite() {
            return Err(input_error(
                field(&format!("creative_features.{name}")),
                "must be a finite number",
            ));
        }
    }
    Ok(())
}

/// A trailing window `name` of an ad, inside `outer` (its lifetime, or the longer window): consistent
/// counts, valid money, no more than `outer` holds, and positive hours no longer than `outer`'s.
fn check_window(
    field: &impl Fn(&str) -> String,
    name: &str,
    window: &RecentWindow,
    outer: &RecentWindow,
    exceeds_outer_rule: &str,
) -> Result<(), InputError> {
    if window.clicks > window.impressions {
        return Err(input_error(
            field(&format!("{name}.clicks")),
            format!("cannot exceed {name}.impressions"),
        ));
    }
    check_money(field(&format!("{name}.spend")), window.spend)?;
    check_money(field(&format!("{name}.conversion_value")), window.conversion_value)?;
    if window.impressions > outer.impressions
        || window.clicks > outer.clicks
        || window.spend > outer.spend
        || window.conversions > outer.conversions
        || window.conversion_value > outer.conversion_value
    {
        return Err(input_error(field(name), exceeds_outer_rule));
    }
    if !(window.hours.is_finite() && window.hours > 0.0 && window.hours <= outer.hours) {
        let rule = if outer.hours.is_finite() {
            "must be positive and at most recent.hours"
        } else {
            "must be positive"
        };
        return Err(input_error(field(&format!("{name}.hours")), rule));
    }
    Ok(())
}

/// Checks a whole request: ads, duplicate ids, money and constraints.
pub fn validate_request(request: &AllocationRequest) -> Result<(), InputError> {
    if request.ads.is_empty() {
        return Err(input_error("ads", "at least one ad is required"));
    }
    let mut seen_ad_ids = HashSet::new();
    for (index, ad) in request.ads.iter().enumerate() {
        validate_ad(index, ad)?;
        if !seen_ad_ids.insert(ad.ids.ad_id.as_str()) {
            return Err(input_error(
                format!("ads[{index}].ids.ad_id"),
                format!("duplicate ad id {}", ad.ids.ad_id),
            ));
        }
    }
    if request.total_daily_budget.get() <= 0 {
        return Err(input_error("total_daily_budget", "must be positive"));
    }
    check_money("total_daily_budget".into(), request.total_daily_budget)?;
    let constraints = &request.constraints;
    check_money("constraints.per_ad_floor".into(), constraints.per_ad_floor)?;
    check_money("constraints.per_ad_cap".into(), constraints.per_ad_cap)?;
    if constraints.per_ad_cap.get() > 0 && constraints.per_ad_cap < constraints.per_ad_floor {
        return Err(input_error(
            "constraints.per_ad_cap",
            "must not be below constraints.per_ad_floor",
        ));
    }
    if !(constraints.max_change_fraction.is_finite() && constraints.max_change_fraction > 0.0) {
        return Err(input_error(
            "constraints.max_change_fraction",
            "must be positive (0.5 = ±50% per step)",
        ));
    }
    for (account_id, schedule) in &request.reporting_delays {
        schedule
            .validate()
            .map_err(|(field, rule)| input_error(format!("reporting_delays[{account_id}].{field}"), rule))?;
    }
    Ok(())
}
