use campaign_sim::policy::{BUILT_IN_POLICY_NAMES, built_in_policy};
use campaign_sim::run_simulation;

use crate::{ALL_SCENARIOS, load_scenario};

#[test]
fn a_seed_always_produces_the_same_run() {
    let scenario = load_scenario("cold-start");
    for policy_name in ["uniform", "seed-v1"] {
        let first = run_simulation(&scenario, built_in_policy(policy_name, 7).unwrap().as_mut(), 7, 20).unwrap();
        let second = run_simulation(&scenario, built_in_policy(policy_name, 7).unwrap().as_mut(), 7, 20).unwrap();
        assert_eq!(first.total_value, second.total_value, "{policy_name}");
        assert_eq!(first.total_spend, second.total_spend, "{policy_name}");
        assert_eq!(
            first.cumulative_value_by_step, second.cumulative_value_by_step,
            "{policy_name}"
        );
        let budgets = |run: &campaign_sim::RunResult| {
            run.decisions
                .iter()
                .map(|decision| decision.budgets.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(budgets(&first), budgets(&second), "{policy_name}");
    }
}

#[test]
fn different_seeds_produce_different_runs() {
    let scenario = load_scenario("stationary-10");
    let first = run_simulation(&scenario, built_in_policy("uniform", 1).unwrap().as_mut(), 1, 10).unwrap();
    let second = run_simulation(&scenario, built_in_policy("uniform", 2).unwrap().as_mut(), 2, 10).unwrap();
    assert_ne!(first.total_value, second.total_value);
}

#[test]
fn no_policy_spends_more_than_the_daily_total_plus_metas_overspend_allowance() {
    for scenario_name in ALL_SCENARIOS {
        let scenario = load_scenario(scenario_name);
        let allowance = scenario.total_daily_budget.get() as f64 * (1.0 + scenario.delivery.max_overspend_fraction);
        for policy_name in BUILT_IN_POLICY_NAMES {
            for seed in [1, 2] {
                let run = run_simulation(
                    &scenario,
                    built_in_policy(policy_name, seed).unwrap().as_mut(),
                    seed,
                    30,
                )
                .unwrap();
                assert!(
                    run.highest_daily_spend.get() as f64 <= allowance,
                    "{scenario_name}/{policy_name}/seed {seed}: spent {} in a day, allowance {allowance}",
                    run.highest_daily_spend.get()
                );
                assert!(run.total_spend.get() > 0, "{scenario_name}/{policy_name} spent nothing");
            }
        }
    }
}

#[test]
fn the_original_allocator_asks_for_more_than_the_total_and_is_held_to_it() {
    // seed-v1's $1 floor and ±50% cap break conservation (as the original did); the world scales it back.
    let scenario = load_scenario("many-ads-200");
    let run = run_simulation(&scenario, built_in_policy("seed-v1", 3).unwrap().as_mut(), 3, 10).unwrap();
    let uniform = run_simulation(&scenario, built_in_policy("uniform", 3).unwrap().as_mut(), 3, 10).unwrap();
    assert_eq!(uniform.decisions_over_total, 0);
    assert!(
        run.decisions_over_total > 0,
        "seed-v1 asked for more than the total on {} of {} decisions",
        run.decisions_over_total,
        run.decisions.len()
    );
    for decision in &run.decisions {
        let applied: i64 = decision.budgets.iter().map(|(_, budget)| budget.get()).sum();
        assert!(applied <= scenario.total_daily_budget.get());
    }
}
