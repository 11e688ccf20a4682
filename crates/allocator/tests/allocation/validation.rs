use adloop_allocator::{AllocatorConfig, allocate};
use adloop_money::MinorUnits;

use crate::fixtures::*;

fn error_field(request: adloop_allocator::AllocationRequest) -> String {
    allocate(&request, &AllocatorConfig::default()).unwrap_err().field
}

#[test]
fn bad_input_is_refused_naming_the_field() {
    assert_eq!(error_field(request(vec![], 1000)), "ads");

    let mut too_many_clicks = ten_unequal_ads();
    too_many_clicks[3].clicks = too_many_clicks[3].impressions + 1;
    assert_eq!(error_field(request(too_many_clicks, 1000)), "ads[3].clicks");

    let mut duplicate = ten_unequal_ads();
    duplicate[7].ids.ad_id = duplicate[2].ids.ad_id.clone();
    assert_eq!(error_field(request(duplicate, 1000)), "ads[7].ids.ad_id");

    let mut negative = ten_unequal_ads();
    negative[1].spend = MinorUnits(-5);
    assert_eq!(error_field(request(negative, 1000)), "ads[1].spend");

    let mut bad_dna = ten_unequal_ads();
    bad_dna[0].creative_dna_score = Some(1.5);
    assert_eq!(error_field(request(bad_dna, 1000)), "ads[0].creative_dna_score");

    let mut flat_curve = ten_unequal_ads();
    flat_curve[6].delivery_curve = Some(adloop_allocator::DeliveryCurve {
        base_cpm: 1000.0,
        cpm_doubling_daily_impressions: 0.0,
    });
    assert_eq!(
        error_field(request(flat_curve, 1000)),
        "ads[6].delivery_curve.cpm_doubling_daily_impressions"
    );

    let mut absurd_prior = ten_unequal_ads();
    absurd_prior[5].priors.push(adloop_allocator::Prior {
        source: "instant_learner".into(),
        expected_ctr: 0.01,
        ctr_strength_impressions: 100.0,
        expected_conversions_per_click: 1e6,
        conversion_strength_conversions: 4.0,
        rates_are_lifts: false,
    });
    assert_eq!(
        error_field(request(absurd_prior, 1000)),
        "ads[5].priors[0].expected_conversions_per_click"
    );

    let mut no_rhythm = ten_unequal_ads();
    no_rhythm[2].weekday_ctr_multiplier = Some(0.0);
    assert_eq!(error_field(request(no_rhythm, 1000)), "ads[2].weekday_ctr_multiplier");

    assert_eq!(error_field(request(ten_unequal_ads(), 0)), "total_daily_budget");

    // Amounts beyond any ad account are refused by name before any sum of them could overflow.
    assert_eq!(error_field(request(ten_unequal_ads(), i64::MAX)), "total_daily_budget");
    let mut huge_budget = ten_unequal_ads();
    huge_budget[4].current_daily_budget = MinorUnits(i64::MAX);
    assert_eq!(error_field(request(huge_budget, 1000)), "ads[4].current_daily_budget");

    // A recent window is part of the ad's life: it never holds more than the lifetime counts, money included.
    let with_window = |ad: &mut adloop_allocator::AdInput| {
        ad.conversions = 4;
        ad.conversion_value = MinorUnits(20_000);
        ad.recent = Some(adloop_allocator::RecentWindow {
            hours: 72.0,
            impressions: ad.impressions / 2,
            clicks: ad.clicks / 2,
            spend: MinorUnits(ad.spend.get() / 2),
            conversions: 2,
            conversion_value: MinorUnits(10_000),
        });
    };
    let mut consistent = ten_unequal_ads();
    with_window(&mut consistent[2]);
    allocate(&request(consistent.clone(), 1000), &AllocatorConfig::default()).expect("a window within the life");
    let mut more_conversions = consistent.clone();
    more_conversions[2].recent.as_mut().unwrap().conversions = 5;
    assert_eq!(error_field(request(more_conversions, 1000)), "ads[2].recent");
    let mut more_value = consistent.clone();
    more_value[2].recent.as_mut().unwrap().conversion_value = MinorUnits(20_001);
    assert_eq!(error_field(request(more_value, 1000)), "ads[2].recent");
    let mut huge_recent_value = consistent.clone();
    huge_recent_value[2].recent.as_mut().unwrap().conversion_value = MinorUnits(i64::MAX);
    assert_eq!(
        error_field(request(huge_recent_value, 1000)),
        "ads[2].recent.conversion_value"
    );

    // The latest window lies inside the recent one, which it needs.
    let mut with_latest = consistent.clone();
    let mut latest = with_latest[2].recent.unwrap();
    latest.hours = 24.0;
    latest.conversions = 1;
    with_latest[2].latest = Some(latest);
    allocate(&request(with_latest.clone(), 1000), &AllocatorConfig::default()).expect("a latest window inside");
    let mut longer_latest = with_latest.clone();
    longer_latest[2].latest.as_mut().unwrap().hours = 96.0;
    assert_eq!(error_field(request(longer_latest, 1000)), "ads[2].latest.hours");
    let mut more_latest_clicks = with_latest.clone();
    more_latest_clicks[2].latest.as_mut().unwrap().clicks += 1;
    more_latest_clicks[2].latest.as_mut().unwrap().impressions += 1;
    assert_eq!(error_field(request(more_latest_clicks, 1000)), "ads[2].latest");
    let mut latest_alone = with_latest;
    latest_alone[2].recent = None;
    assert_eq!(error_field(request(latest_alone, 1000)), "ads[2].latest");

    let mut bad_change = request(ten_unequal_ads(), 1000);
    bad_change.constraints.max_change_fraction = 0.0;
    assert_eq!(error_field(bad_change), "constraints.max_change_fraction");
}
