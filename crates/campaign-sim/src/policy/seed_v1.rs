//! A faithful re-implementation of the original system's allocator (BattleHardenedSampler), constant by
//! constant, flaws included, so adloop can be measured against what it replaces:
//! - age-weighted blend of normalised CTR (5% = 1.0) and ROAS (3x = 1.0);
//! - "fatigue" as exp(−0.0001 × lifetime impressions);
//! - one Beta draw per ad with pseudo-counts n = max(impressions, 100);
//! - softmax at temperature 1 over the draws (so the best/worst split is at most e ≈ 2.72);
//! - a 1.00 (major unit) floor after the split, and each change capped at ±50% of the ad's lifetime
//!   average daily spend (not its real budget), so totals need not add up.
//!
//! The original worked in floats of major units; so does this, converting at the edges. The original drew
//! from an unseeded generator; this one is seeded so runs are reproducible.

use adloop_money::MinorUnits;
use rand_distr::{Beta, Distribution as _};

use super::{HiddenTruths, Policy, PolicyError, active_positions};
use crate::observation::Observation;
use crate::rng::{SimRng, StreamPurpose, stream};

const DECAY_CONSTANT: f64 = 0.0001;
const MIN_IMPRESSIONS_FOR_DECISION: f64 = 100.0;
const MAX_BUDGET_CHANGE_FRACTION: f64 = 0.50;
const CTR_NORMALISER: f64 = 0.05;
const ROAS_NORMALISER: f64 = 3.0;
const BUDGET_FLOOR_MAJOR_UNITS: f64 = 1.0;
const MIN_SPEND_DIVISOR: f64 = 0.01;

pub struct SeedV1 {
    rng: SimRng,
}

impl SeedV1 {
    pub fn new(seed: u64) -> SeedV1 {
        SeedV1 {
            rng: stream(seed, StreamPurpose::PolicyDraws, 1),
        }
    }
}

/// The original's CTR weight by ad age: 1.0 before 6 h, 0.7 at 24 h, 0.3 at 72 h, then exponential decay
/// with a 0.1 floor (reached at about 14 days; its docs claimed 0 after day 3).
pub fn original_ctr_weight(age_hours: f64) -> f64 {
    if age_hours < 6.0 {
        1.0
    } else if age_hours < 24.0 {
        1.0 - 0.3 * (age_hours - 6.0) / 18.0
    } else if age_hours < 72.0 {
        0.7 - 0.4 * (age_hours - 24.0) / 48.0
    } else {
        (0.3 * (-0.1 * (age_hours - 72.0) / 24.0).exp()).max(0.1)
    }
}

/// The original's blended score for one ad (no creative-DNA scores in the simulator; its cross-learner
/// boost was always 1.0 because the learner was never initialised).
pub fn original_final_score(impressions: f64, clicks: f64, spend: f64, pipeline_value: f64, age_hours: f64) -> f64 {
    let ctr = clicks / impressions.max(1.0);
    let pipeline_roas = pipeline_value / spend.max(MIN_SPEND_DIVISOR);
    let ctr_weight = original_ctr_weight(age_hours);
    let normalised_ctr = (ctr / CTR_NORMALISER).min(1.0);
    let normalised_roas = (pipeline_roas / ROAS_NORMALISER).min(1.0);
    let blended = ctr_weight * normalised_ctr + (1.0 - ctr_weight) * normalised_roas;
    let decay = (-DECAY_CONSTANT * impressions).exp();
    blended * decay
}

impl Policy for SeedV1 {
    fn name(&self) -> &str {
        "seed-v1"
    }

    fn decide(
        &mut self,
        observation: &Observation,
        _hidden: &HiddenTruths<'_>,
    ) -> Result<Vec<MinorUnits>, PolicyError> {
        let currency = observation.currency;
        let total_budget = observation.total_daily_budget.to_major(currency);
        let active = active_positions(observation);
        let mut budgets = vec![MinorUnits::ZERO; observation.ads.len()];
        if active.is_empty() {
            return Ok(budgets);
        }

        let mut draws = Vec::with_capacity(active.len());
        for &position in &active {
            let ad = &observation.ads[position];
            let impressions = ad.impressions as f64;
            let final_score = original_final_score(
                impressions,
                ad.clicks as f64,
                ad.spend.to_major(currency),
                ad.conversion_value.to_major(currency),
                ad.age_hours,
            );
            let pseudo_count = impressions.max(MIN_IMPRESSIONS_FOR_DECISION);
            let alpha = (pseudo_count * final_score + 1.0).max(1.0);
            let beta = (pseudo_count * (1.0 - final_score) + 1.0).max(1.0);
            let beta_distribution = Beta::new(alpha, beta).map_err(|error| PolicyError::Failed {
                policy: "seed-v1".into(),
                reason: format!("beta({alpha}, {beta}) for ad {}: {error}", ad.identity.ad_id),
            })?;
            draws.push(beta_distribution.sample(&mut self.rng));
        }

        let exponentials: Vec<f64> = draws.iter().map(|draw| draw.exp()).collect();
        let exponential_sum: f64 = exponentials.iter().sum();
        let mut softmax_budgets: Vec<f64> = exponentials
            .iter()
            .map(|value| total_budget * value / exponential_sum)
            .collect();
        // The last ad gets the remainder, as in the original.
        let all_but_last: f64 = softmax_budgets[..softmax_budgets.len() - 1].iter().sum();
        if let Some(last) = softmax_budgets.last_mut() {
            *last = total_budget - all_but_last;
        }

        for (slot, &position) in active.iter().enumerate() {
            let ad = &observation.ads[position];
            let softmax_budget = softmax_budgets[slot].max(BUDGET_FLOOR_MAJOR_UNITS);
            let lifetime_average_daily_spend = ad.spend.to_major(currency) / (ad.age_hours / 24.0).max(1.0);
            let change = if lifetime_average_daily_spend > 0.0 {
                (softmax_budget - lifetime_average_daily_spend) / lifetime_average_daily_spend
            } else {
                1.0
            };
            let recommended = if change > MAX_BUDGET_CHANGE_FRACTION {
                lifetime_average_daily_spend * (1.0 + MAX_BUDGET_CHANGE_FRACTION)
            } else if change < -MAX_BUDGET_CHANGE_FRACTION {
                lifetime_average_daily_spend * (1.0 - MAX_BUDGET_CHANGE_FRACTION)
            } else {
                softmax_budget
            };
            budgets[position] = MinorUnits::from_major_rounded(recommended, currency);
        }
        Ok(budgets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctr_weight_matches_the_original_measured_values() {
        for (age_hours, expected) in [
            (12.0, 0.90),
            (48.0, 0.50),
            (96.0, 0.2715),
            (168.0, 0.2011),
            (336.0, 0.10),
        ] {
            let weight = original_ctr_weight(age_hours);
            assert!(
                (weight - expected).abs() < 5e-4,
                "age {age_hours}: {weight} vs {expected}"
            );
        }
    }

    #[test]
    fn fatigue_crushes_high_volume_ads_as_the_original_did() {
        // exp(−0.0001 × 50k) ≈ 0.0067: any ad past 50k impressions scores about zero.
        let fresh = original_final_score(1_000.0, 30.0, 100.0, 300.0, 96.0);
        let crushed = original_final_score(50_000.0, 1_500.0, 5_000.0, 15_000.0, 96.0);
        assert!(crushed < fresh * 0.01, "{crushed} vs {fresh}");
    }
}
