//! How far each account's own ads bear out a learner's conversion lifts.
//!
//! A learned prior moves an ad's prior conversions per click from the population's rate towards that rate
//! times the learner's lift (`learned_prior`), by a weight from the learner's own certainty — about
//! strength / (strength + the population's). That certainty says how sure the learner is of what it saw over
//! every account, not whether its lifts hold in this one. The account's ads can say: their conversions on
//! matured clicks against their lifts. As for CTR (`ctr_link`), the prior mean becomes
//!
//! ```text
//! prior conversions per click of ad i = population rate · lift_i^γ
//! ```
//!
//! with γ the account's: the best γ on a grid from −1 (the lifts read backwards, one for one) to
//! `max_learned_conversion_link`, profiled over the rate, where a likelihood-ratio test at
//! `evidence_test_significance` rejects the learner's own weight; otherwise no γ, and the learner's weight
//! stands. An account whose ads confirm the lifts takes them whole (or more), one whose ads contradict them
//! turns them down or around (a feature whose meaning flips between accounts), and one with too little
//! evidence keeps what the learner says.

use std::collections::BTreeMap;

use crate::config::AllocatorConfig;
use crate::input::AdInput;
use crate::posterior::EffectiveEvidence;

/// The lowest γ read: a learner's lifts reversed, one for one.
const LOWEST_EXPONENT: f64 = -1.0;
/// Grid steps per unit of γ.
const STEPS_PER_UNIT: f64 = 10.0;

/// One ad's evidence about the link: its conversions, its matured clicks, the log of its learned lift, and
/// the weight the learner's certainty gives the lift.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkEvidence {
    pub conversions: f64,
    pub matured_clicks: f64,
    pub log_lift: f64,
    pub learner_weight: f64,
}

/// The γ each (account, source) shows where its ads reject the learner's own weight; absent elsewhere.
/// `lifts_of` gives each ad's (source, lift, learner weight) for each learned source whose conversion prior it
/// carries.
pub(crate) fn conversion_link_exponents(
    ads: &[AdInput],
    evidence: &[EffectiveEvidence],
    lifts_of: impl Fn(&AdInput) -> Vec<(String, f64, f64)>,
    config: &AllocatorConfig,
) -> BTreeMap<(String, String), f64> {
    let mut by_account_and_source: BTreeMap<(String, String), Vec<LinkEvidence>> = BTreeMap::new();
    for (ad, ad_evidence) in ads.iter().zip(evidence) {
        if ad_evidence.matured_clicks < 1.0 {
            continue;
        }
        for (source, lift, learner_weight) in lifts_of(ad) {
            by_account_and_source
                .entry((ad.ids.account_id.clone(), source))
                .or_default()
                .push(LinkEvidence {
                    conversions: ad_evidence.conversions,
                    matured_clicks: ad_evidence.matured_clicks,
                    log_lift: lift.max(1e-6).ln(),
                    learner_weight,
                });
        }
    }
    by_account_and_source
        .into_iter()
        .filter_map(|(key, rows)| Some((key, shown_exponent(&rows, config)?)))
        .collect()
}

/// The γ the rows show, if it differs from the learner's own weight (their mean) by the account's test.
pub(crate) fn shown_exponent(rows: &[LinkEvidence], config: &AllocatorConfig) -> Option<f64> {
    let highest_exponent = config.max_learned_conversion_link;
    if highest_exponent <= 0.0 || rows.is_empty() {
        return None;
    }
    let conversions: f64 = rows.iter().map(|row| row.conversions).sum();
    if !config.enough_for_account_estimate(rows.len(), conversions) {
        return None;
    }
    // The Poisson log-likelihood at γ with the rate at its maximum for that γ.
    let log_likelihood = |exponent: f64| {
        let exposures: Vec<f64> = rows
            .iter()
            .map(|row| row.matured_clicks * (exponent * row.log_lift).exp())
            .collect();
        let rate = conversions / exposures.iter().sum::<f64>();
        rows.iter()
            .zip(&exposures)
            .map(|(row, exposure)| {
                let expected = rate * exposure;
                row.conversions * expected.ln() - expected
            })
            .sum::<f64>()
    };
    let learners_own = rows.iter().map(|row| row.learner_weight).sum::<f64>() / rows.len() as f64;
    let learners_own_likelihood = log_likelihood(learners_own);
    let first_step = (LOWEST_EXPONENT * STEPS_PER_UNIT).round() as i32;
    let last_step = (highest_exponent * STEPS_PER_UNIT).round() as i32;
    let (best, best_likelihood) = (first_step..=last_step)
        .map(|step| f64::from(step) / STEPS_PER_UNIT)
        .map(|exponent| (exponent, log_likelihood(exponent)))
        .filter(|(_, likelihood)| likelihood.is_finite())
        .max_by(|(_, first), (_, second)| first.total_cmp(second))?;
    let threshold = crate::ctr_link::likelihood_ratio_threshold(config.evidence_test_significance);
    (2.0 * (best_likelihood - learners_own_likelihood) >= threshold).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten ads of 2,000 matured clicks whose lifts run from ×0.6 to ×1.6 and whose conversions per click
    /// follow `rate_of(lift)`.
    fn rows(rate_of: impl Fn(f64) -> f64) -> Vec<LinkEvidence> {
        (0..10)
            .map(|ad| {
                let lift = 0.6 + 0.1 * f64::from(ad) + 0.01;
                LinkEvidence {
                    conversions: (2_000.0 * rate_of(lift)).round(),
                    matured_clicks: 2_000.0,
                    log_lift: f64::ln(lift),
                    learner_weight: 0.4,
                }
            })
            .collect()
    }

    #[test]
    fn ads_that_bear_the_lifts_out_take_them_whole() {
        let shown = shown_exponent(&rows(|lift| 0.02 * lift), &AllocatorConfig::default());
        assert!(
            shown.is_some_and(|exponent| (0.8..=1.2).contains(&exponent)),
            "{shown:?}"
        );
    }

    #[test]
    fn ads_that_contradict_the_lifts_turn_them_around() {
        let shown = shown_exponent(&rows(|lift| 0.02 / lift), &AllocatorConfig::default());
        assert!(shown.is_some_and(|exponent| exponent < 0.0), "{shown:?}");
    }

    #[test]
    fn ads_that_agree_with_the_learner_s_own_weight_or_say_too_little_leave_it() {
        let config = AllocatorConfig::default();
        assert_eq!(shown_exponent(&rows(|lift| 0.02 * lift.powf(0.4)), &config), None);
        let few: Vec<LinkEvidence> = rows(|lift| 0.02 * lift)
            .into_iter()
            .map(|row| LinkEvidence {
                conversions: (row.conversions / 100.0).round(),
                matured_clicks: row.matured_clicks / 100.0,
                ..row
            })
            .collect();
        assert_eq!(
            shown_exponent(&few, &config),
            None,
            "a handful of conversions tells nothing"
        );
    }
}
