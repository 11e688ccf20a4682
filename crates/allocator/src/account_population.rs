//! Population priors per account: a request may carry ads of several ad accounts, and each account's ads are
//! read against their own account's rates (or, while the account is too thin to stand alone, against the
//! request's moved towards its own counts), with the strengths of learned priors measured on the same ads.

use std::borrow::Borrow;

use crate::config::AllocatorConfig;
use crate::input::{AdInput, AllocationRequest};
use crate::learned_prior::{
    PriorScales, blended_prior_means_of, learned_conversion_prior_strength, learned_ctr_prior_strength,
};
use crate::population::{PooledCounts, PopulationStats, population_from_evidence};
use crate::posterior::EffectiveEvidence;
use crate::quantize::quantize_population;

/// `population` with the strengths of learned priors measured on `ads`, quantised (cache keys read it).
pub(crate) fn with_learned_strengths<A: Borrow<AdInput>>(
    ads: &[A],
    ad_evidence: &[EffectiveEvidence],
    population: PopulationStats,
    prior_scales: &PriorScales,
    config: &AllocatorConfig,
) -> PopulationStats {
    let prior_means = blended_prior_means_of(ads, &population, prior_scales, config);
    quantize_population(&PopulationStats {
        learned_conversion_prior_conversions: learned_conversion_prior_strength(
            &prior_means,
            ad_evidence,
            &population,
            config,
        ),
        learned_ctr_prior_impressions: learned_ctr_prior_strength(&prior_means, ad_evidence, &population, config),
        ..population
    })
}

/// Each ad's population prior: its own account's where the request spans several accounts and the account's
/// ads have evidence enough to speak for themselves (`account_estimate_min_ads` ads with clicks,
/// `account_estimate_min_conversions` conversions), otherwise the whole request's moved towards the account's
/// own counts ([`thin_account_population`]); a request of one account keeps its own. Ads of one account share a
/// site, a funnel and a price list; pooling them with another account's shrank each ad towards rates that are
/// not its account's (held out: on the simulator's first random worlds with several accounts adloop's value over
/// ts-basic's rose from 1.033 to 1.054, and its regret fell 3.4% on the learners' table;
/// `docs/allocator-notebook.md`). The request's population still sets the common scale of the blended scores.
pub(crate) fn populations_by_account(
    request: &AllocationRequest,
    ad_evidence: &[EffectiveEvidence],
    request_population: &PopulationStats,
    prior_scales: &PriorScales,
    config: &AllocatorConfig,
) -> Vec<PopulationStats> {
    let mut by_account: std::collections::BTreeMap<&str, Vec<usize>> = std::collections::BTreeMap::new();
    for (index, ad) in request.ads.iter().enumerate() {
        by_account.entry(ad.ids.account_id.as_str()).or_default().push(index);
    }
    let mut populations = vec![*request_population; request.ads.len()];
    if by_account.len() < 2 {
        return populations;
    }
    for indices in by_account.values() {
        let ads: Vec<&AdInput> = indices.iter().map(|&index| &request.ads[index]).collect();
        let evidence: Vec<EffectiveEvidence> = indices.iter().map(|&index| ad_evidence[index]).collect();
        let with_clicks = evidence
            .iter()
            .filter(|evidence| evidence.matured_clicks >= 1.0)
            .count();
        let conversions: f64 = evidence.iter().map(|evidence| evidence.conversions).sum();
        if !config.enough_for_account_estimate(with_clicks, conversions) {
            let thin = quantize_population(&thin_account_population(
                &ads,
                &evidence,
                request.currency,
                request_population,
                config,
            ));
            for &index in indices {
                populations[index] = thin;
            }
            continue;
        }
        let own = population_from_evidence(
            &ads,
            &evidence,
            request.currency,
            config,
            request_population.recent_maturity_factor,
        );
        let own = with_learned_strengths(&ads, &evidence, own, prior_scales, config);
        for &index in indices {
            populations[index] = own;
        }
    }
    populations
}

/// The population of an account whose ads have too little evidence to stand alone: the request's, its
/// means moved towards the account's own counts as the allocator's priors move an ad's towards its
/// population (CTR worth `population_ctr_prior_impressions`, conversions per click
/// `population_conversion_prior_conversions`, value per conversion `value_prior_conversions`, CPM
/// `cpm_prior_impressions`); strengths and the CTR link stay the request's. An account whose orders are ten
/// times the others' says so with its first few conversions.
fn thin_account_population(
    ads: &[&AdInput],
    ad_evidence: &[EffectiveEvidence],
    currency: adloop_money::Currency,
    request_population: &PopulationStats,
    config: &AllocatorConfig,
) -> PopulationStats {
    let counts = PooledCounts::of(ads, ad_evidence, currency);
    let ctr_strength = config.population_ctr_prior_impressions;
    let conversion_strength = config.population_conversion_prior_conversions;
    let value_strength = config.value_prior_conversions;
    let cpm_strength = config.cpm_prior_impressions;
    let request = request_population;
    PopulationStats {
        ctr: (counts.clicks + request.ctr * ctr_strength) / (counts.impressions + ctr_strength),
        conversions_per_click: (counts.conversions + conversion_strength)
            / (counts.matured_clicks + conversion_strength / request.conversions_per_click),
        value_per_conversion: (counts.value + request.value_per_conversion * value_strength)
            / (counts.conversions + value_strength),
        cpm: (counts.spend + request.cpm * cpm_strength / 1000.0) / (counts.lifetime_impressions + cpm_strength)
            * 1000.0,
        ..*request
    }
}
