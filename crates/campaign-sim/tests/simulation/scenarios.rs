use campaign_sim::policy::{BUILT_IN_POLICY_NAMES, built_in_policy};
use campaign_sim::{Scenario, run_simulation};

use crate::{ALL_SCENARIOS, load_scenario};

#[test]
fn every_shipped_scenario_runs_under_every_built_in_policy() {
    for scenario_name in ALL_SCENARIOS {
        let scenario = load_scenario(scenario_name);
        for policy_name in BUILT_IN_POLICY_NAMES {
            let run = run_simulation(
                &scenario,
                built_in_policy(policy_name, 1).unwrap().as_mut(),
                1,
                scenario.days,
            )
            .unwrap();
            assert!(
                run.total_value.get() > 0,
                "{scenario_name}/{policy_name} produced no value"
            );
        }
    }
}

#[test]
fn cold_start_launches_new_ads_mid_flight() {
    let scenario = load_scenario("cold-start");
    let run = run_simulation(&scenario, built_in_policy("uniform", 1).unwrap().as_mut(), 1, 30).unwrap();
    let first_decision_ads = run.decisions.first().unwrap().budgets.len();
    let last_decision_ads = run.decisions.last().unwrap().budgets.len();
    assert_eq!(first_decision_ads, 4);
    assert!(last_decision_ads > 4 + 10, "{last_decision_ads} ads by day 30");
}

#[test]
fn jpy_budgets_are_whole_yen() {
    let scenario = load_scenario("jpy-account");
    assert_eq!(scenario.currency.minor_unit_exponent(), 0);
    let run = run_simulation(&scenario, built_in_policy("seed-v1", 1).unwrap().as_mut(), 1, 5).unwrap();
    let first_budget = run.decisions[0].budgets[0].1.get();
    // Around 15,000 JPY a day per ad: a whole-yen amount, never 1,500,000 "cents".
    assert!((5_000..60_000).contains(&first_budget), "{first_budget}");
}

#[test]
fn invalid_scenarios_are_rejected_naming_the_field() {
    let base = std::fs::read_to_string(format!(
        "{}/../../scenarios/stationary-10.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let cases = [
        (
            base.replace("decision_interval_hours = 24", "decision_interval_hours = 5"),
            "decision_interval_hours",
        ),
        (
            base.replace("total_daily_budget = 100000", "total_daily_budget = 0"),
            "total_daily_budget",
        ),
        (base.replace("ctr = 0.008", "ctr = 1.5"), "ads[0].ctr"),
        (base.replace("currency = \"USD\"", "currency = \"XXX\""), "XXX"),
        (base.replace("days = 30", "days = 30\nbudget_typo = 1"), "budget_typo"),
    ];
    for (text, expected_field) in cases {
        let error = Scenario::from_toml(&text).unwrap_err().to_string();
        assert!(
            error.contains(expected_field),
            "expected `{expected_field}` in: {error}"
        );
    }
}
