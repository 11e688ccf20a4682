use adloop_money::MinorUnits;

use super::{HiddenTruths, Policy, PolicyError, active_positions, fit_to_minimum_budget};
use crate::observation::Observation;

/// Knows every ad's true ROAS now and splits the budget for the most value: all of it on the best ad where
/// delivery is linear, and where it is not (the auction curve), each further unit to the ad whose next
/// impression earns most per unit of spend. Regret is measured against it.
pub struct Oracle;

impl Policy for Oracle {
    fn name(&self) -> &str {
        "oracle"
    }

    fn decide(&mut self, observation: &Observation, hidden: &HiddenTruths<'_>) -> Result<Vec<MinorUnits>, PolicyError> {
        let total = observation.total_daily_budget.get();
        let bounds = vec![(0, total); observation.ads.len()];
        Ok(best_split_within_bounds(observation, hidden, &bounds))
    }
}

/// The oracle held to the change limit adloop keeps (each ad with a budget moves at most ±`max_change_fraction`
/// of it per decision; an ad without one is unbounded): every ad starts at its lowest allowed budget, and what
/// is left goes where it earns most, each ad up to its highest allowed. Its regret against [`Oracle`] is the
/// cost of the guard rail; a learning policy's regret against it is the cost of learning.
pub struct LimitedOracle {
    pub max_change_fraction: f64,
}

impl Default for LimitedOracle {
    fn default() -> Self {
        // adloop's simulator policy keeps the same limit (`policy::Adloop`).
        LimitedOracle {
            max_change_fraction: super::DEFAULT_MAX_CHANGE_FRACTION,
        }
    }
}

impl Policy for LimitedOracle {
    fn name(&self) -> &str {
        "oracle-limited"
    }

    fn decide(&mut self, observation: &Observation, hidden: &HiddenTruths<'_>) -> Result<Vec<MinorUnits>, PolicyError> {
        let bounds: Vec<(i64, i64)> = observation
            .ads
            .iter()
            .map(|ad| {
                super::change_limit_bounds(
                    ad.current_daily_budget,
                    self.max_change_fraction,
                    observation.total_daily_budget,
                )
            })
            .collect();
        Ok(best_split_within_bounds(observation, hidden, &bounds))
    }
}

/// How many pieces the budget above the lower bounds is handed out in where delivery is not linear.
const FILL_PIECES: i64 = 1000;

/// The most valuable split of the total with each active ad within its (lower, upper) bounds. Each ad's
/// marginal ROAS only falls as it spends, so handing out the budget piece by piece to the ad whose next
/// piece earns most is optimal (to within a piece). When the lower bounds alone exceed the total the bounds
/// yield and everything goes to the best ad; money the upper bounds cannot take goes to the best ad too.
fn best_split_within_bounds(
    observation: &Observation,
    hidden: &HiddenTruths<'_>,
    bounds: &[(i64, i64)],
) -> Vec<MinorUnits> {
    let total = observation.total_daily_budget.get();
    let mut budgets = vec![0_i64; observation.ads.len()];
    let mut active = active_positions(observation);
    if active.is_empty() {
        return vec![MinorUnits::ZERO; observation.ads.len()];
    }
    active.sort_by(|&left, &right| {
        hidden.true_roas[right]
            .total_cmp(&hidden.true_roas[left])
            .then(left.cmp(&right))
    });
    let best = active[0];
    let lowest_sum: i64 = active.iter().map(|&position| bounds[position].0).sum();
    if lowest_sum > total {
        budgets[best] = total;
        return budgets.into_iter().map(MinorUnits).collect();
    }
    for &position in &active {
        budgets[position] = bounds[position].0;
    }
    let left_to_give = fill_by_marginal_roas(&mut budgets, total - lowest_sum, &active, bounds, hidden);
    budgets[best] += left_to_give;
    debug_assert_eq!(budgets.iter().sum::<i64>(), total);
    let mut budgets: Vec<MinorUnits> = budgets.into_iter().map(MinorUnits).collect();
    fit_to_minimum_budget(&mut budgets, observation.minimum_daily_budget);
    budgets
}

/// Hands `left_to_give` out in pieces, each to the ad (below its upper bound) whose next piece earns most
/// per unit of spend on its auction curve (its true ROAS throughout where delivery is linear, so the best
/// ads fill up first); returns what no ad could take.
fn fill_by_marginal_roas(
    budgets: &mut [i64],
    mut left_to_give: i64,
    active: &[usize],
    bounds: &[(i64, i64)],
    hidden: &HiddenTruths<'_>,
) -> i64 {
    use std::cmp::Ordering;
    use std::collections::BinaryHeap;

    #[derive(PartialEq)]
    struct Candidate {
        marginal_roas: f64,
        position: usize,
    }
    impl Eq for Candidate {}
    impl PartialOrd for Candidate {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Candidate {
        fn cmp(&self, other: &Self) -> Ordering {
            self.marginal_roas
                .total_cmp(&other.marginal_roas)
                .then(other.position.cmp(&self.position))
        }
    }

    let piece = (left_to_give / FILL_PIECES).max(1);
    let marginal_roas = |position: usize, budget: i64| match hidden.daily_auction_curves.get(position) {
        Some(curve) => curve.marginal_roas(hidden.true_roas[position], budget as f64),
        None => hidden.true_roas[position],
    };
    let mut candidates: BinaryHeap<Candidate> = active
        .iter()
        .filter(|&&position| budgets[position] < bounds[position].1)
        .map(|&position| Candidate {
            marginal_roas: marginal_roas(position, budgets[position]),
            position,
        })
        .collect();
    while left_to_give > 0 {
        let Some(Candidate { position, .. }) = candidates.pop() else {
            break;
        };
        let given = piece.min(left_to_give).min(bounds[position].1 - budgets[position]);
        budgets[position] += given;
        left_to_give -= given;
        if budgets[position] < bounds[position].1 {
            candidates.push(Candidate {
                marginal_roas: marginal_roas(position, budgets[position]),
                position,
            });
        }
    }
    left_to_give
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::AdObservation;
    use crate::policy::observed_ad_for_tests;

    fn ad(current_daily_budget: i64) -> AdObservation {
        observed_ad_for_tests(&format!("ad-{current_daily_budget}"), current_daily_budget)
    }

    fn observation(total_daily_budget: i64, ads: Vec<crate::observation::AdObservation>) -> Observation {
        Observation {
            hour: 48,
            currency: adloop_money::Currency::parse("USD").unwrap(),
            total_daily_budget: MinorUnits(total_daily_budget),
            minimum_daily_budget: MinorUnits::ZERO,
            ads,
        }
    }

    fn decide(
        policy: &mut dyn Policy,
        observation: &Observation,
        true_roas: &[f64],
        daily_auction_curves: &[crate::auction::AuctionCurve],
    ) -> Vec<MinorUnits> {
        policy
            .decide(
                observation,
                &HiddenTruths {
                    true_roas,
                    true_rates: &[],
                    daily_auction_curves,
                },
            )
            .unwrap()
    }

    #[test]
    fn the_limited_oracle_moves_budget_to_the_best_ads_within_the_limit_and_keeps_the_total() {
        let observation = observation(30_000, vec![ad(10_000), ad(10_000), ad(10_000)]);
        let truths = [0.5, 3.0, 1.5];
        let budgets = decide(&mut LimitedOracle::default(), &observation, &truths, &[]);
        // The best rises by half, the worst falls by half, the middle takes what is left.
        assert_eq!(budgets, [MinorUnits(5_000), MinorUnits(15_000), MinorUnits(10_000)]);
        let unlimited = decide(&mut Oracle, &observation, &truths, &[]);
        assert_eq!(unlimited[1], MinorUnits(30_000));
    }

    #[test]
    fn where_the_best_ad_saturates_the_oracle_spreads_the_budget_by_marginal_roas() {
        let observation = observation(100_000, vec![ad(50_000), ad(50_001)]);
        let truths = [3.0, 2.0];
        let small_audience = crate::auction::AuctionCurve {
            base_cpm: 1000.0,
            capacity_impressions: 40_000.0,
            marginal_cpm_rise_at_capacity: 3.0,
        };
        let large_audience = crate::auction::AuctionCurve {
            capacity_impressions: 1e12,
            ..small_audience
        };
        let budgets = decide(&mut Oracle, &observation, &truths, &[small_audience, large_audience]);
        assert_eq!(budgets[0].get() + budgets[1].get(), 100_000);
        // The better ad is worth buying until its marginal ROAS falls to the other's: 3 / (1 + 3 n / 40,000)
        // = 2 at n ≈ 6,667 impressions, which cost 6,667 + 3 × 6,667² / 80,000 ≈ 8,333 minor units (to within
        // a piece of 100; the other ad's audience is so large that its curve is flat).
        assert!((budgets[0].get() - 8_333).abs() <= 150, "{budgets:?}");
        let linear = decide(&mut Oracle, &observation, &truths, &[]);
        assert_eq!(linear[0], MinorUnits(100_000), "linear delivery: all on the best");
    }
}
