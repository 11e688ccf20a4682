//! How widely single order values spread in an account, measured on its own ads, so that heavy-tailed
//! orders widen every ad's value posterior instead of a fixed spread making a few large orders look like a
//! sure thing.
//!
//! The request carries each ad's conversion count and value in two windows (the recent one and the rest of its
//! life), not single orders. The two windows' mean values of one ad differ only by chance (an ad's price
//! level does not move between them), and their log-ratio `d` has variance ≈ s² (1/n_recent + 1/n_older),
//! with s² the squared coefficient of variation of one order's value. So d² / (1/n_recent + 1/n_older)
//! estimates s² once per ad with conversions in both windows, and their average over the account's ads,
//! with the configured spread as a prior worth a few ads, is the account's s². Comparing windows of the
//! same ad keeps the real differences between ads' price levels out of the estimate.

use adloop_money::Currency;

use std::borrow::Borrow;

use crate::config::AllocatorConfig;
use crate::input::AdInput;

/// The log-space standard deviation of one conversion's value in this account.
pub(crate) fn conversion_value_log_sd<A: Borrow<AdInput>>(
    ads: &[A],
    currency: Currency,
    config: &AllocatorConfig,
) -> f64 {
    let configured_log_sd = config.conversion_value_log_sd;
    let prior_squared_variation = (configured_log_sd * configured_log_sd).exp_m1();
    let prior_ads = config.value_dispersion_prior_ads;
    let mut estimates_sum = 0.0;
    let mut estimate_count = 0.0;
    for ad in ads {
        let ad = ad.borrow();
        let Some(recent) = ad.recent else {
            continue;
        };
        let recent_conversions = recent.conversions as f64;
        let older_conversions = ad.conversions.saturating_sub(recent.conversions) as f64;
        let recent_value = recent.conversion_value.to_major(currency);
        let older_value = ad.conversion_value.to_major(currency) - recent_value;
        if recent_conversions < 1.0 || older_conversions < 1.0 || recent_value <= 0.0 || older_value <= 0.0 {
            continue;
        }
        let log_ratio = (recent_value / recent_conversions).ln() - (older_value / older_conversions).ln();
        let variance_per_unit_of_variation = 1.0 / recent_conversions + 1.0 / older_conversions;
        estimates_sum += log_ratio * log_ratio / variance_per_unit_of_variation;
        estimate_count += 1.0;
    }
    if estimate_count + prior_ads <= 0.0 {
        return configured_log_sd;
    }
    let squared_variation = (estimates_sum + prior_ads * prior_squared_variation) / (estimate_count + prior_ads);
    squared_variation
        .ln_1p()
        .sqrt()
        .clamp(config.min_conversion_value_log_sd, config.max_conversion_value_log_sd)
}

#[cfg(test)]
mod tests {
    use adloop_money::MinorUnits;

    use super::*;
    use crate::input::RecentWindow;

    fn ad(recent: (u64, i64), older: (u64, i64)) -> AdInput {
        AdInput {
            impressions: 100_000,
            clicks: 1_000,
            conversions: recent.0 + older.0,
            spend: MinorUnits(100_000),
            conversion_value: MinorUnits(recent.1 + older.1),
            age_hours: 240.0,
            current_daily_budget: MinorUnits(10_000),
            recent: Some(RecentWindow {
                hours: 72.0,
                impressions: 30_000,
                clicks: 300,
                spend: MinorUnits(30_000),
                conversions: recent.0,
                conversion_value: MinorUnits(recent.1),
            }),
            ..AdInput::blank_for_tests("a")
        }
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn without_evidence_the_configured_spread_holds() {
        let config = AllocatorConfig::default();
        let log_sd = conversion_value_log_sd::<AdInput>(&[], usd(), &config);
        assert!((log_sd - config.conversion_value_log_sd).abs() < 1e-12);
    }

    #[test]
    fn windows_whose_mean_values_disagree_widen_the_spread_and_steady_ones_narrow_it() {
        let config = AllocatorConfig::default();
        // Ten conversions in each window, mean values 50 and 200: orders that vary wildly.
        let wild: Vec<AdInput> = (0..10).map(|_| ad((10, 50_000), (10, 200_000))).collect();
        // Means 100 and 101 in every ad: orders that hardly vary.
        let steady: Vec<AdInput> = (0..10).map(|_| ad((10, 100_000), (10, 101_000))).collect();
        let wide = conversion_value_log_sd(&wild, usd(), &config);
        let narrow = conversion_value_log_sd(&steady, usd(), &config);
        assert!(wide > 1.2, "{wide}");
        assert!(narrow < config.conversion_value_log_sd * 0.7, "{narrow}");
    }

    #[test]
    fn different_price_levels_between_ads_are_not_read_as_spread() {
        let config = AllocatorConfig::default();
        // Each ad steady, but the ads' price levels differ tenfold.
        let ads: Vec<AdInput> = (0..10)
            .map(|index| {
                let mean = 10_000 * (1 + index);
                ad((20, 20 * mean), (20, 20 * mean))
            })
            .collect();
        assert!(conversion_value_log_sd(&ads, usd(), &config) < config.conversion_value_log_sd);
    }
}
