//! One policy on one seed of one scenario, start to finish, with the measurements users compare.

use std::time::Instant;

use adloop_money::MinorUnits;
use serde::Serialize;

use crate::policy::{HiddenTruths, Policy, PolicyError};
use crate::scenario::Scenario;
use crate::world::{BudgetError, World};

#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("policy `{policy}` returned unusable budgets at hour {hour}: {source}")]
    Budgets {
        policy: String,
        hour: u32,
        #[source]
        source: BudgetError,
    },
}

/// The budgets one decision set, and where the run stood.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    pub hour: u32,
    /// (ad name, daily budget applied), for every observed ad.
    pub budgets: Vec<(String, MinorUnits)>,
    /// Share of the total given to the ad with the best true ROAS at that moment.
    pub best_ad_share: f64,
    /// What the policy believed about each ad, in the order of `budgets`, when it keeps its beliefs
    /// ([`crate::policy::Policy::last_beliefs`]).
    pub beliefs: Option<Vec<crate::policy::AdBelief>>,
}

/// Everything measured in one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub policy: String,
    pub seed: u64,
    pub days: u32,
    /// True value of every conversion the run's delivery produced (reported by the end or not).
    pub total_value: MinorUnits,
    pub total_spend: MinorUnits,
    pub conversions: u64,
    /// Spend on ads whose true ROAS was below half the best active ad's at the time.
    pub spend_on_losing_ads: MinorUnits,
    /// The part of it spent on ads in their first 72 hours.
    pub spend_on_losing_ads_while_young: MinorUnits,
    /// Hours until a decision first gave at least 80% of the budget to the truly best ad, if ever.
    pub hours_to_shift_80_percent_to_best: Option<u32>,
    /// Decisions whose budgets added up to more than the account total (scaled down by the world).
    pub decisions_over_total: u32,
    /// Budgets the world refused because they were positive but below the account's minimum daily budget.
    pub budgets_refused_below_minimum: u32,
    /// The account's largest single-day spend.
    pub highest_daily_spend: MinorUnits,
    /// Cumulative true value after each step, for regret curves.
    pub cumulative_value_by_step: Vec<(u32, MinorUnits)>,
    pub decisions: Vec<DecisionRecord>,
    /// Wall-clock time of each policy decision, in microseconds.
    pub decision_latencies_micros: Vec<f64>,
}

impl RunResult {
    pub fn roas(&self) -> f64 {
        if self.total_spend.get() == 0 {
            return 0.0;
        }
        self.total_value.get() as f64 / self.total_spend.get() as f64
    }
}

/// Runs `policy` for `days` simulated days. The world starts with the budget split evenly across the ads
/// launched on day 0; the policy decides after each decision interval, seeing only what has been reported.
pub fn run_simulation(
    scenario: &Scenario,
    policy: &mut dyn Policy,
    seed: u64,
    days: u32,
) -> Result<RunResult, SimulationError> {
    let mut world = World::new(scenario, seed);
    let step_hours = world.decision_interval_hours();
    let step_count = days * 24 / step_hours;
    let total_budget = scenario.total_daily_budget.get() as f64;

    let mut result = RunResult {
        policy: policy.name().to_owned(),
        seed,
        days,
        total_value: MinorUnits::ZERO,
        total_spend: MinorUnits::ZERO,
        conversions: 0,
        spend_on_losing_ads: MinorUnits::ZERO,
        spend_on_losing_ads_while_young: MinorUnits::ZERO,
        hours_to_shift_80_percent_to_best: None,
        decisions_over_total: 0,
        budgets_refused_below_minimum: 0,
        highest_daily_spend: MinorUnits::ZERO,
        cumulative_value_by_step: Vec::with_capacity(step_count as usize),
        decisions: Vec::new(),
        decision_latencies_micros: Vec::new(),
    };

    for step in 0..step_count {
        if step > 0 {
            let true_roas = world.true_roas_of_observed_ads();
            let true_rates = world.true_rates_of_observed_ads();
            let daily_auction_curves = world.daily_auction_curves_of_observed_ads();
            let hidden = HiddenTruths {
                true_roas: &true_roas,
                true_rates: &true_rates,
                daily_auction_curves: &daily_auction_curves,
            };
            let started_at = Instant::now();
            let budgets = policy.decide(world.observation(), &hidden)?;
            result
                .decision_latencies_micros
                .push(started_at.elapsed().as_secs_f64() * 1e6);

            let application = world
                .apply_budgets(&budgets)
                .map_err(|source| SimulationError::Budgets {
                    policy: result.policy.clone(),
                    hour: world.hour(),
                    source,
                })?;
            if application.scaled_down_to_total {
                result.decisions_over_total += 1;
            }
            result.budgets_refused_below_minimum += application.refused_below_minimum as u32;
            let mut record = decision_record(&world, &true_roas, total_budget);
            record.beliefs = policy.last_beliefs().map(<[_]>::to_vec);
            if result.hours_to_shift_80_percent_to_best.is_none() && record.best_ad_share >= 0.8 {
                result.hours_to_shift_80_percent_to_best = Some(world.hour());
            }
            result.decisions.push(record);
        }
        let outcome = world.advance();
        result.total_value += outcome.conversion_value;
        result.total_spend += outcome.spend;
        result.conversions += outcome.conversions;
        result.spend_on_losing_ads += outcome.spend_on_losing_ads;
        result.spend_on_losing_ads_while_young += outcome.spend_on_losing_ads_while_young;
        result.cumulative_value_by_step.push((world.hour(), result.total_value));
    }
    result.highest_daily_spend = world.highest_daily_spend();
    Ok(result)
}

fn decision_record(world: &World, true_roas: &[f64], total_budget: f64) -> DecisionRecord {
    let observation = world.observation();
    let best_position = (0..true_roas.len()).max_by(|&left, &right| true_roas[left].total_cmp(&true_roas[right]));
    let best_ad_share = best_position
        .map(|position| observation.ads[position].current_daily_budget.get() as f64 / total_budget)
        .unwrap_or(0.0);
    DecisionRecord {
        hour: world.hour(),
        budgets: observation
            .ads
            .iter()
            .map(|ad| (ad.identity.name.clone(), ad.current_daily_budget))
            .collect(),
        best_ad_share,
        beliefs: None,
    }
}
