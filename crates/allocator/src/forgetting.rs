//! How much an ad's older evidence still counts. The request carries each ad's lifetime and its recent
//! window; the recent window always counts fully. The older part is forgotten only as far as the ad's own
//! data say it changed, and only for the rate that changed: clicks per impression and conversions per matured
//! click are tested apart (a likelihood-ratio test of one rate against two each), so a CTR worn down by
//! fatigue does not throw away the conversions that still describe the ad, and a collapse of conversions does
//! not throw away its clicks. When the windows agree, the older evidence keeps its full weight, because
//! discarding it only makes a steady ad look noisier than it is. The clearer the disagreement, the less of it
//! counts: towards continuous forgetting at the configured half-life while a change is in doubt, and towards
//! nothing once the change is beyond doubt (the older window then describes an ad that no longer exists).

use crate::config::AllocatorConfig;

/// Counts over an exposure in one window: clicks over impressions, or conversions over matured clicks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowRate {
    pub events: f64,
    pub exposure: f64,
}

/// The weight of an ad's older evidence, per rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OlderEvidenceWeights {
    /// Of its impressions and clicks (the CTR's evidence).
    pub ctr: f64,
    /// Of its conversions, matured clicks and conversion value.
    pub conversions: f64,
}

/// The weights of the older evidence of an ad of `age_hours`, given its two windows' (recent, older) CTR and
/// conversion rate counts.
pub(crate) fn older_evidence_weights(
    age_hours: f64,
    ctr: (WindowRate, WindowRate),
    conversions: (WindowRate, WindowRate),
    config: &AllocatorConfig,
) -> OlderEvidenceWeights {
    let half_life_weight = 0.5_f64.powf(age_hours.max(0.0) / 2.0 / config.evidence_half_life_hours);
    // Two tests, each at half the significance (Bonferroni): a steady ad loses any of its older evidence at
    // the configured rate (5%).
    let weight_given = |(recent, older): (WindowRate, WindowRate)| {
        let p_value = 2.0 * same_rate_p_value(recent, older);
        // 1 while the windows agree, falling to 0 as the evidence of a change grows; below the significance
        // the half-life's weight is passed on the way.
        let doubt_of_change = (p_value / config.evidence_test_significance).min(1.0);
        doubt_of_change + (1.0 - doubt_of_change) * half_life_weight * doubt_of_change
    };
    OlderEvidenceWeights {
        ctr: weight_given(ctr),
        conversions: weight_given(conversions),
    }
}

/// The p-value of "both windows have the same rate" for Poisson counts over exposures (G-test, χ² with one
/// degree of freedom); 1 when either window has no exposure.
fn same_rate_p_value(recent: WindowRate, older: WindowRate) -> f64 {
    if recent.exposure <= 0.0 || older.exposure <= 0.0 {
        return 1.0;
    }
    let pooled_rate = (recent.events + older.events) / (recent.exposure + older.exposure);
    if pooled_rate <= 0.0 {
        return 1.0;
    }
    let term = |window: WindowRate| {
        if window.events <= 0.0 {
            return 0.0;
        }
        window.events * (window.events / (window.exposure * pooled_rate)).ln()
    };
    // The G statistic: twice the log-likelihood ratio, which for Poisson counts is the sum below.
    let g_statistic = (2.0 * (term(recent) + term(older))).max(0.0);
    chi_squared_one_survival(g_statistic)
}

/// P(χ²₁ > x) = erfc(√(x/2)).
fn chi_squared_one_survival(x: f64) -> f64 {
    complementary_error_function((x / 2.0).sqrt())
}

/// erfc for x ≥ 0 (Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7).
fn complementary_error_function(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let polynomial =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (polynomial * (-x * x).exp()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(events: f64, exposure: f64) -> WindowRate {
        WindowRate { events, exposure }
    }

    #[test]
    fn the_chi_squared_tail_matches_known_values() {
        assert!((chi_squared_one_survival(3.841) - 0.05).abs() < 1e-3);
        assert!((chi_squared_one_survival(0.0) - 1.0).abs() < 1e-6);
        assert!(chi_squared_one_survival(30.0) < 1e-6);
    }

    #[test]
    fn a_steady_ad_keeps_its_older_evidence_and_a_changed_rate_forgets_its_own() {
        let config = AllocatorConfig::default();
        let steady_ctr = (rate(100.0, 10_000.0), rate(300.0, 30_000.0));
        let steady_conversions = (rate(3.0, 100.0), rate(9.0, 300.0));
        let kept = older_evidence_weights(720.0, steady_ctr, steady_conversions, &config);
        assert_eq!(
            kept,
            OlderEvidenceWeights {
                ctr: 1.0,
                conversions: 1.0
            }
        );
        // Conversions per click collapsed in the recent window: none in 100 matured clicks, against 30 in 300.
        // Beyond doubt: the older conversions go, the clicks (which did not change) stay.
        let collapsed_conversions = (rate(0.0, 100.0), rate(30.0, 300.0));
        let collapsed = older_evidence_weights(720.0, steady_ctr, collapsed_conversions, &config);
        assert_eq!(collapsed.ctr, 1.0);
        assert!(collapsed.conversions < 0.01, "{collapsed:?}");
        // A weaker disagreement forgets part of the way.
        let dipped_conversions = (rate(3.0, 100.0), rate(30.0, 300.0));
        let partly = older_evidence_weights(720.0, steady_ctr, dipped_conversions, &config);
        assert!(
            partly.conversions > collapsed.conversions && partly.conversions < 1.0,
            "{partly:?}"
        );
        // A CTR worn down by fatigue forgets the older clicks and keeps the older conversions.
        let fatigued_ctr = (rate(50.0, 10_000.0), rate(300.0, 30_000.0));
        let fatigued = older_evidence_weights(720.0, fatigued_ctr, steady_conversions, &config);
        assert!(fatigued.ctr < 0.01, "{fatigued:?}");
        assert_eq!(fatigued.conversions, 1.0);
    }

    #[test]
    fn without_a_recent_window_nothing_is_forgotten() {
        let config = AllocatorConfig::default();
        let weights = older_evidence_weights(
            720.0,
            (rate(0.0, 0.0), rate(300.0, 30_000.0)),
            (rate(0.0, 0.0), rate(9.0, 300.0)),
            &config,
        );
        assert_eq!(
            weights,
            OlderEvidenceWeights {
                ctr: 1.0,
                conversions: 1.0
            }
        );
    }
}
