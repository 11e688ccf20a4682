use crate::MinorUnits;

/// Splits `total` into parts proportional to `weights` so that the parts add up to `total` exactly
/// (largest-remainder method; ties go to the earlier index, so the split is deterministic).
/// Non-finite or negative weights count as zero; when every weight is zero the split is even.
pub fn split_proportionally(total: MinorUnits, weights: &[f64]) -> Vec<MinorUnits> {
    if weights.is_empty() {
        return Vec::new();
    }
    debug_assert!(total.0 >= 0, "only non-negative totals are split");
    let clean_weights: Vec<f64> = weights
        .iter()
        .map(|weight| {
            if weight.is_finite() && *weight > 0.0 {
                *weight
            } else {
                0.0
            }
        })
        .collect();
    let weight_sum: f64 = clean_weights.iter().sum();
    let shares: Vec<f64> = if weight_sum > 0.0 {
        clean_weights.iter().map(|weight| weight / weight_sum).collect()
    } else {
        vec![1.0 / weights.len() as f64; weights.len()]
    };

    let exact_parts: Vec<f64> = shares.iter().map(|share| share * total.0 as f64).collect();
    let mut parts: Vec<i64> = exact_parts.iter().map(|exact| exact.floor() as i64).collect();
    let mut left_to_give = total.0 - parts.iter().sum::<i64>();

    let mut order_by_remainder: Vec<usize> = (0..parts.len()).collect();
    order_by_remainder.sort_by(|&left, &right| {
        let left_remainder = exact_parts[left] - exact_parts[left].floor();
        let right_remainder = exact_parts[right] - exact_parts[right].floor();
        right_remainder.total_cmp(&left_remainder).then(left.cmp(&right))
    });
    // Float rounding can leave the floor sum a unit or two away from the total either way.
    let part_count = parts.len();
    let mut cursor = 0;
    while left_to_give > 0 {
        parts[order_by_remainder[cursor % part_count]] += 1;
        left_to_give -= 1;
        cursor += 1;
    }
    while left_to_give < 0 {
        let index = order_by_remainder[part_count - 1 - (cursor % part_count)];
        if parts[index] > 0 {
            parts[index] -= 1;
            left_to_give += 1;
        }
        cursor += 1;
    }
    parts.into_iter().map(MinorUnits).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn splits_evenly_with_the_remainder_to_the_first_parts() {
        assert_eq!(
            split_proportionally(MinorUnits(10), &[1.0, 1.0, 1.0]),
            vec![MinorUnits(4), MinorUnits(3), MinorUnits(3)]
        );
    }

    #[test]
    fn zero_weights_split_evenly() {
        assert_eq!(
            split_proportionally(MinorUnits(4), &[0.0, 0.0]),
            vec![MinorUnits(2), MinorUnits(2)]
        );
    }

    proptest! {
        #[test]
        fn parts_always_add_up_to_the_total_and_are_never_negative(
            total in 0_i64..10_000_000_000,
            weights in proptest::collection::vec(prop_oneof![Just(0.0), 0.0_f64..1e6, Just(f64::NAN)], 1..300),
        ) {
            let parts = split_proportionally(MinorUnits(total), &weights);
            prop_assert_eq!(parts.len(), weights.len());
            prop_assert_eq!(parts.iter().map(|part| part.0).sum::<i64>(), total);
            prop_assert!(parts.iter().all(|part| part.0 >= 0));
        }

        #[test]
        fn each_part_is_within_one_unit_of_its_exact_share(
            total in 0_i64..1_000_000,
            weights in proptest::collection::vec(0.001_f64..100.0, 1..50),
        ) {
            let parts = split_proportionally(MinorUnits(total), &weights);
            let weight_sum: f64 = weights.iter().sum();
            for (part, weight) in parts.iter().zip(&weights) {
                let exact = weight / weight_sum * total as f64;
                prop_assert!((part.0 as f64 - exact).abs() < 1.0 + 1e-6, "part {} exact {}", part.0, exact);
            }
        }
    }
}
