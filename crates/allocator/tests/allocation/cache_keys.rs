//! Draws are cached by key. Equal keys must mean identical draws (no stale hits): the draws are computed
//! from the quantised posterior the key spells out, so an input change either changes the key or is
//! quantised away and changes nothing. Changes that matter (new revenue, a new prior, a DNA score on a new
//! ad) must change the key.

use adloop_allocator::{AllocatorConfig, Prior, draw, prepare};
use adloop_money::MinorUnits;
use proptest::prelude::*;

use crate::fixtures::*;

fn keys_and_draws(ads: Vec<adloop_allocator::AdInput>) -> Vec<(String, Vec<f64>)> {
    let request = request(ads, 100_000);
    let prepared = prepare(&request, &AllocatorConfig::default()).unwrap();
    prepared
        .ads
        .iter()
        .map(|ad| (ad.draws_key.clone(), draw(&prepared, ad).scores))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn equal_keys_always_mean_identical_draws(
        impressions in 1_000_u64..1_000_000,
        clicks_per_mille in 1_u64..50,
        conversions in 0_u64..200,
        spend in 1_000_i64..1_000_000,
        roas in 0.1_f64..6.0,
        age in 1.0_f64..500.0,
        growth in 0.0_f64..0.02,
    ) {
        let clicks = impressions * clicks_per_mille / 1000;
        let value = (spend as f64 * roas) as i64;
        let before = ad("a", impressions, clicks, conversions, spend, value, age);
        let grown = |count: u64| count + (count as f64 * growth) as u64;
        let after = ad("a", grown(impressions), grown(clicks), conversions, spend + (spend as f64 * growth) as i64, value, age + growth);
        let context = ten_unequal_ads();
        let mut first_ads = context.clone();
        first_ads.push(before);
        let mut second_ads = context;
        second_ads.push(after);
        let first = keys_and_draws(first_ads);
        let second = keys_and_draws(second_ads);
        for (first_ad, second_ad) in first.iter().zip(&second) {
            if first_ad.0 == second_ad.0 {
                prop_assert_eq!(&first_ad.1, &second_ad.1);
            }
        }
    }

    #[test]
    fn new_revenue_a_new_prior_or_a_new_dna_score_changes_the_key(
        impressions in 10_000_u64..1_000_000,
        conversions in 5_u64..200,
        extra_value_percent in 5_u64..100,
    ) {
        let base = ad("a", impressions, impressions / 100, conversions, 100_000, 200_000, 200.0);
        let base_key = &keys_and_draws(vec![base.clone(), ten_unequal_ads().remove(0)])[0].0;

        let mut more_revenue = base.clone();
        more_revenue.conversion_value = MinorUnits(200_000 + 2_000 * extra_value_percent as i64);
        more_revenue.recent.as_mut().unwrap().conversion_value = more_revenue.conversion_value;
        let mut with_prior = base.clone();
        // A prior worth as much evidence as the ad's own delivery (a weak one is quantised away, correctly).
        with_prior.priors.push(Prior { source: "instant_learner".into(), expected_ctr: 0.02, expected_roas: 3.0, strength_impressions: impressions as f64 });
        for changed in [more_revenue, with_prior] {
            let changed_key = &keys_and_draws(vec![changed, ten_unequal_ads().remove(0)])[0].0;
            prop_assert_ne!(changed_key, base_key);
        }

        // A creative-DNA nudge matters while evidence is thin (with plenty of data it is quantised away, and
        // then the score does not change either).
        let newcomer = ad("new", impressions / 1000, 0, 0, 100, 0, 3.0);
        let mut newcomer_with_dna = newcomer.clone();
        newcomer_with_dna.creative_dna_score = Some(0.9);
        let newcomer_key = &keys_and_draws(vec![newcomer, ten_unequal_ads().remove(0)])[0].0;
        let dna_key = &keys_and_draws(vec![newcomer_with_dna, ten_unequal_ads().remove(0)])[0].0;
        prop_assert_ne!(newcomer_key, dna_key);
    }
}
