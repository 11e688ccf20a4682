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
