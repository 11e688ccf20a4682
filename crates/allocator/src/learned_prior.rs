//! Priors from the learners, blended into the population prior.
//!
//! A learned prior moves the *mean* of the population prior towards its own rate in proportion to its
//! strength, and adds no strength: the population prior's strength says how much this account's ads differ
//! from each other, which a learner's certainty about its own average says nothing about (a learner sure of
//! a feature-less base rate must not make every ad look alike). Each learner's share is capped, so the
//! account's own average always keeps a part.
//!
//! A source's rates count as lifts: an ad's expected rate over the mean expected rate of its account's ads in
//! the request carrying the same source, times the population's rate. An account whose rates sit far from the
//! learner's base keeps its own level, and only what the features say about one ad against its neighbours
//! moves it. (Against every account's ads together, an account the learner rates high — its offset — would
//! lift each of its ads on top of its own population's rate, which already holds that level.)
//! That mean is weighted as the population's rate is — each ad by its delivery so far (impressions for CTR,
//! clicks for conversions per click, plus one so that a request without delivery weighs its ads alike) —
//! because the population's rate is mostly the rate of the ads that got the budget: against a plain mean, an
//! ordinary newcomer in an account whose budget sits on its best ads was priored at the best ads' rate.
//! A prior whose rates already are lifts over the account's average (`rates_are_lifts`, the cross-learner's)
//! multiplies the population's rate directly.
//!
//! Where an account's own ads have measured a source's conversion lifts (`learned_link`), that source does
//! not blend in by its certainty: it moves the conversion prior's centre to the population's rate times
//! lift^γ, γ as the account's ads showed it.

use std::collections::BTreeMap;

use crate::config::AllocatorConfig;
use crate::input::{AdInput, Prior};
use crate::population::PopulationStats;

/// The mean expected rates of each prior source over each account's ads in the request that carry it,
/// weighted by their delivery as the population's rates are (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriorScales {
    by_account_and_source: ByAccountAndSource<SourceScale>,
    /// The γ each account's ads show for a source's conversion lifts, where they reject the learner's own
    /// weight (`learned_link`).
    conversion_links: ByAccountAndSource<f64>,
}

/// Values by account, then by source: nested so that every ad's lookups borrow its ids instead of building
/// a key (they run for every ad with a learned prior, several times an allocation).
type ByAccountAndSource<T> = BTreeMap<String, BTreeMap<String, T>>;

fn by_account_and_source<T>(entries: impl IntoIterator<Item = ((String, String), T)>) -> ByAccountAndSource<T> {
    let mut nested: ByAccountAndSource<T> = BTreeMap::new();
    for ((account, source), value) in entries {
        nested.entry(account).or_default().insert(source, value);
    }
    nested
}

fn lookup<T: Copy>(values: &ByAccountAndSource<T>, account: &str, source: &str) -> Option<T> {
    values.get(account)?.get(source).copied()
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct SourceScale {
    mean_ctr: f64,
    mean_conversions_per_click: f64,
}

impl SourceScale {
    /// `prior`'s conversions per click as a lift over this mean; none when the prior gives no conversion
    /// strength or the mean is not positive.
    fn conversion_lift(&self, prior: &Prior) -> Option<f64> {
        (prior.conversion_strength_conversions > 0.0 && self.mean_conversions_per_click > 0.0)
            .then(|| prior.expected_conversions_per_click / self.mean_conversions_per_click)
    }
}

impl PriorScales {
    pub fn of_request(ads: &[AdInput]) -> PriorScales {
        let mut sums: BTreeMap<(&str, &str), (f64, f64, f64, f64)> = BTreeMap::new();
        for ad in ads {
            let ctr_weight = ad.impressions as f64 + 1.0;
            let rate_weight = ad.clicks as f64 + 1.0;
            for prior in ad.priors.iter().filter(|prior| !prior.rates_are_lifts) {
                let entry = sums
                    .entry((ad.ids.account_id.as_str(), prior.source.as_str()))
                    .or_default();
                if prior.ctr_strength_impressions > 0.0 {
                    entry.0 += ctr_weight * prior.expected_ctr;
                    entry.1 += ctr_weight;
                }
                if prior.conversion_strength_conversions > 0.0 {
                    entry.2 += rate_weight * prior.expected_conversions_per_click;
                    entry.3 += rate_weight;
                }
            }
        }
        let by_account_and_source = by_account_and_source(sums.into_iter().map(
            |((account, source), (ctr_sum, ctr_weights, rate_sum, rate_weights))| {
                // Each ad weighs at least one, so a source with a prior has weights of at least one.
                let scale = SourceScale {
                    mean_ctr: ctr_sum / ctr_weights.max(1.0),
                    mean_conversions_per_click: rate_sum / rate_weights.max(1.0),
                };
                ((account.to_owned(), source.to_owned()), scale)
            },
        ));
        PriorScales {
            by_account_and_source,
            conversion_links: BTreeMap::new(),
        }
    }

    /// The same scales with each account's conversion links measured on the request's ads (`learned_link`);
    /// a learned prior's weight is read against `population_conversion_strength`, the request's population
    /// prior's.
    pub(crate) fn with_conversion_links(
        mut self,
        ads: &[AdInput],
        ad_evidence: &[crate::posterior::EffectiveEvidence],
        population_conversion_strength: f64,
        config: &AllocatorConfig,
    ) -> PriorScales {
        let lifts_of = |ad: &AdInput| -> Vec<(String, f64, f64)> {
            ad.priors
                .iter()
                .filter(|prior| !prior.rates_are_lifts)
                .filter_map(|prior| {
                    let lift = self.of(&ad.ids.account_id, &prior.source).conversion_lift(prior)?;
                    let strength = learned_strength(
                        prior.conversion_strength_conversions,
                        population_conversion_strength,
                        config,
                    );
                    let learner_weight = strength / (strength + population_conversion_strength);
                    Some((prior.source.clone(), lift, learner_weight))
                })
                .collect()
        };
        let links = crate::learned_link::conversion_link_exponents(ads, ad_evidence, lifts_of, config);
        self.conversion_links = by_account_and_source(links);
        self
    }

    fn conversion_link(&self, account: &str, source: &str) -> Option<f64> {
        lookup(&self.conversion_links, account, source)
    }

    fn of(&self, account: &str, source: &str) -> SourceScale {
        lookup(&self.by_account_and_source, account, source).unwrap_or_default()
    }
}

/// The prior means an ad starts from, and the learned sources that moved them.
#[derive(Debug, Clone, PartialEq)]
pub struct BlendedPriorMeans {
    pub ctr: f64,
    pub conversions_per_click: f64,
    /// A learned prior moved the CTR mean (its strength is then the learned one).
    pub ctr_learned: bool,
    /// A learned prior moved the conversions-per-click mean (its strength is then the learned one).
    pub conversions_per_click_learned: bool,
    /// The γ to which the account's own ads took a learner's conversion lift (`learned_link`), if they did.
    pub conversion_link_exponent: Option<f64>,
    pub learned_sources: Vec<String>,
}

/// The population's rates moved towards the ad's learned priors (see the module documentation).
pub fn blended_prior_means(
    ad: &AdInput,
    population: &PopulationStats,
    scales: &PriorScales,
    config: &AllocatorConfig,
) -> BlendedPriorMeans {
    let population_ctr_strength = config.population_ctr_prior_impressions;
    let population_rate_strength = population.conversion_prior_conversions;
    let scale_of = |prior: &Prior| {
        if prior.rates_are_lifts {
            SourceScale {
                mean_ctr: 1.0,
                mean_conversions_per_click: 1.0,
            }
        } else {
            scales.of(&ad.ids.account_id, &prior.source)
        }
    };
    // A source whose lifts the account's ads have measured (`learned_link`) moves the centre itself, as far
    // as they showed; the others are blended in by their certainty. Per prior: its γ and lift^γ, if linked.
    let links: Vec<Option<(f64, f64)>> = ad
        .priors
        .iter()
        .map(|prior| {
            let exponent = scales.conversion_link(&ad.ids.account_id, &prior.source)?;
            let lift = scale_of(prior).conversion_lift(prior)?;
            Some((exponent, lift.max(1e-6).powf(exponent)))
        })
        .collect();
    let linked_factor: Option<f64> = links
        .iter()
        .flatten()
        .map(|(_, factor)| *factor)
        .reduce(|product, factor| product * factor);
    let conversion_link_exponent = links.iter().flatten().map(|(exponent, _)| *exponent).next();
    let mut ctr = Blend::new(population.ctr, population_ctr_strength);
    let mut rate = match linked_factor {
        Some(factor) => Blend::moved(population.conversions_per_click * factor, population_rate_strength),
        None => Blend::new(population.conversions_per_click, population_rate_strength),
    };
    let mut learned_sources = Vec::new();
    for (prior, link) in ad.priors.iter().zip(&links) {
        let scale = scale_of(prior);
        let ctr_strength = learned_strength(prior.ctr_strength_impressions, population_ctr_strength, config);
        let rate_strength = learned_strength(prior.conversion_strength_conversions, population_rate_strength, config);
        let mut used = false;
        if ctr_strength > 0.0 && scale.mean_ctr > 0.0 {
            ctr.add(population.ctr * prior.expected_ctr / scale.mean_ctr, ctr_strength);
            used = true;
        }
        if link.is_some() {
            used = true;
        } else if let Some(lift) = scale.conversion_lift(prior).filter(|_| rate_strength > 0.0) {
            rate.add(population.conversions_per_click * lift, rate_strength);
            used = true;
        }
        if used {
            learned_sources.push(prior.source.clone());
        }
    }
    BlendedPriorMeans {
        ctr: ctr.mean().min(0.999),
        ctr_learned: ctr.blended,
        conversions_per_click: rate.mean(),
        conversions_per_click_learned: rate.blended,
        conversion_link_exponent,
        learned_sources,
    }
}

/// A learned prior's weight against the population prior's: its own strength, at most
/// `max_learned_prior_weight_of_population` times the population's.
fn learned_strength(strength: f64, population_strength: f64, config: &AllocatorConfig) -> f64 {
    strength.min(population_strength * config.max_learned_prior_weight_of_population)
}

/// A strength-weighted mean that starts from the population's and stays exactly it until something is added
/// (requests without learned priors allocate bit for bit as before).
struct Blend {
    population_mean: f64,
    weighted_sum: f64,
    weight: f64,
    blended: bool,
}

impl Blend {
    fn new(mean: f64, weight: f64) -> Blend {
        Blend {
            population_mean: mean,
            weighted_sum: mean * weight,
            weight,
            blended: false,
        }
    }

    /// A blend whose starting mean a learned source already moved from the population's.
    fn moved(mean: f64, weight: f64) -> Blend {
        Blend {
            blended: true,
            ..Blend::new(mean, weight)
        }
    }

    fn add(&mut self, mean: f64, weight: f64) {
        self.weighted_sum += mean * weight;
        self.weight += weight;
        self.blended = true;
    }

    fn mean(&self) -> f64 {
        if !self.blended {
            return self.population_mean;
        }
        self.weighted_sum / self.weight.max(f64::MIN_POSITIVE)
    }
}

/// Every ad's blended prior means, in request order.
pub(crate) fn blended_prior_means_of<A: std::borrow::Borrow<AdInput>>(
    ads: &[A],
    population: &PopulationStats,
    scales: &PriorScales,
    config: &AllocatorConfig,
) -> Vec<BlendedPriorMeans> {
    ads.iter()
        .map(|ad| blended_prior_means(ad.borrow(), population, scales, config))
        .collect()
}

/// The strength of the conversion prior of ads with learned priors: from the ads' spread around their
/// blended means (`conversion_prior_strength_around`), at most `max_learned_conversion_prior_conversions`.
/// Ads without a learned conversion prior count with the population's rate. The population's strength when
/// no ad has a learned conversion prior, or while the ads have too little evidence to measure their spread.
pub(crate) fn learned_conversion_prior_strength(
    means: &[BlendedPriorMeans],
    ad_evidence: &[crate::posterior::EffectiveEvidence],
    population: &PopulationStats,
    config: &AllocatorConfig,
) -> f64 {
    if !means.iter().any(|mean| mean.conversions_per_click_learned) {
        return population.conversion_prior_conversions;
    }
    let predicted: Vec<f64> = means.iter().map(|mean| mean.conversions_per_click).collect();
    crate::population::conversion_prior_strength_around(
        ad_evidence,
        &predicted,
        population.conversion_prior_conversions,
        config.max_learned_conversion_prior_conversions,
        config,
    )
}

/// The strength of the CTR prior of ads with learned priors: the population's, times how much of the ads'
/// CTR spread (beyond chance) the blended means explain — the spread around the account's CTR over the
/// spread around the blended means — between 1 and `max_learned_ctr_prior_weight_of_population`. Means
/// that explain nothing, or too little evidence to tell, keep the population's strength; means that explain
/// everything get the most.
pub(crate) fn learned_ctr_prior_strength(
    means: &[BlendedPriorMeans],
    ad_evidence: &[crate::posterior::EffectiveEvidence],
    population: &PopulationStats,
    config: &AllocatorConfig,
) -> f64 {
    let population_strength = config.population_ctr_prior_impressions;
    let strongest = population_strength * config.max_learned_ctr_prior_weight_of_population;
    if !means.iter().any(|mean| mean.ctr_learned) {
        return population_strength;
    }
    let pooled = vec![population.ctr; means.len()];
    let learned: Vec<f64> = means.iter().map(|mean| mean.ctr).collect();
    let (Some(spread_around_pooled), Some(spread_around_learned)) = (
        crate::population::ctr_spread_around(ad_evidence, &pooled, config),
        crate::population::ctr_spread_around(ad_evidence, &learned, config),
    ) else {
        return population_strength;
    };
    if spread_around_pooled <= 0.0 {
        return population_strength;
    }
    if spread_around_learned <= 0.0 {
        return strongest;
    }
    (population_strength * spread_around_pooled / spread_around_learned).clamp(population_strength, strongest)
}

/// Whether `prior` says anything the allocator uses.
pub fn is_informative(prior: &Prior) -> bool {
    prior.ctr_strength_impressions > 0.0 || prior.conversion_strength_conversions > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn population() -> PopulationStats {
        PopulationStats {
            ctr: 0.02,
            conversions_per_click: 0.05,
            value_per_conversion: 50.0,
            cpm: 10.0,
            conversion_prior_conversions: 6.0,
            learned_conversion_prior_conversions: 6.0,
            learned_ctr_prior_impressions: 100.0,
            conversion_ctr_link: 0.0,
            conversion_ctr_link_sd: 0.0,
            recent_maturity_factor: 1.0,
            conversion_value_log_sd: 0.6,
        }
    }

    fn prior(ctr: f64, rate: f64, strength: f64) -> Prior {
        Prior {
            source: "instant_learner".into(),
            expected_ctr: ctr,
            ctr_strength_impressions: strength,
            expected_conversions_per_click: rate,
            conversion_strength_conversions: strength / 100.0,
            rates_are_lifts: false,
        }
    }

    fn ad_with(priors: Vec<Prior>) -> AdInput {
        AdInput {
            priors,
            ..AdInput::blank_for_tests("")
        }
    }

    #[test]
    fn rates_travel_as_lifts_and_move_the_mean_in_proportion_to_strength() {
        // The learner thinks in 1% CTRs; this account runs at 2%. The ad is predicted 1.5× its neighbours.
        let strong = ad_with(vec![prior(0.015, 0.03, 100.0)]);
        let neighbour = ad_with(vec![prior(0.01, 0.02, 100.0), prior(0.005, 0.01, 0.0)]);
        let scales = PriorScales::of_request(&[strong.clone(), neighbour.clone(), neighbour]);
        let config = AllocatorConfig::default();
        let blended = blended_prior_means(&strong, &population(), &scales, &config);
        // Mean of the source: 0.01167 CTR. Lift 1.286 → 0.0257; equal strengths → halfway.
        let lift = 0.015 / ((0.015 + 0.01 + 0.01) / 3.0);
        assert!((blended.ctr - (0.02 + 0.02 * lift) / 2.0).abs() < 1e-12, "{blended:?}");
        assert!(blended.conversions_per_click > 0.05);
        assert_eq!(blended.learned_sources, vec!["instant_learner".to_owned()]);
    }

    #[test]
    fn a_source_s_rates_are_lifts_over_its_mean_weighted_by_delivery_as_the_population_is() {
        // The account's budget sits on a proven ad the learner rates 0.02 CTR; a newcomer is rated 0.01.
        // The population's CTR (2%) is the proven ad's, so the newcomer's lift is measured against it: 0.5,
        // not 0.01 / 0.015.
        let mut proven = ad_with(vec![prior(0.02, 0.03, 100.0)]);
        proven.impressions = 99_999;
        proven.clicks = 1_999;
        let newcomer = ad_with(vec![prior(0.01, 0.03, 100.0)]);
        let scales = PriorScales::of_request(&[proven, newcomer.clone()]);
        let config = AllocatorConfig::default();
        let blended = blended_prior_means(&newcomer, &population(), &scales, &config);
        let weighted_mean = (100_000.0 * 0.02 + 0.01) / 100_001.0;
        let lift = 0.01 / weighted_mean;
        assert!((blended.ctr - (0.02 + 0.02 * lift) / 2.0).abs() < 1e-12, "{blended:?}");
        assert!(
            blended.ctr < 0.016,
            "the newcomer stays below the proven ad: {blended:?}"
        );
    }

    #[test]
    fn lifts_are_taken_within_the_ad_s_own_account_so_an_account_s_level_is_not_counted_twice() {
        // The learner rates account `high` twice account `low` (its offset); within each account the two ads
        // have the same features. Each account's population already holds its own level, so no ad is lifted.
        let in_account = |account: &str, ctr: f64, rate: f64| {
            let mut ad = ad_with(vec![prior(ctr, rate, 100.0)]);
            ad.ids.account_id = account.into();
            ad
        };
        let ads = [
            in_account("high", 0.02, 0.04),
            in_account("high", 0.02, 0.04),
            in_account("low", 0.01, 0.02),
            in_account("low", 0.01, 0.02),
        ];
        let scales = PriorScales::of_request(&ads);
        let config = AllocatorConfig::default();
        for ad in &ads {
            let blended = blended_prior_means(ad, &population(), &scales, &config);
            assert!((blended.ctr - population().ctr).abs() < 1e-12, "{blended:?}");
            assert!(
                (blended.conversions_per_click - population().conversions_per_click).abs() < 1e-12,
                "{blended:?}"
            );
        }
    }

    #[test]
    fn an_account_whose_ads_bear_the_lifts_out_takes_them_whole_for_a_newcomer() {
        // Ten delivered ads whose conversions per click follow the learner's lifts one for one, and a newcomer
        // the learner rates 1.5× its neighbours' conversions per click.
        let delivered_lifts: Vec<f64> = (0..10).map(|ad| 0.6 + 0.1 * f64::from(ad)).collect();
        let mut ads: Vec<AdInput> = delivered_lifts
            .iter()
            .map(|lift| ad_with(vec![prior(0.02, 0.05 * lift, 100.0)]))
            .collect();
        let mut evidence: Vec<crate::posterior::EffectiveEvidence> = delivered_lifts
            .iter()
            .map(|lift| crate::posterior::EffectiveEvidence {
                impressions: 100_000.0,
                clicks: 2_000.0,
                conversions: (2_000.0 * 0.05 * lift).round(),
                matured_clicks: 2_000.0,
                value: 0.0,
            })
            .collect();
        ads.push(ad_with(vec![prior(0.02, 0.05 * 1.5 * 1.05, 100.0)]));
        evidence.push(crate::posterior::EffectiveEvidence {
            impressions: 0.0,
            clicks: 0.0,
            conversions: 0.0,
            matured_clicks: 0.0,
            value: 0.0,
        });
        let config = AllocatorConfig::default();
        let plain = PriorScales::of_request(&ads);
        let measured =
            plain
                .clone()
                .with_conversion_links(&ads, &evidence, population().conversion_prior_conversions, &config);
        let newcomer = ads.last().expect("newcomer");
        let blended = blended_prior_means(newcomer, &population(), &plain, &config);
        let linked = blended_prior_means(newcomer, &population(), &measured, &config);
        let lift = newcomer.priors[0].expected_conversions_per_click
            / plain.of("act_1", "instant_learner").mean_conversions_per_click;
        assert!(
            (linked.conversions_per_click / (population().conversions_per_click * lift) - 1.0).abs() < 0.1,
            "the newcomer's prior is the population's rate times its whole lift: {linked:?}, lift {lift}"
        );
        assert!(
            linked.conversions_per_click > blended.conversions_per_click,
            "{linked:?} against {blended:?}"
        );
        assert!(linked.conversions_per_click_learned);
    }

    #[test]
    fn a_learned_prior_never_decides_more_than_its_capped_share() {
        let strong = ad_with(vec![prior(0.04, 0.05, 1e9)]);
        let weak = ad_with(vec![prior(0.01, 0.05, 1e9)]);
        let scales = PriorScales::of_request(&[strong.clone(), weak]);
        let config = AllocatorConfig::default();
        let blended = blended_prior_means(&strong, &population(), &scales, &config);
        let share =
            config.max_learned_prior_weight_of_population / (1.0 + config.max_learned_prior_weight_of_population);
        let lifted = 0.02 * 0.04 / 0.025;
        assert!((blended.ctr - (0.02 * (1.0 - share) + lifted * share)).abs() < 1e-12);
    }

    #[test]
    fn lifts_over_the_account_average_apply_to_a_lone_ad_too() {
        let lifted = ad_with(vec![Prior {
            source: "cross_learner".into(),
            expected_ctr: 1.2,
            ctr_strength_impressions: 100.0,
            expected_conversions_per_click: 0.9,
            conversion_strength_conversions: 6.0,
            rates_are_lifts: true,
        }]);
        let scales = PriorScales::of_request(std::slice::from_ref(&lifted));
        let blended = blended_prior_means(&lifted, &population(), &scales, &AllocatorConfig::default());
        assert!((blended.ctr - 0.02 * 1.1).abs() < 1e-12, "{blended:?}");
        assert!(
            (blended.conversions_per_click - 0.05 * 0.95).abs() < 1e-12,
            "{blended:?}"
        );
    }

    /// Six ads, three clicking at 3% and three at 1% over 20,000 impressions each (the account: 2%), with
    /// the learner predicting `predicted_ctrs` for them.
    fn ctr_strength_for(predicted_ctrs: [f64; 6]) -> f64 {
        let true_ctrs = [0.03, 0.03, 0.03, 0.01, 0.01, 0.01];
        let ads: Vec<AdInput> = predicted_ctrs
            .iter()
            .map(|&ctr| ad_with(vec![prior(ctr, 0.05, 1e6)]))
            .collect();
        let evidence: Vec<crate::posterior::EffectiveEvidence> = true_ctrs
            .iter()
            .map(|&ctr| crate::posterior::EffectiveEvidence {
                impressions: 20_000.0,
                clicks: 20_000.0 * ctr,
                conversions: 0.0,
                matured_clicks: 0.0,
                value: 0.0,
            })
            .collect();
        let scales = PriorScales::of_request(&ads);
        let config = AllocatorConfig::default();
        let means = blended_prior_means_of(&ads, &population(), &scales, &config);
        learned_ctr_prior_strength(&means, &evidence, &population(), &config)
    }

    #[test]
    fn a_learned_ctr_prior_weighs_as_much_as_the_spread_it_explains() {
        let config = AllocatorConfig::default();
        let population_strength = config.population_ctr_prior_impressions;
        let strongest = population_strength * config.max_learned_ctr_prior_weight_of_population;
        let right = ctr_strength_for([0.03, 0.03, 0.03, 0.01, 0.01, 0.01]);
        assert!(right > population_strength * 2.0 && right <= strongest, "{right}");
        let half_right = ctr_strength_for([0.025, 0.025, 0.025, 0.015, 0.015, 0.015]);
        assert!(half_right > population_strength && half_right < right, "{half_right}");
        // A learner that knows nothing, or is wrong, never makes the prior weaker than the population's.
        assert_eq!(ctr_strength_for([0.02; 6]), population_strength);
        assert_eq!(
            ctr_strength_for([0.01, 0.01, 0.01, 0.03, 0.03, 0.03]),
            population_strength
        );
    }

    #[test]
    fn no_prior_leaves_the_population_prior_as_it_is() {
        let plain = ad_with(Vec::new());
        let blended = blended_prior_means(
            &plain,
            &population(),
            &PriorScales::default(),
            &AllocatorConfig::default(),
        );
        assert_eq!((blended.ctr, blended.conversions_per_click), (0.02, 0.05));
        assert!(blended.learned_sources.is_empty());
    }
}
