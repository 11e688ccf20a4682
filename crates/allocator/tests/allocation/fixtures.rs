use std::collections::BTreeMap;

use adloop_allocator::{AdIds, AdInput, AdStatus, AllocationConstraints, AllocationRequest, RecentWindow};
use adloop_money::{Currency, MinorUnits};

pub fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

/// An ad with lifetime counts, a matching 72-hour window (two thirds of lifetime for older ads) and a budget.
pub fn ad(
    ad_id: &str,
    impressions: u64,
    clicks: u64,
    conversions: u64,
    spend_cents: i64,
    value_cents: i64,
    age_hours: f64,
) -> AdInput {
    let recent_share = if age_hours <= 72.0 { 1.0 } else { 72.0 / age_hours };
    let part = |value: u64| (value as f64 * recent_share).round() as u64;
    AdInput {
        ids: AdIds {
            account_id: "act_1".into(),
            campaign_id: "c1".into(),
            ad_set_id: format!("set-{ad_id}"),
            ad_id: ad_id.into(),
        },
        impressions,
        clicks,
        conversions,
        spend: MinorUnits(spend_cents),
        conversion_value: MinorUnits(value_cents),
        age_hours,
        current_daily_budget: MinorUnits(10_000),
        status: AdStatus::Active,
        creative_features: BTreeMap::new(),
        creative_dna_score: None,
        priors: Vec::new(),
        recent: Some(RecentWindow {
            hours: 72.0,
            impressions: part(impressions),
            clicks: part(clicks),
            spend: MinorUnits((spend_cents as f64 * recent_share).round() as i64),
            conversions: part(conversions),
            conversion_value: MinorUnits((value_cents as f64 * recent_share).round() as i64),
        }),
        latest: None,
        frequency: None,
        delivery_curve: None,
        weekday_ctr_multiplier: None,
    }
}

/// `ad` moved into the ad account `account`.
pub fn in_account(account: &str, ad: AdInput) -> AdInput {
    AdInput {
        ids: AdIds {
            account_id: account.into(),
            ..ad.ids.clone()
        },
        ..ad
    }
}

/// The expected ROAS an allocation gives the ad `ad_id`.
pub fn expected_roas_of(allocation: &adloop_allocator::Allocation, ad_id: &str) -> f64 {
    allocation
        .recommendations
        .iter()
        .find(|recommendation| recommendation.ids.ad_id == ad_id)
        .unwrap()
        .roas
        .mean
}

pub fn request(ads: Vec<AdInput>, total_cents: i64) -> AllocationRequest {
    AllocationRequest {
        ads,
        total_daily_budget: MinorUnits(total_cents),
        currency: usd(),
        constraints: AllocationConstraints {
            per_ad_floor: MinorUnits(100),
            per_ad_cap: MinorUnits::ZERO,
            max_change_fraction: 0.5,
        },
        seed: 42,
        reporting_delays: Default::default(),
    }
}

/// Ten ads of 10 days with true ROAS spread from 0.5 to 3.2, as an account would report them.
pub fn ten_unequal_ads() -> Vec<AdInput> {
    (0..10)
        .map(|index| {
            let roas = 0.5 + 0.3 * index as f64;
            let value_cents = (100_000.0 * roas) as i64;
            ad(
                &format!("ad-{index}"),
                100_000,
                1_000 + 50 * index as u64,
                (value_cents / 5000) as u64,
                100_000,
                value_cents,
                240.0,
            )
        })
        .collect()
}

/// The budgets an allocation recommends, added up (minor units).
pub fn total_recommended(allocation: &adloop_allocator::Allocation) -> i64 {
    allocation
        .recommendations
        .iter()
        .map(|ad| ad.recommended_daily_budget.get())
        .sum()
}

/// The reason of the first ad an allocation leaves without budget.
pub fn first_resting_reason(allocation: &adloop_allocator::Allocation) -> &str {
    &allocation
        .recommendations
        .iter()
        .find(|ad| ad.recommended_daily_budget.get() == 0)
        .expect("an ad without budget")
        .reason
}
