//! Results across seeds: means with 95% intervals, and regret against the oracle on the same seeds
//! (common random numbers: every policy meets the same truths and noise on a seed).

use adloop_money::MinorUnits;
use serde::Serialize;

use crate::policy::{Oracle, Policy, PolicyError};
use crate::runner::{RunResult, SimulationError, run_simulation};
use crate::scenario::Scenario;

/// A mean with its 95% confidence interval (Student's t over seeds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IntervalEstimate {
    pub mean: f64,
    pub lower_95: f64,
    pub upper_95: f64,
}

/// Two-sided 95% Student-t critical values for 1..=30 degrees of freedom.
const T_CRITICAL_95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
    2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

impl IntervalEstimate {
    pub fn from_samples(samples: &[f64]) -> IntervalEstimate {
        let count = samples.len();
        if count == 0 {
            return IntervalEstimate {
                mean: f64::NAN,
                lower_95: f64::NAN,
                upper_95: f64::NAN,
            };
        }
        let mean = samples.iter().sum::<f64>() / count as f64;
        if count == 1 {
            return IntervalEstimate {
                mean,
                lower_95: mean,
                upper_95: mean,
            };
        }
        let variance = samples.iter().map(|sample| (sample - mean).powi(2)).sum::<f64>() / (count - 1) as f64;
        let degrees_of_freedom = count - 1;
        let critical = T_CRITICAL_95.get(degrees_of_freedom - 1).copied().unwrap_or(1.96);
        let half_width = critical * (variance / count as f64).sqrt();
        IntervalEstimate {
            mean,
            lower_95: mean - half_width,
            upper_95: mean + half_width,
        }
    }
}

/// One policy's results over all seeds.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    pub policy: String,
    pub seeds: usize,
    /// In major units of the scenario's currency.
    pub total_value: IntervalEstimate,
    pub total_spend: IntervalEstimate,
    pub roas: IntervalEstimate,
    /// Oracle's value minus this policy's, per seed, in major units.
    pub regret: IntervalEstimate,
    /// The same regret seed by seed, in the order of `runs`.
    pub regret_by_seed: Vec<f64>,
    /// Regret as a share of the oracle's value.
    pub regret_fraction: IntervalEstimate,
    pub spend_on_losing_ads: IntervalEstimate,
    /// Spend on losing ads in their first 72 hours.
    pub spend_on_losing_ads_while_young: IntervalEstimate,
    /// Median over the seeds that got there; `None` when fewer than half did.
    pub median_hours_to_shift_80_percent_to_best: Option<f64>,
    pub seeds_that_shifted_80_percent: usize,
    pub decision_latency_mean_micros: f64,
    pub decision_latency_p99_micros: f64,
    pub decisions_over_total: u32,
    pub budgets_refused_below_minimum: u32,
    /// Cumulative regret after each step (hour, estimate across seeds), in major units.
    pub cumulative_regret_by_step: Vec<(u32, IntervalEstimate)>,
    pub runs: Vec<RunResult>,
}

/// One policy's regret minus a baseline's, seed by seed (the same seeds, so the same worlds and the same
/// oracle): negative means the policy lost less. `relative` is the mean difference over the baseline's mean
/// regret (-0.25 = a quarter less regret).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairedDifference {
    pub regret_difference: IntervalEstimate,
    pub relative: f64,
    /// The policy's spend on losing ads in their first 72 hours minus the baseline's, in major units.
    pub young_losing_spend_difference: IntervalEstimate,
    /// That difference over the baseline's mean young losing spend.
    pub young_losing_spend_relative: f64,
}

/// `policy` against `baseline`, paired by seed; `None` when their seeds differ.
pub fn paired_regret_difference(
    scenario: &Scenario,
    policy: &PolicySummary,
    baseline: &PolicySummary,
) -> Option<PairedDifference> {
    let seeds = |summary: &PolicySummary| summary.runs.iter().map(|run| run.seed).collect::<Vec<_>>();
    if seeds(policy) != seeds(baseline) || policy.runs.is_empty() {
        return None;
    }
    let currency = scenario.currency;
    let major = |amount: MinorUnits| amount.to_major(currency);
    // One difference per seed, (policy's run, baseline's run) → major units.
    let paired = |difference: &dyn Fn(&RunResult, &RunResult) -> f64| {
        let differences: Vec<f64> = policy
            .runs
            .iter()
            .zip(&baseline.runs)
            .map(|(ours, theirs)| difference(ours, theirs))
            .collect();
        IntervalEstimate::from_samples(&differences)
    };
    // Same oracle per seed: the regret difference is the baseline's value minus the policy's.
    let regret_difference = paired(&|ours, theirs| major(theirs.total_value) - major(ours.total_value));
    let young_losing_spend_difference = paired(&|ours, theirs| {
        major(ours.spend_on_losing_ads_while_young) - major(theirs.spend_on_losing_ads_while_young)
    });
    Some(PairedDifference {
        regret_difference,
        relative: regret_difference.mean / baseline.regret.mean,
        young_losing_spend_difference,
        young_losing_spend_relative: young_losing_spend_difference.mean / baseline.spend_on_losing_ads_while_young.mean,
    })
}

/// Summarises `runs` (one per seed) against the oracle's runs on the same seeds, in the same order.
pub fn summarize_runs(scenario: &Scenario, runs: Vec<RunResult>, oracle_runs: &[RunResult]) -> PolicySummary {
    debug_assert_eq!(runs.len(), oracle_runs.len());
    let currency = scenario.currency;
    let major = |amount: MinorUnits| amount.to_major(currency);
    let collect = |measure: &dyn Fn(&RunResult, &RunResult) -> f64| -> IntervalEstimate {
        let samples: Vec<f64> = runs
            .iter()
            .zip(oracle_runs)
            .map(|(run, oracle)| measure(run, oracle))
            .collect();
        IntervalEstimate::from_samples(&samples)
    };

    let mut shift_hours: Vec<f64> = runs
        .iter()
        .filter_map(|run| run.hours_to_shift_80_percent_to_best.map(f64::from))
        .collect();
    shift_hours.sort_by(f64::total_cmp);
    let median_hours_to_shift_80_percent_to_best =
        (shift_hours.len() * 2 >= runs.len() && !shift_hours.is_empty()).then(|| shift_hours[shift_hours.len() / 2]);

    let mut latencies: Vec<f64> = runs
        .iter()
        .flat_map(|run| run.decision_latencies_micros.iter().copied())
        .collect();
    latencies.sort_by(f64::total_cmp);
    let decision_latency_mean_micros = if latencies.is_empty() {
        0.0
    } else {
        latencies.iter().sum::<f64>() / latencies.len() as f64
    };
    let decision_latency_p99_micros = latencies
        .get(((latencies.len() as f64) * 0.99).floor() as usize)
        .or(latencies.last())
        .copied()
        .unwrap_or(0.0);

    let step_count = runs.first().map(|run| run.cumulative_value_by_step.len()).unwrap_or(0);
    let cumulative_regret_by_step = (0..step_count)
        .map(|step| {
            let samples: Vec<f64> = runs
                .iter()
                .zip(oracle_runs)
                .map(|(run, oracle)| {
                    major(oracle.cumulative_value_by_step[step].1) - major(run.cumulative_value_by_step[step].1)
                })
                .collect();
            (
                runs[0].cumulative_value_by_step[step].0,
                IntervalEstimate::from_samples(&samples),
            )
        })
        .collect();

    let regret_by_seed: Vec<f64> = runs
        .iter()
        .zip(oracle_runs)
        .map(|(run, oracle)| major(oracle.total_value) - major(run.total_value))
        .collect();

    PolicySummary {
        policy: runs.first().map(|run| run.policy.clone()).unwrap_or_default(),
        seeds: runs.len(),
        total_value: collect(&|run, _| major(run.total_value)),
        total_spend: collect(&|run, _| major(run.total_spend)),
        roas: collect(&|run, _| run.roas()),
        regret: IntervalEstimate::from_samples(&regret_by_seed),
        regret_by_seed,
        regret_fraction: collect(&|run, oracle| {
            let oracle_value = major(oracle.total_value);
            if oracle_value > 0.0 {
                (oracle_value - major(run.total_value)) / oracle_value
            } else {
                0.0
            }
        }),
        spend_on_losing_ads: collect(&|run, _| major(run.spend_on_losing_ads)),
        spend_on_losing_ads_while_young: collect(&|run, _| major(run.spend_on_losing_ads_while_young)),
        median_hours_to_shift_80_percent_to_best,
        seeds_that_shifted_80_percent: shift_hours.len(),
        decision_latency_mean_micros,
        decision_latency_p99_micros,
        decisions_over_total: runs.iter().map(|run| run.decisions_over_total).sum(),
        budgets_refused_below_minimum: runs.iter().map(|run| run.budgets_refused_below_minimum).sum(),
        cumulative_regret_by_step,
        runs,
    }
}

/// Makes a fresh policy for one seed's run.
pub type PolicyFactory<'a> = dyn Fn(u64) -> Result<Box<dyn Policy>, PolicyError> + 'a;

/// Runs every policy on every seed (the same seeds for all, so each meets the same world) and summarises
/// each against the oracle. `on_run_finished` is called after each run, for progress reporting.
pub fn compare_policies(
    scenario: &Scenario,
    policies: &[(&str, &PolicyFactory<'_>)],
    seeds: &[u64],
    days: u32,
    on_run_finished: &mut dyn FnMut(&RunResult),
) -> Result<Vec<PolicySummary>, SimulationError> {
    let mut oracle_runs = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let run = run_simulation(scenario, &mut Oracle, seed, days)?;
        on_run_finished(&run);
        oracle_runs.push(run);
    }
    let mut summaries = Vec::with_capacity(policies.len());
    for (policy_name, make_policy) in policies {
        let runs = if *policy_name == "oracle" {
            oracle_runs.clone()
        } else {
            let mut runs = Vec::with_capacity(seeds.len());
            for &seed in seeds {
                let mut policy = make_policy(seed)?;
                let run = run_simulation(scenario, policy.as_mut(), seed, days)?;
                on_run_finished(&run);
                runs.push(run);
            }
            runs
        };
        summaries.push(summarize_runs(scenario, runs, &oracle_runs));
    }
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_uses_student_t_for_few_seeds() {
        let estimate = IntervalEstimate::from_samples(&[1.0, 2.0, 3.0]);
        assert!((estimate.mean - 2.0).abs() < 1e-12);
        // sd = 1, n = 3, t(2) = 4.303 → half width 4.303 / √3
        assert!((estimate.upper_95 - (2.0 + 4.303 / 3f64.sqrt())).abs() < 1e-9);
    }
}
