//! Per-ad posteriors: what an ad's own evidence counts for (recent windows, forgetting, maturity), the
//! priors it starts from (its account's population, the CTR link, learned priors), and the summaries the
//! decisions read. The draws are in `draws`, the population in `population`.

use adloop_money::{Currency, MinorUnits};
use serde::{Deserialize, Serialize};

use crate::config::AllocatorConfig;
use crate::ctr_link::{LinkBelief, prior_moments, relative_ctr};
use crate::delay::ReportingDelay;
use crate::forgetting::{WindowRate, older_evidence_weights};
use crate::input::{AdInput, RecentWindow};
use crate::learned_prior::{PriorScales, blended_prior_means};
use crate::population::PopulationStats;

/// A posterior mean with its central 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub mean: f64,
    pub lower_95: f64,
    pub upper_95: f64,
}

/// An ad's counts over a stretch of its life, its clicks weighted by the share of their conversions reported
/// by now; what the posterior reads is the sum of its stretches after forgetting (`effective_evidence`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EffectiveEvidence {
    pub impressions: f64,
    pub clicks: f64,
    pub conversions: f64,
    /// Clicks weighted by the share of their conversions that should have been reported by now.
    pub matured_clicks: f64,
    pub value: f64,
}

/// Ages count in whole hours: an hour moves blend weights and reporting maturity by little, and polls within
/// the hour then share their posterior (and cache entry).
fn age_in_whole_hours(ad: &AdInput) -> f64 {
    ad.age_hours.floor()
}

/// What the posterior reads of an ad: its recent window in full, the rest of its life as far as the change
/// tests keep it (`forgetting`), each stretch's clicks matured by the reporting-delay schedule.
pub(crate) fn effective_evidence(
    ad: &AdInput,
    currency: Currency,
    delay: &ReportingDelay,
    config: &AllocatorConfig,
    recent_maturity_factor: f64,
) -> EffectiveEvidence {
    let age_hours = age_in_whole_hours(ad);
    let recent = ad.recent.unwrap_or_default();
    let recent_hours = if ad.recent.is_some() {
        recent.hours.min(age_hours)
    } else {
        0.0
    };
    let lifetime =
        EffectiveEvidence::of_counts(ad.impressions, ad.clicks, ad.conversions, ad.conversion_value, currency);
    let recent_counts = EffectiveEvidence::of_window(&recent, currency);
    let older = lifetime
        .minus(recent_counts)
        .matured(delay.average_reported_share(recent_hours, age_hours.max(recent_hours + 1.0)));
    let reported_share_within = |from_hours: f64, to_hours: f64| {
        (delay.average_reported_share(from_hours, to_hours) * recent_maturity_factor).min(1.0)
    };
    let whole_recent = recent_counts.matured(reported_share_within(0.0, recent_hours.max(1.0)));
    let older_weights = change_weights(age_hours, whole_recent, older, config);
    let Some(latest) = ad
        .latest
        .filter(|latest| ad.recent.is_some() && latest.hours < recent_hours)
    else {
        return whole_recent.plus(older.weighted(older_weights.ctr, older_weights.conversions));
    };
    // The recent window split at the latest: the days between are forgotten only as far as both the latest
    // window's test (against everything before it) and the recent window's say the ad changed.
    let latest_hours = latest.hours;
    let latest_counts = EffectiveEvidence::of_window(&latest, currency);
    let latest_part = latest_counts.matured(reported_share_within(0.0, latest_hours.max(1.0)));
    let middle = recent_counts
        .minus(latest_counts)
        .matured(reported_share_within(latest_hours, recent_hours));
    let before_latest = middle.plus(older);
    let latest_weights = change_weights(age_hours, latest_part, before_latest, config);
    latest_part
        .plus(middle.weighted(
            latest_weights.ctr.max(older_weights.ctr),
            latest_weights.conversions.max(older_weights.conversions),
        ))
        .plus(older.weighted(older_weights.ctr, older_weights.conversions))
}

/// How much of `before` still counts next to `after` (the change tests of `forgetting`).
fn change_weights(
    age_hours: f64,
    after: EffectiveEvidence,
    before: EffectiveEvidence,
    config: &AllocatorConfig,
) -> crate::forgetting::OlderEvidenceWeights {
    older_evidence_weights(
        age_hours,
        (after.ctr_counts(), before.ctr_counts()),
        (after.conversion_counts(), before.conversion_counts()),
        config,
    )
}

impl EffectiveEvidence {
    /// A stretch of an ad's delivery, none of its clicks matured yet.
    fn of_counts(impressions: u64, clicks: u64, conversions: u64, value: MinorUnits, currency: Currency) -> Self {
        EffectiveEvidence {
            impressions: impressions as f64,
            clicks: clicks as f64,
            conversions: conversions as f64,
            matured_clicks: 0.0,
            value: value.to_major(currency),
        }
    }

    fn of_window(window: &RecentWindow, currency: Currency) -> Self {
        Self::of_counts(
            window.impressions,
            window.clicks,
            window.conversions,
            window.conversion_value,
            currency,
        )
    }

    /// What is left of `self` without `part` (never below zero; none of it matured yet).
    fn minus(self, part: Self) -> Self {
        EffectiveEvidence {
            impressions: (self.impressions - part.impressions).max(0.0),
            clicks: (self.clicks - part.clicks).max(0.0),
            conversions: (self.conversions - part.conversions).max(0.0),
            matured_clicks: 0.0,
            value: (self.value - part.value).max(0.0),
        }
    }

    /// With `reported_share` of its clicks' conversions reported by now.
    fn matured(self, reported_share: f64) -> Self {
        EffectiveEvidence {
            matured_clicks: self.clicks * reported_share,
            ..self
        }
    }

    fn plus(self, other: Self) -> Self {
        EffectiveEvidence {
            impressions: self.impressions + other.impressions,
            clicks: self.clicks + other.clicks,
            conversions: self.conversions + other.conversions,
            matured_clicks: self.matured_clicks + other.matured_clicks,
            value: self.value + other.value,
        }
    }

    fn ctr_counts(self) -> WindowRate {
        WindowRate {
            events: self.clicks,
            exposure: self.impressions,
        }
    }

    fn conversion_counts(self) -> WindowRate {
        WindowRate {
            events: self.conversions,
            exposure: self.matured_clicks,
        }
    }

    /// Its clicks and impressions at `ctr_weight`, its conversions (and their clicks and value) at
    /// `conversion_weight`.
    fn weighted(self, ctr_weight: f64, conversion_weight: f64) -> Self {
        EffectiveEvidence {
            impressions: ctr_weight * self.impressions,
            clicks: ctr_weight * self.clicks,
            conversions: conversion_weight * self.conversions,
            matured_clicks: conversion_weight * self.matured_clicks,
            value: conversion_weight * self.value,
        }
    }
}

/// An ad's population prior on conversions per click under the account's belief about the CTR link: its
/// mean, and its strength in pseudo-conversions. A Gamma prior of strength k around a mean m has variance
/// m²/k; over the belief about β the ad's mean itself varies (`ctr_link::prior_moments`: second-moment
/// ratio q), so the prior's variance is m²·(q/k + q − 1) and its strength k / (q + k·(q − 1)): the full
/// strength at the account's CTR or where the link is known, less the farther the ad's CTR is from the
/// account's while the link is uncertain.
fn linked_conversion_prior(
    population: &PopulationStats,
    at_account_ctr: f64,
    strength: f64,
    evidence: &EffectiveEvidence,
    config: &AllocatorConfig,
) -> (f64, f64) {
    let belief = LinkBelief {
        exponent_centre: population.conversion_ctr_link,
        exponent_sd: population.conversion_ctr_link_sd,
        conversions_per_click_at_account_ctr: at_account_ctr,
    };
    let relative = relative_ctr(evidence, population.ctr, config.population_ctr_prior_impressions);
    let (mean, second_moment_ratio) = prior_moments(&belief, relative);
    let linked_strength = strength / (second_moment_ratio + strength * (second_moment_ratio - 1.0));
    (mean, linked_strength)
}

/// An ad's posterior: CTR ~ Beta(ctr_alpha, ctr_beta); conversions per click ~ Gamma(shape, rate) (Poisson
/// counts of conversions over matured clicks); value per conversion ~ log-normal(value_log_mean,
/// value_log_sd); cost per 1000 impressions observed (shrunk to the population's for new ads).
/// ROAS = CTR × conversions per click × value per conversion × 1000 / CPM, so plentiful click evidence
/// informs ROAS long before conversions arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdPosterior {
    pub ctr_alpha: f64,
    pub ctr_beta: f64,
    pub conversion_rate_shape: f64,
    pub conversion_rate_rate: f64,
    pub value_log_mean: f64,
    pub value_log_sd: f64,
    /// Major units per 1000 impressions.
    pub cpm: f64,
    pub ctr_weight: f64,
    /// Projected CTR multiplier over the next step from the recent-vs-older trend (1.0 = no fatigue).
    pub fatigue_factor: f64,
    /// The ad's CTR over the coming day against its week's, from its own weekday rhythm (1.0 = none).
    #[serde(default = "crate::population::one")]
    pub weekday_factor: f64,
    pub prior_source: String,
    /// The γ to which the account's own ads took the learner's conversion lift for this ad's prior
    /// (`learned_link`), when they did: said in the ad's reason.
    #[serde(default)]
    pub learned_conversion_link: Option<f64>,
}

impl AdPosterior {
    /// What multiplies the ad's drawn scores for the coming day: its projected fatigue and its own weekday
    /// rhythm.
    pub fn coming_day_factor(&self) -> f64 {
        self.fatigue_factor * self.weekday_factor
    }

    pub fn ctr(&self) -> Interval {
        let total = self.ctr_alpha + self.ctr_beta;
        let mean = self.ctr_alpha / total;
        let sd = (self.ctr_alpha * self.ctr_beta / (total * total * (total + 1.0))).sqrt();
        Interval {
            mean,
            lower_95: (mean - 1.96 * sd).max(0.0),
            upper_95: (mean + 1.96 * sd).min(1.0),
        }
    }

    /// ROAS = CTR × conversions per click × value per conversion × 1000 / CPM, with its moments (the three
    /// random factors are independent).
    pub fn roas(&self) -> Interval {
        let ctr_total = self.ctr_alpha + self.ctr_beta;
        let ctr_mean = self.ctr_alpha / ctr_total;
        let ctr_second_moment = self.ctr_alpha * (self.ctr_alpha + 1.0) / (ctr_total * (ctr_total + 1.0));
        let rate_mean = self.conversion_rate_shape / self.conversion_rate_rate;
        let rate_second_moment = self.conversion_rate_shape * (self.conversion_rate_shape + 1.0)
            / (self.conversion_rate_rate * self.conversion_rate_rate);
        let value_mean = (self.value_log_mean + self.value_log_sd * self.value_log_sd / 2.0).exp();
        let value_second_moment = (2.0 * self.value_log_mean + 2.0 * self.value_log_sd * self.value_log_sd).exp();
        let scale = 1000.0 / self.cpm;
        let mean = ctr_mean * rate_mean * value_mean * scale;
        let second_moment = ctr_second_moment * rate_second_moment * value_second_moment * scale * scale;
        let variance = (second_moment - mean * mean).max(0.0);
        // A log-normal with these moments gives a skewed, non-negative interval.
        let log_variance = (1.0 + variance / (mean * mean)).ln();
        let log_mean = mean.ln() - log_variance / 2.0;
        let log_sd = log_variance.sqrt();
        Interval {
            mean,
            lower_95: (log_mean - 1.96 * log_sd).exp(),
            upper_95: (log_mean + 1.96 * log_sd).exp(),
        }
    }
}

/// A smoothed CTR for the trend: clicks and impressions shrunk towards the population CTR.
pub(crate) fn shrunk_ctr(clicks: f64, impressions: f64, population_ctr: f64, strength: f64) -> f64 {
    (clicks + population_ctr * strength) / (impressions + strength)
}

/// The ad's posterior on the configured reporting-delay schedule, its fatigue read on its own (no
/// account-wide trend, which needs the other ads); `prior_scales` are the request's
/// learned-prior scales ([`PriorScales::of_request`]), empty when no ad carries a learned prior.
pub fn build_posterior(
    ad: &AdInput,
    currency: Currency,
    population: &PopulationStats,
    prior_scales: &PriorScales,
    config: &AllocatorConfig,
) -> AdPosterior {
    let evidence = effective_evidence(
        ad,
        currency,
        &config.reporting_delay,
        config,
        population.recent_maturity_factor,
    );
    posterior_from_evidence(ad, &evidence, currency, population, prior_scales, 1.0, config)
}

/// [`build_posterior`] from the ad's evidence, already computed; `common_ctr_trend` is how the CTR of the
/// account's other ads moved over the same windows (`fatigue::common_ctr_trends`; 1: no common move).
pub(crate) fn posterior_from_evidence(
    ad: &AdInput,
    evidence: &EffectiveEvidence,
    currency: Currency,
    population: &PopulationStats,
    prior_scales: &PriorScales,
    common_ctr_trend: f64,
    config: &AllocatorConfig,
) -> AdPosterior {
    let dna_boost = 1.0 + config.creative_dna_max_boost * ad.creative_dna_score.unwrap_or(0.0);
    let prior_means = blended_prior_means(ad, population, prior_scales, config);
    let learned_conversion_link = prior_means.conversion_link_exponent;
    let mut prior_sources = vec!["population".to_owned()];
    prior_sources.extend(prior_means.learned_sources);

    let ctr_prior_mean = (prior_means.ctr * dna_boost).min(0.999);
    let ctr_prior_strength = if prior_means.ctr_learned {
        population.learned_ctr_prior_impressions
    } else {
        config.population_ctr_prior_impressions
    };
    let ctr_alpha = ctr_prior_mean * ctr_prior_strength;
    let ctr_beta = (1.0 - ctr_prior_mean) * ctr_prior_strength;
    // A learned prior already speaks for this ad; the account's CTR link shapes only the population's (with
    // the link off, centre and sd 0, `linked_conversion_prior` keeps the pooled mean and strength exactly).
    let (conversion_prior_mean, conversion_prior_strength) = if prior_means.conversions_per_click_learned {
        (
            prior_means.conversions_per_click,
            population.learned_conversion_prior_conversions,
        )
    } else {
        linked_conversion_prior(
            population,
            prior_means.conversions_per_click,
            population.conversion_prior_conversions,
            evidence,
            config,
        )
    };
    let rate_shape = conversion_prior_strength * dna_boost;
    let rate_rate = conversion_prior_strength / conversion_prior_mean.max(1e-12);
    let cpm_prior_impressions = config.cpm_prior_impressions;
    let cpm = (ad.spend.to_major(currency) + population.cpm * cpm_prior_impressions / 1000.0)
        / (ad.impressions as f64 + cpm_prior_impressions)
        * 1000.0;

    let value_prior = config.value_prior_conversions;
    let mean_value =
        (evidence.value + value_prior * population.value_per_conversion) / (evidence.conversions + value_prior);
    let value_log_sd = population.conversion_value_log_sd / (evidence.conversions + value_prior).sqrt();
    AdPosterior {
        ctr_alpha: ctr_alpha + evidence.clicks,
        ctr_beta: ctr_beta + (evidence.impressions - evidence.clicks).max(0.0),
        conversion_rate_shape: rate_shape + evidence.conversions,
        conversion_rate_rate: rate_rate + evidence.matured_clicks,
        value_log_mean: mean_value.max(1e-12).ln() - value_log_sd * value_log_sd / 2.0,
        value_log_sd,
        cpm: cpm.max(1e-9),
        ctr_weight: config.ctr_weight_schedule.ctr_weight(age_in_whole_hours(ad)),
        fatigue_factor: crate::fatigue::fatigue_factor(ad, population.ctr, common_ctr_trend, config),
        weekday_factor: ad.weekday_ctr_multiplier.unwrap_or(1.0),
        prior_source: prior_sources.join("+"),
        learned_conversion_link,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A month-old ad that converted 3% of its `older_clicks` before its last week, whose last week is `week`
    /// and last 72 hours `latest` (clicks, conversions), read with or without the latest window.
    fn month_old_ad(older_clicks: u64, week: (u64, u64), latest: (u64, u64), with_latest: bool) -> EffectiveEvidence {
        let window = |hours: f64, (clicks, conversions): (u64, u64)| RecentWindow {
            hours,
            impressions: clicks * 100,
            clicks,
            spend: MinorUnits(clicks as i64 * 50),
            conversions,
            conversion_value: MinorUnits(conversions as i64 * 5_000),
        };
        let mut ad = AdInput::blank_for_tests("a");
        ad.age_hours = 720.0;
        ad.clicks = older_clicks + week.0;
        ad.impressions = ad.clicks * 100;
        ad.spend = MinorUnits(ad.clicks as i64 * 50);
        ad.conversions = older_clicks * 3 / 100 + week.1;
        ad.conversion_value = MinorUnits(ad.conversions as i64 * 5_000);
        ad.recent = Some(window(168.0, week));
        ad.latest = with_latest.then(|| window(72.0, latest));
        let immediate = ReportingDelay {
            components: vec![crate::delay::DelayComponent {
                share: 1.0,
                min_hours: 0.0,
                max_hours: 0.0,
            }],
        };
        effective_evidence(
            &ad,
            Currency::parse("USD").unwrap(),
            &immediate,
            &AllocatorConfig::default(),
            1.0,
        )
    }

    #[test]
    fn a_collapse_inside_the_latest_window_is_forgotten_down_to_it_and_a_dip_the_week_evens_out_is_not() {
        // Conversions stopped three days ago: 36 in the 1,200 clicks of the four days before, none in the last
        // 900. Read through the latest window, the four good days go with the older evidence.
        let week_only = month_old_ad(6_900, (2_100, 36), (900, 0), false);
        let with_latest = month_old_ad(6_900, (2_100, 36), (900, 0), true);
        let rate = |evidence: EffectiveEvidence| evidence.conversions / evidence.matured_clicks;
        assert!(
            rate(with_latest) < 0.7 * rate(week_only),
            "the collapse read through the latest window {:.4}, the week alone {:.4}",
            rate(with_latest),
            rate(week_only)
        );
        assert!(with_latest.matured_clicks < week_only.matured_clicks - 1_000.0);
        // A weekly rhythm: the last three days convert 2%, the four before 3.75%, the week as a whole 3% like
        // the weeks before it: everything still counts.
        let rhythm = month_old_ad(2_300, (700, 21), (300, 6), true);
        assert_eq!((rhythm.matured_clicks, rhythm.conversions), (3_000.0, 90.0));
    }
}
