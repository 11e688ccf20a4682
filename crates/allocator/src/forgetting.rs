//! How much an ad's older evidence still counts. The request carries each ad's lifetime and its recent
//! window; the recent window always counts fully. The older part is forgotten only as far as the ad's own
//! data say it changed: when the recent window's CTR and conversions per matured click agree with the older
//! part's (a likelihood-ratio test of one rate against two, at 5%), the older evidence keeps its full weight,
//! because discarding it only makes a stationary ad look noisier than it is; the clearer the disagreement, the
//! closer its weight comes to continuous forgetting at the configured half-life, weighed at its mean age.

use crate::config::AllocatorConfig;

/// Counts over an exposure in one window: clicks over impressions, or conversions over matured clicks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowRate {
    pub events: f64,
    pub exposure: f64,
}

/// The weight of the older evidence of an ad of `age_hours`, given its two windows' CTR and conversion
/// rate counts.
pub(crate) fn older_evidence_weight(
    age_hours: f64,
    ctr: (WindowRate, WindowRate),
    conversions: (WindowRate, WindowRate),
    config: &AllocatorConfig,
) -> f64 {
    let forgotten_weight = 0.5_f64.powf(age_hours.max(0.0) / 2.0 / config.evidence_half_life_hours);
    // Two tests: Bonferroni, so "changed" means either would pass at 2.5%.
    let evidence_of_change = [ctr, conversions]
        .into_iter()
        .map(|(recent, older)| 2.0 * same_rate_p_value(recent, older))
        .fold(1.0_f64, f64::min);
    let share_kept = (evidence_of_change / CHANGE_SIGNIFICANCE).min(1.0);
    forgotten_weight + (1.0 - forgotten_weight) * share_kept
}

/// The conventional 5%: below it the windows disagree and the half-life applies in full.
const CHANGE_SIGNIFICANCE: f64 = 0.05;

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
    fn a_steady_ad_keeps_its_older_evidence_and_a_changed_one_forgets_it() {
        let config = AllocatorConfig::default();
        let steady_ctr = (rate(100.0, 10_000.0), rate(300.0, 30_000.0));
        let steady_conversions = (rate(3.0, 100.0), rate(9.0, 300.0));
        let kept = older_evidence_weight(720.0, steady_ctr, steady_conversions, &config);
        assert_eq!(kept, 1.0);
        // Conversions per click collapsed in the recent window: none in 100 matured clicks, against 30 in 300.
        let collapsed_conversions = (rate(0.0, 100.0), rate(30.0, 300.0));
        let forgotten = older_evidence_weight(720.0, steady_ctr, collapsed_conversions, &config);
        let half_life_weight = 0.5_f64.powf(360.0 / config.evidence_half_life_hours);
        assert!(
            (forgotten - half_life_weight).abs() < 0.01,
            "{forgotten} vs {half_life_weight}"
        );
        // A weaker disagreement forgets part of the way.
        let dipped_conversions = (rate(3.0, 100.0), rate(30.0, 300.0));
        let partly = older_evidence_weight(720.0, steady_ctr, dipped_conversions, &config);
        assert!(partly > forgotten && partly < 1.0, "{partly}");
    }

    #[test]
    fn without_a_recent_window_nothing_is_forgotten() {
        let config = AllocatorConfig::default();
        let weight = older_evidence_weight(
            720.0,
            (rate(0.0, 0.0), rate(300.0, 30_000.0)),
            (rate(0.0, 0.0), rate(9.0, 300.0)),
            &config,
        );
        assert_eq!(weight, 1.0);
    }
}
