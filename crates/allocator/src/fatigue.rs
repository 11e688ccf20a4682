//! Fatigue: an ad whose CTR is falling is projected to keep falling for a while, so its score is lowered
//! before its returns show it. The trend is the ad's recent CTR against everything older — relative to how
//! the CTR of the account's other ads moved over the same windows. A weekly rhythm, a holiday or a market
//! that lifts or lowers every ad alike is not fatigue: a large ad measures that common dip precisely while
//! small ads' noisy CTRs hide it, so judging each ad on its own would read a weekend as the large ad tiring
//! and cut the best ad every week.

use std::collections::HashMap;

use crate::config::AllocatorConfig;
use crate::input::AdInput;
use crate::posterior::shrunk_ctr;

/// An ad's clicks and impressions in its two windows, when both are large enough to read a trend from.
#[derive(Debug, Clone, Copy, Default)]
struct WindowClicks {
    recent_clicks: f64,
    recent_impressions: f64,
    older_clicks: f64,
    older_impressions: f64,
}

impl WindowClicks {
    fn of(ad: &AdInput, config: &AllocatorConfig) -> Option<WindowClicks> {
        let recent = ad.recent?;
        let windows = WindowClicks {
            recent_clicks: recent.clicks as f64,
            recent_impressions: recent.impressions as f64,
            older_clicks: ad.clicks.saturating_sub(recent.clicks) as f64,
            older_impressions: ad.impressions.saturating_sub(recent.impressions) as f64,
        };
        let enough = windows.recent_impressions >= config.fatigue_min_impressions
            && windows.older_impressions >= config.fatigue_min_impressions;
        enough.then_some(windows)
    }

    fn add(&mut self, other: &WindowClicks, sign: f64) {
        self.recent_clicks += sign * other.recent_clicks;
        self.recent_impressions += sign * other.recent_impressions;
        self.older_clicks += sign * other.older_clicks;
        self.older_impressions += sign * other.older_impressions;
    }
}

/// Each ad's common CTR trend: the pooled recent CTR over the pooled older CTR of the *other* ads of its
/// account with enough impressions in both windows (the ad itself left out, so its own fatigue is never
/// explained away by itself). With fewer than `account_estimate_min_ads − 1` such other ads, or no clicks
/// in a window, 1: nothing common to tell.
pub(crate) fn common_ctr_trends(ads: &[AdInput], config: &AllocatorConfig) -> Vec<f64> {
    let windows: Vec<Option<WindowClicks>> = ads.iter().map(|ad| WindowClicks::of(ad, config)).collect();
    let mut by_account: HashMap<&str, (usize, WindowClicks)> = HashMap::new();
    for (ad, ad_windows) in ads.iter().zip(&windows) {
        if let Some(ad_windows) = ad_windows {
            let (count, totals) = by_account.entry(ad.ids.account_id.as_str()).or_default();
            *count += 1;
            totals.add(ad_windows, 1.0);
        }
    }
    let min_other_ads = config.account_estimate_min_ads.saturating_sub(1).max(1);
    ads.iter()
        .zip(&windows)
        .map(|(ad, ad_windows)| {
            let Some((count, totals)) = by_account.get(ad.ids.account_id.as_str()) else {
                return 1.0;
            };
            let mut others = *totals;
            let mut other_count = *count;
            if let Some(own) = ad_windows {
                others.add(own, -1.0);
                other_count -= 1;
            }
            let readable = other_count >= min_other_ads && others.recent_clicks > 0.0 && others.older_clicks > 0.0;
            if !readable {
                return 1.0;
            }
            (others.recent_clicks / others.recent_impressions) / (others.older_clicks / others.older_impressions)
        })
        .collect()
}

/// The ad's CTR trend relative to `common_ctr_trend`, projected `fatigue_projection_hours` ahead per window
/// length. 1.0 means no fatigue; rising CTRs never raise scores.
pub(crate) fn fatigue_factor(
    ad: &AdInput,
    population_ctr: f64,
    common_ctr_trend: f64,
    config: &AllocatorConfig,
) -> f64 {
    let Some(windows) = WindowClicks::of(ad, config) else {
        return 1.0;
    };
    let Some(recent) = ad.recent else { return 1.0 };
    let strength = config.population_ctr_prior_impressions;
    let recent_ctr = shrunk_ctr(
        windows.recent_clicks,
        windows.recent_impressions,
        population_ctr,
        strength,
    );
    let older_ctr = shrunk_ctr(
        windows.older_clicks,
        windows.older_impressions,
        population_ctr,
        strength,
    );
    // A dip every ad shares excuses the ad's own; other ads rising does not make it tired.
    let trend = (recent_ctr / older_ctr / common_ctr_trend.min(1.0)).min(1.0);
    trend
        .powf(config.fatigue_projection_hours / recent.hours.max(1.0))
        .clamp(0.05, 1.0)
}

#[cfg(test)]
mod tests {

    use adloop_money::MinorUnits;

    use super::*;
    use crate::input::RecentWindow;

    /// An ad with `older_impressions` before its 72-hour window at `older_ctr` and `recent_impressions` in it
    /// at `recent_ctr`.
    fn ad(id: &str, older_impressions: u64, older_ctr: f64, recent_impressions: u64, recent_ctr: f64) -> AdInput {
        let older_clicks = (older_impressions as f64 * older_ctr).round() as u64;
        let recent_clicks = (recent_impressions as f64 * recent_ctr).round() as u64;
        AdInput {
            impressions: older_impressions + recent_impressions,
            clicks: older_clicks + recent_clicks,
            spend: MinorUnits(100_000),
            age_hours: 480.0,
            current_daily_budget: MinorUnits(10_000),
            recent: Some(RecentWindow {
                hours: 72.0,
                impressions: recent_impressions,
                clicks: recent_clicks,
                ..RecentWindow::default()
            }),
            ..AdInput::blank_for_tests(id)
        }
    }

    fn fatigue_of(ads: &[AdInput], index: usize) -> f64 {
        let config = AllocatorConfig::default();
        let common = common_ctr_trends(ads, &config);
        fatigue_factor(&ads[index], 0.01, common[index], &config)
    }

    #[test]
    fn a_dip_every_ad_shares_is_not_fatigue_but_an_ad_tiring_faster_than_the_rest_is() {
        // A weekend: every ad's CTR 30% below its older level. The large ad measures it precisely.
        let weekend = vec![
            ad("large", 400_000, 0.010, 200_000, 0.007),
            ad("small-1", 20_000, 0.012, 10_000, 0.0084),
            ad("small-2", 20_000, 0.009, 10_000, 0.0063),
            ad("small-3", 20_000, 0.011, 10_000, 0.0077),
        ];
        let large_alone = fatigue_factor(&weekend[0], 0.01, 1.0, &AllocatorConfig::default());
        assert!(large_alone < 0.75, "on its own the dip reads as fatigue: {large_alone}");
        assert!(fatigue_of(&weekend, 0) > 0.97, "{}", fatigue_of(&weekend, 0));
        // The large ad tires: its CTR halves while the others hold.
        let tiring = vec![
            ad("large", 400_000, 0.010, 200_000, 0.005),
            ad("small-1", 20_000, 0.012, 10_000, 0.012),
            ad("small-2", 20_000, 0.009, 10_000, 0.009),
            ad("small-3", 20_000, 0.011, 10_000, 0.011),
        ];
        assert!(fatigue_of(&tiring, 0) < 0.6, "{}", fatigue_of(&tiring, 0));
    }

    #[test]
    fn other_ads_rising_does_not_make_a_steady_ad_tired_and_a_lone_ad_is_judged_on_its_own() {
        let others_rising = vec![
            ad("steady", 400_000, 0.010, 200_000, 0.010),
            ad("rising-1", 20_000, 0.010, 10_000, 0.014),
            ad("rising-2", 20_000, 0.010, 10_000, 0.014),
        ];
        assert!(
            fatigue_of(&others_rising, 0) > 0.99,
            "{}",
            fatigue_of(&others_rising, 0)
        );
        let alone = vec![ad("alone", 400_000, 0.010, 200_000, 0.007)];
        assert_eq!(common_ctr_trends(&alone, &AllocatorConfig::default()), vec![1.0]);
        assert!(fatigue_of(&alone, 0) < 0.75);
    }
}
