//! Lifetime delivery totals, read again and again (insights, the simulator's observations), turned into
//! the learner's updates: the impressions, clicks and reported conversions added since the last reading,
//! and the clicks that *matured* since then — clicks weighted by the share of their conversions that should
//! have been reported by now (the allocator's reporting-delay model), so a click is a conversion trial only
//! once its conversion could have arrived.
//!
//! The CTR head learns from an ad's first week only (`DEFAULT_CTR_LEARNING_MAX_AD_AGE_HOURS`). Its predictions are
//! priors for *new* ads, which meet a fresh audience; an older ad's CTR has fallen as its audience saw it again
//! and again, and the ads a budget keeps running longest are the ones it favours, so their worn CTRs would teach
//! the head that what makes an ad worth funding lowers clicks. Conversions per matured click are learned over the
//! ad's whole life: they are sparse, and their late reports belong to clicks of every age.

use std::collections::{HashMap, VecDeque};

use crate::features::EncodedFeatures;
use crate::learner::LearningUpdate;

/// Click batches remembered per ad for maturing; older ones count as fully matured.
const REMEMBERED_CLICK_BATCHES: usize = 64;

/// How old an ad may be for its impressions and clicks to teach the CTR head: a week, the window the
/// allocator reads a settled ad on, chosen before it was measured. In `month` (fatigue) the CTR weights'
/// RMS error after four weeks fell from 0.204 to 0.108 on seeds 1–10 (two weeks: 0.161) and from 0.192 to
/// 0.168 held out (seeds 21–40); in worlds without fatigue it moved by at most 0.012
/// (`docs/learners-notebook.md`).
pub const DEFAULT_CTR_LEARNING_MAX_AD_AGE_HOURS: f64 = 168.0;

/// Whether an ad `age_hours` old still teaches the CTR head its impressions and clicks: up to
/// `ctr_learning_max_ad_age_hours` (`DEFAULT_CTR_LEARNING_MAX_AD_AGE_HOURS` says why). An ad of unknown age
/// teaches as a young one. The one rule for every path events reach the learner by (this feed, ml-service's
/// `RecordEvent` for events that carry the ad's creation time).
pub fn ad_teaches_ctr_head(age_hours: Option<f64>, ctr_learning_max_ad_age_hours: f64) -> bool {
    age_hours.is_none_or(|age_hours| age_hours <= ctr_learning_max_ad_age_hours)
}

/// Hours from an ad's creation to `at_unix_seconds` (0 for a time before it), both Unix seconds: the age
/// [`ad_teaches_ctr_head`] reads where an ad's creation time is known as a timestamp.
pub fn ad_age_hours(created_unix_seconds: i64, at_unix_seconds: i64) -> f64 {
    (at_unix_seconds - created_unix_seconds).max(0) as f64 / 3600.0
}

/// One ad's lifetime totals at one reading.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryTotals {
    pub ad_id: String,
    pub account_id: String,
    pub features: EncodedFeatures,
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
    /// Hours since the ad was created, when known. An ad of unknown age teaches the CTR head as a young one.
    pub age_hours: Option<f64>,
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
    /// age)` is the share of a click's conversions the account has reported `age` hours after it. Totals that
    /// went down (a reset account) start the ad afresh. An ad older than `ctr_learning_max_ad_age_hours`
    /// sends no impressions or clicks (`DEFAULT_CTR_LEARNING_MAX_AD_AGE_HOURS` says why).
    pub fn updates(
        &mut self,
        totals: impl IntoIterator<Item = DeliveryTotals>,
        hour: f64,
        ctr_learning_max_ad_age_hours: f64,
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
            let teaches_ctr = ad_teaches_ctr_head(reading.age_hours, ctr_learning_max_ad_age_hours);
            let (ctr_impressions, ctr_clicks) = if teaches_ctr {
                (new_impressions as f64, new_clicks as f64)
            } else {
                (0.0, 0.0)
            };
            let update = LearningUpdate {
                ad_id: reading.ad_id,
                account_id: reading.account_id,
                features: reading.features,
                impressions: ctr_impressions,
                clicks: ctr_clicks,
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

    const NO_AGE_LIMIT: f64 = f64::INFINITY;

    fn totals(impressions: u64, clicks: u64, conversions: u64) -> DeliveryTotals {
        DeliveryTotals {
            ad_id: "ad".into(),
            account_id: "act_1".into(),
            features: EncodedFeatures::default(),
            impressions,
            clicks,
            conversions,
            age_hours: None,
        }
    }

    /// Conversions are reported over two days: half after one day, all after two.
    fn two_day_delay(_account_id: &str, age_hours: f64) -> f64 {
        (age_hours / 48.0).clamp(0.0, 1.0)
    }

    #[test]
    fn deltas_and_clicks_that_matured_since_the_last_reading() {
        let mut feed = DeliveryFeed::default();
        let first = feed.updates([totals(1_000, 100, 0)], 24.0, NO_AGE_LIMIT, two_day_delay);
        assert_eq!(
            (first[0].impressions, first[0].clicks, first[0].matured_clicks),
            (1_000.0, 100.0, 0.0)
        );
        let second = feed.updates([totals(1_500, 150, 2)], 48.0, NO_AGE_LIMIT, two_day_delay);
        assert_eq!(
            (second[0].impressions, second[0].clicks, second[0].conversions),
            (500.0, 50.0, 2.0)
        );
        assert!((second[0].matured_clicks - 50.0).abs() < 1e-9, "{second:?}");
        let third = feed.updates([totals(1_500, 150, 3)], 96.0, NO_AGE_LIMIT, two_day_delay);
        assert!(
            (third[0].matured_clicks - 100.0).abs() < 1e-9,
            "every click has matured: {third:?}"
        );
        assert!(
            feed.updates([totals(1_500, 150, 3)], 120.0, NO_AGE_LIMIT, two_day_delay)
                .is_empty()
        );
    }

    #[test]
    fn totals_that_went_down_start_the_ad_afresh() {
        let mut feed = DeliveryFeed::default();
        feed.updates([totals(1_000, 100, 5)], 24.0, NO_AGE_LIMIT, two_day_delay);
        let after_reset = feed.updates([totals(200, 10, 0)], 48.0, NO_AGE_LIMIT, two_day_delay);
        assert_eq!((after_reset[0].impressions, after_reset[0].clicks), (200.0, 10.0));
    }

    #[test]
    fn an_ad_past_its_first_week_teaches_conversions_but_not_clicks() {
        let aged = |impressions, clicks, conversions, age_hours| DeliveryTotals {
            age_hours: Some(age_hours),
            ..totals(impressions, clicks, conversions)
        };
        let max_age = DEFAULT_CTR_LEARNING_MAX_AD_AGE_HOURS;
        let mut feed = DeliveryFeed::default();
        let young = feed.updates([aged(1_000, 100, 0, 100.0)], 100.0, max_age, two_day_delay);
        assert_eq!((young[0].impressions, young[0].clicks), (1_000.0, 100.0));
        let old = feed.updates([aged(1_500, 150, 4, 200.0)], 200.0, max_age, two_day_delay);
        assert_eq!((old[0].impressions, old[0].clicks), (0.0, 0.0), "{old:?}");
        assert_eq!(old[0].conversions, 4.0);
        assert!(
            (old[0].matured_clicks - 100.0).abs() < 1e-9,
            "the first reading's clicks matured: {old:?}"
        );
        let unknown_age = feed.updates([totals(2_000, 200, 4)], 300.0, max_age, two_day_delay);
        assert_eq!((unknown_age[0].impressions, unknown_age[0].clicks), (500.0, 50.0));
    }
}
