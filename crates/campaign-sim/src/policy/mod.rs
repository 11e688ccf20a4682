//! Budget allocation policies. A policy sees an [`Observation`] (what a real allocator could know) and returns
//! one daily budget per observed ad. Only the oracle also reads the hidden truths, through [`HiddenTruths`].

mod account_delays;
mod adloop;
mod oracle;
mod seed_v1;
mod ts_basic;
mod uniform;

pub use account_delays::AccountDelayEstimates;
pub use adloop::{Adloop, WARM_LEARNERS_POLICY, allocation_request, delivery_totals, learning_updates};
pub use oracle::{LimitedOracle, Oracle};
pub use seed_v1::SeedV1;
pub use ts_basic::TsBasic;
pub use uniform::Uniform;

use adloop_money::MinorUnits;

use crate::observation::Observation;

/// What the world knows and policies must not: each observed ad's true ROAS and rates now, in observation
/// order. Only the bounds other policies are measured against read them: the oracles, and
/// `adloop-true-priors` and `adloop-feature-priors` (the allocator given priors from the true rates, or from
/// the part of them the ads' creative features explain: the most a learner could give it).
pub struct HiddenTruths<'a> {
    pub true_roas: &'a [f64],
    pub true_rates: &'a [TrueRates],
    /// Each ad's auction curve over a day, where delivery is not linear in budget; empty: linear.
    pub daily_auction_curves: &'a [crate::auction::AuctionCurve],
}

/// One ad's expected CTR and conversions per click now (before seasonality and daily noise), and the part
/// of each its creative features explain (the rate without the ad's own luck in its group's draw: what a
/// learner that knew every feature's effect exactly could predict).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrueRates {
    pub ctr: f64,
    pub conversions_per_click: f64,
    pub ctr_from_features: f64,
    pub conversions_per_click_from_features: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy `{policy}` failed: {reason}")]
    Failed { policy: String, reason: String },
}

pub trait Policy {
    fn name(&self) -> &str;

    /// One daily budget per `observation.ads` entry, in the same order. Paused ads should get zero.
    fn decide(&mut self, observation: &Observation, hidden: &HiddenTruths<'_>) -> Result<Vec<MinorUnits>, PolicyError>;

    /// What the policy believed about each ad at its last decision, in observation order, when it was asked
    /// to keep it ([`PolicySettings::explain_decisions`]) and has beliefs to tell (the adloop policies).
    fn last_beliefs(&self) -> Option<&[AdBelief]> {
        None
    }
}

/// One ad as a policy saw it when deciding: the allocator's own summary of its posterior, the numbers
/// ml-service returns with every recommendation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AdBelief {
    pub probability_best: f64,
    /// Expected return on ad spend and its 95% interval.
    pub roas_mean: f64,
    pub roas_lower_95: f64,
    pub roas_upper_95: f64,
    /// Projected CTR multiplier over the next step from the ad's recent trend (1: no fatigue).
    pub fatigue_factor: f64,
    /// Where the ad's prior came from (`population`, `instant_learner`, ...).
    pub prior_source: String,
}

/// Names of the built-in policies, as the CLI accepts them.
pub const BUILT_IN_POLICY_NAMES: &[&str] = &[
    "uniform",
    "seed-v1",
    "ts-basic",
    "ts-basic-limited",
    "adloop",
    "adloop-priors-off",
    "oracle",
    "oracle-limited",
    "adloop-true-priors",
    "adloop-feature-priors",
];

/// Names of the built-in policies that need the scenario itself to start (`built_in_policy_on`): adloop with
/// its learners warmed on other worlds of the scenario's kind.
pub const SCENARIO_POLICY_NAMES: &[&str] = &[WARM_LEARNERS_POLICY];

/// A fresh built-in policy for one run on `scenario`, of either list; `None` for an unknown name.
pub fn built_in_policy_on(
    name: &str,
    seed: u64,
    settings: &PolicySettings,
    scenario: &crate::Scenario,
) -> Result<Option<Box<dyn Policy>>, PolicyError> {
    if name != WARM_LEARNERS_POLICY {
        return Ok(built_in_policy_with(name, seed, settings));
    }
    let policy = Adloop::with_warm_learners(seed, settings, scenario).map_err(|error| PolicyError::Failed {
        policy: name.to_owned(),
        reason: format!("while warming its learners on other worlds: {error}"),
    })?;
    Ok(Some(Box::new(policy)))
}

/// How the adloop policies and the limited oracle run: the allocator's and the instant learner's constants,
/// and the change limit adloop keeps per decision (the limited oracle keeps the same one, so that its regret
/// stays the cost of that guard rail).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySettings {
    pub allocator: adloop_allocator::AllocatorConfig,
    pub learner: adloop_learner::LearnerConfig,
    /// Largest change per ad per decision, as a fraction of its current budget.
    pub max_change_fraction: f64,
    /// Keep what the adloop policies believed about each ad at each decision (`--json`): a few dozen bytes
    /// per ad and decision, so only when asked.
    pub explain_decisions: bool,
}

/// The change limit adloop keeps in the simulator unless told otherwise: ±50% a decision.
pub const DEFAULT_MAX_CHANGE_FRACTION: f64 = 0.5;

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            allocator: adloop_allocator::AllocatorConfig::default(),
            learner: adloop_learner::LearnerConfig::default(),
            max_change_fraction: DEFAULT_MAX_CHANGE_FRACTION,
            explain_decisions: false,
        }
    }
}

/// The lowest and highest budget the change limit allows an ad whose budget is `current` (minor units), both
/// within 0..=`total`: adloop's own limit (`adloop_allocator::change_limit_bounds`, rounded inwards as the
/// allocator and the executor's guardrail round it). An ad without a budget is unbounded. The peers held to
/// adloop's limit (`ts-basic-limited`, `oracle-limited`) both keep this one.
pub fn change_limit_bounds(current: MinorUnits, max_change_fraction: f64, total: MinorUnits) -> (i64, i64) {
    let total = total.get().max(0);
    match adloop_allocator::change_limit_bounds(current, max_change_fraction) {
        Some((lower, upper)) => {
            let lower = lower.clamp(0, total);
            (lower, upper.clamp(lower, total))
        }
        None => (0, total),
    }
}

/// A fresh built-in policy for one run, as shipped; `seed` makes its own random draws reproducible.
pub fn built_in_policy(name: &str, seed: u64) -> Option<Box<dyn Policy>> {
    built_in_policy_with(name, seed, &PolicySettings::default())
}

/// A fresh built-in policy for one run, the adloop policies and the limited oracle under `settings`.
pub fn built_in_policy_with(name: &str, seed: u64, settings: &PolicySettings) -> Option<Box<dyn Policy>> {
    match name {
        "uniform" => Some(Box::new(Uniform)),
        "seed-v1" => Some(Box::new(SeedV1::new(seed))),
        "ts-basic" => Some(Box::new(TsBasic::new(seed))),
        "ts-basic-limited" => Some(Box::new(TsBasic::limited(seed, settings.max_change_fraction))),
        "adloop" => Some(Box::new(Adloop::new(seed).configured(settings))),
        "adloop-priors-off" => Some(Box::new(Adloop::without_priors(seed).configured(settings))),
        "oracle" => Some(Box::new(Oracle)),
        "oracle-limited" => Some(Box::new(LimitedOracle {
            max_change_fraction: settings.max_change_fraction,
        })),
        "adloop-true-priors" => Some(Box::new(Adloop::with_true_priors(seed).configured(settings))),
        "adloop-feature-priors" => Some(Box::new(Adloop::with_feature_priors(seed).configured(settings))),
        _ => None,
    }
}

/// Indices of the ads that can take budget.
fn active_positions(observation: &Observation) -> Vec<usize> {
    observation
        .ads
        .iter()
        .enumerate()
        .filter(|(_, ad)| ad.status == crate::observation::AdStatus::Active)
        .map(|(position, _)| position)
        .collect()
}

/// Makes budgets the account accepts: a positive budget below its minimum would be refused, so the smallest
/// such budget drops to zero and its money is spread over the other funded ads in proportion, until every
/// positive budget meets the minimum. It is what a policy written against the Graph API does after its first
/// refusal; the textbook peers use it so that comparisons measure allocation, not error handling.
pub(crate) fn fit_to_minimum_budget(budgets: &mut [MinorUnits], minimum: MinorUnits) {
    loop {
        let smallest_below_minimum = budgets
            .iter()
            .enumerate()
            .filter(|(_, budget)| budget.get() > 0 && **budget < minimum)
            .min_by(|(left_position, left), (right_position, right)| {
                left.cmp(right).then(right_position.cmp(left_position))
            })
            .map(|(position, _)| position);
        let Some(dropped) = smallest_below_minimum else {
            return;
        };
        let total: MinorUnits = budgets.iter().copied().sum();
        budgets[dropped] = MinorUnits::ZERO;
        let weights: Vec<f64> = budgets.iter().map(|budget| budget.get() as f64).collect();
        if weights.iter().all(|weight| *weight <= 0.0) {
            budgets[dropped] = total;
            return;
        }
        budgets.copy_from_slice(&adloop_money::split_proportionally(total, &weights));
    }
}

/// An active, observed ad with no delivery yet, for policies' tests.
#[cfg(test)]
pub(crate) fn observed_ad_for_tests(ad_id: &str, current_daily_budget: i64) -> crate::observation::AdObservation {
    use crate::observation::{AdIdentity, AdObservation, AdStatus, WindowStats};
    AdObservation {
        identity: AdIdentity {
            account_id: "act_1".into(),
            campaign_id: "1".into(),
            ad_set_id: format!("set-{ad_id}"),
            ad_id: ad_id.into(),
            name: ad_id.into(),
        },
        status: AdStatus::Active,
        age_hours: 240.0,
        current_daily_budget: MinorUnits(current_daily_budget),
        impressions: 0,
        clicks: 0,
        spend: MinorUnits::ZERO,
        conversions: 0,
        conversion_value: MinorUnits::ZERO,
        last_72_hours: WindowStats::default(),
        last_7_days: WindowStats::default(),
        daily: Vec::new(),
        frequency: 0.0,
        features: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_below_the_minimum_give_way_to_the_others_and_the_total_is_kept() {
        let mut budgets: Vec<MinorUnits> = [5_000, 3_000, 1_500, 500, 0].map(MinorUnits).to_vec();
        fit_to_minimum_budget(&mut budgets, MinorUnits(2_000));
        assert_eq!(budgets.iter().copied().sum::<MinorUnits>(), MinorUnits(10_000));
        assert!(
            budgets.iter().all(|budget| budget.get() == 0 || budget.get() >= 2_000),
            "{budgets:?}"
        );
        assert_eq!(budgets[3], MinorUnits::ZERO, "the smallest goes first");
        assert_eq!(budgets[4], MinorUnits::ZERO, "an ad without budget stays without");
        assert!(budgets[0] > budgets[1] && budgets[1] > MinorUnits::ZERO, "{budgets:?}");
    }

    #[test]
    fn an_even_split_too_thin_for_the_minimum_funds_as_many_ads_as_it_can() {
        let mut budgets = vec![MinorUnits(1_000); 10];
        fit_to_minimum_budget(&mut budgets, MinorUnits(3_000));
        let funded = budgets.iter().filter(|budget| budget.get() > 0).count();
        assert_eq!(funded, 3, "{budgets:?}");
        assert_eq!(budgets.iter().copied().sum::<MinorUnits>(), MinorUnits(10_000));
    }

    #[test]
    fn the_limited_peers_limit_is_adloops_rounded_inwards() {
        let total = MinorUnits(100_000);
        assert_eq!(change_limit_bounds(MinorUnits(10_000), 0.5, total), (5_000, 15_000));
        assert_eq!(change_limit_bounds(MinorUnits(3), 0.5, total), (2, 4));
        // An ad starved to one minor unit cannot be cut to nothing (and so escape the limit the next day).
        assert_eq!(change_limit_bounds(MinorUnits(1), 0.5, total), (1, 1));
        assert_eq!(change_limit_bounds(MinorUnits::ZERO, 0.5, total), (0, 100_000));
        assert_eq!(change_limit_bounds(MinorUnits(90_000), 0.5, total), (45_000, 100_000));
        // 10 × (1 − 0.7) is 3.0000000000000004 and 45 × 1.4 is 62.99999999999999 in floating point: the
        // allocator's slack keeps 3 and 63 allowed, as its guardrail does.
        assert_eq!(change_limit_bounds(MinorUnits(10), 0.7, total), (3, 17));
        assert_eq!(change_limit_bounds(MinorUnits(45), 0.4, total), (27, 63));
    }
}
