//! The probability that each ad is the best, from posterior draws.
//!
//! Counting how often each ad wins across joint draws needs many draws for a precise answer. Instead each
//! draw of ad i is weighed by the probability that every other ad scores below it, read from the others'
//! empirical distributions: P(i best) ≈ mean over draws x of i of Π_{j≠i} F_j(x) (Rao-Blackwellisation).
//! The distributions are tabulated on one log-spaced grid shared by all ads, so the work is linear in the
//! number of draws and grid cells (no sorting).

use crate::posterior::ScoreDraws;

/// Grid cells between the smallest and largest draw (log-spaced).
const GRID_CELLS: usize = 1024;

/// P(best) per ad, summing to 1. Every ad must have the same number of draws.
pub fn probability_of_being_best(draws: &[&ScoreDraws]) -> Vec<f64> {
    let ad_count = draws.len();
    if ad_count == 0 {
        return Vec::new();
    }
    if ad_count == 1 {
        return vec![1.0];
    }
    let draws_per_ad = draws[0].scores.len();
    debug_assert!(draws.iter().all(|ad| ad.scores.len() == draws_per_ad));
    if draws_per_ad == 0 {
        return vec![1.0 / ad_count as f64; ad_count];
    }

    // A log grid over the positive draws; non-positive draws fall in cell 0 (they can only win a tie).
    let (smallest, largest) = draws
        .iter()
        .flat_map(|ad| ad.scores.iter())
        .filter(|score| **score > 0.0 && score.is_finite())
        .fold((f64::MAX, f64::MIN), |(low, high), score| {
            (low.min(*score), high.max(*score))
        });
    if smallest >= largest {
        return vec![1.0 / ad_count as f64; ad_count];
    }
    let log_low = smallest.ln();
    let cell_width = (largest.ln() - log_low) / (GRID_CELLS - 1) as f64;
    let cell_of = |score: f64| -> usize {
        if score <= 0.0 || !score.is_finite() {
            return 0;
        }
        (((score.ln() - log_low) / cell_width) as usize).min(GRID_CELLS - 1)
    };

    // counts[ad × cell] and, per cell, Σ over ads of ln(CDF at the cell's middle). Flat arrays, and a
    // logarithm only where an ad's CDF changes: this sweep is the hot path of every allocation.
    let mut counts = vec![0_u32; ad_count * GRID_CELLS];
    for (ad_index, ad) in draws.iter().enumerate() {
        let ad_counts = &mut counts[ad_index * GRID_CELLS..(ad_index + 1) * GRID_CELLS];
        for score in &ad.scores {
            ad_counts[cell_of(*score)] += 1;
        }
    }
    // CDF at a cell's middle = (2·below + in_cell) / (2·draws): logarithms come from a table of integers.
    let log_doubled_draws = (2.0 * draws_per_ad as f64).ln();
    let log_of_integer: Vec<f64> = (0..=2 * draws_per_ad).map(|integer| (integer as f64).ln()).collect();
    let mut log_cdf_middle = vec![f64::NEG_INFINITY; ad_count * GRID_CELLS];
    let mut sum_log_cdf_middle = vec![0.0_f64; GRID_CELLS];
    let mut ads_with_zero_cdf_middle = vec![0_u32; GRID_CELLS];
    for ad_index in 0..ad_count {
        let ad_counts = &counts[ad_index * GRID_CELLS..(ad_index + 1) * GRID_CELLS];
        let ad_log_cdf = &mut log_cdf_middle[ad_index * GRID_CELLS..(ad_index + 1) * GRID_CELLS];
        let mut below = 0_usize;
        for cell in 0..GRID_CELLS {
            let in_cell = ad_counts[cell] as usize;
            // The CDF halfway through the cell: everything below plus half of the cell.
            let doubled_count = 2 * below + in_cell;
            below += in_cell;
            if doubled_count > 0 {
                let log_cdf = log_of_integer[doubled_count] - log_doubled_draws;
                ad_log_cdf[cell] = log_cdf;
                sum_log_cdf_middle[cell] += log_cdf;
            } else {
                ads_with_zero_cdf_middle[cell] += 1;
            }
        }
    }

    let mut weights = vec![0.0_f64; ad_count];
    for (ad_index, ad_weight) in weights.iter_mut().enumerate() {
        let ad_counts = &counts[ad_index * GRID_CELLS..(ad_index + 1) * GRID_CELLS];
        let ad_log_cdf = &log_cdf_middle[ad_index * GRID_CELLS..(ad_index + 1) * GRID_CELLS];
        for cell in 0..GRID_CELLS {
            let in_cell = ad_counts[cell];
            // An ad with draws in this cell has a positive CDF at its middle, so the zero count is all others'.
            if in_cell == 0 || ads_with_zero_cdf_middle[cell] > 0 {
                continue;
            }
            let others_log_product = sum_log_cdf_middle[cell] - ad_log_cdf[cell];
            // Below e^-50 the contribution is lost in rounding anyway; skip the exponential.
            if others_log_product > -50.0 {
                *ad_weight += f64::from(in_cell) * others_log_product.exp();
            }
        }
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return vec![1.0 / ad_count as f64; ad_count];
    }
    weights.iter().map(|weight| weight / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(values: &[f64]) -> ScoreDraws {
        ScoreDraws {
            scores: values.to_vec(),
        }
    }

    #[test]
    fn a_dominant_ad_is_best_with_certainty() {
        let low = draws(&[1.0, 2.0, 3.0]);
        let high = draws(&[10.0, 11.0, 12.0]);
        let probabilities = probability_of_being_best(&[&low, &high]);
        assert!(probabilities[1] > 0.999, "{probabilities:?}");
    }

    #[test]
    fn identical_distributions_split_evenly() {
        let values: Vec<f64> = (1..=400).map(f64::from).collect();
        let first = draws(&values);
        let second = draws(&values.iter().map(|value| value + 0.5).collect::<Vec<_>>());
        let probabilities = probability_of_being_best(&[&first, &second]);
        assert!((probabilities[0] - 0.5).abs() < 0.01, "{probabilities:?}");
        assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
