//! The probability that each ad is the best, from posterior draws.
//!
//! Counting how often each ad wins across joint draws needs many draws for a precise answer. Instead each
//! draw of ad i is weighed by the probability that every other ad scores below it, read from the others'
//! empirical distributions: P(i best) ≈ mean over draws x of i of Π_{j≠i} F_j(x) (Rao-Blackwellisation).
//! One sweep over all draws in ascending order keeps Π F_j up to date, so the cost is one sort.

use crate::posterior::ScoreDraws;

/// P(best) per ad, summing to 1. Every ad must have the same number of draws.
pub fn probability_of_being_best(draws: &[&ScoreDraws]) -> Vec<f64> {
    let ad_count = draws.len();
    if ad_count == 0 {
        return Vec::new();
    }
    if ad_count == 1 {
        return vec![1.0];
    }
    let draws_per_ad = draws[0].sorted_scores.len();
    debug_assert!(draws.iter().all(|ad| ad.sorted_scores.len() == draws_per_ad));
    if draws_per_ad == 0 {
        return vec![1.0 / ad_count as f64; ad_count];
    }

    let mut all_draws: Vec<(f64, u32)> = Vec::with_capacity(ad_count * draws_per_ad);
    for (ad_index, ad_draws) in draws.iter().enumerate() {
        all_draws.extend(ad_draws.sorted_scores.iter().map(|score| (*score, ad_index as u32)));
    }
    all_draws.sort_unstable_by(|left, right| left.0.total_cmp(&right.0));

    let log_draws_per_ad = (draws_per_ad as f64).ln();
    let mut draws_below = vec![0_usize; ad_count];
    let mut ads_with_no_draw_below = ad_count;
    // Σ over ads with at least one draw below of ln(F_j).
    let mut log_product = 0.0_f64;
    let mut weight = vec![0.0_f64; ad_count];
    for (_, ad_index) in all_draws {
        let ad_index = ad_index as usize;
        let own_count = draws_below[ad_index];
        let others_without_draw_below = ads_with_no_draw_below - usize::from(own_count == 0);
        if others_without_draw_below == 0 {
            let own_log_cdf = if own_count > 0 {
                (own_count as f64).ln() - log_draws_per_ad
            } else {
                0.0
            };
            weight[ad_index] += (log_product - own_log_cdf).exp();
        }
        if own_count == 0 {
            ads_with_no_draw_below -= 1;
            log_product += -log_draws_per_ad;
        } else {
            log_product += ((own_count + 1) as f64 / own_count as f64).ln();
        }
        draws_below[ad_index] = own_count + 1;
    }
    let total: f64 = weight.iter().sum();
    if total <= 0.0 {
        return vec![1.0 / ad_count as f64; ad_count];
    }
    weight.iter().map(|ad_weight| ad_weight / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(values: &[f64]) -> ScoreDraws {
        let mut sorted_scores = values.to_vec();
        sorted_scores.sort_unstable_by(f64::total_cmp);
        ScoreDraws { sorted_scores }
    }

    #[test]
    fn a_dominant_ad_is_best_with_certainty() {
        let low = draws(&[1.0, 2.0, 3.0]);
        let high = draws(&[10.0, 11.0, 12.0]);
        let probabilities = probability_of_being_best(&[&low, &high]);
        assert_eq!(probabilities, vec![0.0, 1.0]);
    }

    #[test]
    fn identical_distributions_split_evenly() {
        let values: Vec<f64> = (0..200).map(f64::from).collect();
        let first = draws(&values);
        let second = draws(&values.iter().map(|value| value + 0.5).collect::<Vec<_>>());
        let probabilities = probability_of_being_best(&[&first, &second]);
        assert!((probabilities[0] - 0.5).abs() < 0.01, "{probabilities:?}");
        assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
