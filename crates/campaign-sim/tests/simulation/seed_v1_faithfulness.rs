//! seed-v1 must reproduce what the original allocator was measured doing (reference: original-system §1.4).

use std::collections::BTreeMap;

use adloop_money::{Currency, MinorUnits};
use campaign_sim::policy::SeedV1;
use campaign_sim::{AdIdentity, AdObservation, AdStatus, HiddenTruths, Observation, Policy, WindowStats};

fn ad(name: &str, impressions: u64, clicks: u64, spend_cents: i64, value_cents: i64, age_hours: f64) -> AdObservation {
    AdObservation {
        identity: AdIdentity {
            account_id: "act_1".into(),
            campaign_id: "1".into(),
            ad_set_id: format!("set-{name}"),
            ad_id: name.into(),
            name: name.into(),
        },
        status: AdStatus::Active,
        age_hours,
        current_daily_budget: MinorUnits(5000),
        impressions,
        clicks,
        spend: MinorUnits(spend_cents),
        conversions: 1,
        conversion_value: MinorUnits(value_cents),
        last_72_hours: WindowStats::default(),
        last_7_days: WindowStats::default(),
        daily: Vec::new(),
        frequency: 1.0,
        features: BTreeMap::new(),
    }
}

#[test]
fn three_unequal_ads_all_get_plus_50_percent_and_the_total_is_not_conserved() {
    // Three ads at 48 h with $100 spent each, ROAS 5.0 / 3.0 / 1.0 and CTR 5% / 3% / 1%, total $300:
    // the original recommended $75 (+50%, the cap) to every ad, the loser included, $225 in all. At 10k
    // impressions its fatigue term squeezes the scores together and the softmax splits almost evenly.
    let observation = Observation {
        hour: 48,
        currency: Currency::parse("USD").unwrap(),
        total_daily_budget: MinorUnits(30_000),
        minimum_daily_budget: MinorUnits::ZERO,
        ads: vec![
            ad("winner", 10_000, 500, 10_000, 50_000, 48.0),
            ad("middle", 10_000, 300, 10_000, 30_000, 48.0),
            ad("loser", 10_000, 100, 10_000, 10_000, 48.0),
        ],
    };
    for seed in 0..20 {
        let budgets = SeedV1::new(seed)
            .decide(
                &observation,
                &HiddenTruths {
                    true_roas: &[0.0; 3],
                    true_rates: &[],
                    daily_auction_curves: &[],
                },
            )
            .unwrap();
        assert_eq!(budgets, vec![MinorUnits(7_500); 3], "seed {seed}");
    }
}
