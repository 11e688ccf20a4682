use adloop_money::{MinorUnits, split_proportionally};

use super::{HiddenTruths, Policy, PolicyError, active_positions, fit_to_minimum_budget};
use crate::observation::Observation;

/// The same budget for every active ad: the baseline that learns nothing.
pub struct Uniform;

impl Policy for Uniform {
    fn name(&self) -> &str {
        "uniform"
    }

    fn decide(
        &mut self,
        observation: &Observation,
        _hidden: &HiddenTruths<'_>,
    ) -> Result<Vec<MinorUnits>, PolicyError> {
        let active = active_positions(observation);
        let mut budgets = vec![MinorUnits::ZERO; observation.ads.len()];
        let shares = split_proportionally(observation.total_daily_budget, &vec![1.0; active.len()]);
        for (position, share) in active.into_iter().zip(shares) {
            budgets[position] = share;
        }
        fit_to_minimum_budget(&mut budgets, observation.minimum_daily_budget);
        Ok(budgets)
    }
}
