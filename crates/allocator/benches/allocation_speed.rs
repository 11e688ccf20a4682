//! Allocation latency: 100 ads (target ≤ 5 ms p50 on one core) and 1,000 ads (target ≤ 50 ms), on
//! account-like states: ages from hours to weeks, CTRs around 1%, a few conversions per ad.

use adloop_allocator::{AllocatorConfig, allocate};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

#[path = "../examples/support/mod.rs"]
mod support;

fn allocation_latency(criterion: &mut Criterion) {
    let config = AllocatorConfig::default();
    let mut group = criterion.benchmark_group("allocate");
    group.sample_size(30);
    for ad_count in [100_usize, 1000] {
        let request = support::account_like_request(ad_count, 7);
        group.bench_with_input(BenchmarkId::from_parameter(ad_count), &request, |bencher, request| {
            bencher.iter(|| allocate(request, &config).expect("valid request"))
        });
    }
    group.finish();
}

criterion_group!(benches, allocation_latency);
criterion_main!(benches);
