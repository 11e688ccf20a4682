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
fn the_feature_explained_rates_are_the_groups_median_times_its_features_effects() {
    let scenario = load_scenario("cold-start");
    let world = campaign_sim::World::new(&scenario, 3);
    let rates = world.true_rates_of_observed_ads();
    let mut lucky_ads = 0;
    for (rates, &truth_index) in rates.iter().zip(world.observed_truth_indices()) {
        let truth = &world.truths()[truth_index];
        let has = |name: &str| truth.features.get(name) == Some(&1.0);
        // cold-start's launch group: CTR median 0.9%, ×e^0.4 with a question hook, ×e^0.3 in UGC style,
        // ×e^−0.3 for a long video; conversions 2%, ×e^0.3 with a number, ×e^0.2 in UGC style.
        let ctr_effect = [("hook_question", 0.4), ("ugc_style", 0.3), ("long_video", -0.3)]
            .iter()
            .filter(|(name, _)| has(name))
            .map(|(_, effect)| effect)
            .sum::<f64>();
        let conversion_effect = [("has_number", 0.3), ("ugc_style", 0.2)]
            .iter()
            .filter(|(name, _)| has(name))
            .map(|(_, effect)| effect)
            .sum::<f64>();
        assert!((rates.ctr_from_features - 0.009 * ctr_effect.exp()).abs() < 1e-12);
        assert!((rates.conversions_per_click_from_features - 0.02 * conversion_effect.exp()).abs() < 1e-12);
        if (rates.ctr / rates.ctr_from_features - 1.0).abs() > 0.01 {
            lucky_ads += 1;
        }
    }
    assert!(
        lucky_ads > 0,
        "each ad's own draw is left out of its feature-explained rate"
    );
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
        (
            format!("{base}\n[tracking]\nbrowser_pixel_loss = 1.5\n"),
            "tracking.browser_pixel_loss",
        ),
    ];
    // Scenarios too large to run (they hung, ran out of memory or overflowed a sum half-way) are refused
    // when read, naming what to change.
    let too_large = [
        (base.replace("days = 30", "days = 100000"), "days"),
        (
            base.replace(
                "total_daily_budget = 100000",
                "total_daily_budget = 9223372036854775807",
            ),
            "total_daily_budget",
        ),
        (
            base.replace("total_daily_budget = 100000", "total_daily_budget = 100000000000000"),
            "conversions a day",
        ),
        (
            base.replacen(
                "value_per_conversion = 5000",
                "value_per_conversion = 9223372036854775807",
                1,
            ),
            "10^18 minor units of value",
        ),
        (
            base.replacen("cpm = 1000", "cpm = 1000\nvalue_sd = 50", 1),
            "ads[0].value_sd",
        ),
        (base.replacen("name = \"ad-02\"", "name = \"ad-01\"", 1), "ads[1].name"),
        (
            format!(
                "{base}\n[[ad_groups]]\nname_prefix = \"g\"\ncount = 2000\nctr = {{ median = 0.01, log_sd = 0.1 }}\n\
                 conversion_rate = {{ median = 0.02, log_sd = 0.1 }}\nvalue_per_conversion = {{ median = 5000, log_sd = 0.1 }}\n\
                 cpm = {{ median = 1000, log_sd = 0.1 }}\n"
            ),
            "at most 2000 ads",
        ),
    ];
    let group = |extra: &str| {
        format!(
            "{base}\n[[ad_groups]]\nname_prefix = \"g\"\ncount = 5\nctr = {{ median = 0.01, log_sd = 0.1 }}\n\
             conversion_rate = {{ median = 0.02, log_sd = 0.1 }}\nvalue_per_conversion = {{ median = 5000 }}\n\
             cpm = {{ median = 1000 }}\n{extra}\n"
        )
    };
    let group_cases = [
        (
            group("conversion_rate_ctr_exponent = 4.0"),
            "ad_groups[0].conversion_rate_ctr_exponent",
        ),
        (
            group("changes = { share_of_ads = 1.5, earliest_day = 7.0, latest_day = 20.0 }"),
            "ad_groups[0].changes.share_of_ads",
        ),
        (
            group("changes = { share_of_ads = 0.5, earliest_day = 7.0, latest_day = 3.0 }"),
            "ad_groups[0].changes.latest_day",
        ),
    ];
    for (text, expected) in cases.into_iter().chain(too_large).chain(group_cases) {
        let error = Scenario::from_toml(&text).unwrap_err().to_string();
        assert!(error.contains(expected), "expected `{expected}` in: {error}");
    }
}

#[test]
fn ads_carry_the_account_and_campaign_structure_of_the_scenario() {
    let scenario = Scenario::from_toml(
        r#"
name = "two-accounts"
currency = "USD"
days = 2
total_daily_budget = 10000

[[ads]]
name = "a"
ctr = 0.01
conversion_rate = 0.02
value_per_conversion = 5000
cpm = 1000

[[ads]]
name = "b"
campaign = "retargeting"
ctr = 0.01
conversion_rate = 0.02
value_per_conversion = 5000
cpm = 1000

[[ads]]
name = "c"
account = "second-brand"
ctr = 0.01
conversion_rate = 0.02
value_per_conversion = 5000
cpm = 1000
"#,
    )
    .unwrap();
    let world = campaign_sim::World::new(&scenario, 1);
    let ids: Vec<_> = world.observation().ads.iter().map(|ad| ad.identity.clone()).collect();
    assert_eq!(ids[0].account_id, ids[1].account_id);
    assert_ne!(ids[0].campaign_id, ids[1].campaign_id);
    assert_ne!(ids[0].account_id, ids[2].account_id);
    assert_ne!(ids[0].ad_set_id, ids[1].ad_set_id, "one ad set per ad");
}
