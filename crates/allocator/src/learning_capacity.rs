//! How many ads an account's budget can keep learning on. A budget buys so many conversions a week at the
//! account's cost per conversion, and telling an ad apart from the others takes a few of its own; spread over
//! more ads than that, none gathers enough to be judged and the budget learns nothing. Beyond what it can
//! learn on, the ads least likely to be best wait (no budget this time) while the rest are told apart; an ad
//! younger than `young_ad_hours` never waits for this (it has its exploration floor), and at least two ads
//! always compete.

use crate::allocate::sort_likeliest_best_first;
use crate::config::AllocatorConfig;
use crate::input::AllocationRequest;
use crate::posterior::PopulationStats;

/// A comparison needs two.
const FEWEST_ADS_LEARNING: usize = 2;

/// What the account's budget can learn on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LearningCapacity {
    /// The account's cost of one conversion, in major units: its CPM over its conversions per thousand
    /// impressions (CTR × conversions per click).
    pub cost_per_conversion: f64,
    /// Conversions the total daily budget buys over `learning_horizon_days`.
    pub conversions_over_horizon: f64,
    /// Ads that many conversions can tell apart (`conversions_to_tell_an_ad_apart` each), at least two.
    pub ads: usize,
}

/// The capacity of `request`'s total at `population`'s rates; `None` when the rule is off
/// (`learning_horizon_days` 0) or the rates say nothing.
pub(crate) fn learning_capacity(
    request: &AllocationRequest,
    population: &PopulationStats,
    config: &AllocatorConfig,
) -> Option<LearningCapacity> {
    if config.learning_horizon_days <= 0.0 {
        return None;
    }
    let conversions_per_impression = population.ctr * population.conversions_per_click;
    let cost_per_conversion = population.cpm / 1000.0 / conversions_per_impression;
    if !cost_per_conversion.is_finite() || cost_per_conversion <= 0.0 {
        return None;
    }
    let total_daily_budget = request.total_daily_budget.to_major(request.currency);
    let conversions_over_horizon = total_daily_budget * config.learning_horizon_days / cost_per_conversion;
    let ads = (conversions_over_horizon / config.conversions_to_tell_an_ad_apart).floor();
    Some(LearningCapacity {
        cost_per_conversion,
        conversions_over_horizon,
        ads: if ads.is_finite() {
            (ads as usize).max(FEWEST_ADS_LEARNING)
        } else {
            usize::MAX
        },
    })
}

/// The ads among `candidates` (eligible, not already waiting) that wait because the budget cannot learn on
/// them: the settled ones least likely to be best (lowest `targets`), beyond the capacity left after the young
/// ones. Empty when everything fits.
pub(crate) fn ads_beyond_learning_capacity(
    request: &AllocationRequest,
    config: &AllocatorConfig,
    capacity: &LearningCapacity,
    candidates: &[usize],
    targets: &[f64],
) -> Vec<usize> {
    let (young, mut settled): (Vec<usize>, Vec<usize>) = candidates
        .iter()
        .partition(|&&index| request.ads[index].age_hours < config.young_ad_hours);
    let settled_places = capacity.ads.saturating_sub(young.len()).max(FEWEST_ADS_LEARNING);
    if settled.len() <= settled_places {
        return Vec::new();
    }
    sort_likeliest_best_first(&mut settled, targets);
    settled.split_off(settled_places)
}
