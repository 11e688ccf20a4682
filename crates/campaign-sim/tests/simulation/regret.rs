use campaign_sim::policy::built_in_policy;
use campaign_sim::{Policy, PolicyError, compare_policies};

use crate::{ALL_SCENARIOS, load_scenario};

fn built_in(name: &'static str) -> impl Fn(u64) -> Result<Box<dyn Policy>, PolicyError> {
    move |seed| Ok(built_in_policy(name, seed).unwrap())
}

#[test]
fn the_oracle_has_zero_regret_by_construction() {
    let scenario = load_scenario("drift");
    let oracle = built_in("oracle");
    let summaries = compare_policies(&scenario, &[("oracle", &oracle)], &[1, 2, 3], 30, &mut |_| {}).unwrap();
    assert_eq!(summaries[0].regret.mean, 0.0);
    assert_eq!(summaries[0].regret.upper_95, 0.0);
}

#[test]
fn uniform_regret_is_positive_on_every_scenario() {
    // Every shipped scenario has unequal ads, so spreading the budget evenly must cost value.
    let uniform = built_in("uniform");
    for scenario_name in ALL_SCENARIOS {
        let scenario = load_scenario(scenario_name);
        let summaries = compare_policies(&scenario, &[("uniform", &uniform)], &[1, 2, 3], 30, &mut |_| {}).unwrap();
        let regret = summaries[0].regret;
        assert!(regret.mean > 0.0, "{scenario_name}: uniform regret {regret:?}");
    }
}

#[test]
fn compare_reports_one_summary_per_policy_with_intervals_over_seeds() {
    let scenario = load_scenario("stationary-10");
    let uniform = built_in("uniform");
    let seed_v1 = built_in("seed-v1");
    let mut finished_runs = 0;
    let summaries = compare_policies(
        &scenario,
        &[("uniform", &uniform), ("seed-v1", &seed_v1)],
        &[1, 2, 3, 4],
        30,
        &mut |_| finished_runs += 1,
    )
    .unwrap();
    assert_eq!(finished_runs, 4 * 3, "oracle, uniform and seed-v1 on four seeds");
    assert_eq!(summaries.len(), 2);
    for summary in &summaries {
        assert_eq!(summary.seeds, 4);
        assert!(summary.regret.lower_95 <= summary.regret.mean && summary.regret.mean <= summary.regret.upper_95);
        assert_eq!(summary.cumulative_regret_by_step.len(), 30);
        assert!(summary.decision_latency_p99_micros >= 0.0);
    }
}

/// The README's headline, guarded: on two shipped scenarios, on seeds the allocator was not tuned on
/// (101–105), adloop earns more than an even split seed by seed (common random numbers make this a paired
/// comparison; higher value on a seed is lower regret against the same oracle).
#[test]
fn adloop_has_lower_regret_than_uniform_seed_by_seed_on_held_out_seeds() {
    let seeds = [101, 102, 103, 104, 105];
    for scenario_name in ["stationary-10", "cold-start"] {
        let scenario = load_scenario(scenario_name);
        let mut advantages = Vec::new();
        for &seed in &seeds {
            let value_of = |name: &'static str| {
                let mut policy = built_in_policy(name, seed).unwrap();
                campaign_sim::run_simulation(&scenario, policy.as_mut(), seed, scenario.days)
                    .unwrap()
                    .total_value
                    .get()
            };
            advantages.push(value_of("adloop") - value_of("uniform"));
        }
        let winning_seeds = advantages.iter().filter(|advantage| **advantage > 0).count();
        assert!(
            winning_seeds >= 4 && advantages.iter().sum::<i64>() > 0,
            "{scenario_name}: adloop's value minus uniform's per seed: {advantages:?}"
        );
    }
}

/// Priors move allocations: given priors at the true rates, the allocator loses less than without priors
/// on cold-start, and spends less on losing ads in their first 72 hours (paired over held-out seeds).
#[test]
fn true_rate_priors_lower_regret_and_young_losing_spend_on_cold_start() {
    let scenario = load_scenario("cold-start");
    let true_priors = built_in("adloop-true-priors");
    let priors_off = built_in("adloop-priors-off");
    let summaries = compare_policies(
        &scenario,
        &[("adloop-true-priors", &true_priors), ("adloop-priors-off", &priors_off)],
        &(101..=124).collect::<Vec<u64>>(),
        30,
        &mut |_| {},
    )
    .unwrap();
    let paired = campaign_sim::paired_regret_difference(&scenario, &summaries[0], &summaries[1]).unwrap();
    assert!(paired.regret_difference.upper_95 < 0.0, "{paired:?}");
    assert!(paired.young_losing_spend_difference.upper_95 < 0.0, "{paired:?}");
    let uniform = built_in("uniform");
    let uniform_summary = compare_policies(&scenario, &[("uniform", &uniform)], &[101, 102], 30, &mut |_| {}).unwrap();
    // Uniform keeps feeding new losers; the measure sees it.
    assert!(uniform_summary[0].spend_on_losing_ads_while_young.mean > 0.0);
}

/// The `adloop` policy runs the cross-learner too: after a few launches in five sharing accounts, new ads
/// carry a prior from patterns the other accounts ran, and only a lift (never money) travels.
#[test]
fn adloop_gives_new_ads_cross_learner_priors_from_other_accounts() {
    let scenario = load_scenario("creative-accounts");
    let mut world = campaign_sim::World::new(&scenario, 7);
    let mut policy = campaign_sim::policy::Adloop::new(7);
    for _ in 0..12 {
        world.advance();
        let observation = world.observation().clone();
        let budgets = policy
            .decide(
                &observation,
                &campaign_sim::HiddenTruths {
                    true_roas: &[],
                    true_rates: &[],
                    daily_auction_curves: &[],
                },
            )
            .unwrap();
        world.apply_budgets(&budgets).unwrap();
    }
    let request = policy.request_with_priors(world.observation());
    let cross_priors: Vec<&adloop_allocator::Prior> = request
        .ads
        .iter()
        .flat_map(|ad| &ad.priors)
        .filter(|prior| prior.source == adloop_cross_learner::CROSS_LEARNER_SOURCE)
        .collect();
    assert!(
        cross_priors.len() >= request.ads.len() / 2,
        "{} of {}",
        cross_priors.len(),
        request.ads.len()
    );
    for prior in cross_priors {
        assert!(prior.rates_are_lifts);
        // The cross-learner moves an ad's expected return by at most ±20%.
        let lift = prior.expected_ctr * prior.expected_conversions_per_click;
        assert!((0.8 - 1e-9..=1.2 + 1e-9).contains(&lift), "{prior:?}");
    }
}

/// Delivery curves, guarded: where small audiences make an ad's CPM rise with its volume (the two shipped
/// scenarios with them), adloop reading each account's curves earns more, on seeds nothing was tuned on
/// (101–105), than the same allocator with the curves switched off (no account ever has days enough).
#[test]
fn delivery_curves_earn_more_where_audiences_are_small_on_held_out_seeds() {
    let seeds = [101, 102, 103, 104, 105];
    let without_curves = adloop_allocator::AllocatorConfig {
        delivery_curve: adloop_allocator::DeliveryCurveSettings {
            min_days: usize::MAX,
            ..Default::default()
        },
        ..Default::default()
    };
    for scenario_name in ["saturating-audiences", "long-run-launches"] {
        let scenario = load_scenario(scenario_name);
        let mut advantages = Vec::new();
        for &seed in &seeds {
            let value_of = |mut policy: campaign_sim::policy::Adloop| {
                campaign_sim::run_simulation(&scenario, &mut policy, seed, scenario.days)
                    .unwrap()
                    .total_value
                    .get()
            };
            let with_curves = value_of(campaign_sim::policy::Adloop::new(seed));
            let without = value_of(campaign_sim::policy::Adloop::with_config(seed, without_curves.clone()));
            advantages.push(with_curves - without);
        }
        let winning_seeds = advantages.iter().filter(|advantage| **advantage > 0).count();
        assert!(
            winning_seeds >= 4 && advantages.iter().sum::<i64>() > 0,
            "{scenario_name}: value with curves minus without, per seed: {advantages:?}"
        );
    }
}
