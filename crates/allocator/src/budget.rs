//! From target shares to budgets: each ad's budget stays within its bounds (floor, cap, exploration floor,
//! maximum change from its real current budget) and the budgets add up to the total exactly, in minor units.

use adloop_money::MinorUnits;

/// The range one ad's budget may take this step, in minor units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetBounds {
    pub lower: i64,
    pub upper: i64,
}

impl BudgetBounds {
    /// The sums of `bounds`' lower and upper ends, in 128 bits: many ads' upper bounds (a cap of the whole
    /// total each) can pass 64.
    pub(crate) fn sums(bounds: &[BudgetBounds]) -> (i128, i128) {
        bounds.iter().fold((0, 0), |(lower_sum, upper_sum), bound| {
            (lower_sum + i128::from(bound.lower), upper_sum + i128::from(bound.upper))
        })
    }
}

/// The lowest and highest budget an ad whose budget is `current` may get under a change limit of
/// ±`max_change_fraction` of it, or `None` when it has no budget (nothing to be relative to). Rounded inwards:
/// a budget one minor unit past the limit is refused by the executor's guardrail on the same limit (the slack
/// absorbs floating-point error on exact values such as 15 × 0.8).
pub fn change_limit_bounds(current: MinorUnits, max_change_fraction: f64) -> Option<(i64, i64)> {
    let current = current.get() as f64;
    if current <= 0.0 {
        return None;
    }
    let slack = 1e-9;
    let lower = (current * (1.0 - max_change_fraction) - slack).ceil() as i64;
    let upper = (current * (1.0 + max_change_fraction) + slack).floor() as i64;
    Some((lower, upper))
}

/// Budgets within `bounds` that add up to `total`, as close to proportional to `targets` as the bounds allow.
/// `None` when no such budgets exist (the lower bounds add up to more than the total, or the upper bounds to
/// less).
pub fn fit_budgets(total: MinorUnits, targets: &[f64], bounds: &[BudgetBounds]) -> Option<Vec<MinorUnits>> {
    debug_assert_eq!(targets.len(), bounds.len());
    let total = total.get();
    let (lower_sum, upper_sum) = BudgetBounds::sums(bounds);
    let wide_total = i128::from(total);
    if lower_sum > wide_total || upper_sum < wide_total || bounds.iter().any(|bound| bound.lower > bound.upper) {
        return None;
    }
    let clean_targets: Vec<f64> = targets
        .iter()
        .map(|target| {
            if target.is_finite() && *target > 0.0 {
                *target
            } else {
                0.0
            }
        })
        .collect();
    let even_targets = vec![1.0; targets.len()];
    let targets = if clean_targets.iter().sum::<f64>() > 0.0 {
        &clean_targets
    } else {
        &even_targets
    };

    // Find the scale at which the clamped budgets add up to the total (the sum grows with the scale).
    let clamped_sum = |scale: f64| -> f64 {
        targets
            .iter()
            .zip(bounds)
            .map(|(target, bound)| (target * scale).clamp(bound.lower as f64, bound.upper as f64))
            .sum()
    };
    let mut low_scale = 0.0_f64;
    let mut high_scale = 1.0_f64;
    while clamped_sum(high_scale) < total as f64 && high_scale < 1e30 {
        high_scale *= 2.0;
    }
    for _ in 0..200 {
        let middle = (low_scale + high_scale) / 2.0;
        if clamped_sum(middle) < total as f64 {
            low_scale = middle;
        } else {
            high_scale = middle;
        }
    }
    let mut continuous: Vec<f64> = targets
        .iter()
        .zip(bounds)
        .map(|(target, bound)| (target * high_scale).clamp(bound.lower as f64, bound.upper as f64))
        .collect();
    share_what_no_scale_reaches(total, &mut continuous, bounds);
    Some(round_within_bounds(total, &continuous, bounds))
}

/// A target of zero (an ad with no chance of being best) grows with no scale: once every ad with a target is
/// at its upper bound, what is left of the total goes to the others, in proportion to their room below their
/// upper bounds. Without this the remainder was handed out one minor unit per ad per pass when rounding — in
/// a currency of large minor-unit amounts (IDR, VND) billions of passes, seconds of one allocation.
fn share_what_no_scale_reaches(total: i64, continuous: &mut [f64], bounds: &[BudgetBounds]) {
    let shortfall = total as f64 - continuous.iter().sum::<f64>();
    if shortfall <= 0.0 {
        return;
    }
    let room: Vec<f64> = continuous
        .iter()
        .zip(bounds)
        .map(|(value, bound)| (bound.upper as f64 - value).max(0.0))
        .collect();
    let total_room: f64 = room.iter().sum();
    if total_room <= 0.0 {
        return;
    }
    let share = (shortfall / total_room).min(1.0);
    for ((value, room), bound) in continuous.iter_mut().zip(&room).zip(bounds) {
        *value = (*value + room * share).min(bound.upper as f64);
    }
}

/// Largest-remainder rounding that never leaves a bound: whole units go to the largest fractional parts
/// first, to ads still below their upper bound (or are taken from the smallest parts above the lower bound).
fn round_within_bounds(total: i64, continuous: &[f64], bounds: &[BudgetBounds]) -> Vec<MinorUnits> {
    let mut budgets: Vec<i64> = continuous
        .iter()
        .zip(bounds)
        .map(|(value, bound)| (value.floor() as i64).clamp(bound.lower, bound.upper))
        .collect();
    let mut order: Vec<usize> = (0..budgets.len()).collect();
    order.sort_by(|&left, &right| {
        let left_fraction = continuous[left] - continuous[left].floor();
        let right_fraction = continuous[right] - continuous[right].floor();
        right_fraction.total_cmp(&left_fraction).then(left.cmp(&right))
    });
    let mut difference = total - budgets.iter().sum::<i64>();
    while difference > 0 {
        let mut gave_any = false;
        for &index in &order {
            if difference == 0 {
                break;
            }
            if budgets[index] < bounds[index].upper {
                budgets[index] += 1;
                difference -= 1;
                gave_any = true;
            }
        }
        if !gave_any {
            break;
        }
    }
    while difference < 0 {
        let mut took_any = false;
        for &index in order.iter().rev() {
            if difference == 0 {
                break;
            }
            if budgets[index] > bounds[index].lower {
                budgets[index] -= 1;
                difference += 1;
                took_any = true;
            }
        }
        if !took_any {
            break;
        }
    }
    debug_assert_eq!(budgets.iter().sum::<i64>(), total);
    budgets.into_iter().map(MinorUnits).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn shares_follow_targets_where_bounds_allow() {
        let bounds = vec![BudgetBounds { lower: 0, upper: 1000 }; 3];
        let budgets = fit_budgets(MinorUnits(1000), &[0.5, 0.3, 0.2], &bounds).unwrap();
        assert_eq!(budgets, vec![MinorUnits(500), MinorUnits(300), MinorUnits(200)]);
    }

    #[test]
    fn ads_with_no_chance_share_what_the_capped_ones_cannot_take_by_their_room() {
        // The one ad with a target is capped at 300; the 700 left go to the two others by their room (200 and
        // 600 of headroom: a quarter and three quarters), not one unit at a time to each in turn.
        let bounds = vec![
            BudgetBounds { lower: 0, upper: 300 },
            BudgetBounds { lower: 100, upper: 300 },
            BudgetBounds { lower: 100, upper: 700 },
        ];
        let budgets = fit_budgets(MinorUnits(1000), &[1.0, 0.0, 0.0], &bounds).unwrap();
        assert_eq!(budgets, vec![MinorUnits(300), MinorUnits(225), MinorUnits(475)]);
    }

    #[test]
    fn a_total_of_billions_of_minor_units_fits_at_once() {
        // An IDR account (67.8 million rupiah a day, in sen): three likely-best ads capped by the change limit,
        // fourteen with no chance that must take the rest. Handing it out one sen per ad per pass took seconds.
        let total = 6_778_925_084;
        let mut bounds = vec![
            BudgetBounds {
                lower: 199_380_150,
                upper: 598_140_448
            };
            17
        ];
        bounds[0].upper = 598_140_450;
        let mut targets = vec![0.0; 17];
        for likely_best in [0, 6, 9] {
            targets[likely_best] = 1.0 / 3.0;
        }
        let budgets = fit_budgets(MinorUnits(total), &targets, &bounds).unwrap();
        assert_eq!(budgets.iter().map(|budget| budget.get()).sum::<i64>(), total);
        for likely_best in [0, 6, 9] {
            assert_eq!(budgets[likely_best].get(), bounds[likely_best].upper);
        }
        let others: Vec<i64> = (0..17)
            .filter(|index| ![0, 6, 9].contains(index))
            .map(|index| budgets[index].get())
            .collect();
        let (least, most) = (others.iter().min().unwrap(), others.iter().max().unwrap());
        assert!(most - least <= 1, "equal room, equal shares: {others:?}");
    }

    #[test]
    fn a_capped_ad_passes_its_excess_to_the_others() {
        let bounds = vec![
            BudgetBounds { lower: 0, upper: 300 },
            BudgetBounds { lower: 0, upper: 1000 },
            BudgetBounds {
                lower: 100,
                upper: 1000,
            },
        ];
        let budgets = fit_budgets(MinorUnits(1000), &[0.9, 0.1, 0.0], &bounds).unwrap();
        assert_eq!(budgets, vec![MinorUnits(300), MinorUnits(600), MinorUnits(100)]);
    }

    #[test]
    fn upper_bounds_that_add_up_past_64_bits_still_fit() {
        let bounds = vec![
            BudgetBounds {
                lower: 0,
                upper: i64::MAX / 2
            };
            4
        ];
        let budgets = fit_budgets(MinorUnits(1000), &[0.25; 4], &bounds).unwrap();
        assert_eq!(budgets, vec![MinorUnits(250); 4]);
    }

    #[test]
    fn infeasible_bounds_are_reported() {
        let bounds = vec![
            BudgetBounds {
                lower: 600,
                upper: 1000
            };
            2
        ];
        assert!(fit_budgets(MinorUnits(1000), &[1.0, 1.0], &bounds).is_none());
    }

    proptest! {
        #[test]
        fn budgets_add_up_exactly_and_respect_every_bound(
            total in 1_i64..10_000_000,
            raw in proptest::collection::vec((0.0_f64..1.0, 0.0_f64..1.0, 0.0_f64..1.0), 1..60),
        ) {
            let ad_count = raw.len() as f64;
            let bounds: Vec<BudgetBounds> = raw
                .iter()
                .map(|(_, low, width)| {
                    let lower = (low * total as f64 / ad_count * 0.9) as i64;
                    let upper = lower + (width * total as f64) as i64 + (total as f64 / ad_count).ceil() as i64;
                    BudgetBounds { lower, upper }
                })
                .collect();
            let targets: Vec<f64> = raw.iter().map(|(target, _, _)| *target).collect();
            let budgets = fit_budgets(MinorUnits(total), &targets, &bounds).expect("feasible by construction");
            prop_assert_eq!(budgets.iter().map(|budget| budget.get()).sum::<i64>(), total);
            for (budget, bound) in budgets.iter().zip(&bounds) {
                prop_assert!(budget.get() >= bound.lower && budget.get() <= bound.upper);
            }
        }
    }
}
