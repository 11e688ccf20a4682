use adloop_allocator::{
    AdIds, AdInput, AllocatorConfig, Decision, DelayComponent, Prior, PriorScales, RecentWindow, ReportingDelay,
    allocate, build_posterior, population_stats,
};
use adloop_money::MinorUnits;

use crate::fixtures::*;

#[test]
fn the_same_seed_gives_the_same_allocation() {
    let first = allocate(&request(ten_unequal_ads(), 100_000), &AllocatorConfig::default()).unwrap();
    let second = allocate(&request(ten_unequal_ads(), 100_000), &AllocatorConfig::default()).unwrap();
    assert_eq!(first, second);
}

#[test]
fn the_best_ad_is_the_most_likely_best_and_explained_truthfully() {
    let allocation = allocate(&request(ten_unequal_ads(), 100_000), &AllocatorConfig::default()).unwrap();
    let best = allocation.recommendations.last().unwrap();
    let worst = allocation.recommendations.first().unwrap();
    assert!(best.probability_best > 0.5, "{best:?}");
    assert!(best.roas.mean > worst.roas.mean);
    assert!(best.roas.lower_95 < best.roas.mean && best.roas.mean < best.roas.upper_95);
    assert!(
        best.reason.contains(&format!("P(best) {:.2}", best.probability_best)),
        "{}",
        best.reason
    );
    assert!(best.reason.contains("100.00 USD → 150.00 USD"), "{}", best.reason);
    let schedule_weight = adloop_allocator::CtrWeightSchedule::default().ctr_weight(240.0);
    assert!(
        (best.ctr_blend_weight - schedule_weight).abs() <= 1.0 / 256.0,
        "weights are quantised to 1/256"
    );
    assert!(best.ctr_blend_weight < 0.2, "an ad of 10 days is judged mostly on ROAS");
}

#[test]
fn a_confident_loser_is_killed_with_the_numbers_that_decided_it() {
    let mut ads = ten_unequal_ads();
    // 4,000.00 USD spent for 300.00 USD of value: ROAS 0.075.
    ads[0] = ad("money-pit", 400_000, 4_000, 6, 400_000, 30_000, 240.0);
    let allocation = allocate(&request(ads, 100_000), &AllocatorConfig::default()).unwrap();
    let killed = &allocation.recommendations[0];
    assert_eq!(killed.decision, Decision::Kill);
    assert_eq!(killed.recommended_daily_budget, MinorUnits::ZERO);
    assert!(killed.roas.upper_95 < 0.5);
    assert!(
        killed
            .reason
            .starts_with(&format!("kill: ROAS {:.2}", killed.roas.mean)),
        "{}",
        killed.reason
    );
    assert!(killed.reason.contains("4000.00 USD spent"), "{}", killed.reason);
}

#[test]
fn young_ads_are_not_judged_before_enough_spend() {
    let young = ad("young", 2_000, 10, 0, 2_000, 0, 10.0);
    let allocate_with = |config: &AllocatorConfig| {
        allocate(
            &request(vec![young.clone(), ten_unequal_ads().remove(5)], 20_000),
            config,
        )
        .unwrap()
    };
    let allocation = allocate_with(&AllocatorConfig::default());
    assert_eq!(allocation.recommendations[0].decision, Decision::Maintain);
    assert!(allocation.recommendations[0].reason.contains("too early to judge"));
    assert_eq!(
        allocation.recommendations[0].ctr_blend_weight, 0.0,
        "no CTR blend by default"
    );
    let with_the_originals_blend = allocate_with(&AllocatorConfig {
        ctr_weight_schedule: adloop_allocator::CtrWeightSchedule::original(),
        ..AllocatorConfig::default()
    });
    let expected_weight = 1.0 - 0.3 * 4.0 / 18.0;
    assert!((with_the_originals_blend.recommendations[0].ctr_blend_weight - expected_weight).abs() <= 1.0 / 256.0);
}

#[test]
fn recent_spend_is_not_counted_against_conversions_that_have_not_been_reported_yet() {
    // Two ads with the same conversions per click so far; one spent its clicks in the last day, so fewer
    // of its conversions can have arrived. Its conversion rate must not look worse.
    let mut settled = ad("settled", 50_000, 500, 10, 50_000, 50_000, 240.0);
    settled.recent = Some(RecentWindow {
        hours: 72.0,
        impressions: 0,
        clicks: 0,
        spend: MinorUnits(0),
        conversions: 0,
        conversion_value: MinorUnits(0),
    });
    let fresh = ad("fresh", 50_000, 500, 10, 50_000, 50_000, 24.0);
    let allocation = allocate(&request(vec![settled, fresh], 20_000), &AllocatorConfig::default()).unwrap();
    let settled_roas = allocation.recommendations[0].roas.mean;
    let fresh_roas = allocation.recommendations[1].roas.mean;
    assert!(
        fresh_roas > settled_roas,
        "fresh {fresh_roas} vs settled {settled_roas}"
    );
}

#[test]
fn an_accounts_own_reporting_schedule_replaces_the_configured_one_for_its_ads_only() {
    // Two accounts with the same two ads: a settled one and one whose clicks all came in the last four days.
    // The request says the second account reports most conversions in the second week (as its own reports
    // showed), so its fresh ad has had far fewer of its conversions reported than the configured schedule
    // (everything within a week) expects, and is read as better than the same ad in the first account.
    let settled_ad = |account: &str, id: &str| AdInput {
        ids: AdIds {
            account_id: account.into(),
            ..ad(id, 50_000, 500, 10, 50_000, 50_000, 400.0).ids
        },
        recent: Some(RecentWindow {
            hours: 72.0,
            ..RecentWindow::default()
        }),
        ..ad(id, 50_000, 500, 10, 50_000, 50_000, 400.0)
    };
    let fresh_ad = |account: &str, id: &str| AdInput {
        ids: AdIds {
            account_id: account.into(),
            ..ad(id, 50_000, 500, 4, 50_000, 20_000, 96.0).ids
        },
        ..ad(id, 50_000, 500, 4, 50_000, 20_000, 96.0)
    };
    let ads = vec![
        settled_ad("act_1", "settled-1"),
        fresh_ad("act_1", "fresh-1"),
        settled_ad("act_2", "settled-2"),
        fresh_ad("act_2", "fresh-2"),
    ];
    let mut late_account = request(ads.clone(), 40_000);
    late_account.reporting_delays.insert(
        "act_2".into(),
        ReportingDelay {
            components: vec![
                DelayComponent {
                    share: 0.2,
                    min_hours: 0.0,
                    max_hours: 24.0,
                },
                DelayComponent {
                    share: 0.8,
                    min_hours: 168.0,
                    max_hours: 336.0,
                },
            ],
        },
    );
    let config = AllocatorConfig::default();
    let with_own_schedule = allocate(&late_account, &config).unwrap();
    let on_configured_schedule = allocate(&request(ads, 40_000), &config).unwrap();
    let roas = |allocation: &adloop_allocator::Allocation, index: usize| allocation.recommendations[index].roas.mean;
    assert!(
        roas(&with_own_schedule, 3) > 1.5 * roas(&with_own_schedule, 1),
        "the late account's fresh ad {} vs the same ad in the other account {}",
        roas(&with_own_schedule, 3),
        roas(&with_own_schedule, 1)
    );
    assert!(
        (roas(&on_configured_schedule, 3) - roas(&on_configured_schedule, 1)).abs()
            < 0.05 * roas(&on_configured_schedule, 1),
        "without the account's schedule both accounts read alike"
    );
}

#[test]
fn a_new_ad_is_judged_by_its_own_accounts_rates_not_another_accounts() {
    // Two accounts in one request: the first converts 4% of its clicks, the second 0.5%. A new ad with 20
    // clicks and no conversion yet in each: pooled over both accounts the two would read alike; each read
    // against its own account, the first is worth about eight times the second.
    let mut ads = Vec::new();
    for index in 0..4 {
        ads.push(in_account(
            "act_buyers",
            ad(&format!("a-{index}"), 200_000, 2_000, 80, 200_000, 400_000, 400.0),
        ));
        ads.push(in_account(
            "act_browsers",
            ad(&format!("b-{index}"), 200_000, 2_000, 10, 200_000, 50_000, 400.0),
        ));
    }
    ads.push(in_account("act_buyers", ad("a-new", 2_000, 20, 0, 2_000, 0, 24.0)));
    ads.push(in_account("act_browsers", ad("b-new", 2_000, 20, 0, 2_000, 0, 24.0)));
    let allocation = allocate(&request(ads, 100_000), &AllocatorConfig::default()).unwrap();
    let roas = |id: &str| expected_roas_of(&allocation, id);
    assert!(
        roas("a-new") > 4.0 * roas("b-new"),
        "new ad in the buyers' account {} vs in the browsers' {}",
        roas("a-new"),
        roas("b-new")
    );
    assert!(
        roas("b-new") < 2.0 * roas("b-0"),
        "{} against its account's {}",
        roas("b-new"),
        roas("b-0")
    );
}

#[test]
fn an_account_with_a_few_large_orders_moves_its_new_ads_prior_before_it_can_stand_alone() {
    // The first account sells 50.00 orders and has plenty of evidence; the second has only three
    // conversions so far, each a 500.00 order — too few for a population of its own, enough to say its
    // orders are not the first account's. A new ad in the second account is read as worth more than the
    // same new ad in the first.
    let mut ads = Vec::new();
    for index in 0..4 {
        ads.push(in_account(
            "act_small_orders",
            ad(&format!("s-{index}"), 200_000, 2_000, 40, 200_000, 200_000, 400.0),
        ));
    }
    for index in 0..3 {
        ads.push(in_account(
            "act_large_orders",
            ad(&format!("l-{index}"), 20_000, 200, 1, 20_000, 50_000, 400.0),
        ));
    }
    ads.push(in_account(
        "act_small_orders",
        ad("s-new", 2_000, 20, 0, 2_000, 0, 24.0),
    ));
    ads.push(in_account(
        "act_large_orders",
        ad("l-new", 2_000, 20, 0, 2_000, 0, 24.0),
    ));
    let allocation = allocate(&request(ads, 100_000), &AllocatorConfig::default()).unwrap();
    let roas = |id: &str| expected_roas_of(&allocation, id);
    assert!(
        roas("l-new") > 2.0 * roas("s-new"),
        "new ad of the large-order account {} vs of the small-order account {}",
        roas("l-new"),
        roas("s-new")
    );
}

#[test]
fn a_bad_account_schedule_is_refused_naming_the_account_and_field() {
    let mut bad = request(ten_unequal_ads(), 100_000);
    bad.reporting_delays.insert(
        "act_9".into(),
        ReportingDelay {
            components: vec![DelayComponent {
                share: 1.0,
                min_hours: 48.0,
                max_hours: 24.0,
            }],
        },
    );
    let error = allocate(&bad, &AllocatorConfig::default()).unwrap_err();
    assert_eq!(error.field, "reporting_delays[act_9].components[0].max_hours");
    assert_eq!(error.rule, "must not be below min_hours");
}

#[test]
fn a_falling_ctr_shows_as_fatigue_and_lowers_the_score() {
    let mut tiring = ad("tiring", 300_000, 3_000, 60, 300_000, 600_000, 240.0);
    // Lifetime CTR 1%, but only 0.5% over the last 72 hours.
    tiring.recent = Some(RecentWindow {
        hours: 72.0,
        impressions: 100_000,
        clicks: 500,
        spend: MinorUnits(100_000),
        conversions: 10,
        conversion_value: MinorUnits(100_000),
    });
    tiring.frequency = Some(4.2);
    let steady = ad("steady", 300_000, 3_000, 60, 300_000, 600_000, 240.0);
    let allocation = allocate(&request(vec![tiring, steady], 20_000), &AllocatorConfig::default()).unwrap();
    let tiring = &allocation.recommendations[0];
    assert!(tiring.fatigue_factor < 0.7, "{}", tiring.fatigue_factor);
    assert!(
        tiring.reason.contains("fatigue") && tiring.reason.contains("frequency 4.2"),
        "{}",
        tiring.reason
    );
    assert!(tiring.probability_best < 0.1);
}

#[test]
fn priors_from_the_learners_lift_a_new_ad_and_are_named() {
    let learned = |expected_ctr: f64, expected_conversions_per_click: f64| Prior {
        source: "cross_learner".into(),
        expected_ctr,
        ctr_strength_impressions: 5_000.0,
        expected_conversions_per_click,
        conversion_strength_conversions: 50.0,
        rates_are_lifts: false,
    };
    let mut promising = ad("promising", 100, 1, 0, 100, 0, 2.0);
    promising.priors.push(learned(0.03, 0.10));
    let mut doubtful = ad("doubtful", 100, 1, 0, 100, 0, 2.0);
    doubtful.priors.push(learned(0.01, 0.02));
    let plain = ad("plain", 100, 1, 0, 100, 0, 2.0);
    let allocation = allocate(
        &request(vec![promising, doubtful, plain], 30_000),
        &AllocatorConfig::default(),
    )
    .unwrap();
    let [promising, doubtful, plain] = &allocation.recommendations[..] else {
        panic!("three recommendations")
    };
    assert!(promising.probability_best > plain.probability_best);
    assert!(plain.probability_best > doubtful.probability_best);
    assert_eq!(promising.prior_source, "population+cross_learner");
    assert_eq!(plain.prior_source, "population");
}

/// Ten delivered ads whose conversions per click run from 1% to 5.5% exactly as the instant learner predicts,
/// and a newcomer it rates at 6%: the account's ads bear the learner out, so the newcomer's prior takes its
/// lift whole, and its reason says so; with the link switched off the learner's own weight moves it less.
#[test]
fn an_account_whose_ads_bear_a_learner_out_takes_its_lifts_whole_and_says_so() {
    let learner = |expected_conversions_per_click: f64| Prior {
        source: "instant_learner".into(),
        expected_ctr: 0.01,
        ctr_strength_impressions: 100.0,
        expected_conversions_per_click,
        conversion_strength_conversions: 2.0,
        rates_are_lifts: false,
    };
    let mut ads: Vec<AdInput> = (0..10)
        .map(|index| {
            let rate = 0.01 + 0.005 * f64::from(index);
            let conversions = (2_000.0 * rate).round() as u64;
            let mut delivered = ad(
                &format!("ad-{index}"),
                200_000,
                2_000,
                conversions,
                200_000,
                conversions as i64 * 5_000,
                240.0,
            );
            delivered.priors.push(learner(rate));
            delivered
        })
        .collect();
    let mut newcomer = ad("newcomer", 0, 0, 0, 0, 0, 1.0);
    newcomer.priors.push(learner(0.06));
    ads.push(newcomer);
    let account = request(ads, 110_000);
    let said = "as far as this account's own ads bear the learner out";

    let linked = allocate(&account, &AllocatorConfig::default()).unwrap();
    let unlinked_config = AllocatorConfig {
        max_learned_conversion_link: 0.0,
        ..AllocatorConfig::default()
    };
    let unlinked = allocate(&account, &unlinked_config).unwrap();

    let (linked, unlinked) = (&linked.recommendations[10], &unlinked.recommendations[10]);
    assert!(linked.reason.contains(said), "{}", linked.reason);
    assert!(!unlinked.reason.contains(said), "{}", unlinked.reason);
    assert!(
        linked.roas.mean > unlinked.roas.mean,
        "the newcomer's whole lift: ROAS {} against {}",
        linked.roas.mean,
        unlinked.roas.mean
    );
}

#[test]
fn creative_dna_nudges_the_prior_by_at_most_20_percent() {
    let mut boosted = ad("boosted", 0, 0, 0, 0, 0, 1.0);
    boosted.creative_dna_score = Some(1.0);
    let plain = ad("plain", 0, 0, 0, 0, 0, 1.0);
    let allocation = allocate(&request(vec![boosted, plain], 20_000), &AllocatorConfig::default()).unwrap();
    let ratio = allocation.recommendations[0].ctr.mean / allocation.recommendations[1].ctr.mean;
    // 1.2 up to the ≈3% quantisation of posterior parameters.
    assert!((ratio - 1.2).abs() < 0.04, "{ratio}");
}

#[test]
fn the_spend_before_judging_an_ad_is_relative_to_the_account_not_200_in_every_currency() {
    // A yen account of 1,000,000 JPY a day over ten ads: an even share is 100,000 JPY, a week of it 700,000.
    // A loser that has spent 50,000 JPY is not judged yet, although 50,000 is far above "200 major units".
    let mut ads = ten_unequal_ads();
    ads[0] = ad("money-pit", 400_000, 4_000, 6, 50_000, 3_000, 240.0);
    let mut yen_request = request(ads, 1_000_000);
    yen_request.currency = adloop_money::Currency::parse("JPY").unwrap();
    let allocation = allocate(&yen_request, &AllocatorConfig::default()).unwrap();
    assert_eq!(allocation.recommendations[0].decision, Decision::Maintain);
    assert!(
        allocation.recommendations[0]
            .reason
            .contains("too early to judge before 700000 JPY"),
        "{}",
        allocation.recommendations[0].reason
    );
    // After a week's share the same returns are judged: killed.
    let mut ads = ten_unequal_ads();
    ads[0] = ad("money-pit", 800_000, 8_000, 2, 800_000, 4_000, 240.0);
    yen_request.ads = ads;
    let allocation = allocate(&yen_request, &AllocatorConfig::default()).unwrap();
    assert_eq!(
        allocation.recommendations[0].decision,
        Decision::Kill,
        "{}",
        allocation.recommendations[0].reason
    );
}

#[test]
fn when_every_ad_is_a_confident_loser_none_is_killed_and_the_budget_still_has_a_home() {
    let losers: Vec<_> = (0..3)
        .map(|index| {
            ad(
                &format!("loser-{index}"),
                400_000,
                4_000,
                2,
                400_000,
                4_000 + index * 1_000,
                240.0,
            )
        })
        .collect();
    let allocation = allocate(&request(losers, 30_000), &AllocatorConfig::default()).unwrap();
    assert!(
        allocation
            .recommendations
            .iter()
            .all(|ad| ad.decision == Decision::Maintain),
        "{:?}",
        allocation.recommendations
    );
    assert_eq!(total_recommended(&allocation), 30_000);
    assert!(allocation.recommendations[0].reason.contains("none is killed"));
}

#[test]
fn a_low_ctr_ad_keeps_a_wide_conversion_prior_while_the_accounts_ctr_link_is_unknown() {
    // A day in: nine ads click 1.5% and convert a few of their clicks; one clicks 0.4% and has no
    // conversion yet. Whether low clickers are better buyers is not known, so the low-CTR ad may still be:
    // its prior on conversions per click is weaker than the account's ads' (the link switched off, it is
    // as strong as theirs).
    let mut ads: Vec<AdInput> = (0..9)
        .map(|index| ad(&format!("ad-{index}"), 10_000, 150, 2, 10_000, 10_000, 24.0))
        .collect();
    ads.push(ad("low-ctr", 10_000, 40, 0, 10_000, 0, 24.0));
    let conversion_prior_shapes = |config: &AllocatorConfig| {
        let population = population_stats(&ads, usd(), config);
        let shape = |ad: &AdInput| {
            let posterior = build_posterior(ad, usd(), &population, &PriorScales::of_request(&ads), config);
            posterior.conversion_rate_shape - ad.conversions as f64
        };
        (shape(&ads[0]), shape(&ads[9]))
    };
    let (typical, low_ctr) = conversion_prior_shapes(&AllocatorConfig::default());
    assert!(
        low_ctr < 0.5 * typical,
        "prior strength {low_ctr:.2} against {typical:.2}"
    );
    let (typical_without_link, low_ctr_without_link) = conversion_prior_shapes(&AllocatorConfig {
        max_conversion_ctr_link: 0.0,
        ..AllocatorConfig::default()
    });
    assert_eq!(low_ctr_without_link, typical_without_link);
}

#[test]
fn a_collapse_of_the_ad_that_spends_most_is_not_excused_as_slow_reporting() {
    // Three weeks in, ad "big" has nearly all of the account's clicks and converted 5% of them; in the last three
    // days a fifth of that. The other ads report as usual, so the account's reporting is not late: the
    // collapse is the ad's own, and its ROAS must fall with it.
    let account = |big_recent_conversions: u64| {
        let mut big = ad("big", 2_000_000, 24_000, 1_200, 2_000_000, 6_000_000, 504.0);
        let recent = big.recent.as_mut().unwrap();
        big.conversions = big.conversions - recent.conversions + big_recent_conversions;
        big.conversion_value = MinorUnits(big.conversions as i64 * 5_000);
        recent.conversion_value = MinorUnits(big_recent_conversions as i64 * 5_000);
        recent.conversions = big_recent_conversions;
        let mut ads = vec![big];
        ads.extend((0..3).map(|index| ad(&format!("small-{index}"), 50_000, 600, 24, 50_000, 120_000, 504.0)));
        ads
    };
    let roas_of_big = |ads: Vec<AdInput>| {
        let allocation = allocate(&request(ads, 100_000), &AllocatorConfig::default()).unwrap();
        allocation.recommendations[0].roas.mean
    };
    let steady = roas_of_big(account(171));
    let collapsed = roas_of_big(account(34));
    assert!(
        collapsed < 0.75 * steady,
        "ROAS {collapsed:.2} after the collapse, {steady:.2} before"
    );
}

#[test]
fn a_best_ad_whose_cpm_rises_with_volume_is_funded_to_equal_returns_not_to_the_limit() {
    // Two ads with plenty of evidence: ROAS 3 and 2 at a CPM of 10 USD. Without a curve the better one grows
    // by the whole ±50% limit. With its CPM doubling at 25,600 impressions a day, its next unit of spend
    // returns 2 (the other's) at about 80 USD a day: it is funded near there, the rest goes to the other.
    let better = ad("better", 300_000, 3_000, 90, 300_000, 900_000, 720.0);
    let second = ad("second", 300_000, 3_000, 60, 300_000, 600_000, 720.0);
    let straight = allocate(
        &request(vec![better.clone(), second.clone()], 20_000),
        &AllocatorConfig::default(),
    )
    .unwrap();
    assert_eq!(straight.recommendations[0].recommended_daily_budget, MinorUnits(15_000));

    let curved_better = AdInput {
        delivery_curve: Some(adloop_allocator::DeliveryCurve {
            base_cpm: 1000.0,
            cpm_doubling_daily_impressions: 25_600.0,
        }),
        ..better
    };
    let curved = allocate(
        &request(vec![curved_better, second], 20_000),
        &AllocatorConfig::default(),
    )
    .unwrap();
    let better_budget = curved.recommendations[0].recommended_daily_budget.get();
    assert!(
        (6_000..=10_000).contains(&better_budget),
        "{:?}",
        curved.recommendations[0]
    );
    assert_eq!(
        curved.recommendations[1].recommended_daily_budget.get(),
        20_000 - better_budget
    );
    assert!(
        curved.recommendations[0]
            .reason
            .contains("its CPM rises with its daily volume"),
        "{}",
        curved.recommendations[0].reason
    );
}

#[test]
fn an_ad_on_the_peak_of_its_own_weekday_rhythm_is_weighed_by_its_ctr_on_the_coming_day() {
    // Two ads alike in every count: they split the budget about evenly. When the first one's own weekday
    // rhythm puts its CTR over the coming day at 1.3 times its week's, it takes the larger part and says why;
    // at 0.7 times, the smaller.
    let first = ad("first", 300_000, 3_000, 90, 300_000, 900_000, 720.0);
    let second = ad("second", 300_000, 3_000, 90, 300_000, 900_000, 720.0);
    let first_budget_with = |multiplier: Option<f64>| {
        let first = AdInput {
            weekday_ctr_multiplier: multiplier,
            ..first.clone()
        };
        let allocation = allocate(
            &request(vec![first, second.clone()], 20_000),
            &AllocatorConfig::default(),
        )
        .unwrap();
        (
            allocation.recommendations[0].recommended_daily_budget.get(),
            allocation.recommendations[0].reason.clone(),
        )
    };
    let (even, even_reason) = first_budget_with(None);
    assert!((8_000..=12_000).contains(&even), "{even}: {even_reason}");
    assert!(!even_reason.contains("weekday rhythm"), "{even_reason}");
    let (peak, peak_reason) = first_budget_with(Some(1.3));
    assert!(peak >= 14_000, "{peak}: {peak_reason}");
    assert!(
        peak_reason.contains("its own weekday rhythm: its CTR over the coming day ×1.3"),
        "{peak_reason}"
    );
    let (trough, trough_reason) = first_budget_with(Some(0.7));
    assert!(trough <= 6_000, "{trough}: {trough_reason}");
}

#[test]
fn no_ad_is_killed_before_the_accounts_first_conversion() {
    // A week in and no conversion reported anywhere: each conversion would be valued at the placeholder of
    // 1 USD, so every ROAS interval sits at zero, far below the kill line, yet nothing says what a conversion
    // is worth. No ad is judged; once the account has a conversion, the ads that spent past the decision line
    // are (these, with no conversion of their own and an account whose one order was worth 50 USD, are
    // killed).
    let mut ads: Vec<AdInput> = (0..3)
        .map(|index| ad(&format!("spent-{index}"), 200_000, 2_000, 0, 200_000, 0, 168.0))
        .collect();
    ads.push(ad("young", 2_000, 20, 0, 2_000, 0, 12.0));
    let before = allocate(&request(ads.clone(), 30_000), &AllocatorConfig::default()).unwrap();
    for ad in &before.recommendations {
        assert_eq!(ad.decision, Decision::Maintain, "{}", ad.reason);
    }
    assert!(
        before.recommendations[0]
            .reason
            .contains("too early to judge: the account has reported no conversion yet"),
        "{}",
        before.recommendations[0].reason
    );
    ads[3] = ad("young", 2_000, 20, 1, 2_000, 5_000, 12.0);
    let after = allocate(&request(ads, 30_000), &AllocatorConfig::default()).unwrap();
    let killed = after
        .recommendations
        .iter()
        .filter(|ad| ad.decision == Decision::Kill)
        .count();
    assert_eq!(killed, 3, "{:?}", after.recommendations);
}

/// Twelve settled ads at 1% CTR, 1% of clicks converting and 20 USD per thousand impressions (a conversion
/// costs nearly 200 USD), ad `{prefix}-11` the best buyer: `{prefix}-i` sells 100 × (i + 1) USD.
fn twelve_settled_ads_at_200_usd_a_conversion(prefix: &str) -> Vec<AdInput> {
    (0..12)
        .map(|index| {
            ad(
                &format!("{prefix}-{index}"),
                10_000,
                100,
                1,
                20_000,
                10_000 * (index + 1),
                240.0,
            )
        })
        .collect()
}

#[test]
fn a_budget_too_small_to_learn_on_every_ad_keeps_the_likeliest_best_and_rests_the_others() {
    // Twelve settled ads at 1% CTR, 1% of clicks converting and 20 USD per thousand impressions: a conversion
    // costs nearly 200 USD. At 120 USD a day the account buys about four conversions a week, enough to tell two
    // ads apart (three each, at least two ads), so the ten least likely best wait; a young ad keeps its chance.
    // At a hundred times the budget every ad is funded.
    let mut ads = twelve_settled_ads_at_200_usd_a_conversion("ad");
    ads.push(ad("young", 500, 5, 0, 1_000, 0, 12.0));
    let funded = |allocation: &adloop_allocator::Allocation| -> Vec<String> {
        allocation
            .recommendations
            .iter()
            .filter(|ad| ad.recommended_daily_budget.get() > 0)
            .map(|ad| ad.ids.ad_id.clone())
            .collect()
    };
    let small = allocate(&request(ads.clone(), 12_000), &AllocatorConfig::default()).unwrap();
    let small_funded = funded(&small);
    assert_eq!(
        small_funded.len(),
        3,
        "two settled ads and the young one: {small_funded:?}"
    );
    assert!(small_funded.contains(&"young".to_owned()), "{small_funded:?}");
    assert!(
        small_funded.contains(&"ad-11".to_owned()),
        "the best buyer keeps its place: {small_funded:?}"
    );
    let resting_reason = first_resting_reason(&small);
    assert!(
        resting_reason.contains("the 840.00 USD the total buys in 7 days goes to the ads likelier to be best"),
        "{resting_reason}"
    );
    assert_eq!(total_recommended(&small), 12_000);

    let rule_off = AllocatorConfig {
        learning_horizon_days: 0.0,
        ..AllocatorConfig::default()
    };
    let without_the_rule = allocate(&request(ads.clone(), 12_000), &rule_off).unwrap();
    assert_eq!(
        funded(&without_the_rule).len(),
        13,
        "{:?}",
        without_the_rule.recommendations
    );

    let large = allocate(&request(ads, 1_200_000), &AllocatorConfig::default()).unwrap();
    assert_eq!(funded(&large).len(), 13, "{:?}", large.recommendations);
}

#[test]
fn each_account_in_a_request_learns_on_as_many_ads_as_its_own_cost_per_conversion_allows() {
    // One request, two accounts. `act_dear`: twelve settled ads whose conversions cost nearly 200 USD each (as
    // in the test above). `act_cheap`: four whose conversions cost about 1 USD. Pooled, the request's
    // conversions cost under 10 USD, and 250 USD a day would seem to learn on every ad; priced at its own
    // account's rate, a dear ad takes over 500 USD of the week's 1,750 to be told apart, so three dear ads are
    // funded and the others wait, while the cheap ones, a few dollars each, all fit.
    let mut ads: Vec<AdInput> = twelve_settled_ads_at_200_usd_a_conversion("dear")
        .into_iter()
        .map(|ad| in_account("act_dear", ad))
        .collect();
    ads.extend((0..4).map(|index| {
        in_account(
            "act_cheap",
            ad(&format!("cheap-{index}"), 10_000, 500, 100, 10_000, 30_000, 240.0),
        )
    }));
    for ad in &mut ads {
        // Budgets near the total's even share, so the change limit lets seven ads share it.
        ad.current_daily_budget = MinorUnits(2_500);
    }
    let allocation = allocate(&request(ads, 25_000), &AllocatorConfig::default()).unwrap();
    let funded_in = |prefix: &str| {
        allocation
            .recommendations
            .iter()
            .filter(|ad| ad.ids.ad_id.starts_with(prefix) && ad.recommended_daily_budget.get() > 0)
            .count()
    };
    assert_eq!(funded_in("dear-"), 3, "{:?}", allocation.recommendations);
    assert_eq!(funded_in("cheap-"), 4, "{:?}", allocation.recommendations);
    let resting_reason = first_resting_reason(&allocation);
    assert!(
        resting_reason.contains("the 1750.00 USD the total buys in 7 days goes to the ads likelier to be best"),
        "{resting_reason}"
    );
    assert_eq!(total_recommended(&allocation), 25_000);
}
