//! Allocation requests shaped like a polled account: campaign-sim's world, read every few minutes.

use adloop_allocator::AllocationRequest;
use adloop_money::MinorUnits;
use campaign_sim::policy::allocation_request;
use campaign_sim::{Observation, Scenario};

/// A 100-ad account: many-ads-200's distributions with 100 ads.
pub fn hundred_ad_scenario() -> Scenario {
    account_scenario(100)
}

/// An account of `ad_count` ads with many-ads-200's distributions.
pub fn account_scenario(ad_count: usize) -> Scenario {
    Scenario::from_toml(&format!(
        r#"
name = "load-{ad_count}"
currency = "USD"
days = 30
decision_interval_hours = 1
total_daily_budget = 1000000

[[ad_groups]]
name_prefix = "ad"
count = {ad_count}
ctr = {{ median = 0.01, log_sd = 0.35 }}
conversion_rate = {{ median = 0.02, log_sd = 0.5 }}
value_per_conversion = {{ median = 5000, log_sd = 0.3 }}
cpm = {{ median = 1000, log_sd = 0.2 }}
"#,
    ))
    .expect("the built-in load scenario is valid")
}

/// The observation as a poller sees it `fraction` of the way through the current hour: counts grown
/// proportionally from the last hour's delivery (conversions and value move only on the hour).
pub fn polled_observation(before: &Observation, after: &Observation, fraction: f64) -> Observation {
    let mut polled = before.clone();
    for (ad, next) in polled.ads.iter_mut().zip(&after.ads) {
        let between = |from: u64, to: u64| from + ((to.saturating_sub(from)) as f64 * fraction) as u64;
        ad.impressions = between(ad.impressions, next.impressions);
        ad.clicks = between(ad.clicks, next.clicks).min(ad.impressions);
        ad.spend = MinorUnits(ad.spend.get() + ((next.spend.get() - ad.spend.get()) as f64 * fraction) as i64);
        // Each trailing window grows the same way, never beyond the ad's lifetime counts.
        for (window, next_window) in [
            (&mut ad.last_72_hours, &next.last_72_hours),
            (&mut ad.last_7_days, &next.last_7_days),
        ] {
            window.impressions = between(window.impressions, next_window.impressions).min(ad.impressions);
            window.clicks = between(window.clicks, next_window.clicks)
                .min(window.impressions)
                .min(ad.clicks);
            window.spend = window.spend.min(ad.spend);
        }
        ad.age_hours += fraction;
    }
    polled
}

pub fn request_for(observation: &Observation) -> AllocationRequest {
    let mut request = allocation_request(observation, 0, 0.5);
    // Pollers leave the seed at 0: ml-service's stable default.
    request.seed = 0;
    request
}
