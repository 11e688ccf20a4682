//! The probability that each ad is the best, from posterior draws.
//!
//! Counting how often each ad wins across joint draws needs many draws for a precise answer. Instead each
//! draw of ad i is weighed by the probability that every other ad scores below it, read from the others'
//! empirical distributions: P(i best) ≈ mean over draws x of i of Π_{j≠i} F_j(x) (Rao-Blackwellisation).
//! The distributions are tabulated on one log-spaced grid shared by all ads, so the work is linear in the
//! number of draws and grid cells (no sorting).

/// Grid cells between the smallest and largest draw (log-spaced).
const GRID_CELLS: usize = 1024;

/// P(best) per ad, summing to 1. Each ad's distribution is read from its own draws, however many it has; an
/// ad without draws has no distribution and gets 0 (unless no ad has any, then the split is even).
pub fn probability_of_being_best(draws: &[&[f32]]) -> Vec<f64> {
    let ad_count = draws.len();
    if ad_count == 0 {
        return Vec::new();
    }
    let even_split = vec![1.0 / ad_count as f64; ad_count];
    let with_draws: Vec<usize> = (0..ad_count).filter(|&index| !draws[index].is_empty()).collect();
    if with_draws.is_empty() {
        return even_split;
    }
    if with_draws.len() == 1 {
        let mut probabilities = vec![0.0; ad_count];
        probabilities[with_draws[0]] = 1.0;
        return probabilities;
    }

    // A log grid over the positive draws; non-positive draws fall in cell 0 (they can only win a tie).
    let (smallest, largest) = draws
        .iter()
        .flat_map(|ad| ad.iter())
        .map(|score| f64::from(*score))
        .filter(|score| *score > 0.0 && score.is_finite())
        .fold((f64::MAX, f64::MIN), |(low, high), score| {
            (low.min(score), high.max(score))
        });
    if smallest >= largest {
        return with_draws_split_evenly(ad_count, &with_draws);
    }
    let log_low = smallest.ln();
    let cell_width = (largest.ln() - log_low) / (GRID_CELLS - 1) as f64;
    let cell_of = |score: f32| -> usize {
        let score = f64::from(score);
        if score <= 0.0 || !score.is_finite() {
            return 0;
        }
        (((score.ln() - log_low) / cell_width) as usize).min(GRID_CELLS - 1)
    };

    // counts[ad × cell] and, per cell, Σ over ads of ln(CDF at the cell's middle). Flat arrays, and
    // logarithms from a table of integers: this sweep is the hot path of every allocation.
    let mut counts = vec![0_u32; ad_count * GRID_CELLS];
    for (ad_index, ad) in draws.iter().enumerate() {
        let ad_counts = &mut counts[ad_index * GRID_CELLS..(ad_index + 1) * GRID_CELLS];
        for score in ad.iter() {
            ad_counts[cell_of(*score)] += 1;
        }
    }
    let most_draws = with_draws.iter().map(|&index| draws[index].len()).max().unwrap_or(0);
    let log_of_integer: Vec<f64> = (0..=2 * most_draws).map(|integer| (integer as f64).ln()).collect();
    // ln CDF of one ad at each cell's middle, from its counts: (2·below + in_cell) / (2·draws). Computed
    // twice (for the sum over ads, then per ad) rather than stored: 8 bytes × cells × ads saved per request.
    let (log_of_integer, counts) = (&log_of_integer, &counts);
    let log_cdf_cells = |ad_index: usize| {
        let log_doubled_draws = log_of_integer[2 * draws[ad_index].len()];
        let ad_counts = &counts[ad_index * GRID_CELLS..(ad_index + 1) * GRID_CELLS];
        let mut below = 0_usize;
        ad_counts.iter().map(move |in_cell| {
            let in_cell = *in_cell as usize;
            let doubled_count = 2 * below + in_cell;
            below += in_cell;
            (
                in_cell,
                (doubled_count > 0).then(|| log_of_integer[doubled_count] - log_doubled_draws),
            )
        })
    };
    let mut sum_log_cdf_middle = vec![0.0_f64; GRID_CELLS];
    let mut ads_with_zero_cdf_middle = vec![0_u32; GRID_CELLS];
    for &ad_index in &with_draws {
        for (cell, (_, log_cdf)) in log_cdf_cells(ad_index).enumerate() {
            match log_cdf {
                Some(log_cdf) => sum_log_cdf_middle[cell] += log_cdf,
                None => ads_with_zero_cdf_middle[cell] += 1,
            }
        }
    }

    let mut weights = vec![0.0_f64; ad_count];
    for &ad_index in &with_draws {
        let mut ad_weight = 0.0;
        for (cell, (in_cell, log_cdf)) in log_cdf_cells(ad_index).enumerate() {
            // An ad with draws in this cell has a positive CDF at its middle, so the zero count is all others'.
            let Some(log_cdf) = log_cdf else { continue };
            if in_cell == 0 || ads_with_zero_cdf_middle[cell] > 0 {
                continue;
            }
            let others_log_product = sum_log_cdf_middle[cell] - log_cdf;
            // Below e^-50 the contribution is lost in rounding anyway; skip the exponential.
            if others_log_product > -50.0 {
                ad_weight += in_cell as f64 * others_log_product.exp();
            }
        }
        // The mean over this ad's own draws.
        weights[ad_index] = ad_weight / draws[ad_index].len() as f64;
    }
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return with_draws_split_evenly(ad_count, &with_draws);
    }
    weights.iter().map(|weight| weight / total).collect()
}

fn with_draws_split_evenly(ad_count: usize, with_draws: &[usize]) -> Vec<f64> {
    let mut probabilities = vec![0.0; ad_count];
    for &index in with_draws {
        probabilities[index] = 1.0 / with_draws.len() as f64;
    }
    probabilities
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(values: &[f64]) -> Vec<f32> {
        values.iter().map(|value| *value as f32).collect()
    }

    #[test]
    fn a_dominant_ad_is_best_with_certainty() {
        let low = draws(&[1.0, 2.0, 3.0]);
        let high = draws(&[10.0, 11.0, 12.0]);
        let probabilities = probability_of_being_best(&[&low[..], &high[..]]);
        assert!(probabilities[1] > 0.999, "{probabilities:?}");
    }

    #[test]
    fn identical_distributions_split_evenly() {
        let values: Vec<f64> = (1..=400).map(f64::from).collect();
        let first = draws(&values);
        let second = draws(&values.iter().map(|value| value + 0.5).collect::<Vec<_>>());
        let probabilities = probability_of_being_best(&[&first[..], &second[..]]);
        assert!((probabilities[0] - 0.5).abs() < 0.01, "{probabilities:?}");
        assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ads_with_different_draw_counts_are_read_from_their_own_draws() {
        // The same distribution drawn 400 and 100 times: still an even split, and no index past either end.
        let many: Vec<f64> = (1..=400).map(f64::from).collect();
        let few: Vec<f64> = (1..=100).map(|value| f64::from(value) * 4.0 - 1.5).collect();
        let probabilities = probability_of_being_best(&[&draws(&many)[..], &draws(&few)[..]]);
        assert!((probabilities[0] - 0.5).abs() < 0.02, "{probabilities:?}");
    }

    #[test]
    fn an_ad_without_draws_is_never_best() {
        let probabilities =
            probability_of_being_best(&[&draws(&[1.0, 2.0])[..], &draws(&[])[..], &draws(&[3.0, 4.0])[..]]);
        assert_eq!(probabilities[1], 0.0);
        assert!(probabilities[2] > 0.99, "{probabilities:?}");
        assert_eq!(
            probability_of_being_best(&[&draws(&[])[..], &draws(&[])[..]]),
            vec![0.5, 0.5]
        );
    }
}
