//! The approximate index at scale (target: recall@5 ≥ 0.95 against the exact scan, p99 ≤ 2 ms at
//! 1,000,000 patterns of 64 dimensions). Takes minutes (the build); part of `make bench`, not `make test`.
//!
//!     cargo bench -p adloop-cross-learner --bench approximate_patterns   (ADLOOP_ANN_PATTERNS=1000000)
//!
//! Patterns are clustered, as creatives are (variations of a few thousand concepts): 2,000 random centres,
//! each pattern a centre plus noise. Queries are new patterns drawn the same way.

use std::time::Instant;

use adloop_cross_learner::{
    ApproximateConfig, ApproximateIndex, Delivery, PatternStore, PatternVector, StoreConfig, embedding_vector,
};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

const DIMENSIONS: usize = 64;
const CENTRES: usize = 2_000;
const QUERIES: usize = 1_000;

fn unit_random(random: &mut Pcg64) -> Vec<f32> {
    (0..DIMENSIONS).map(|_| random.random_range(-1.0_f32..1.0)).collect()
}

fn near(centre: &[f32], random: &mut Pcg64) -> PatternVector {
    let values: Vec<f32> = centre
        .iter()
        .map(|value| value + 0.35 * random.random_range(-1.0_f32..1.0))
        .collect();
    embedding_vector(&values).expect("not zero")
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * quantile).round() as usize]
}

fn main() {
    let patterns: usize = std::env::var("ADLOOP_ANN_PATTERNS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000);
    let mut random = Pcg64::seed_from_u64(21);
    let centres: Vec<Vec<f32>> = (0..CENTRES).map(|_| unit_random(&mut random)).collect();
    let config = StoreConfig {
        min_accounts_to_share: 1,
        max_patterns: patterns,
        approximate: ApproximateConfig {
            above_patterns: 1,
            ..ApproximateConfig::default()
        },
    };
    let settings = config.approximate.clone();
    let mut store = PatternStore::new(config);
    let delivery = Delivery {
        impressions: 1_000.0,
        clicks: 10.0,
        matured_clicks: 10.0,
        conversions: 1.0,
    };
    for index in 0..patterns {
        let centre = &centres[random.random_range(0..CENTRES)];
        store
            .record(&format!("p{index}"), &near(centre, &mut random), "a", delivery)
            .expect("room");
    }
    let inputs = store.approximate_index_inputs().expect("vectors");
    let started = Instant::now();
    let index = ApproximateIndex::build_from(inputs);
    let build_seconds = started.elapsed().as_secs_f64();
    store.install_approximate_index(index);

    let queries: Vec<PatternVector> = (0..QUERIES)
        .map(|_| {
            let centre = &centres[random.random_range(0..CENTRES)];
            near(centre, &mut random)
        })
        .collect();
    let mut approximate_micros = Vec::with_capacity(QUERIES);
    let mut exact_micros = Vec::with_capacity(QUERIES);
    let mut found_of_true = 0;
    for query in &queries {
        let started = Instant::now();
        let approximate: Vec<String> = store
            .find_similar(query, 5, None)
            .into_iter()
            .map(|found| found.pattern_id)
            .collect();
        approximate_micros.push(started.elapsed().as_secs_f64() * 1e6);
        let started = Instant::now();
        let exact: Vec<String> = store
            .find_similar_exactly(query, 5, None)
            .into_iter()
            .map(|found| found.pattern_id)
            .collect();
        exact_micros.push(started.elapsed().as_secs_f64() * 1e6);
        found_of_true += exact.iter().filter(|id| approximate.contains(id)).count();
    }
    approximate_micros.sort_by(f64::total_cmp);
    exact_micros.sort_by(f64::total_cmp);
    println!(
        "{patterns} patterns × {DIMENSIONS} dimensions ({CENTRES} clusters), index built in {build_seconds:.1} s (ef_construction {}, ef_search {})",
        settings.ef_construction, settings.ef_search
    );
    println!(
        "approximate top-5, {QUERIES} queries: recall@5 {:.4}, p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        found_of_true as f64 / (5 * QUERIES) as f64,
        percentile(&approximate_micros, 0.5),
        percentile(&approximate_micros, 0.99),
        percentile(&approximate_micros, 1.0)
    );
    println!(
        "exact top-5, same queries, same run: p50 {:.0} µs, p99 {:.0} µs",
        percentile(&exact_micros, 0.5),
        percentile(&exact_micros, 0.99)
    );
}
