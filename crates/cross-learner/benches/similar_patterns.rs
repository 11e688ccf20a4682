//! Exact top-5 search over 100,000 patterns of 64 dimensions (target: p99 ≤ 5 ms, recall@5 = 1.0).
//! Prints the latency distribution of 1,000 queries first (criterion reports means only), then the
//! criterion measurement. Then an allocation's cross-learner priors over the same store (1,000 ads, 50
//! creatives).

use std::time::Instant;

use adloop_cross_learner::{Delivery, PatternStore, PatternVector, StoreConfig, embedding_vector};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

const PATTERNS: usize = 100_000;
const DIMENSIONS: usize = 64;

fn random_vector(random: &mut Pcg64) -> PatternVector {
    let values: Vec<f32> = (0..DIMENSIONS).map(|_| random.random_range(-1.0..1.0)).collect();
    embedding_vector(&values).expect("a random vector is not zero")
}

fn filled_store() -> PatternStore {
    let mut random = Pcg64::seed_from_u64(11);
    let mut store = PatternStore::new(StoreConfig {
        max_patterns: PATTERNS,
        ..StoreConfig::default()
    });
    let delivery = Delivery {
        impressions: 1_000.0,
        clicks: 10.0,
        matured_clicks: 10.0,
        conversions: 1.0,
    };
    for index in 0..PATTERNS {
        let vector = random_vector(&mut random);
        for account in ["a", "b", "c"] {
            store
                .record(&format!("p{index}"), &vector, account, delivery)
                .expect("room for every pattern");
        }
    }
    store
}

fn percentile(sorted_micros: &[f64], quantile: f64) -> f64 {
    sorted_micros[((sorted_micros.len() - 1) as f64 * quantile).round() as usize]
}

fn top_five(criterion: &mut Criterion) {
    let store = filled_store();
    let mut random = Pcg64::seed_from_u64(12);
    let queries: Vec<PatternVector> = (0..1_000).map(|_| random_vector(&mut random)).collect();
    let mut micros: Vec<f64> = queries
        .iter()
        .map(|query| {
            let started = Instant::now();
            std::hint::black_box(store.find_similar(query, 5, Some("asking")));
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    micros.sort_by(f64::total_cmp);
    println!(
        "exact top-5 over {PATTERNS} patterns × {DIMENSIONS} dimensions, 1,000 queries: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        percentile(&micros, 0.5),
        percentile(&micros, 0.99),
        percentile(&micros, 1.0)
    );
    let query = &queries[0];
    criterion.bench_function("exact top-5 of 100,000 × 64", |bencher| {
        bencher.iter(|| std::hint::black_box(store.find_similar(query, 5, Some("asking"))));
    });
}

/// An allocation's cross-learner priors: 1,000 ads of a sharing account over 50 creatives (a creative runs in
/// several ad sets), against the same store. Each ad searched on its own (as before each creative was
/// searched once per request) against what `add_cross_learner_priors` does now.
fn allocation_priors(criterion: &mut Criterion) {
    use adloop_cross_learner::{PatternQuerySettings, add_cross_learner_priors, feature_vector, similar_patterns};
    const ADS: usize = 1_000;
    const CREATIVES: usize = 50;
    let store = filled_store();
    let sharing: std::collections::BTreeSet<String> = ["a", "b", "c", "asking"].map(str::to_owned).into();
    let settings = PatternQuerySettings::default();
    let creative_features = |creative: usize| {
        [format!("hook_{}", creative % 7), format!("length_{}", creative / 7)]
            .into_iter()
            .map(|name| (name, 1.0))
            .collect::<std::collections::BTreeMap<String, f64>>()
    };
    let request = adloop_allocator::AllocationRequest {
        ads: (0..ADS)
            .map(|index| {
                let mut ad = asking_accounts_ad(index);
                ad.creative_features = creative_features(index % CREATIVES);
                ad
            })
            .collect(),
        total_daily_budget: adloop_money::MinorUnits(1_000_000),
        currency: adloop_money::Currency::parse("USD").expect("USD is known"),
        constraints: adloop_allocator::AllocationConstraints {
            per_ad_floor: adloop_money::MinorUnits::ZERO,
            per_ad_cap: adloop_money::MinorUnits::ZERO,
            max_change_fraction: 0.5,
        },
        seed: 1,
        reporting_delays: Default::default(),
    };
    let started = Instant::now();
    for ad in &request.ads {
        let raw = ad.creative_features.iter().map(|(name, value)| (name.as_str(), *value));
        let features = adloop_learner::encode_features(raw, 16).expect("two features");
        let query = feature_vector(&features, settings.feature_dimensions);
        std::hint::black_box(similar_patterns(
            &store,
            &sharing,
            query.as_ref(),
            "asking",
            settings.top_k,
            &settings.prior,
        ));
    }
    let each_ad = started.elapsed();
    let started = Instant::now();
    let mut with_priors = request.clone();
    add_cross_learner_priors(&store, &sharing, &mut with_priors, &settings, 16);
    let each_creative = started.elapsed();
    println!(
        "cross-learner priors for {ADS} ads of {CREATIVES} creatives over {PATTERNS} patterns: each ad searched \
         {:.0} ms, each creative once {:.0} ms",
        each_ad.as_secs_f64() * 1e3,
        each_creative.as_secs_f64() * 1e3
    );
    let mut group = criterion.benchmark_group("allocation_priors");
    group.sample_size(10);
    group.bench_function("1,000 ads of 50 creatives over 100,000 patterns", |bencher| {
        bencher.iter(|| {
            let mut with_priors = request.clone();
            add_cross_learner_priors(&store, &sharing, &mut with_priors, &settings, 16);
            with_priors
        });
    });
    group.finish();
}

/// An ad of the asking account with nothing delivered.
fn asking_accounts_ad(index: usize) -> adloop_allocator::AdInput {
    adloop_allocator::AdInput::not_yet_delivered(adloop_allocator::AdIds {
        account_id: "asking".into(),
        campaign_id: "c".into(),
        ad_set_id: format!("set-{index}"),
        ad_id: format!("ad-{index}"),
    })
}

criterion_group!(benches, top_five, allocation_priors);
criterion_main!(benches);
