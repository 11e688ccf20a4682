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
//! β = 0 is today's prior (CTR says nothing about buyers), β = 1 makes conversions per *impression* equal
//! across the ads, β < 0 lets good clickers be good buyers. β and c are a Poisson regression of the ads'
//! conversions on their matured clicks and log relative CTR (maximum likelihood over a grid of β), used only
//! when the likelihood-ratio test against β = 0 rejects at the 5% level: an account whose ads show no link
//! keeps the pooled prior.

use crate::config::AllocatorConfig;
use crate::posterior::{EffectiveEvidence, inverse_standard_normal_cdf, shrunk_ctr};

/// Grid steps per unit of β.
const STEPS_PER_UNIT: i32 = 10;

/// The fitted link: β and the account's rate `c` at an ad of the account's CTR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CtrLink {
    pub exponent: f64,
    pub conversions_per_click_at_account_ctr: f64,
}

/// An ad's CTR relative to the account's, shrunk towards 1 with `strength` pseudo-impressions (the CTR
/// prior's) so that an ad with few impressions is not linked to an extreme CTR.
pub(crate) fn relative_ctr(evidence: &EffectiveEvidence, account_ctr: f64, strength: f64) -> f64 {
    (shrunk_ctr(evidence.clicks, evidence.impressions, account_ctr, strength) / account_ctr).max(1e-6)
}

/// The link the ads support, or `None` (keep the pooled prior): too little evidence
/// (`account_estimate_min_ads`, `account_estimate_min_conversions`), or no link significant at
/// `evidence_test_significance`. β is searched in [−`max_conversion_ctr_link`, `max_conversion_ctr_link`].
pub(crate) fn estimate_ctr_link(
    ad_evidence: &[EffectiveEvidence],
    account_ctr: f64,
    config: &AllocatorConfig,
) -> Option<CtrLink> {
    let ctr_prior_impressions = config.population_ctr_prior_impressions;
    let max_exponent = config.max_conversion_ctr_link;
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
    if ads.len() < config.account_estimate_min_ads
        || conversions < config.account_estimate_min_conversions
        || max_exponent <= 0.0
    {
        return None;
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
    let (unlinked, _) = profile(0.0);
    let steps = (max_exponent * f64::from(STEPS_PER_UNIT)).round() as i32;
    let (exponent, (linked, rate)) = (-steps..=steps)
        .map(|step| f64::from(step) / f64::from(STEPS_PER_UNIT))
        .map(|exponent| (exponent, profile(exponent)))
        .max_by(|(_, (first, _)), (_, (second, _))| first.total_cmp(second))?;
    if 2.0 * (linked - unlinked) < likelihood_ratio_threshold(config.evidence_test_significance) || exponent == 0.0 {
        return None;
    }
    Some(CtrLink {
        exponent,
        conversions_per_click_at_account_ctr: rate,
    })
}

/// The χ² (one degree of freedom) quantile the likelihood-ratio statistic must reach at `significance`:
/// the square of the two-sided normal quantile (3.84 at 5%).
fn likelihood_ratio_threshold(significance: f64) -> f64 {
    inverse_standard_normal_cdf(1.0 - significance / 2.0).powi(2)
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
        let link = estimate_ctr_link(&ads, account_ctr(&ads), &AllocatorConfig::default()).expect("a clear link");
        assert!((0.8..=1.0).contains(&link.exponent), "{link:?}");
    }

    #[test]
    fn ads_whose_buyers_do_not_follow_ctr_keep_the_pooled_prior() {
        // Conversions per click 2% whatever the CTR.
        let ads: Vec<_> = [0.004, 0.008, 0.01, 0.015, 0.02]
            .iter()
            .map(|ctr| ad(200_000.0, *ctr, 0.02))
            .collect();
        assert_eq!(
            estimate_ctr_link(&ads, account_ctr(&ads), &AllocatorConfig::default()),
            None
        );
    }

    #[test]
    fn good_clickers_that_are_good_buyers_give_a_negative_exponent() {
        let ads: Vec<_> = [0.004, 0.008, 0.01, 0.015, 0.02]
            .iter()
            .map(|ctr| ad(200_000.0, *ctr, 2.0 * ctr))
            .collect();
        let link = estimate_ctr_link(&ads, account_ctr(&ads), &AllocatorConfig::default()).expect("a clear link");
        assert!(link.exponent < -0.5, "{link:?}");
    }

    #[test]
    fn too_little_evidence_or_no_room_estimates_nothing() {
        let few: Vec<_> = [0.004, 0.02]
            .iter()
            .map(|ctr| ad(200_000.0, *ctr, 0.0002 / ctr))
            .collect();
        assert_eq!(
            estimate_ctr_link(&few, account_ctr(&few), &AllocatorConfig::default()),
            None,
            "two ads"
        );
        let ads: Vec<_> = [0.004, 0.008, 0.01, 0.015, 0.02]
            .iter()
            .map(|ctr| ad(200_000.0, *ctr, 0.0002 / ctr))
            .collect();
        let switched_off = AllocatorConfig {
            max_conversion_ctr_link: 0.0,
            ..AllocatorConfig::default()
        };
        assert_eq!(
            estimate_ctr_link(&ads, account_ctr(&ads), &switched_off),
            None,
            "switched off"
        );
    }

    #[test]
    fn the_test_threshold_is_the_chi_squared_quantile() {
        assert!((likelihood_ratio_threshold(0.05) - 3.841).abs() < 1e-3);
        assert!((likelihood_ratio_threshold(0.01) - 6.635).abs() < 1e-2);
    }
}
