//! The contract's allocation messages ↔ the allocator's types, in one place for every client and server.
//! Every check on the way in names the field and the rule; a request that fails one is refused whole
//! (ml-service answers INVALID_ARGUMENT) before anything is computed or cached.

use std::collections::{BTreeMap, HashSet};

use adloop_allocator::{
    AdIds, AdInput, AdScore, AdStatus, Allocation, AllocationConstraints, AllocationRequest, Decision, DelayComponent,
    DeliveryCurve, InputError, Interval, Prior, RecentWindow, Recommendation, ReportingDelay,
};
use adloop_money::{Currency, MinorUnits};

use crate::ml::v1 as proto;

const DEFAULT_MAX_CHANGE_FRACTION: f64 = 0.5;

fn invalid(field: impl Into<String>, rule: impl std::fmt::Display) -> InputError {
    InputError {
        field: field.into(),
        rule: rule.to_string(),
    }
}

fn currency_of(field: &str, money: Option<&proto::Money>) -> Result<Currency, InputError> {
    let money = money.ok_or_else(|| invalid(field, "is required"))?;
    Currency::parse(&money.currency).map_err(|error| invalid(format!("{field}.currency"), error))
}

/// Money in the request's currency; absent means zero.
fn amount(field: &str, money: Option<&proto::Money>, currency: Currency) -> Result<MinorUnits, InputError> {
    let Some(money) = money else {
        return Ok(MinorUnits::ZERO);
    };
    if money.currency != currency.code() {
        return Err(invalid(
            format!("{field}.currency"),
            format!("`{}` must match the request's currency {currency}", money.currency),
        ));
    }
    if money.minor_units < 0 {
        return Err(invalid(format!("{field}.minor_units"), "must not be negative"));
    }
    Ok(MinorUnits(money.minor_units))
}

fn count(field: String, value: i64) -> Result<u64, InputError> {
    u64::try_from(value).map_err(|_| invalid(field, "must not be negative"))
}

fn ad_input(index: usize, state: &proto::AdState, currency: Currency) -> Result<AdInput, InputError> {
    let field = |name: &str| format!("ads[{index}].{name}");
    let ids = state.ids.as_ref().ok_or_else(|| invalid(field("ids"), "is required"))?;
    let window_input = |name: &str, window: &proto::RecentWindow| -> Result<RecentWindow, InputError> {
        let window_field = |part: &str| field(&format!("{name}.{part}"));
        Ok(RecentWindow {
            hours: window.hours,
            impressions: count(window_field("impressions"), window.impressions)?,
            clicks: count(window_field("clicks"), window.clicks)?,
            spend: amount(&window_field("spend"), window.spend.as_ref(), currency)?,
            conversions: count(window_field("conversions"), window.conversions)?,
            conversion_value: amount(
                &window_field("conversion_value"),
                window.conversion_value.as_ref(),
                currency,
            )?,
        })
    };
    let recent = state
        .recent
        .as_ref()
        .map(|window| window_input("recent", window))
        .transpose()?;
    let latest = state
        .latest
        .as_ref()
        .map(|window| window_input("latest", window))
        .transpose()?;
    let status = match proto::AdStatus::try_from(state.status) {
        Ok(proto::AdStatus::Paused) => AdStatus::Paused,
        Ok(proto::AdStatus::Active | proto::AdStatus::Unspecified) => AdStatus::Active,
        Err(_) => return Err(invalid(field("status"), format!("unknown status {}", state.status))),
    };
    Ok(AdInput {
        ids: AdIds {
            account_id: ids.account_id.clone(),
            campaign_id: ids.campaign_id.clone(),
            ad_set_id: ids.ad_set_id.clone(),
            ad_id: ids.ad_id.clone(),
        },
        impressions: count(field("impressions"), state.impressions)?,
        clicks: count(field("clicks"), state.clicks)?,
        conversions: count(field("conversions"), state.conversions)?,
        spend: amount(&field("spend"), state.spend.as_ref(), currency)?,
        conversion_value: amount(&field("conversion_value"), state.conversion_value.as_ref(), currency)?,
        age_hours: state.age_hours,
        current_daily_budget: amount(
            &field("current_daily_budget"),
            state.current_daily_budget.as_ref(),
            currency,
        )?,
        status,
        creative_features: state
            .creative_features
            .iter()
            .map(|(name, value)| (name.clone(), *value))
            .collect(),
        creative_dna_score: state.creative_dna_score,
        priors: state
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
        frequency: state.frequency,
        delivery_curve: state.delivery_curve.as_ref().map(|curve| DeliveryCurve {
            base_cpm: curve.base_cpm,
            cpm_doubling_daily_impressions: curve.cpm_doubling_daily_impressions,
        }),
        weekday_ctr_multiplier: state.weekday_ctr_multiplier,
    })
}

fn ads_input(states: &[proto::AdState], currency: Currency) -> Result<Vec<AdInput>, InputError> {
    if states.is_empty() {
        return Err(invalid("ads", "at least one ad is required"));
    }
    let mut seen = HashSet::new();
    let mut ads = Vec::with_capacity(states.len());
    for (index, state) in states.iter().enumerate() {
        let ad = ad_input(index, state, currency)?;
        if !seen.insert(ad.ids.ad_id.clone()) {
            return Err(invalid(
                format!("ads[{index}].ids.ad_id"),
                format!("duplicate ad id {}", ad.ids.ad_id),
            ));
        }
        ads.push(ad);
    }
    Ok(ads)
}

/// The most reporting-delay components one account's schedule may have.
const MAX_REPORTING_DELAY_COMPONENTS: usize = 64;

/// Accounts' own reporting-delay schedules by account id (the schedules themselves are checked with the
/// rest of the request).
fn reporting_delays(
    accounts: &[proto::AccountReportingDelay],
    ad_count: usize,
) -> Result<BTreeMap<String, ReportingDelay>, InputError> {
    // One schedule per account of the request's ads at most: no more entries than ads.
    if accounts.len() > ad_count.max(1) {
        return Err(invalid(
            "reporting_delays",
            format!(
                "{} entries for {ad_count} ads: at most one per account of the request's ads",
                accounts.len()
            ),
        ));
    }
    let mut schedules = BTreeMap::new();
    for (index, account) in accounts.iter().enumerate() {
        let field = |name: &str| format!("reporting_delays[{index}].{name}");
        if account.account_id.trim().is_empty() {
            return Err(invalid(field("account_id"), "must not be empty"));
        }
        if account.components.len() > MAX_REPORTING_DELAY_COMPONENTS {
            return Err(invalid(
                field("components"),
                format!("at most {MAX_REPORTING_DELAY_COMPONENTS} components"),
            ));
        }
        let schedule = ReportingDelay {
            components: account
                .components
                .iter()
                .map(|component| DelayComponent {
                    share: component.share,
                    min_hours: component.min_hours,
                    max_hours: component.max_hours,
                })
                .collect(),
        };
        if schedules.insert(account.account_id.clone(), schedule).is_some() {
            return Err(invalid(
                field("account_id"),
                format!("duplicate account {}", account.account_id),
            ));
        }
    }
    Ok(schedules)
}

/// The allocator's request from the contract's, checked field by field.
pub fn allocation_request(request: &proto::AllocateRequest) -> Result<AllocationRequest, InputError> {
    let currency = currency_of("total_daily_budget", request.total_daily_budget.as_ref())?;
    let total = amount("total_daily_budget", request.total_daily_budget.as_ref(), currency)?;
    let ads = ads_input(&request.ads, currency)?;
    let constraints = match &request.constraints {
        Some(constraints) => AllocationConstraints {
            per_ad_floor: amount("constraints.per_ad_floor", constraints.per_ad_floor.as_ref(), currency)?,
            per_ad_cap: amount("constraints.per_ad_cap", constraints.per_ad_cap.as_ref(), currency)?,
            max_change_fraction: if constraints.max_change_fraction == 0.0 {
                DEFAULT_MAX_CHANGE_FRACTION
            } else {
                constraints.max_change_fraction
            },
        },
        None => AllocationConstraints {
            per_ad_floor: MinorUnits::ZERO,
            per_ad_cap: MinorUnits::ZERO,
            max_change_fraction: DEFAULT_MAX_CHANGE_FRACTION,
        },
    };
    let allocation_request = AllocationRequest {
        ads,
        total_daily_budget: total,
        currency,
        constraints,
        seed: request.seed,
        reporting_delays: reporting_delays(&request.reporting_delays, request.ads.len())?,
    };
    adloop_allocator::validate_request(&allocation_request)?;
    Ok(allocation_request)
}

/// The Score rpc has no total: the currency comes from the first ad's spend (all ads must share it).
pub fn score_request(request: &proto::ScoreRequest) -> Result<AllocationRequest, InputError> {
    let first_money = request
        .ads
        .first()
        .and_then(|ad| ad.spend.as_ref().or(ad.current_daily_budget.as_ref()));
    let currency = match first_money {
        Some(money) => Currency::parse(&money.currency).map_err(|error| invalid("ads[0].spend.currency", error))?,
        None if request.ads.is_empty() => return Err(invalid("ads", "at least one ad is required")),
        None => return Err(invalid("ads[0].spend", "is required (it carries the currency)")),
    };
    let allocation_request = AllocationRequest {
        ads: ads_input(&request.ads, currency)?,
        total_daily_budget: MinorUnits(1),
        currency,
        constraints: AllocationConstraints {
            per_ad_floor: MinorUnits::ZERO,
            per_ad_cap: MinorUnits::ZERO,
            max_change_fraction: DEFAULT_MAX_CHANGE_FRACTION,
        },
        seed: 0,
        reporting_delays: BTreeMap::new(),
    };
    adloop_allocator::validate_request(&allocation_request)?;
    Ok(allocation_request)
}

fn money(amount: MinorUnits, currency: Currency) -> Option<proto::Money> {
    Some(proto::Money {
        minor_units: amount.get(),
        currency: currency.code().to_owned(),
    })
}

fn interval(interval: Interval) -> Option<proto::Interval> {
    Some(proto::Interval {
        mean: interval.mean,
        lower_95: interval.lower_95,
        upper_95: interval.upper_95,
    })
}

fn ids(ids: &AdIds) -> Option<proto::AdIds> {
    Some(proto::AdIds {
        account_id: ids.account_id.clone(),
        campaign_id: ids.campaign_id.clone(),
        ad_set_id: ids.ad_set_id.clone(),
        ad_id: ids.ad_id.clone(),
    })
}

fn recommendation(recommendation: &Recommendation, currency: Currency) -> proto::Recommendation {
    proto::Recommendation {
        ids: ids(&recommendation.ids),
        current_daily_budget: money(recommendation.current_daily_budget, currency),
        recommended_daily_budget: money(recommendation.recommended_daily_budget, currency),
        change_fraction: recommendation.change_fraction,
        probability_best: recommendation.probability_best,
        ctr: interval(recommendation.ctr),
        roas: interval(recommendation.roas),
        ctr_blend_weight: recommendation.ctr_blend_weight,
        fatigue_factor: recommendation.fatigue_factor,
        prior_source: recommendation.prior_source.clone(),
        decision: match recommendation.decision {
            Decision::Maintain => proto::Decision::Maintain,
            Decision::Scale => proto::Decision::Scale,
            Decision::Kill => proto::Decision::Kill,
        } as i32,
        reason: recommendation.reason.clone(),
    }
}

pub fn allocate_response(allocation: &Allocation, currency: Currency) -> proto::AllocateResponse {
    proto::AllocateResponse {
        recommendations: allocation
            .recommendations
            .iter()
            .map(|entry| recommendation(entry, currency))
            .collect(),
        total_daily_budget: money(allocation.total_daily_budget, currency),
        model_version: allocation.model_version.clone(),
        seed: allocation.seed,
        change_limit_relaxed: allocation.change_limit_relaxed,
    }
}

pub fn ad_score(score: &AdScore, from_cache: bool) -> proto::AdScore {
    proto::AdScore {
        ids: ids(&score.ids),
        score: score.score,
        ctr: interval(score.ctr),
        roas: interval(score.roas),
        ctr_blend_weight: score.ctr_blend_weight,
        fatigue_factor: score.fatigue_factor,
        from_cache,
    }
}

/// An ad in the contract's terms, its money in `currency` (the request's).
pub fn ad_state(ad: &AdInput, currency: Currency) -> proto::AdState {
    let money_of = |amount: MinorUnits| money(amount, currency);
    let window_of = |window: &RecentWindow| proto::RecentWindow {
        hours: window.hours,
        impressions: window.impressions as i64,
        clicks: window.clicks as i64,
        spend: money_of(window.spend),
        conversions: window.conversions as i64,
        conversion_value: money_of(window.conversion_value),
    };
    proto::AdState {
        ids: ids(&ad.ids),
        impressions: ad.impressions as i64,
        clicks: ad.clicks as i64,
        conversions: ad.conversions as i64,
        spend: money_of(ad.spend),
        conversion_value: money_of(ad.conversion_value),
        age_hours: ad.age_hours,
        current_daily_budget: money_of(ad.current_daily_budget),
        status: match ad.status {
            AdStatus::Active => proto::AdStatus::Active,
            AdStatus::Paused => proto::AdStatus::Paused,
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
                ctr_strength_impressions: prior.ctr_strength_impressions,
                expected_conversions_per_click: prior.expected_conversions_per_click,
                conversion_strength_conversions: prior.conversion_strength_conversions,
                rates_are_lifts: prior.rates_are_lifts,
            })
            .collect(),
        recent: ad.recent.as_ref().map(window_of),
        latest: ad.latest.as_ref().map(window_of),
        delivery_curve: ad.delivery_curve.map(|curve| proto::DeliveryCurve {
            base_cpm: curve.base_cpm,
            cpm_doubling_daily_impressions: curve.cpm_doubling_daily_impressions,
        }),
        frequency: ad.frequency,
        weekday_ctr_multiplier: ad.weekday_ctr_multiplier,
    }
}

impl From<&AllocationRequest> for proto::AllocateRequest {
    fn from(request: &AllocationRequest) -> proto::AllocateRequest {
        let currency = request.currency;
        proto::AllocateRequest {
            ads: request.ads.iter().map(|ad| ad_state(ad, currency)).collect(),
            total_daily_budget: money(request.total_daily_budget, currency),
            constraints: Some(proto::AllocationConstraints {
                per_ad_floor: money(request.constraints.per_ad_floor, currency),
                per_ad_cap: money(request.constraints.per_ad_cap, currency),
                max_change_fraction: request.constraints.max_change_fraction,
            }),
            seed: request.seed,
            reporting_delays: request
                .reporting_delays
                .iter()
                .map(|(account_id, schedule)| proto::AccountReportingDelay {
                    account_id: account_id.clone(),
                    components: schedule
                        .components
                        .iter()
                        .map(|component| proto::ReportingDelayComponent {
                            share: component.share,
                            min_hours: component.min_hours,
                            max_hours: component.max_hours,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(hours: f64, clicks: u64, conversions: u64) -> RecentWindow {
        RecentWindow {
            hours,
            impressions: clicks * 100,
            clicks,
            spend: MinorUnits(clicks as i64 * 40),
            conversions,
            conversion_value: MinorUnits(conversions as i64 * 6_000),
        }
    }

    #[test]
    fn an_ads_windows_delivery_curve_and_weekday_rhythm_travel_the_wire_unchanged() {
        let ad = AdInput {
            ids: AdIds {
                account_id: "act_1".into(),
                campaign_id: "c1".into(),
                ad_set_id: "s1".into(),
                ad_id: "a1".into(),
            },
            impressions: 300_000,
            clicks: 3_000,
            conversions: 90,
            spend: MinorUnits(120_000),
            conversion_value: MinorUnits(540_000),
            age_hours: 720.0,
            current_daily_budget: MinorUnits(5_000),
            status: AdStatus::Active,
            creative_features: BTreeMap::new(),
            creative_dna_score: None,
            priors: Vec::new(),
            recent: Some(window(168.0, 700, 21)),
            latest: Some(window(72.0, 300, 6)),
            frequency: None,
            delivery_curve: Some(DeliveryCurve {
                base_cpm: 950.5,
                cpm_doubling_daily_impressions: 210_000.0,
            }),
            weekday_ctr_multiplier: Some(1.18),
        };
        let request = AllocationRequest {
            ads: vec![ad],
            total_daily_budget: MinorUnits(5_000),
            currency: Currency::parse("USD").unwrap(),
            constraints: AllocationConstraints {
                per_ad_floor: MinorUnits::ZERO,
                per_ad_cap: MinorUnits::ZERO,
                max_change_fraction: 0.5,
            },
            seed: 3,
            reporting_delays: Default::default(),
        };
        let received = allocation_request(&proto::AllocateRequest::from(&request)).expect("valid");
        assert_eq!(received.ads, request.ads);
    }
}
