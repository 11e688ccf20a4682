//! The population a group of ads forms (a request's, or one account's: `account_population`): their pooled
//! rates, the strength of the population prior on conversions per click (how much the ads differ beyond
//! chance), the CTR link and the spread of order values — the default prior of every ad and the common scale
//! of the blended scores.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use adloop_money::Currency;
use serde::{Deserialize, Serialize};

use crate::config::AllocatorConfig;
use crate::ctr_link::estimate_ctr_link;
use crate::delay::ReportingDelay;
use crate::input::AdInput;
use crate::posterior::{EffectiveEvidence, effective_evidence};

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

/// The serde default of a multiplier that changes nothing.
pub(crate) fn one() -> f64 {
    1.0
}

impl PopulationStats {
    pub fn roas(&self) -> f64 {
        self.ctr * self.conversions_per_click * self.value_per_conversion * 1000.0 / self.cpm
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
