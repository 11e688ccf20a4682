//! How many ads a budget can keep learning on. A budget buys so many conversions a week at an account's cost
//! per conversion, and telling an ad apart from the others takes a few of its own; spread over more ads than
//! that, none gathers enough to be judged and the budget learns nothing. Beyond what it can learn on, the ads
//! least likely to be best wait (no budget this time) while the rest are told apart; an ad younger than
//! `young_ad_hours` never waits for this (it has its exploration floor), and at least two ads always compete.
//! Each ad is priced at its own account's cost per conversion: one account's cheap conversions do not tell
//! another account's ads apart.

use crate::allocate::sort_likeliest_best_first;
use crate::config::AllocatorConfig;
use crate::input::AllocationRequest;
use crate::population::PopulationStats;

/// A comparison needs two.
const FEWEST_ADS_LEARNING: usize = 2;

/// Why an ad waits to learn: what telling it apart would cost and what the budget buys (for its reason).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LearningCost {
    /// Its account's cost of one conversion, in major units: the account's CPM over its conversions per
    /// thousand impressions (CTR × conversions per click).
    pub cost_per_conversion: f64,
    /// `conversions_to_tell_an_ad_apart` conversions at that cost.
    pub cost_to_tell_apart: f64,
    /// The total daily budget over `learning_horizon_days`, in major units.
    pub budget_over_horizon: f64,
}

/// An account's cost of one conversion at `population`'s rates; `None` when the rates say nothing.
fn cost_per_conversion(population: &PopulationStats) -> Option<f64> {
    let conversions_per_impression = population.ctr * population.conversions_per_click;
    let cost = population.cpm / 1000.0 / conversions_per_impression;
    (cost.is_finite() && cost > 0.0).then_some(cost)
}

/// The ads among `candidates` (eligible, not already waiting) that wait because the budget cannot learn on
/// them, each with what telling it apart would cost; empty when everything fits or the rule is off
/// (`learning_horizon_days` 0). Telling an ad apart costs `conversions_to_tell_an_ad_apart` conversions at its
/// own account's cost per conversion (`ad_populations`, one per ad: a request may span accounts whose
/// conversions cost very different sums), and the total buys `learning_horizon_days` of learning: the young
/// ads' cost comes first, then the settled ads', likeliest best (highest `targets`) first, each kept while its
/// cost fits in what is left and the first two whatever they cost. For one account at cost `c` this keeps
/// the settled ads that `⌊total · horizon / c⌋` minus the young ones leaves, at least two.
pub(crate) fn ads_beyond_learning_capacity(
    request: &AllocationRequest,
    config: &AllocatorConfig,
    ad_populations: &[PopulationStats],
    candidates: &[usize],
    targets: &[f64],
) -> Vec<(usize, LearningCost)> {
    debug_assert_eq!(ad_populations.len(), request.ads.len());
    if config.learning_horizon_days <= 0.0 {
        return Vec::new();
    }
    let budget_over_horizon = request.total_daily_budget.to_major(request.currency) * config.learning_horizon_days;
    let learning_cost_of = |index: usize| {
        cost_per_conversion(&ad_populations[index]).map(|cost_per_conversion| LearningCost {
            cost_per_conversion,
            cost_to_tell_apart: config.conversions_to_tell_an_ad_apart * cost_per_conversion,
            budget_over_horizon,
        })
    };
    // Repeated subtraction must not lose an ad that one division would keep.
    let rounding_slack = budget_over_horizon * 1e-9;
    let (young, mut settled): (Vec<usize>, Vec<usize>) = candidates
        .iter()
        .partition(|&&index| request.ads[index].age_hours < config.young_ad_hours);
    let mut budget_left = budget_over_horizon
        - young
            .iter()
            .filter_map(|&index| learning_cost_of(index))
            .map(|learning| learning.cost_to_tell_apart)
            .sum::<f64>();
    sort_likeliest_best_first(&mut settled, targets);
    let mut settled_kept = 0;
    let mut waiting = Vec::new();
    for index in settled {
        // Where the rates say nothing the ad cannot be priced, so it never waits for this.
        let Some(learning) = learning_cost_of(index) else {
            continue;
        };
        if settled_kept < FEWEST_ADS_LEARNING || learning.cost_to_tell_apart <= budget_left + rounding_slack {
            budget_left -= learning.cost_to_tell_apart;
            settled_kept += 1;
        } else {
            waiting.push((index, learning));
        }
    }
    waiting
}
