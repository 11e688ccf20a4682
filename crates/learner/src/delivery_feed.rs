//! Lifetime delivery totals, read again and again (insights, the simulator's observations), turned into
//! the learner's updates: the impressions, clicks and reported conversions added since the last reading,
//! and the clicks that *matured* since then — clicks weighted by the share of their conversions that should
//! have been reported by now (the allocator's reporting-delay model), so a click is a conversion trial only
//! once its conversion could have arrived.

use std::collections::{HashMap, VecDeque};

use crate::features::EncodedFeatures;
use crate::learner::LearningUpdate;

/// Click batches remembered per ad for maturing; older ones count as fully matured.
const REMEMBERED_CLICK_BATCHES: usize = 64;

/// One ad's lifetime totals at one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryTotals {
    pub ad_id: String,
    pub account_id: String,
    pub features: EncodedFeatures,
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct AdHistory {
    impressions: u64,
    clicks: u64,
    conversions: u64,
    /// (hour the clicks were counted, clicks), newest last.
    click_batches: VecDeque<(f64, f64)>,
    /// Clicks that fell off `click_batches`, fully matured.
    matured_before_batches: f64,
    matured_so_far: f64,
}

/// Remembers the last totals of every ad it was shown. It serialises (serde), so a service that reads totals
/// in separate runs (the gateway's autopilot cycles) keeps it between them.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DeliveryFeed {
    ads: HashMap<String, AdHistory>,
}

impl DeliveryFeed {
    /// The updates since the previous reading, at `hour`, in the order of `totals`. `reported_share(account,
    /// age)` is the share of a click's conversions the account has reported `age` hours after it. Totals that went down (a reset
    /// account) start the ad afresh.
    pub fn updates(
        &mut self,
        totals: impl IntoIterator<Item = DeliveryTotals>,
        hour: f64,
        reported_share: impl Fn(&str, f64) -> f64,
    ) -> Vec<LearningUpdate> {
        let mut updates = Vec::new();
        for reading in totals {
            let history = self.ads.entry(reading.ad_id.clone()).or_default();
            if reading.impressions < history.impressions
                || reading.clicks < history.clicks
                || reading.conversions < history.conversions
            {
                *history = AdHistory::default();
            }
            let new_impressions = reading.impressions - history.impressions;
            let new_clicks = reading.clicks - history.clicks;
            let new_conversions = reading.conversions - history.conversions;
            history.impressions = reading.impressions;
            history.clicks = reading.clicks;
            history.conversions = reading.conversions;
            if new_clicks > 0 {
                history.click_batches.push_back((hour, new_clicks as f64));
                if history.click_batches.len() > REMEMBERED_CLICK_BATCHES
                    && let Some((_, clicks)) = history.click_batches.pop_front()
                {
                    history.matured_before_batches += clicks;
                }
            }
            let matured_now = history.matured_before_batches
                + history
                    .click_batches
                    .iter()
                    .map(|(counted_at, clicks)| {
                        clicks * reported_share(&reading.account_id, (hour - counted_at).max(0.0))
                    })
                    .sum::<f64>();
            let new_matured_clicks = (matured_now - history.matured_so_far).max(0.0);
            history.matured_so_far = history.matured_so_far.max(matured_now);
            let update = LearningUpdate {
                ad_id: reading.ad_id,
                account_id: reading.account_id,
                features: reading.features,
                impressions: new_impressions as f64,
                clicks: new_clicks as f64,
                matured_clicks: new_matured_clicks,
                conversions: new_conversions as f64,
            };
            if update.validate().is_ok() {
                updates.push(update);
            }
        }
        updates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(impressions: u64, clicks: u64, conversions: u64) -> DeliveryTotals {
        DeliveryTotals {
            ad_id: "ad".into(),
            account_id: "act_1".into(),
            features: EncodedFeatures::default(),
            impressions,
            clicks,
            conversions,
        }
    }

    /// Conversions are reported over two days: half after one day, all after two.
    fn two_day_delay(_account_id: &str, age_hours: f64) -> f64 {
        (age_hours / 48.0).clamp(0.0, 1.0)
    }

    #[test]
    fn deltas_and_clicks_that_matured_since_the_last_reading() {
        let mut feed = DeliveryFeed::default();
        let first = feed.updates([totals(1_000, 100, 0)], 24.0, two_day_delay);
        assert_eq!(
            (first[0].impressions, first[0].clicks, first[0].matured_clicks),
            (1_000.0, 100.0, 0.0)
        );
        let second = feed.updates([totals(1_500, 150, 2)], 48.0, two_day_delay);
        assert_eq!(
            (second[0].impressions, second[0].clicks, second[0].conversions),
            (500.0, 50.0, 2.0)
        );
        assert!((second[0].matured_clicks - 50.0).abs() < 1e-9, "{second:?}");
        let third = feed.updates([totals(1_500, 150, 3)], 96.0, two_day_delay);
        assert!(
            (third[0].matured_clicks - 100.0).abs() < 1e-9,
            "every click has matured: {third:?}"
        );
        assert!(feed.updates([totals(1_500, 150, 3)], 120.0, two_day_delay).is_empty());
    }

    #[test]
    fn totals_that_went_down_start_the_ad_afresh() {
        let mut feed = DeliveryFeed::default();
        feed.updates([totals(1_000, 100, 5)], 24.0, two_day_delay);
        let after_reset = feed.updates([totals(200, 10, 0)], 48.0, two_day_delay);
        assert_eq!((after_reset[0].impressions, after_reset[0].clicks), (200.0, 10.0));
    }
}
