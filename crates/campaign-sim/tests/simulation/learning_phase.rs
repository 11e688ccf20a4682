//! Meta's learning phase: a budget edit of 20% or more restarts it and delivery costs more until it ends.

use adloop_money::MinorUnits;
use campaign_sim::{Scenario, World};

fn scenario(with_learning_phase: bool) -> Scenario {
    let learning = if with_learning_phase {
        "[delivery]\nlearning_phase = { budget_change_fraction = 0.2, days = 3.0, cpm_multiplier = 1.5 }\n"
    } else {
        ""
    };
    let text = format!(
        r#"
name = "learning"
currency = "USD"
days = 10
decision_interval_hours = 24
total_daily_budget = 100000
{learning}
[[ads]]
name = "only"
ctr = 0.01
conversion_rate = 0.02
value_per_conversion = 5000
cpm = 1000
"#
    );
    Scenario::from_toml(&text).unwrap()
}

/// Impressions bought per unit of spend over `days` days after setting the budget to `budget`.
fn impressions_per_spend_after_edit(scenario: &Scenario, budget: i64, days: u32) -> f64 {
    let mut world = World::new(scenario, 3);
    for _ in 0..2 {
        world.advance();
    }
    world.apply_budgets(&[MinorUnits(budget)]).unwrap();
    let before = world.observation().ads[0].clone();
    for _ in 0..days {
        world.advance();
    }
    let after = &world.observation().ads[0];
    (after.impressions - before.impressions) as f64 / (after.spend.get() - before.spend.get()) as f64
}

#[test]
fn a_large_budget_edit_makes_delivery_dearer_for_the_learning_days_and_a_small_one_does_not() {
    let learning = scenario(true);
    let without = scenario(false);
    // The ad starts at the whole total (100,000); an edit to 60,000 is a 40% cut.
    let after_large_edit = impressions_per_spend_after_edit(&learning, 60_000, 3);
    let baseline = impressions_per_spend_after_edit(&without, 60_000, 3);
    let ratio = after_large_edit / baseline;
    assert!(
        (ratio - 1.0 / 1.5).abs() < 0.05,
        "impressions per spend ×{ratio:.3}, expected ×0.667"
    );
    // A 10% edit leaves it as it was.
    let after_small_edit = impressions_per_spend_after_edit(&learning, 90_000, 3);
    let small_baseline = impressions_per_spend_after_edit(&without, 90_000, 3);
    assert!((after_small_edit / small_baseline - 1.0).abs() < 0.02);
}

#[test]
fn a_learning_phase_that_makes_no_sense_is_refused_naming_the_field() {
    let text = r#"
name = "x"
currency = "USD"
days = 5
total_daily_budget = 1000
[delivery]
learning_phase = { budget_change_fraction = 0.2, days = 3.0, cpm_multiplier = 0.5 }
[[ads]]
name = "a"
ctr = 0.01
conversion_rate = 0.02
value_per_conversion = 5000
cpm = 1000
"#;
    let error = Scenario::from_toml(text).unwrap_err().to_string();
    assert!(error.contains("delivery.learning_phase.cpm_multiplier"), "{error}");
}
