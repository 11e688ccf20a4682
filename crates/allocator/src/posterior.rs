//! Per-ad posteriors from evidence and priors, their summaries, and posterior draws of the blended score.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::forgetting::{WindowRate, older_evidence_weights};
use adloop_money::{Currency, MinorUnits};
use rand::SeedableRng as _;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::config::AllocatorConfig;
use crate::ctr_link::{LinkBelief, estimate_ctr_link, prior_moments, relative_ctr};
use crate::delay::ReportingDelay;
use crate::input::{AdInput, RecentWindow};
use crate::learned_prior::{PriorScales, blended_prior_means};

/// A posterior mean with its central 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub mean: f64,
    pub lower_95: f64,
    pub upper_95: f64,
}

/// What the request's ads tell about each other: the population priors and the scales that make CTR and
/// ROAS comparable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PopulationStats {
    pub ctr: f64,
    /// Conversions per (matured) click.
    pub conversions_per_click: f64,
    /// Mean value of one conversion, in major units.
    pub value_per_conversion: f64,
    /// Cost per 1000 impressions, in major units.
    pub cpm: f64,
    /// How many pseudo-conversions the population prior on conversions per click is worth for this
    /// account: as much as the spread between its ads warrants (empirical Bayes), at most
    /// `population_conversion_prior_conversions`.
    pub conversion_prior_conversions: f64,
    /// The strength, in pseudo-conversions, of the conversion prior of ads whose mean learned priors moved:
    /// as much as the ads' spread around those means warrants, at most
    /// `max_learned_conversion_prior_conversions` (`learned_prior`). The population's when no ad has one.
    pub learned_conversion_prior_conversions: f64,
    /// The strength, in pseudo-impressions, of the CTR prior of ads whose mean learned priors moved:
    /// `population_ctr_prior_impressions` times the share of the ads' CTR spread those means explain, at
    /// most `max_learned_ctr_prior_weight_of_population` times it (`learned_prior`).
    pub learned_ctr_prior_impressions: f64,
    /// What the account's ads say about β of the link between an ad's CTR and its prior conversions per
    /// click (`ctr_link`): the prior's centre (0 unless the ads show a link) and, in the next field, how
    /// uncertain β still is (both 0: no link, the pooled rate for every ad). `conversions_per_click` is the
    /// rate at the account's CTR.
    #[serde(default)]
    pub conversion_ctr_link: f64,
    #[serde(default)]
    pub conversion_ctr_link_sd: f64,
    /// How mature the recent window really is against the reporting-delay schedule, measured on the
    /// account's ads (`delay::recent_maturity_factor`; 1: as the schedule says).
    #[serde(default = "one")]
    pub recent_maturity_factor: f64,
    /// Log-space sd of one conversion's value, measured on the account's ads (`value_dispersion`).
    #[serde(default = "default_conversion_value_log_sd")]
    pub conversion_value_log_sd: f64,
}

fn default_conversion_value_log_sd() -> f64 {
    AllocatorConfig::default().conversion_value_log_sd
}

fn one() -> f64 {
    1.0
}

impl PopulationStats {
    pub fn roas(&self) -> f64 {
        self.ctr * self.conversions_per_click * self.value_per_conversion * 1000.0 / self.cpm
    }
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

/// The population the request's ads form, used as the default prior and as the common scale.
/// (every ad on the configured reporting-delay schedule).
pub fn population_stats(ads: &[AdInput], currency: Currency, config: &AllocatorConfig) -> PopulationStats {
    evidence_and_population(ads, currency, &BTreeMap::new(), config).1
}

/// Every ad's evidence and the population the ads form, each computed once: the population and every ad's
/// posterior read the same evidence, and the evidence reads the account's reporting-delay check.
pub(crate) fn evidence_and_population(
    ads: &[AdInput],
    currency: Currency,
    account_schedules: &BTreeMap<String, ReportingDelay>,
    config: &AllocatorConfig,
) -> (Vec<EffectiveEvidence>, PopulationStats) {
    let maturity_factors = crate::delay::recent_maturity_factors(ads, account_schedules, config);
    let evidence: Vec<EffectiveEvidence> = ads
        .iter()
        .enumerate()
        .map(|(index, ad)| {
            let delay = crate::delay::schedule_for(ad, account_schedules, config);
            effective_evidence(ad, currency, delay, config, maturity_factors.for_ad(index))
        })
        .collect();
    let population = population_from_evidence(ads, &evidence, currency, config, maturity_factors.account);
    (evidence, population)
}

/// The population prior's strength in pseudo-conversions, from how much the ads' conversions per click
/// differ beyond what chance explains (a method-of-moments estimate of the between-ad variance τ² of the
/// rates, as in a random-effects meta-analysis): a Gamma prior with the pooled mean `pooled_rate` and that
/// variance has shape rate²/τ². Ads that differ a lot get a weak prior (their own evidence speaks sooner);
/// ads that look alike keep `strongest`, and so do ads with too little evidence to tell
/// (`account_estimate_min_ads`, `account_estimate_min_conversions`).
fn conversion_prior_strength(
    ad_evidence: &[EffectiveEvidence],
    pooled_rate: f64,
    strongest: f64,
    config: &AllocatorConfig,
) -> f64 {
    let with_clicks: Vec<(f64, f64)> = ad_evidence
        .iter()
        .filter(|evidence| evidence.matured_clicks >= 1.0)
        .map(|evidence| (evidence.conversions, evidence.matured_clicks))
        .collect();
    let total_conversions: f64 = with_clicks.iter().map(|(conversions, _)| conversions).sum();
    if !config.enough_for_account_estimate(with_clicks.len(), total_conversions) || pooled_rate <= 0.0 {
        return strongest;
    }
    let clicks: f64 = with_clicks.iter().map(|(_, clicks)| clicks).sum();
    let weighted_squares: f64 = with_clicks
        .iter()
        .map(|(conversions, clicks)| clicks * (conversions / clicks - pooled_rate).powi(2))
        .sum();
    let chance = (with_clicks.len() - 1) as f64 * pooled_rate;
    let effective_clicks = clicks - with_clicks.iter().map(|(_, clicks)| clicks * clicks).sum::<f64>() / clicks;
    if effective_clicks <= 0.0 {
        return strongest;
    }
    let between_variance = (weighted_squares - chance) / effective_clicks;
    if between_variance <= 0.0 {
        return strongest;
    }
    let weakest = config.weakest_population_conversion_prior_conversions.min(strongest);
    (pooled_rate * pooled_rate / between_variance).clamp(weakest, strongest)
}

/// The strength of a prior that predicts each ad its own conversions per click (`predicted[i]` for ad `i`),
/// from how much the ads still differ from their predictions beyond chance: the same method-of-moments
/// estimate as [`conversion_prior_strength`], around the predictions instead of one pooled rate (no degree
/// of freedom is spent on a mean). Predictions that explain the ads' differences earn a strong prior.
pub(crate) fn conversion_prior_strength_around(
    ad_evidence: &[EffectiveEvidence],
    predicted: &[f64],
    too_little_evidence: f64,
    strongest: f64,
    config: &AllocatorConfig,
) -> f64 {
    debug_assert_eq!(ad_evidence.len(), predicted.len());
    let with_clicks: Vec<(f64, f64, f64)> = ad_evidence
        .iter()
        .zip(predicted)
        .filter(|(evidence, _)| evidence.matured_clicks >= 1.0)
        .map(|(evidence, predicted)| (evidence.conversions, evidence.matured_clicks, *predicted))
        .collect();
    let total_conversions: f64 = with_clicks.iter().map(|(conversions, _, _)| conversions).sum();
    let clicks: f64 = with_clicks.iter().map(|(_, clicks, _)| clicks).sum();
    if !config.enough_for_account_estimate(with_clicks.len(), total_conversions) || clicks <= 0.0 {
        return too_little_evidence.min(strongest);
    }
    let weighted_squares: f64 = with_clicks
        .iter()
        .map(|(conversions, clicks, predicted)| clicks * (conversions / clicks - predicted).powi(2))
        .sum();
    let chance: f64 = with_clicks.iter().map(|(_, _, predicted)| predicted).sum();
    let mean_prediction = with_clicks
        .iter()
        .map(|(_, clicks, predicted)| clicks * predicted)
        .sum::<f64>()
        / clicks;
    let between_variance = (weighted_squares - chance) / clicks;
    if between_variance <= 0.0 {
        return strongest;
    }
    let weakest = config.weakest_population_conversion_prior_conversions.min(strongest);
    (mean_prediction * mean_prediction / between_variance).clamp(weakest, strongest)
}

/// How much the ads' CTRs differ from `predicted` (one per ad) beyond chance: a method-of-moments estimate
/// of the between-ad variance of CTR around the predictions (binomial chance removed), the same estimate as
/// [`conversion_prior_strength`]. `None` while the ads have too little evidence; zero or less when the
/// predictions explain every difference.
pub(crate) fn ctr_spread_around(
    ad_evidence: &[EffectiveEvidence],
    predicted: &[f64],
    config: &AllocatorConfig,
) -> Option<f64> {
    debug_assert_eq!(ad_evidence.len(), predicted.len());
    let with_impressions: Vec<(f64, f64, f64)> = ad_evidence
        .iter()
        .zip(predicted)
        .filter(|(evidence, _)| evidence.impressions >= 1.0)
        .map(|(evidence, predicted)| (evidence.clicks, evidence.impressions, *predicted))
        .collect();
    let impressions: f64 = with_impressions.iter().map(|(_, impressions, _)| impressions).sum();
    let clicks: f64 = with_impressions.iter().map(|(clicks, _, _)| clicks).sum();
    if with_impressions.len() < config.account_estimate_min_ads
        || clicks < config.ctr_spread_min_clicks
        || impressions <= 0.0
    {
        return None;
    }
    let weighted_squares: f64 = with_impressions
        .iter()
        .map(|(clicks, impressions, predicted)| impressions * (clicks / impressions - predicted).powi(2))
        .sum();
    let chance: f64 = with_impressions
        .iter()
        .map(|(_, _, predicted)| predicted * (1.0 - predicted))
        .sum();
    Some((weighted_squares - chance) / impressions)
}

/// A group of ads' evidence added up: what a population is made of.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PooledCounts {
    pub impressions: f64,
    pub clicks: f64,
    pub conversions: f64,
    pub matured_clicks: f64,
    /// Conversion value, major units.
    pub value: f64,
    /// Lifetime spend (major units) and impressions, for the CPM.
    pub spend: f64,
    pub lifetime_impressions: f64,
}

impl PooledCounts {
    pub(crate) fn of<A: Borrow<AdInput>>(ads: &[A], ad_evidence: &[EffectiveEvidence], currency: Currency) -> Self {
        debug_assert_eq!(ads.len(), ad_evidence.len());
        let mut counts = PooledCounts::default();
        for (ad, evidence) in ads.iter().zip(ad_evidence) {
            let ad = ad.borrow();
            counts.impressions += evidence.impressions;
            counts.clicks += evidence.clicks;
            counts.conversions += evidence.conversions;
            counts.matured_clicks += evidence.matured_clicks;
            counts.value += evidence.value;
            counts.spend += ad.spend.to_major(currency);
            counts.lifetime_impressions += ad.impressions as f64;
        }
        counts
    }
}

/// [`population_stats`] from each ad's evidence, already computed (one entry per ad, in order).
pub(crate) fn population_from_evidence<A: Borrow<AdInput>>(
    ads: &[A],
    ad_evidence: &[EffectiveEvidence],
    currency: Currency,
    config: &AllocatorConfig,
    recent_maturity_factor: f64,
) -> PopulationStats {
    let PooledCounts {
        impressions,
        clicks,
        conversions,
        matured_clicks,
        value,
        spend,
        lifetime_impressions,
    } = PooledCounts::of(ads, ad_evidence, currency);
    // Weak defaults keep a brand-new account workable: 1% CTR, 2% of clicks converting, a value of 1.
    let ctr = if impressions > 0.0 {
        ((clicks + 1.0) / (impressions + 100.0)).clamp(1e-6, 0.999)
    } else {
        0.01
    };
    let value_per_conversion = if conversions > 0.0 { value / conversions } else { 1.0 };
    let pooled_conversions_per_click = (conversions + 0.02) / (matured_clicks + 1.0);
    let cpm = if lifetime_impressions > 0.0 {
        spend / lifetime_impressions * 1000.0
    } else {
        10.0
    };
    let link = estimate_ctr_link(ad_evidence, ctr, pooled_conversions_per_click, config);
    // The strength is what the ads' spread in conversions per click warrants; the link's uncertainty
    // weakens it further for ads far from the account's CTR (`linked_conversion_prior`).
    let conversion_prior_conversions = conversion_prior_strength(
        ad_evidence,
        pooled_conversions_per_click,
        config.population_conversion_prior_conversions,
        config,
    );
    let conversions_per_click = link.conversions_per_click_at_account_ctr;
    PopulationStats {
        conversion_ctr_link: link.exponent_centre,
        conversion_ctr_link_sd: link.exponent_sd,
        recent_maturity_factor,
        conversion_value_log_sd: crate::value_dispersion::conversion_value_log_sd(ads, currency, config),
        ctr,
        conversions_per_click: conversions_per_click.max(1e-9),
        value_per_conversion: value_per_conversion.max(1e-9),
        cpm: cpm.max(1e-9),
        conversion_prior_conversions,
        learned_conversion_prior_conversions: conversion_prior_conversions,
        learned_ctr_prior_impressions: config.population_ctr_prior_impressions,
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
    pub prior_source: String,
}

impl AdPosterior {
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
        prior_source: prior_sources.join("+"),
    }
}

/// Above these shape parameters a normal with the exact mean and variance is indistinguishable from the
/// Beta for our purposes.
const NORMAL_APPROXIMATION_SHAPE: f64 = 50.0;

/// Paired posterior draws of an ad's CTR and ROAS: draw i of both comes from the same CTR draw (in no
/// particular order). They do not depend on the request's population: the blend into one score, which
/// does, is applied after any cache ([`ScoreDraws::blended`]), so a poll whose population moved still hits.
/// Stored as f32: 4 bytes a value keeps a cache of many ads' draws small, and seven significant digits are
/// far finer than the posteriors' spread. Computed in f64 and rounded once, so every caller (simulator,
/// service, cache tiers) sees the same bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreDraws {
    pub ctr: Vec<f32>,
    /// Return on ad spend, in value per unit of spend.
    pub roas: Vec<f32>,
}

impl ScoreDraws {
    /// Draws of each component (0 when the two components disagree: such draws are unusable).
    pub fn draw_count(&self) -> usize {
        if self.ctr.len() == self.roas.len() {
            self.ctr.len()
        } else {
            0
        }
    }

    /// Bytes the draws occupy (for cache weighing).
    pub fn size_in_bytes(&self) -> usize {
        (self.ctr.len() + self.roas.len()) * std::mem::size_of::<f32>()
    }

    /// Each draw's blended score: projected fatigue × (w·CTR/population CTR + (1−w)·ROAS/population ROAS).
    pub fn blended(&self, posterior: &AdPosterior, population: &PopulationStats) -> Vec<f32> {
        let ctr_weight = posterior.ctr_weight;
        let ctr_scale = posterior.fatigue_factor * ctr_weight / population.ctr;
        let roas_scale = posterior.fatigue_factor * (1.0 - ctr_weight) / population.roas();
        self.ctr
            .iter()
            .zip(&self.roas)
            .map(|(ctr, roas)| (ctr_scale * f64::from(*ctr) + roas_scale * f64::from(*roas)) as f32)
            .collect()
    }
}

/// The mean of some draws, in f64.
pub fn mean_of(scores: &[f32]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let sum: f64 = scores.iter().map(|score| f64::from(*score)).sum();
    Some(sum / scores.len() as f64)
}

/// Standard-normal quantiles at the midpoints of `count` equal-probability strata: the draws of every
/// posterior component are these values, shuffled (Latin hypercube sampling), so each component's marginal
/// distribution is represented exactly and only the pairing between components is random. That makes a
/// few hundred draws as precise as thousands of plain random ones.
pub fn stratified_normal_quantiles(count: usize) -> Vec<f64> {
    (0..count)
        .map(|stratum| inverse_standard_normal_cdf((stratum as f64 + 0.5) / count as f64))
        .collect()
}

/// The standard normal quantile function (Acklam's rational approximation, relative error below 1.2e-9).
pub fn inverse_standard_normal_cdf(probability: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239e0,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838e0,
        -2.549732539343734e0,
        4.374664141464968e0,
        2.938163982698783e0,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996e0,
        3.754408661907416e0,
    ];
    const LOW: f64 = 0.02425;
    let probability = probability.clamp(1e-300, 1.0 - 1e-16);
    if probability < LOW {
        let q = (-2.0 * probability.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if probability <= 1.0 - LOW {
        let q = probability - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - probability).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// A Gamma(shape, 1) quantile from a standard-normal quantile (Wilson–Hilferty: the cube root of a gamma
/// variable is nearly normal; accurate for the shapes the priors guarantee, about 2 and up).
fn gamma_from_normal(shape: f64, standard_normal: f64) -> f64 {
    let nine_shape = 9.0 * shape;
    let cube_root = 1.0 - 1.0 / nine_shape + standard_normal / nine_shape.sqrt();
    shape * cube_root.max(0.0).powi(3)
}

/// The standard-normal draws behind every ad's posterior components: each component's draws are the
/// stratified quantiles (its marginal represented exactly), and the draws are paired across components by a
/// scrambled Sobol sequence instead of independent shuffles: draw k of every component takes the stratum
/// that the k-th Sobol point's coordinate ranks in, so the pairs fill the joint space evenly too. With
/// independent shuffles (plain Latin hypercube) the random pairing was what was left of the error in
/// P(best) (about ±0.016 at 1,024 draws); scrambled Sobol points are the standard quasi-Monte Carlo remedy
/// (`sobol_burley`: Owen-scrambled, so each seed gives an independent, unbiased randomisation). Beyond the
/// sequence's 65,536 points, independent shuffles. All ads of an allocation share them: each ad's empirical
/// distribution is what P(best) reads, and sharing the pairing across ads costs nothing in accuracy while
/// saving the work per ad and component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentNormals {
    pub ctr: Vec<f64>,
    pub ctr_second: Vec<f64>,
    pub conversion_rate: Vec<f64>,
    pub value: Vec<f64>,
}

/// Normals kept by [`ComponentNormals::shared`], with their (draw count, seed).
type KeptNormals = ((usize, u64), Arc<ComponentNormals>);

/// The longest sequence `sobol_burley` provides.
const SOBOL_MAX_POINTS: usize = 1 << 16;

impl ComponentNormals {
    pub fn new(draw_count: usize, seed: u64) -> ComponentNormals {
        let quantiles = stratified_normal_quantiles(draw_count);
        if draw_count > SOBOL_MAX_POINTS {
            return ComponentNormals::shuffled(&quantiles, seed);
        }
        let scramble_seed = (seed ^ (seed >> 32)) as u32;
        // The components that multiply into ROAS take the sequence's first (most even) dimensions.
        let paired = |dimension: u32| {
            let coordinates: Vec<f32> = (0..draw_count as u32)
                .map(|index| sobol_burley::sample(index, dimension, scramble_seed))
                .collect();
            // Each draw's stratum: the rank of its coordinate. The first 2^m points put exactly one coordinate
            // in each of 2^m equal intervals, so for those counts the interval is the rank (no sort).
            let mut stratum_of_draw = vec![0; draw_count];
            if draw_count.is_power_of_two() {
                for (stratum, coordinate) in stratum_of_draw.iter_mut().zip(&coordinates) {
                    *stratum = ((f64::from(*coordinate) * draw_count as f64) as usize).min(draw_count - 1);
                }
            } else {
                let mut by_coordinate: Vec<usize> = (0..draw_count).collect();
                by_coordinate.sort_by(|first, second| {
                    coordinates[*first]
                        .total_cmp(&coordinates[*second])
                        .then(first.cmp(second))
                });
                for (stratum, draw_index) in by_coordinate.into_iter().enumerate() {
                    stratum_of_draw[draw_index] = stratum;
                }
            }
            stratum_of_draw
                .into_iter()
                .map(|stratum| quantiles[stratum])
                .collect::<Vec<f64>>()
        };
        ComponentNormals {
            ctr: paired(0),
            conversion_rate: paired(1),
            value: paired(2),
            ctr_second: paired(3),
        }
    }

    /// The normals for `draw_count` draws under `seed`, built once per process for the few combinations in
    /// use: they depend on nothing else, and most requests share the default seed and one draw count, so
    /// rebuilding them (a few hundred inverse normal CDFs and Sobol points per component) on every
    /// allocation is wasted work. Large draw counts are built fresh to keep the memo small.
    pub fn shared(draw_count: usize, seed: u64) -> Arc<ComponentNormals> {
        /// Combinations kept; the oldest leaves first.
        const KEPT: usize = 16;
        /// Above this many draws (32 KiB a component) the normals are not kept.
        const LARGEST_KEPT_DRAW_COUNT: usize = 4096;
        static BUILT: OnceLock<Mutex<Vec<KeptNormals>>> = OnceLock::new();
        if draw_count > LARGEST_KEPT_DRAW_COUNT {
            return Arc::new(ComponentNormals::new(draw_count, seed));
        }
        let built = BUILT.get_or_init(Default::default);
        let lock = || built.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (draw_count, seed);
        if let Some((_, normals)) = lock().iter().find(|(kept_key, _)| *kept_key == key) {
            return normals.clone();
        }
        let normals = Arc::new(ComponentNormals::new(draw_count, seed));
        let mut kept = lock();
        if !kept.iter().any(|(kept_key, _)| *kept_key == key) {
            if kept.len() >= KEPT {
                kept.remove(0);
            }
            kept.push((key, normals.clone()));
        }
        normals
    }

    /// Independent shuffles of the quantiles (plain Latin hypercube sampling).
    fn shuffled(quantiles: &[f64], seed: u64) -> ComponentNormals {
        use rand::seq::SliceRandom as _;
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut shuffled = || {
            let mut values = quantiles.to_vec();
            values.shuffle(&mut rng);
            values
        };
        ComponentNormals {
            ctr: shuffled(),
            ctr_second: shuffled(),
            conversion_rate: shuffled(),
            value: shuffled(),
        }
    }

    pub fn draw_count(&self) -> usize {
        self.ctr.len()
    }
}

/// Draws an ad's CTR and ROAS, paired (each ROAS draw built from the same CTR draw). `normals` sets the
/// number of draws.
pub fn draw_scores(posterior: &AdPosterior, normals: &ComponentNormals) -> ScoreDraws {
    let roas_scale = 1000.0 / posterior.cpm;
    let ctr_interval = posterior.ctr();
    let ctr_sd = (ctr_interval.upper_95 - ctr_interval.mean).max(0.0) / 1.96;
    let ctr_is_normal =
        posterior.ctr_alpha > NORMAL_APPROXIMATION_SHAPE && posterior.ctr_beta > NORMAL_APPROXIMATION_SHAPE;

    let draw_count = normals.draw_count();
    let mut ctr_draws = Vec::with_capacity(draw_count);
    let mut roas_draws = Vec::with_capacity(draw_count);
    for index in 0..draw_count {
        let ctr = if ctr_is_normal {
            (ctr_interval.mean + ctr_sd * normals.ctr[index]).clamp(0.0, 1.0)
        } else {
            // Beta(α, β) = X / (X + Y) with X ~ Gamma(α), Y ~ Gamma(β).
            let clicks_part = gamma_from_normal(posterior.ctr_alpha, normals.ctr[index]);
            let non_clicks_part = gamma_from_normal(posterior.ctr_beta, normals.ctr_second[index]);
            clicks_part / (clicks_part + non_clicks_part).max(1e-300)
        };
        let conversion_rate = gamma_from_normal(posterior.conversion_rate_shape, normals.conversion_rate[index])
            / posterior.conversion_rate_rate;
        let value = (posterior.value_log_mean + posterior.value_log_sd * normals.value[index]).exp();
        ctr_draws.push(ctr as f32);
        roas_draws.push((ctr * conversion_rate * value * roas_scale) as f32);
    }
    ScoreDraws {
        ctr: ctr_draws,
        roas: roas_draws,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(conversions: f64, clicks: f64) -> EffectiveEvidence {
        EffectiveEvidence {
            impressions: clicks * 100.0,
            clicks,
            conversions,
            matured_clicks: clicks,
            value: conversions * 50.0,
        }
    }

    fn strength(ads: &[EffectiveEvidence]) -> f64 {
        let conversions: f64 = ads.iter().map(|ad| ad.conversions).sum();
        let clicks: f64 = ads.iter().map(|ad| ad.matured_clicks).sum();
        conversion_prior_strength(ads, conversions / clicks, 6.0, &AllocatorConfig::default())
    }

    #[test]
    fn ads_that_convert_alike_keep_the_full_prior_and_very_different_ones_weaken_it() {
        // Ten ads at 2% within what chance explains.
        let alike: Vec<_> = (0..10)
            .map(|index| evidence(40.0 + f64::from(index % 3), 2_000.0))
            .collect();
        assert_eq!(strength(&alike), 6.0);
        // One ad converts at 8%, the rest at 1–2%: the prior must not drown the difference.
        let mut different: Vec<_> = (0..9)
            .map(|index| evidence(20.0 + 2.0 * f64::from(index), 1_500.0))
            .collect();
        different.push(evidence(32.0, 400.0));
        let weakened = strength(&different);
        assert!((1.0..4.5).contains(&weakened), "{weakened}");
        // Half the ads at 1%, half at 10%: about as weak as it gets.
        let split: Vec<_> = (0..10)
            .map(|index| evidence(if index % 2 == 0 { 20.0 } else { 200.0 }, 2_000.0))
            .collect();
        let weakest = strength(&split);
        assert!((1.0..1.5).contains(&weakest), "{weakest}");
    }

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

    #[test]
    fn shared_normals_are_built_once_and_equal_fresh_ones() {
        let first = ComponentNormals::shared(512, 97);
        let again = ComponentNormals::shared(512, 97);
        assert!(Arc::ptr_eq(&first, &again), "the same combination is built once");
        let fresh = ComponentNormals::new(512, 97);
        assert_eq!(first.ctr, fresh.ctr);
        assert_eq!(first.conversion_rate, fresh.conversion_rate);
        assert_eq!(first.value, fresh.value);
        assert_eq!(first.ctr_second, fresh.ctr_second);
        let other_seed = ComponentNormals::shared(512, 98);
        assert_ne!(other_seed.ctr, first.ctr, "another seed is another pairing");
    }

    #[test]
    fn every_component_keeps_each_stratum_once_whatever_the_draw_count() {
        for draw_count in [16, 256, 1000, 1024, 4096] {
            for seed in [0, 7, u64::MAX] {
                let normals = ComponentNormals::new(draw_count, seed);
                let mut expected = stratified_normal_quantiles(draw_count);
                expected.sort_by(f64::total_cmp);
                for component in [
                    &normals.ctr,
                    &normals.ctr_second,
                    &normals.conversion_rate,
                    &normals.value,
                ] {
                    let mut sorted = component.clone();
                    sorted.sort_by(f64::total_cmp);
                    assert_eq!(sorted, expected, "{draw_count} draws, seed {seed}");
                }
            }
        }
    }

    #[test]
    fn quasi_random_pairing_fills_the_joint_space_more_evenly_than_shuffles() {
        // The share of draws with both of two components above their medians is 1/4 in expectation; the
        // Sobol pairing hits it almost exactly, independent shuffles only within sampling noise.
        let draw_count = 1024;
        let both_high = |first: &[f64], second: &[f64]| {
            first
                .iter()
                .zip(second)
                .filter(|(first, second)| **first > 0.0 && **second > 0.0)
                .count() as f64
                / draw_count as f64
        };
        let mut sobol_error: f64 = 0.0;
        let mut shuffled_error: f64 = 0.0;
        for seed in 0..20 {
            let sobol = ComponentNormals::new(draw_count, seed);
            let shuffled = ComponentNormals::shuffled(&stratified_normal_quantiles(draw_count), seed);
            sobol_error = sobol_error.max((both_high(&sobol.ctr, &sobol.conversion_rate) - 0.25).abs());
            shuffled_error = shuffled_error.max((both_high(&shuffled.ctr, &shuffled.conversion_rate) - 0.25).abs());
        }
        assert!(sobol_error < 0.002, "{sobol_error}");
        assert!(shuffled_error > 4.0 * sobol_error, "{shuffled_error} vs {sobol_error}");
    }

    #[test]
    fn too_little_evidence_keeps_the_configured_prior() {
        assert_eq!(strength(&[evidence(1.0, 100.0), evidence(5.0, 100.0)]), 6.0, "two ads");
        assert_eq!(
            strength(&[evidence(0.0, 100.0), evidence(3.0, 100.0), evidence(1.0, 100.0)]),
            6.0,
            "four conversions"
        );
    }
}
