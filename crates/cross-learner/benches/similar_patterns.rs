//! Exact top-5 search over 100,000 patterns of 64 dimensions (target: p99 ≤ 5 ms, recall@5 = 1.0).
//! Prints the latency distribution of 1,000 queries first (criterion reports means only), then the
//! criterion measurement.

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

criterion_group!(benches, top_five);
criterion_main!(benches);
