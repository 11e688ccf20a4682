#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

//! The cross-learner's promises: k-anonymous sharing without the asking account, lifts that travel between
//! accounts of any level, a bounded prior, nothing from an empty store, and exact search.

use adloop_cross_learner::{
    CrossPriorConfig, Delivery, PatternStore, PatternVector, StoreConfig, cross_prior, embedding_vector, feature_vector,
};
use adloop_learner::encode_features;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

fn vector(names: &[&str]) -> PatternVector {
    feature_vector(&encode_features(names.iter().map(|name| (*name, 1.0)), 64).unwrap(), 64).unwrap()
}

/// `impressions` at `ctr` with 5% of clicks converting.
fn delivery(impressions: f64, ctr: f64) -> Delivery {
    Delivery {
        impressions,
        clicks: impressions * ctr,
        matured_clicks: impressions * ctr,
        conversions: impressions * ctr * 0.05,
    }
}

#[test]
fn a_pattern_is_shared_only_once_enough_other_accounts_contributed() {
    let mut store = PatternStore::new(StoreConfig::default());
    let pattern = vector(&["has_number", "has_question"]);
    for account in ["acct-a", "acct-b"] {
        store.record("p1", &pattern, account, delivery(10_000.0, 0.02)).unwrap();
    }
    assert!(
        store.find_similar(&pattern, 5, None).is_empty(),
        "two accounts are not enough"
    );
    store
        .record("p1", &pattern, "acct-c", delivery(10_000.0, 0.02))
        .unwrap();
    assert_eq!(store.find_similar(&pattern, 5, None).len(), 1);
    // Asked by one of the three, only two others remain: not shared with it.
    assert!(store.find_similar(&pattern, 5, Some("acct-a")).is_empty());
    assert_eq!(store.find_similar(&pattern, 5, Some("acct-z")).len(), 1);
}

#[test]
fn lifts_are_measured_against_each_accounts_own_average_and_no_account_id_leaves() {
    let mut store = PatternStore::new(StoreConfig::default());
    let star = vector(&["has_number", "ugc_style"]);
    let plain = vector(&["long_video"]);
    // Three accounts at very different levels (1%, 2%, 4% CTR); in each the star pattern earns 1.5× the
    // account's plain ads.
    for (account, level) in [("acct-low", 0.01), ("acct-mid", 0.02), ("acct-high", 0.04)] {
        store
            .record("star", &star, account, delivery(50_000.0, level * 1.5))
            .unwrap();
        store
            .record("plain", &plain, account, delivery(450_000.0, level * 0.9444))
            .unwrap();
    }
    let found = store.find_similar(&star, 1, Some("acct-new"));
    assert_eq!(found[0].pattern_id, "star");
    // Each account's average: (0.1 × 1.5 + 0.9 × 0.9444) × level = 1.0 × level.
    assert!((found[0].ctr_lift() - 1.5).abs() < 0.01, "{}", found[0].ctr_lift());
    let shown = format!("{found:?}");
    for account in ["acct-low", "acct-mid", "acct-high"] {
        assert!(!shown.contains(account), "an account id left the store: {shown}");
    }
}

#[test]
fn the_prior_moves_an_ads_expected_return_by_at_most_twenty_percent_either_way() {
    let mut store = PatternStore::new(StoreConfig::default());
    let great = vector(&["has_number"]);
    let awful = vector(&["long_video"]);
    for account in ["a", "b", "c"] {
        store
            .record("great", &great, account, delivery(100_000.0, 0.06))
            .unwrap();
        store
            .record("awful", &awful, account, delivery(100_000.0, 0.002))
            .unwrap();
        store
            .record("rest", &vector(&["has_face"]), account, delivery(1_000_000.0, 0.02))
            .unwrap();
    }
    let config = CrossPriorConfig::default();
    let up = cross_prior(&store.find_similar(&great, 1, None), &config).unwrap();
    let down = cross_prior(&store.find_similar(&awful, 1, None), &config).unwrap();
    for prior in [up, down] {
        let effect = prior.ctr_lift * prior.conversion_lift;
        assert!((0.8 - 1e-9..=1.2 + 1e-9).contains(&effect), "{prior:?}");
        assert!(prior.ctr_strength_impressions <= config.max_ctr_strength_impressions);
    }
    assert!(up.ctr_lift > 1.1 && down.ctr_lift < 0.9, "{up:?} {down:?}");
}

#[test]
fn an_empty_store_finds_nothing_and_gives_no_prior() {
    let store = PatternStore::new(StoreConfig::default());
    let found = store.find_similar(&vector(&["has_number"]), 5, None);
    assert!(found.is_empty());
    assert_eq!(cross_prior(&found, &CrossPriorConfig::default()), None);
}

#[test]
fn exact_search_returns_the_true_top_k() {
    let mut random = Pcg64::seed_from_u64(5);
    let mut store = PatternStore::new(StoreConfig {
        min_accounts_to_share: 1,
        ..StoreConfig::default()
    });
    let mut vectors = Vec::new();
    for index in 0..2_000 {
        let values: Vec<f32> = (0..32).map(|_| random.random_range(-1.0..1.0)).collect();
        let vector = embedding_vector(&values).unwrap();
        store
            .record(&format!("p{index}"), &vector, "a", delivery(100.0, 0.01))
            .unwrap();
        vectors.push(vector);
    }
    for _ in 0..20 {
        let values: Vec<f32> = (0..32).map(|_| random.random_range(-1.0..1.0)).collect();
        let query = embedding_vector(&values).unwrap();
        let mut truth: Vec<(f64, usize)> = vectors
            .iter()
            .enumerate()
            .map(|(index, vector)| (query.similarity(vector), index))
            .collect();
        truth.sort_by(|left, right| right.0.total_cmp(&left.0));
        let found: Vec<String> = store
            .find_similar(&query, 5, None)
            .into_iter()
            .map(|pattern| pattern.pattern_id)
            .collect();
        let expected: Vec<String> = truth[..5].iter().map(|(_, index)| format!("p{index}")).collect();
        assert_eq!(found, expected);
    }
    let wrong_length = embedding_vector(&[1.0, 0.0]).unwrap();
    assert!(store.find_similar(&wrong_length, 5, None).is_empty());
    assert!(store.record("x", &wrong_length, "a", Delivery::default()).is_err());
}

#[test]
fn above_its_threshold_the_store_searches_an_approximate_index_and_still_finds_new_patterns() {
    let mut random = Pcg64::seed_from_u64(9);
    let mut store = PatternStore::new(StoreConfig {
        min_accounts_to_share: 1,
        approximate: adloop_cross_learner::ApproximateConfig {
            above_patterns: 1_000,
            ..Default::default()
        },
        ..StoreConfig::default()
    });
    let random_vector = |random: &mut Pcg64| {
        let values: Vec<f32> = (0..16).map(|_| random.random_range(-1.0..1.0)).collect();
        embedding_vector(&values).unwrap()
    };
    for index in 0..3_000 {
        let vector = random_vector(&mut random);
        store
            .record(&format!("p{index}"), &vector, "a", delivery(100.0, 0.01))
            .unwrap();
    }
    assert!(store.wants_approximate_index());
    let inputs = store.approximate_index_inputs().unwrap();
    store.install_approximate_index(adloop_cross_learner::ApproximateIndex::build_from(inputs));
    assert!(!store.wants_approximate_index());
    let mut found_of_true = 0;
    for _ in 0..100 {
        let query = random_vector(&mut random);
        let approximate: Vec<String> = store
            .find_similar(&query, 5, None)
            .into_iter()
            .map(|found| found.pattern_id)
            .collect();
        let exact = store.find_similar_exactly(&query, 5, None);
        found_of_true += exact
            .iter()
            .filter(|found| approximate.contains(&found.pattern_id))
            .count();
    }
    assert!(found_of_true >= 475, "recall@5 {}", found_of_true as f64 / 500.0);
    // A pattern recorded after the build is found at once (scanned exactly until the next build).
    let newcomer = random_vector(&mut random);
    store.record("newcomer", &newcomer, "a", delivery(100.0, 0.01)).unwrap();
    assert_eq!(store.find_similar(&newcomer, 1, None)[0].pattern_id, "newcomer");
}

/// An ad of `account` with these creative features and nothing delivered yet.
fn new_ad(ad_id: &str, account: &str, features: &[&str]) -> adloop_allocator::AdInput {
    let mut ad = adloop_allocator::AdInput::not_yet_delivered(adloop_allocator::AdIds {
        account_id: account.into(),
        campaign_id: "c".into(),
        ad_set_id: format!("set-{ad_id}"),
        ad_id: ad_id.into(),
    });
    ad.creative_features = features.iter().map(|name| ((*name).to_owned(), 1.0)).collect();
    ad
}

#[test]
fn each_creative_is_searched_once_and_every_ad_of_a_sharing_account_gets_its_prior() {
    use adloop_cross_learner::{PatternQuerySettings, add_cross_learner_priors, creative_searches, similar_patterns};
    let mut store = PatternStore::new(StoreConfig::default());
    let star = vector(&["has_number", "ugc_style"]);
    let plain = vector(&["long_video"]);
    for (account, level) in [("acct-a", 0.01), ("acct-b", 0.02), ("acct-c", 0.04)] {
        store
            .record("star", &star, account, delivery(50_000.0, level * 1.5))
            .unwrap();
        store
            .record("plain", &plain, account, delivery(450_000.0, level))
            .unwrap();
    }
    let sharing: std::collections::BTreeSet<String> =
        ["acct-a", "acct-b", "acct-c", "acct-new"].map(str::to_owned).into();
    let settings = PatternQuerySettings::default();
    // One creative in three ad sets of the sharing account, another creative, and the same creative in an
    // account that does not share.
    let ads = vec![
        new_ad("1", "acct-new", &["has_number", "ugc_style"]),
        new_ad("2", "acct-new", &["has_number", "ugc_style"]),
        new_ad("3", "acct-new", &["long_video"]),
        new_ad("4", "acct-new", &["has_number", "ugc_style"]),
        new_ad("5", "acct-private", &["has_number", "ugc_style"]),
    ];
    let mut request = adloop_allocator::AllocationRequest {
        ads,
        total_daily_budget: adloop_money::MinorUnits(10_000),
        currency: adloop_money::Currency::parse("USD").unwrap(),
        constraints: adloop_allocator::AllocationConstraints {
            per_ad_floor: adloop_money::MinorUnits::ZERO,
            per_ad_cap: adloop_money::MinorUnits::ZERO,
            max_change_fraction: 0.5,
        },
        seed: 1,
        reporting_delays: Default::default(),
    };
    // Two searches: one per creative of the sharing account, however many ad sets carry it.
    let searches = creative_searches(&sharing, &request, &settings, 16);
    assert_eq!(searches.len(), 2);
    assert!(searches.iter().all(|search| search.account_id == "acct-new"));
    add_cross_learner_priors(&store, &sharing, &mut request, &settings, 16);
    let searched_alone = |pattern: &PatternVector| {
        similar_patterns(
            &store,
            &sharing,
            Some(pattern),
            "acct-new",
            settings.top_k,
            &settings.prior,
        )
        .prior
        .expect("three other accounts shared it")
    };
    let (star_prior, plain_prior) = (searched_alone(&star), searched_alone(&plain));
    assert_ne!(star_prior, plain_prior);
    for (ad, expected) in request
        .ads
        .iter()
        .zip([&star_prior, &star_prior, &plain_prior, &star_prior])
    {
        assert_eq!(ad.priors, vec![expected.clone()], "ad {}", ad.ids.ad_id);
    }
    assert!(
        request.ads[4].priors.is_empty(),
        "an account that does not share receives nothing"
    );
}
