//! Each ad's hidden truths, resolved from the scenario for one seed, and how they move over time.

use std::collections::BTreeMap;

use rand_distr::{Distribution as _, StandardNormal};

use crate::rng::SimRng;
use crate::scenario::{
    AdGroupSpec, AdSpec, DriftSpec, GroupChangeSpec, LogNormalSpec, Scenario, WeeklySeasonalitySpec,
};

/// What the world knows about an ad and no policy but the oracle may see.
#[derive(Debug, Clone)]
pub struct AdTruth {
    pub name: String,
    pub account: String,
    pub campaign: String,
    pub ctr: f64,
    pub conversion_rate: f64,
    /// The share of `ctr` and `conversion_rate` that no creative feature explains: the ad's own luck in its
    /// group's draw (1 for ads written out in the scenario, whose rates are stated, not drawn). A rate over
    /// this factor is what a learner that knew every feature's effect exactly could predict.
    pub ctr_unexplained_factor: f64,
    pub conversion_rate_unexplained_factor: f64,
    /// Mean value of one conversion, in minor units.
    pub value_per_conversion: f64,
    pub value_sd: f64,
    /// Lomax tail index of order values, when they are heavy-tailed that way instead of log-normal.
    pub value_tail_index: Option<f64>,
    /// Cost per 1000 impressions, in minor units.
    pub cpm: f64,
    pub fatigue_rate: f64,
    pub conversion_fatigue_rate: f64,
    pub own_weekly_rhythm: Option<WeeklyRhythm>,
    pub audience_size: f64,
    pub launch_hour: u32,
    pub pause_hour: Option<u32>,
    pub features: BTreeMap<String, f64>,
    pub drift: Option<DriftSpec>,
}

/// An ad's own weekly rhythm: × exp(log_amplitude × cos(2π (day − peak_day) / 7)), days counted from the
/// start of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeeklyRhythm {
    pub log_amplitude: f64,
    pub peak_day: f64,
}

impl WeeklyRhythm {
    fn from_spec(spec: WeeklySeasonalitySpec, start_weekday: u32) -> WeeklyRhythm {
        WeeklyRhythm {
            log_amplitude: spec.log_amplitude,
            peak_day: (spec.peak_weekday - f64::from(start_weekday)).rem_euclid(7.0),
        }
    }

    fn multiplier_at(&self, hour: f64) -> f64 {
        let day = hour / 24.0;
        (self.log_amplitude * (std::f64::consts::TAU * (day - self.peak_day) / 7.0).cos()).exp()
    }
}

impl AdTruth {
    /// Average times each reached person has seen the ad, as Meta reports it: impressions over reach, with
    /// reach growing towards the audience size. Fatigue reads the same curve from the ad's *exposure*
    /// (impressions that have not yet worn off).
    pub fn frequency(&self, impressions: f64) -> f64 {
        if impressions <= 0.0 {
            return 1.0;
        }
        let reach = self.audience_size * (1.0 - (-impressions / self.audience_size).exp());
        (impressions / reach.max(1.0)).max(1.0)
    }

    /// CTR multiplier from creative fatigue: 1 for a fresh audience, falling as frequency rises.
    pub fn fatigue_multiplier(&self, exposure_impressions: f64) -> f64 {
        (-self.fatigue_rate * (self.frequency(exposure_impressions) - 1.0)).exp()
    }

    /// Conversion-rate multiplier from fatigue.
    pub fn conversion_fatigue_multiplier(&self, exposure_impressions: f64) -> f64 {
        (-self.conversion_fatigue_rate * (self.frequency(exposure_impressions) - 1.0)).exp()
    }

    fn own_weekly_multiplier(&self, hour: f64) -> f64 {
        self.own_weekly_rhythm.map_or(1.0, |rhythm| rhythm.multiplier_at(hour))
    }

    /// (CTR multiplier, conversion-rate multiplier) from drift at `hour`.
    fn drift_multipliers(&self, hour: f64) -> (f64, f64) {
        let Some(drift) = &self.drift else {
            return (1.0, 1.0);
        };
        let day = hour / 24.0;
        let progress = if day < drift.start_day {
            0.0
        } else if day >= drift.end_day {
            1.0
        } else {
            (day - drift.start_day) / (drift.end_day - drift.start_day)
        };
        let interpolate = |target: f64| 1.0 + (target - 1.0) * progress;
        (
            interpolate(drift.ctr_multiplier),
            interpolate(drift.conversion_rate_multiplier),
        )
    }

    /// Expected CTR at `hour` given the ad's exposure (before the account's seasonality and daily noise,
    /// which move every ad alike; with the ad's own weekly rhythm, which does not).
    pub fn expected_ctr_at(&self, hour: f64, exposure_impressions: f64) -> f64 {
        let (ctr_drift, _) = self.drift_multipliers(hour);
        (self.ctr * ctr_drift * self.fatigue_multiplier(exposure_impressions) * self.own_weekly_multiplier(hour))
            .clamp(0.0, 1.0)
    }

    pub fn expected_conversion_rate_at(&self, hour: f64, exposure_impressions: f64) -> f64 {
        let (_, conversion_rate_drift) = self.drift_multipliers(hour);
        (self.conversion_rate
            * conversion_rate_drift
            * self.conversion_fatigue_multiplier(exposure_impressions)
            * self.own_weekly_multiplier(hour))
        .clamp(0.0, 1.0)
    }

    /// Expected conversion value per unit of spend (true ROAS) at `hour` at the base CPM (before the auction
    /// curve, the account's seasonality and noise).
    pub fn expected_roas_at(&self, hour: f64, exposure_impressions: f64) -> f64 {
        let value_per_impression = self.expected_ctr_at(hour, exposure_impressions)
            * self.expected_conversion_rate_at(hour, exposure_impressions)
            * self.value_per_conversion;
        value_per_impression * 1000.0 / self.cpm
    }
}

fn hour_of_day_boundary(day: f64, decision_interval_hours: u32) -> u32 {
    let hour = (day * 24.0).floor() as u32;
    hour / decision_interval_hours * decision_interval_hours
}

fn draw_log_normal(spec: LogNormalSpec, extra_log_effect: f64, rng: &mut SimRng) -> f64 {
    let standard_normal: f64 = StandardNormal.sample(rng);
    spec.median * (spec.log_sd * standard_normal + extra_log_effect).exp()
}

fn truth_from_ad_spec(spec: &AdSpec, decision_interval_hours: u32, start_weekday: u32) -> AdTruth {
    AdTruth {
        name: spec.name.clone(),
        account: spec.account.clone(),
        campaign: spec.campaign.clone(),
        ctr: spec.ctr,
        conversion_rate: spec.conversion_rate,
        ctr_unexplained_factor: 1.0,
        conversion_rate_unexplained_factor: 1.0,
        value_per_conversion: spec.value_per_conversion.get() as f64,
        value_sd: spec.value_sd,
        value_tail_index: spec.value_tail_index,
        cpm: spec.cpm.get() as f64,
        fatigue_rate: spec.fatigue_rate,
        conversion_fatigue_rate: spec.conversion_fatigue_rate,
        own_weekly_rhythm: spec
            .weekly_seasonality
            .map(|seasonality| WeeklyRhythm::from_spec(seasonality, start_weekday)),
        audience_size: spec.audience_size,
        launch_hour: hour_of_day_boundary(spec.launch_day, decision_interval_hours),
        pause_hour: spec
            .pause_day
            .map(|day| hour_of_day_boundary(day, decision_interval_hours)),
        features: spec.features.clone(),
        drift: spec.drift.clone(),
    }
}

fn truths_from_group(group: &AdGroupSpec, decision_interval_hours: u32, rng: &mut SimRng) -> Vec<AdTruth> {
    use rand::RngExt as _;
    (0..group.count)
        .map(|index_in_group| {
            let mut features = BTreeMap::new();
            let mut ctr_log_effect = 0.0;
            let mut conversion_rate_log_effect = 0.0;
            for feature in &group.features {
                let present = rng.random_bool(feature.probability);
                features.insert(feature.name.clone(), if present { 1.0 } else { 0.0 });
                if present {
                    ctr_log_effect += feature.ctr_log_effect;
                    conversion_rate_log_effect += feature.conversion_rate_log_effect;
                }
            }
            let launch_day = if group.launch_every_days > 0.0 {
                group.first_launch_day + f64::from(index_in_group / group.ads_per_launch) * group.launch_every_days
            } else {
                group.first_launch_day
            };
            let ctr = draw_log_normal(group.ctr, ctr_log_effect, rng).min(1.0);
            let ctr_link = (ctr / group.ctr.median).powf(-group.conversion_rate_ctr_exponent);
            let conversion_rate =
                (draw_log_normal(group.conversion_rate, conversion_rate_log_effect, rng) * ctr_link).min(1.0);
            let ctr_explained = (group.ctr.median * ctr_log_effect.exp()).min(1.0);
            let conversion_rate_explained = (group.conversion_rate.median * conversion_rate_log_effect.exp()).min(1.0);
            let mut truth = AdTruth {
                name: format!("{}-{:03}", group.name_prefix, index_in_group + 1),
                account: group.account.clone(),
                campaign: group.campaign.clone(),
                ctr,
                conversion_rate,
                ctr_unexplained_factor: ctr / ctr_explained,
                conversion_rate_unexplained_factor: conversion_rate / conversion_rate_explained,
                value_per_conversion: draw_log_normal(group.value_per_conversion, 0.0, rng),
                value_sd: group.value_sd,
                value_tail_index: group.value_tail_index,
                cpm: draw_log_normal(group.cpm, 0.0, rng).max(1.0),
                fatigue_rate: group.fatigue_rate,
                conversion_fatigue_rate: group.conversion_fatigue_rate,
                // Drawn only when the group has a rhythm, so other scenarios' truths keep their draws.
                own_weekly_rhythm: (group.weekly_seasonality_log_amplitude > 0.0).then(|| WeeklyRhythm {
                    log_amplitude: group.weekly_seasonality_log_amplitude,
                    peak_day: rng.random_range(0.0..7.0),
                }),
                audience_size: group.audience_size,
                launch_hour: hour_of_day_boundary(launch_day, decision_interval_hours),
                pause_hour: None,
                features,
                drift: None,
            };
            // Drawn only when the group has changes, so other scenarios' truths keep their draws.
            truth.drift = group.changes.and_then(|changes| draw_change(changes, launch_day, rng));
            truth
        })
        .collect()
}

/// Whether a group's ad launched on `launch_day` changes, and how (a step on a day of the spec's range).
fn draw_change(changes: GroupChangeSpec, launch_day: f64, rng: &mut SimRng) -> Option<DriftSpec> {
    use rand::RngExt as _;
    if !rng.random_bool(changes.share_of_ads) {
        return None;
    }
    let day = rng
        .random_range(changes.earliest_day..=changes.latest_day)
        .max(launch_day);
    let ctr_normal: f64 = StandardNormal.sample(rng);
    let conversion_rate_normal: f64 = StandardNormal.sample(rng);
    Some(DriftSpec {
        start_day: day,
        end_day: day,
        ctr_multiplier: (changes.ctr_log_sd * ctr_normal).exp(),
        conversion_rate_multiplier: (changes.conversion_rate_log_sd * conversion_rate_normal).exp(),
    })
}

/// Every ad's truths for one seed: explicit ads as written, group ads drawn from their distributions.
pub fn resolve_truths(scenario: &Scenario, world_rng: &mut SimRng) -> Vec<AdTruth> {
    let mut truths: Vec<AdTruth> = scenario
        .ads
        .iter()
        .map(|spec| truth_from_ad_spec(spec, scenario.decision_interval_hours, scenario.start_weekday))
        .collect();
    for group in &scenario.ad_groups {
        truths.extend(truths_from_group(group, scenario.decision_interval_hours, world_rng));
    }
    truths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_truth() -> AdTruth {
        AdTruth {
            name: "ad".into(),
            account: "main".into(),
            campaign: "campaign-1".into(),
            ctr: 0.02,
            conversion_rate: 0.05,
            ctr_unexplained_factor: 1.0,
            conversion_rate_unexplained_factor: 1.0,
            value_per_conversion: 5000.0,
            value_sd: 0.0,
            value_tail_index: None,
            cpm: 1000.0,
            fatigue_rate: 0.5,
            conversion_fatigue_rate: 0.0,
            own_weekly_rhythm: None,
            audience_size: 10_000.0,
            launch_hour: 0,
            pause_hour: None,
            features: BTreeMap::new(),
            drift: Some(DriftSpec {
                start_day: 10.0,
                end_day: 10.0,
                ctr_multiplier: 0.5,
                conversion_rate_multiplier: 1.0,
            }),
        }
    }

    #[test]
    fn true_roas_is_value_per_impression_over_cost_per_impression() {
        let truth = AdTruth {
            fatigue_rate: 0.0,
            drift: None,
            ..plain_truth()
        };
        // 0.02 × 0.05 × 5000 = 5 minor units per impression; 1000/1000 = 1 per impression.
        assert!((truth.expected_roas_at(0.0, 0.0) - 5.0).abs() < 1e-12);
    }

    #[test]
    fn fatigue_lowers_ctr_as_frequency_rises() {
        let truth = plain_truth();
        assert!((truth.fatigue_multiplier(0.0) - 1.0).abs() < 1e-12);
        assert!(truth.fatigue_multiplier(10_000.0) < truth.fatigue_multiplier(1_000.0));
        assert!(
            truth.frequency(50_000.0) > 4.9,
            "half the audience size five times over"
        );
        assert_eq!(
            truth.expected_conversion_rate_at(0.0, 50_000.0),
            0.05,
            "conversion fatigue is off unless set"
        );
    }

    #[test]
    fn conversion_fatigue_lowers_the_conversion_rate_but_not_ctr() {
        let truth = AdTruth {
            fatigue_rate: 0.0,
            conversion_fatigue_rate: 0.3,
            drift: None,
            ..plain_truth()
        };
        assert_eq!(truth.expected_ctr_at(0.0, 50_000.0), 0.02);
        let tired = truth.expected_conversion_rate_at(0.0, 50_000.0);
        assert!(tired < 0.05 * 0.4, "frequency ~5 → × e^−1.2: {tired}");
    }

    #[test]
    fn an_own_weekly_rhythm_peaks_on_its_day_and_repeats_every_week() {
        let spec = WeeklySeasonalitySpec {
            log_amplitude: 0.5,
            peak_weekday: 5.0,
        };
        // The run starts on a Wednesday (2): Saturday (5) is run day 3.
        let truth = AdTruth {
            fatigue_rate: 0.0,
            drift: None,
            own_weekly_rhythm: Some(WeeklyRhythm::from_spec(spec, 2)),
            ..plain_truth()
        };
        let saturday = truth.expected_conversion_rate_at(3.0 * 24.0, 0.0);
        let next_saturday = truth.expected_conversion_rate_at(10.0 * 24.0, 0.0);
        let tuesday = truth.expected_conversion_rate_at(6.5 * 24.0, 0.0);
        assert!((saturday - 0.05 * 0.5_f64.exp()).abs() < 1e-12, "{saturday}");
        assert!((next_saturday - saturday).abs() < 1e-12);
        assert!((tuesday - 0.05 * (-0.5_f64).exp()).abs() < 1e-12, "{tuesday}");
    }

    #[test]
    fn a_step_drift_applies_from_its_day() {
        let truth = AdTruth {
            fatigue_rate: 0.0,
            ..plain_truth()
        };
        assert!((truth.expected_ctr_at(9.9 * 24.0, 0.0) - 0.02).abs() < 1e-12);
        assert!((truth.expected_ctr_at(10.0 * 24.0, 0.0) - 0.01).abs() < 1e-12);
    }

    fn group_truths(extra_group_keys: &str) -> Vec<AdTruth> {
        let scenario = Scenario::from_toml(&format!(
            r#"
            name = "group"
            currency = "USD"
            days = 30
            total_daily_budget = 100000
            [[ad_groups]]
            name_prefix = "g"
            count = 400
            ctr = {{ median = 0.01, log_sd = 0.5 }}
            conversion_rate = {{ median = 0.02, log_sd = 0.0 }}
            value_per_conversion = {{ median = 5000 }}
            cpm = {{ median = 1000 }}
            {extra_group_keys}
            "#
        ))
        .expect("valid scenario");
        resolve_truths(
            &scenario,
            &mut crate::rng::stream(7, crate::rng::StreamPurpose::WorldTruths, 0),
        )
    }

    #[test]
    fn a_ctr_link_makes_the_curious_clickers_poor_buyers() {
        // Exponent 1: conversions per impression alike across the group, whatever the CTR.
        for truth in group_truths("conversion_rate_ctr_exponent = 1.0") {
            let per_impression = truth.ctr * truth.conversion_rate;
            assert!(
                (per_impression - 0.01 * 0.02).abs() < 1e-12,
                "{}: {per_impression}",
                truth.name
            );
        }
        // Without a link the conversion rate is the group's, whatever the CTR.
        for truth in group_truths("") {
            assert!((truth.conversion_rate - 0.02).abs() < 1e-12);
        }
    }

    #[test]
    fn a_group_with_changes_changes_about_its_share_of_ads_once_within_the_days() {
        let truths = group_truths(
            "changes = { share_of_ads = 0.3, earliest_day = 7.0, latest_day = 20.0, conversion_rate_log_sd = 0.8 }",
        );
        let changed: Vec<&DriftSpec> = truths.iter().filter_map(|truth| truth.drift.as_ref()).collect();
        assert!(
            (90..=150).contains(&changed.len()),
            "{} of 400 ads changed",
            changed.len()
        );
        for change in &changed {
            assert!(change.start_day == change.end_day && (7.0..=20.0).contains(&change.start_day));
            assert_eq!(change.ctr_multiplier, 1.0, "no CTR spread given");
        }
        let fell = changed
            .iter()
            .filter(|change| change.conversion_rate_multiplier < 1.0)
            .count();
        assert!(fell > changed.len() / 4 && fell < changed.len() * 3 / 4, "{fell} fell");
        assert!(group_truths("").iter().all(|truth| truth.drift.is_none()));
    }
}
