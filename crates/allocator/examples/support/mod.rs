//! Account-like allocation requests for benchmarks and measurements.

use std::collections::BTreeMap;

use adloop_allocator::{AdIds, AdInput, AdStatus, AllocationConstraints, AllocationRequest, RecentWindow};
use adloop_money::{Currency, MinorUnits};
use rand::{RngExt as _, SeedableRng as _};

/// `ad_count` ads with ages from 6 hours to 4 weeks, CTR around 1%, ROAS from 0.3 to 4, each with its last 72
/// hours.
pub fn account_like_request(ad_count: usize, seed: u64) -> AllocationRequest {
    account_request_with_windows(ad_count, seed, false)
}

/// The same ads as the autopilot sends them: an ad older than a week with its last week and, inside it, its
/// last 72 hours (`latest`); a younger one with its last 72 hours.
#[allow(dead_code, reason = "the bench uses it; the examples sharing this module do not")]
pub fn autopilot_like_request(ad_count: usize, seed: u64) -> AllocationRequest {
    account_request_with_windows(ad_count, seed, true)
}

/// The same ads as the autopilot sends them, spread over ten accounts in turn (an agency's request): each
/// account gets its own population prior.
#[allow(dead_code, reason = "the bench uses it; the examples sharing this module do not")]
pub fn ten_account_request(ad_count: usize, seed: u64) -> AllocationRequest {
    let mut request = account_request_with_windows(ad_count, seed, true);
    for (index, ad) in request.ads.iter_mut().enumerate() {
        ad.ids.account_id = format!("act_{}", index % 10 + 1);
    }
    request
}

/// The autopilot's ads, each with a delivery curve: its CPM doubles at 2–10 times its typical daily volume,
/// and what it has paid on average is 10–40% above its base (every ad's return falls with its own spend).
#[allow(dead_code, reason = "the bench uses it; the examples sharing this module do not")]
pub fn curved_request(ad_count: usize, seed: u64) -> AllocationRequest {
    let mut request = account_request_with_windows(ad_count, seed, true);
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed ^ 0xC0FFEE);
    for ad in &mut request.ads {
        let average_cpm = ad.spend.get() as f64 / ad.impressions.max(1) as f64 * 1000.0;
        let daily_impressions = ad.impressions as f64 / (ad.age_hours / 24.0).max(1.0);
        ad.delivery_curve = Some(adloop_allocator::DeliveryCurve {
            base_cpm: (average_cpm / rng.random_range(1.1..1.4)).max(1.0),
            cpm_doubling_daily_impressions: daily_impressions * rng.random_range(2.0..10.0),
        });
    }
    request
}

/// The autopilot's ads, each with an instant-learner prior whose conversion lift follows the ad's own
/// conversions per click with noise (a learner partly right), so the account measures the lifts
/// (`learned_link`) and every ad's prior is blended from them.
#[allow(dead_code, reason = "the bench uses it; the examples sharing this module do not")]
pub fn learned_prior_request(ad_count: usize, seed: u64) -> AllocationRequest {
    let mut request = account_request_with_windows(ad_count, seed, true);
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed ^ 0x1EA2);
    for ad in &mut request.ads {
        let conversions_per_click = (ad.conversions as f64 + 0.5) / (ad.clicks as f64 + 25.0);
        let ctr = ad.clicks as f64 / ad.impressions.max(1) as f64;
        ad.priors.push(adloop_allocator::Prior {
            source: "instant_learner".into(),
            expected_ctr: ctr * rng.random_range(0.7..1.4),
            ctr_strength_impressions: 2_000.0,
            expected_conversions_per_click: conversions_per_click * rng.random_range(0.7..1.4),
            conversion_strength_conversions: 4.0,
            rates_are_lifts: false,
        });
    }
    request
}

fn account_request_with_windows(ad_count: usize, seed: u64, settled_ads_read_on_a_week: bool) -> AllocationRequest {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let ads = (0..ad_count)
        .map(|index| {
            let age_hours: f64 = rng.random_range(6.0..672.0);
            let daily_impressions: f64 = rng.random_range(2_000.0..20_000.0);
            let impressions = (daily_impressions * age_hours / 24.0) as u64;
            let ctr: f64 = rng.random_range(0.004..0.02);
            let clicks = (impressions as f64 * ctr) as u64;
            let spend_cents = (impressions as f64 * rng.random_range(0.5..1.5)) as i64;
            let roas: f64 = rng.random_range(0.3..4.0);
            let value_cents = (spend_cents as f64 * roas) as i64;
            let conversions = (value_cents / 5_000).max(0) as u64;
            let window = |hours: f64| {
                let share = (hours / age_hours).min(1.0);
                let part = |count: u64| (count as f64 * share) as u64;
                RecentWindow {
                    hours,
                    impressions: part(impressions),
                    clicks: part(clicks),
                    spend: MinorUnits((spend_cents as f64 * share) as i64),
                    conversions: part(conversions),
                    conversion_value: MinorUnits((value_cents as f64 * share) as i64),
                }
            };
            let (recent, latest) = if settled_ads_read_on_a_week && age_hours > 168.0 {
                (window(168.0), Some(window(72.0)))
            } else {
                (window(72.0), None)
            };
            AdInput {
                ids: AdIds {
                    account_id: "act_1".into(),
                    campaign_id: "c1".into(),
                    ad_set_id: format!("set-{index}"),
                    ad_id: format!("ad-{index}"),
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
                recent: Some(recent),
                latest,
                frequency: Some(1.5),
                delivery_curve: None,
                weekday_ctr_multiplier: None,
            }
        })
        .collect();
    AllocationRequest {
        ads,
        total_daily_budget: MinorUnits(10_000 * ad_count as i64),
        currency: Currency::parse("USD").expect("USD is known"),
        constraints: AllocationConstraints {
            per_ad_floor: MinorUnits(100),
            per_ad_cap: MinorUnits::ZERO,
            max_change_fraction: 0.5,
        },
        seed: 1,
        reporting_delays: Default::default(),
    }
}
