//! How an account's conversions per click follow its ads' CTRs, estimated from the account's own ads.
//!
//! The population prior on an ad's conversions per click is the account's pooled rate. When CTR and buying
//! are linked — ads that draw many curious clicks convert fewer of them, or the ads that click best also
//! sell best — that prior is wrong in a predictable direction: it scores a high-CTR ad with no buyers as a
//! winner for thousands of clicks, and holds a low-CTR ad with the best buyers near the account's rate
//! until its own conversions arrive (days, with reporting delays). So the prior's mean follows the ad's CTR:
//!
//! ```text
//! prior conversions per click of ad i = c · (CTR_i / CTR_account)^(−β)
//! ```
//!
//! β = 0 says CTR tells nothing about buyers, β = 1 makes conversions per *impression* equal across the
//! ads, β < 0 lets good clickers be good buyers. β is rarely known well: an account's ads' CTRs differ
//! little, and their conversions come late. So the account keeps a belief about β: a uniform prior over
//! [−`max_conversion_ctr_link`, `max_conversion_ctr_link`] (no direction preferred) updated by the Poisson
//! likelihood of the ads' conversions on their matured clicks (profiled over c), summarised by its sd. The
//! prior's centre moves only where the account's ads show a link (the grid's best β when a likelihood-ratio
//! test against β = 0 rejects at `evidence_test_significance`; 0 otherwise); its width follows the belief
//! (`prior_moments`): an ad whose CTR is far from the account's gets a prior as uncertain as the link is, so
//! a low-CTR ad may still be the account's best buyer until the account's ads, or its own, say otherwise.
//! (Centring on the belief's mean as well measured worse on the tuning seeds: in worlds without a link the
//! mean wandered as far as ±0.7 on noise and shifted every ad's prior with it.)

use crate::config::AllocatorConfig;
use crate::posterior::{EffectiveEvidence, shrunk_ctr};

/// Grid steps per unit of β.
const STEPS_PER_UNIT: i32 = 10;

/// What the account's ads say about β (the prior's centre and the belief's sd), and the account's rate `c`
/// at an ad of the account's CTR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LinkBelief {
    pub exponent_centre: f64,
    pub exponent_sd: f64,
    pub conversions_per_click_at_account_ctr: f64,
}

/// An ad's CTR relative to the account's, shrunk towards 1 with `strength` pseudo-impressions (the CTR
/// prior's) so that an ad with few impressions is not linked to an extreme CTR.
pub(crate) fn relative_ctr(evidence: &EffectiveEvidence, account_ctr: f64, strength: f64) -> f64 {
    (shrunk_ctr(evidence.clicks, evidence.impressions, account_ctr, strength) / account_ctr).max(1e-6)
}

/// The centre of an ad's prior mean conversions per click `m` over the belief about β, and how widely `m`
/// varies around it (the second-moment ratio E[m²]/centre²), for an ad whose CTR is `relative_ctr` times
/// the account's. β is read as normal around the belief's centre with its sd, so `m = c · r^(−β)` is
/// log-normal: its median c · r^(−centre) is the centre (its mean would lift every ad away from the
/// account's CTR above the account's pooled rate, high and low CTR alike) and the ratio is exp(s²·ln²r).
/// An ad at the account's CTR gets `c` and 1 whatever the belief.
pub(crate) fn prior_moments(belief: &LinkBelief, relative_ctr: f64) -> (f64, f64) {
    let log_relative = relative_ctr.max(1e-6).ln();
    let log_spread = (belief.exponent_sd * log_relative).powi(2);
    let centre = belief.conversions_per_click_at_account_ctr * (-belief.exponent_centre * log_relative).exp();
    (centre, log_spread.exp())
}

/// The belief about β the ads support. With too little evidence (`account_estimate_min_ads`,
/// `account_estimate_min_conversions`) it is the prior: centre 0, the uniform's sd, `c` the pooled rate.
/// `max_conversion_ctr_link` 0 switches the link off (centre and sd 0).
pub(crate) fn estimate_ctr_link(
    ad_evidence: &[EffectiveEvidence],
    account_ctr: f64,
    pooled_conversions_per_click: f64,
    config: &AllocatorConfig,
) -> LinkBelief {
    let ctr_prior_impressions = config.population_ctr_prior_impressions;
    let max_exponent = config.max_conversion_ctr_link;
    let no_link = LinkBelief {
        exponent_centre: 0.0,
        exponent_sd: 0.0,
        conversions_per_click_at_account_ctr: pooled_conversions_per_click,
    };
    if max_exponent <= 0.0 {
        return no_link;
    }
    let prior = LinkBelief {
        exponent_sd: max_exponent / 3.0_f64.sqrt(),
        ..no_link
    };
    // (conversions, matured clicks, ln relative CTR) of the ads with matured clicks.
    let ads: Vec<(f64, f64, f64)> = ad_evidence
        .iter()
        .filter(|evidence| evidence.matured_clicks >= 1.0)
        .map(|evidence| {
            (
                evidence.conversions,
                evidence.matured_clicks,
                relative_ctr(evidence, account_ctr, ctr_prior_impressions).ln(),
            )
        })
        .collect();
    let conversions: f64 = ads.iter().map(|(conversions, _, _)| conversions).sum();
    if !config.enough_for_account_estimate(ads.len(), conversions) {
        return prior;
    }
    // The log-likelihood at β with c at its maximum for that β (c = conversions / Σ exposure), and that c.
    let profile = |exponent: f64| {
        let exposures: Vec<f64> = ads
            .iter()
            .map(|(_, clicks, log_relative_ctr)| clicks * (-exponent * log_relative_ctr).exp())
            .collect();
        let rate = conversions / exposures.iter().sum::<f64>();
        let log_likelihood: f64 = ads
            .iter()
            .zip(&exposures)
            .map(|((ad_conversions, _, _), exposure)| {
                let expected = rate * exposure;
                ad_conversions * expected.ln() - expected
            })
            .sum();
        (log_likelihood, rate)
    };
    let steps = (max_exponent * f64::from(STEPS_PER_UNIT)).round() as i32;
    // (β, log-likelihood, c) at each grid step; step 0 is β = 0.
    let grid: Vec<(f64, f64, f64)> = (-steps..=steps)
        .map(|step| f64::from(step) / f64::from(STEPS_PER_UNIT))
        .map(|exponent| {
            let (log_likelihood, rate) = profile(exponent);
            (exponent, log_likelihood, rate)
        })
        .collect();
    let unlinked = grid[steps as usize];
    let best = grid
        .iter()
        .copied()
        .max_by(|(_, first, _), (_, second, _)| first.total_cmp(second))
        .unwrap_or(unlinked);
    let highest = best.1;
    if !highest.is_finite() {
        return prior;
    }
    let weights: Vec<f64> = grid
        .iter()
        .map(|(_, log_likelihood, _)| (log_likelihood - highest).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mean = grid
        .iter()
        .zip(&weights)
        .map(|((exponent, _, _), weight)| exponent * weight)
        .sum::<f64>()
        / total;
    let variance = grid
        .iter()
        .zip(&weights)
        .map(|((exponent, _, _), weight)| (exponent - mean).powi(2) * weight)
        .sum::<f64>()
        / total;
    let link_shown = 2.0 * (best.1 - unlinked.1) >= likelihood_ratio_threshold(config.evidence_test_significance);
    let (centre, _, rate_at_centre) = if link_shown { best } else { unlinked };
    LinkBelief {
        exponent_centre: centre,
        exponent_sd: variance.sqrt(),
        conversions_per_click_at_account_ctr: rate_at_centre,
    }
}

/// The χ² (one degree of freedom) quantile the likelihood-ratio statistic must reach at `significance`:
/// the square of the two-sided normal quantile (3.84 at 5%).
pub(crate) fn likelihood_ratio_threshold(significance: f64) -> f64 {
    crate::draws::inverse_standard_normal_cdf(1.0 - significance / 2.0).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ad with `impressions`, CTR `ctr` and conversions per click `rate`, every click matured.
    fn ad(impressions: f64, ctr: f64, rate: f64) -> EffectiveEvidence {
        let clicks = impressions * ctr;
        EffectiveEvidence {
            impressions,
            clicks,
            conversions: (clicks * rate).round(),
            matured_clicks: clicks,
            value: 0.0,
        }
    }

    fn account_ctr(ads: &[EffectiveEvidence]) -> f64 {
        ads.iter().map(|ad| ad.clicks).sum::<f64>() / ads.iter().map(|ad| ad.impressions).sum::<f64>()
    }

    #[test]
    fn ads_that_convert_impressions_alike_link_conversions_per_click_to_ctr() {
        // Conversions per impression 0.02% everywhere, CTRs from 0.4% to 2%.
        let ads: Vec<_> = [0.004, 0.008, 0.01, 0.015, 0.02]
            .iter()
            .map(|ctr| ad(200_000.0, *ctr, 0.0002 / ctr))
            .collect();
        let link = estimate_ctr_link(&ads, account_ctr(&ads), 0.02, &AllocatorConfig::default());
        assert!((0.8..=1.0).contains(&link.exponent_centre), "{link:?}");
        assert!(link.exponent_sd < 0.1, "so much evidence leaves little doubt: {link:?}");
    }

    #[test]
    fn ads_whose_buyers_do_not_follow_ctr_keep_the_pooled_prior() {
        // Conversions per click 2% whatever the CTR.
        let ads: Vec<_> = [0.004, 0.008, 0.01, 0.015, 0.02]
            .iter()
            .map(|ctr| ad(200_000.0, *ctr, 0.02))
            .collect();
        let link = estimate_ctr_link(&ads, account_ctr(&ads), 0.02, &AllocatorConfig::default());
        assert_eq!(link.exponent_centre, 0.0, "{link:?}");
        assert!(
            link.exponent_sd < 0.2,
            "a few hundred conversions narrow the belief: {link:?}"
        );
    }

    #[test]
    fn good_clickers_that_are_good_buyers_give_a_negative_exponent() {
        let ads: Vec<_> = [0.004, 0.008, 0.01, 0.015, 0.02]
            .iter()
            .map(|ctr| ad(200_000.0, *ctr, 2.0 * ctr))
            .collect();
        let link = estimate_ctr_link(&ads, account_ctr(&ads), 0.02, &AllocatorConfig::default());
        assert!(link.exponent_centre < -0.5, "{link:?}");
    }

    #[test]
    fn too_little_evidence_keeps_the_prior_belief_and_no_room_switches_the_link_off() {
        let unknown = LinkBelief {
            exponent_centre: 0.0,
            exponent_sd: 1.0 / 3.0_f64.sqrt(),
            conversions_per_click_at_account_ctr: 0.03,
        };
        let few: Vec<_> = [0.004, 0.02]
            .iter()
            .map(|ctr| ad(200_000.0, *ctr, 0.0002 / ctr))
            .collect();
        assert_eq!(
            estimate_ctr_link(&few, account_ctr(&few), 0.03, &AllocatorConfig::default()),
            unknown,
            "two ads"
        );
        let no_conversions: Vec<_> = [0.004, 0.01, 0.02].iter().map(|ctr| ad(1_000.0, *ctr, 0.0)).collect();
        assert_eq!(
            estimate_ctr_link(
                &no_conversions,
                account_ctr(&no_conversions),
                0.03,
                &AllocatorConfig::default()
            ),
            unknown,
            "no conversions yet"
        );
        let ads: Vec<_> = [0.004, 0.008, 0.01, 0.015, 0.02]
            .iter()
            .map(|ctr| ad(200_000.0, *ctr, 0.0002 / ctr))
            .collect();
        let switched_off = AllocatorConfig {
            max_conversion_ctr_link: 0.0,
            ..AllocatorConfig::default()
        };
        let off = estimate_ctr_link(&ads, account_ctr(&ads), 0.03, &switched_off);
        assert_eq!((off.exponent_centre, off.exponent_sd), (0.0, 0.0), "switched off");
    }

    #[test]
    fn an_uncertain_link_widens_the_prior_of_ads_far_from_the_accounts_ctr_only() {
        let uncertain = LinkBelief {
            exponent_centre: 0.0,
            exponent_sd: 0.5,
            conversions_per_click_at_account_ctr: 0.02,
        };
        assert_eq!(prior_moments(&uncertain, 1.0), (0.02, 1.0), "at the account's CTR");
        let (low_centre, low_ratio) = prior_moments(&uncertain, 1.0 / 3.0);
        let (high_centre, high_ratio) = prior_moments(&uncertain, 3.0);
        assert!((low_centre - 0.02).abs() < 1e-12 && (high_centre - 0.02).abs() < 1e-12);
        assert!(
            low_ratio > 1.3 && (low_ratio - high_ratio).abs() < 1e-9,
            "{low_ratio} {high_ratio}"
        );
        let known = LinkBelief {
            exponent_centre: 1.0,
            exponent_sd: 0.0,
            ..uncertain
        };
        let (centre, ratio) = prior_moments(&known, 0.5);
        assert!(
            (centre - 0.04).abs() < 1e-12,
            "half the CTR, twice the buyers per click: {centre}"
        );
        assert_eq!(ratio, 1.0);
    }

    #[test]
    fn the_test_threshold_is_the_chi_squared_quantile() {
        assert!((likelihood_ratio_threshold(0.05) - 3.841).abs() < 1e-3);
        assert!((likelihood_ratio_threshold(0.01) - 6.635).abs() < 1e-2);
    }
}
