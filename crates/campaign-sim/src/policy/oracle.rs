use adloop_money::MinorUnits;

use super::{HiddenTruths, Policy, PolicyError, active_positions};
use crate::observation::Observation;

/// Knows every ad's true ROAS now and puts the whole budget on the best one. Regret is measured against it.
pub struct Oracle;

impl Policy for Oracle {
    fn name(&self) -> &str {
        "oracle"
    }

    fn decide(&mut self, observation: &Observation, hidden: &HiddenTruths<'_>) -> Result<Vec<MinorUnits>, PolicyError> {
        let mut budgets = vec![MinorUnits::ZERO; observation.ads.len()];
        let best_position = active_positions(observation)
            .into_iter()
            .max_by(|&left, &right| hidden.true_roas[left].total_cmp(&hidden.true_roas[right]));
        if let Some(best_position) = best_position {
            budgets[best_position] = observation.total_daily_budget;
        }
        Ok(budgets)
    }
}

/// The oracle held to the change limit adloop keeps (each ad with a budget moves at most ±`max_change_fraction`
/// of it per decision; an ad without one is unbounded): every ad starts at its lowest allowed budget, and what
/// is left goes to the truly best ads first, each up to its highest allowed. Its regret against [`Oracle`] is
/// the cost of the guard rail; a learning policy's regret against it is the cost of learning.
pub struct LimitedOracle {
    pub max_change_fraction: f64,
}

impl Default for LimitedOracle {
    fn default() -> Self {
        // adloop's simulator policy keeps ±50% (`policy::Adloop`).
        LimitedOracle {
            max_change_fraction: 0.5,
        }
    }
}

impl Policy for LimitedOracle {
    fn name(&self) -> &str {
        "oracle-limited"
    }

    fn decide(&mut self, observation: &Observation, hidden: &HiddenTruths<'_>) -> Result<Vec<MinorUnits>, PolicyError> {
        let total = observation.total_daily_budget.get();
        let mut active = active_positions(observation);
        let mut budgets = vec![MinorUnits::ZERO; observation.ads.len()];
        if active.is_empty() {
            return Ok(budgets);
        }
        let bounds: Vec<(i64, i64)> = observation
            .ads
            .iter()
            .map(|ad| {
                let current = ad.current_daily_budget.get() as f64;
                if current <= 0.0 {
                    return (0, total);
                }
                let lower = (current * (1.0 - self.max_change_fraction)).floor() as i64;
                let upper = (current * (1.0 + self.max_change_fraction)).ceil() as i64;
                (lower.clamp(0, total), upper.clamp(0, total))
            })
            .collect();
        active.sort_by(|&left, &right| hidden.true_roas[right].total_cmp(&hidden.true_roas[left]));
        let lowest_sum: i64 = active.iter().map(|&position| bounds[position].0).sum();
        if lowest_sum > total {
            // The total shrank below what the limit lets the ads give up: as adloop does, the limit yields, and
            // everything goes to the best.
            budgets[active[0]] = observation.total_daily_budget;
            return Ok(budgets);
        }
        let mut left_to_give = total - lowest_sum;
        for &position in &active {
            let (lower, upper) = bounds[position];
            let extra = (upper - lower).min(left_to_give);
            budgets[position] = MinorUnits(lower + extra);
            left_to_give -= extra;
        }
        // More than the upper bounds can take: the limit yields for the best ad.
        budgets[active[0]] = MinorUnits(budgets[active[0]].get() + left_to_give);
        debug_assert_eq!(budgets.iter().map(|budget| budget.get()).sum::<i64>(), total);
        Ok(budgets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::AdObservation;
    use crate::policy::observed_ad_for_tests;

    fn ad(current_daily_budget: i64) -> AdObservation {
        observed_ad_for_tests(&format!("ad-{current_daily_budget}"), current_daily_budget)
    }

    #[test]
    fn the_limited_oracle_moves_budget_to_the_best_ads_within_the_limit_and_keeps_the_total() {
        let observation = Observation {
            hour: 48,
            currency: adloop_money::Currency::parse("USD").unwrap(),
            total_daily_budget: MinorUnits(30_000),
            ads: vec![ad(10_000), ad(10_000), ad(10_000)],
        };
        let truths = [0.5, 3.0, 1.5];
        let budgets = LimitedOracle::default()
            .decide(
                &observation,
                &HiddenTruths {
                    true_roas: &truths,
                    true_rates: &[],
                },
            )
            .unwrap();
        // The best rises by half, the worst falls by half, the middle takes what is left.
        assert_eq!(budgets, [MinorUnits(5_000), MinorUnits(15_000), MinorUnits(10_000)]);
        let unlimited = Oracle
            .decide(
                &observation,
                &HiddenTruths {
                    true_roas: &truths,
                    true_rates: &[],
                },
            )
            .unwrap();
        assert_eq!(unlimited[1], MinorUnits(30_000));
    }
}
