//! Draws are cached by key. Equal keys must mean identical draws (no stale hits): the draws are computed
//! from the quantised posterior the key spells out, so an input change either changes the key or is
//! quantised away and changes nothing. Changes that matter (new revenue, a new prior, a DNA score on a new
//! ad) must change the key.

use adloop_allocator::{AllocatorConfig, MODEL_VERSION, Prior, ScoreDraws, draw, prepare};
use adloop_money::MinorUnits;
use proptest::prelude::*;
use rand::SeedableRng as _;
use rand_pcg::Pcg64Mcg;

use crate::fixtures::*;

fn keys_and_draws(ads: Vec<adloop_allocator::AdInput>) -> Vec<(String, ScoreDraws)> {
    let request = request(ads, 100_000);
    let prepared = prepare(&request, &AllocatorConfig::default()).unwrap();
    prepared
        .ads
        .iter()
        .map(|ad| (ad.draws_key.clone(), draw(&prepared, ad)))
        .collect()
}

/// Two polls of one account minutes apart: an ad grew a little and the population moved with it. Equal keys
/// must occur often (that is what makes the cache pay), and every equal key must mean identical draws.
#[test]
fn equal_keys_always_mean_identical_draws() {
    let mut rng = Pcg64Mcg::seed_from_u64(20_261_201);
    let cases = 120;
    let (mut equal_keys, mut grown_ad_equal_keys) = (0, 0);
    for _ in 0..cases {
        let impressions = rng.random_range(1_000_u64..1_000_000);
        let clicks = impressions * rng.random_range(1_u64..50) / 1000;
        let conversions = rng.random_range(0_u64..200);
        let spend = rng.random_range(1_000_i64..1_000_000);
        let value = (spend as f64 * rng.random_range(0.1..6.0)) as i64;
        let age = rng.random_range(1.0..500.0);
        // Five minutes of delivery at most: under half a percent of the lifetime counts.
        let growth = rng.random_range(0.0..0.005);
        let grown = |count: u64| count + (count as f64 * growth) as u64;
        let before = ad("a", impressions, clicks, conversions, spend, value, age);
        let after = ad(
            "a",
            grown(impressions),
            grown(clicks),
            conversions,
            spend + (spend as f64 * growth) as i64,
            value,
            age + growth,
        );
        let mut first_ads = ten_unequal_ads();
        first_ads.push(before);
        let mut second_ads = ten_unequal_ads();
        second_ads.push(after);
        let first = keys_and_draws(first_ads);
        let second = keys_and_draws(second_ads);
        for (index, (first_ad, second_ad)) in first.iter().zip(&second).enumerate() {
            if first_ad.0 == second_ad.0 {
                assert_eq!(first_ad.1, second_ad.1, "equal keys, different draws: {}", first_ad.0);
                equal_keys += 1;
                if index == 10 {
                    grown_ad_equal_keys += 1;
                }
            }
        }
    }
    // Without these the assertion above would have checked nothing.
    assert!(equal_keys >= cases * 8, "only {equal_keys} equal keys in {cases} cases");
    assert!(
        grown_ad_equal_keys >= cases / 4,
        "the grown ad kept its key in only {grown_ad_equal_keys} of {cases} cases"
    );
}

/// A fingerprint of every draw of a fixed account (FNV-1a over the f32 bits).
fn draws_fingerprint() -> u64 {
    let mut ads = ten_unequal_ads();
    ads.push(ad("young", 2_000, 30, 0, 2_000, 0, 5.0));
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (key, draws) in keys_and_draws(ads) {
        let values = draws.ctr.iter().chain(&draws.roas);
        for byte in key
            .bytes()
            .chain(values.flat_map(|value| value.to_bits().to_le_bytes()))
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Caches keep draws under keys that start with `MODEL_VERSION` (Redis keeps them across deployments):
/// changing what the draws are without changing the version would serve old draws as new ones.
#[test]
fn draws_change_only_with_the_model_version() {
    const GOLDEN_VERSION: &str = "allocator-20";
    const GOLDEN_FINGERPRINT: u64 = 0x75ea_e261_9d20_ec7e;
    let fingerprint = draws_fingerprint();
    assert_eq!(
        (MODEL_VERSION, fingerprint),
        (GOLDEN_VERSION, GOLDEN_FINGERPRINT),
        "the draws' fingerprint is now {fingerprint:#018x}: if the draws changed on purpose, bump MODEL_VERSION \
         in crates/allocator/src/lib.rs and record the new version and fingerprint here"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

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
        let more_revenue_key = &keys_and_draws(vec![more_revenue, ten_unequal_ads().remove(0)])[0].0;
        prop_assert_ne!(more_revenue_key, base_key);

        // A creative-DNA nudge or a learned prior matters while evidence is thin (with plenty of data it is
        // quantised away, and then the score does not change either).
        let newcomer = ad("new", impressions / 1000, 0, 0, 100, 0, 3.0);
        let mut newcomer_with_dna = newcomer.clone();
        newcomer_with_dna.creative_dna_score = Some(0.9);
        let newcomer_key = &keys_and_draws(vec![newcomer.clone(), ten_unequal_ads().remove(0)])[0].0;
        let dna_key = &keys_and_draws(vec![newcomer_with_dna, ten_unequal_ads().remove(0)])[0].0;
        prop_assert_ne!(newcomer_key, dna_key);
        // A learned prior that sees the newcomer twice as likely to be clicked as its neighbour.
        let learned = |expected_ctr: f64| Prior {
            source: "instant_learner".into(),
            expected_ctr,
            ctr_strength_impressions: 400.0,
            expected_conversions_per_click: 0.05,
            conversion_strength_conversions: 0.0,
            rates_are_lifts: false,
        };
        let mut newcomer_with_prior = newcomer;
        newcomer_with_prior.priors.push(learned(0.02));
        let mut neighbour_with_prior = ten_unequal_ads().remove(0);
        neighbour_with_prior.priors.push(learned(0.01));
        let prior_key = &keys_and_draws(vec![newcomer_with_prior, neighbour_with_prior])[0].0;
        prop_assert_ne!(newcomer_key, prior_key);
    }
}
