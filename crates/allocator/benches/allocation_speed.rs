//! Allocation latency: 100 ads (target ≤ 2.5 ms on one core) and 1,000 ads (target ≤ 25 ms), on
//! account-like states: ages from hours to weeks, CTRs around 1%, a few conversions per ad. And the fit of
//! an account's reporting-delay schedule on six weeks of daily reports (what the gateway runs per cycle).
//! The same ads are also timed as the autopilot sends them and spread over ten accounts.

use adloop_allocator::{AllocatorConfig, DailyConversionReport, ReportingDelayEstimator, allocate};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

#[path = "../examples/support/mod.rs"]
mod support;

/// An account-like request of so many ads from a seed.
type RequestOfSize = fn(usize, u64) -> adloop_allocator::AllocationRequest;

fn allocation_latency(criterion: &mut Criterion) {
    let config = AllocatorConfig::default();
    // Plain account-like ads, then the same ads as the autopilot sends them (a settled ad's week with its
    // last 72 hours inside), then those spread over ten accounts (one population prior each).
    let request_kinds: [(&str, RequestOfSize); 3] = [
        ("allocate", support::account_like_request),
        ("allocate_settled", support::autopilot_like_request),
        ("allocate_ten_accounts", support::ten_account_request),
    ];
    for (group_name, request_of) in request_kinds {
        let mut group = criterion.benchmark_group(group_name);
        group.sample_size(30);
        for ad_count in [100_usize, 1000] {
            let request = request_of(ad_count, 7);
            group.bench_with_input(BenchmarkId::from_parameter(ad_count), &request, |bencher, request| {
                bencher.iter(|| allocate(request, &config).expect("valid request"))
            });
        }
        group.finish();
    }
}

/// An account reporting once a day for six weeks, each day's conversions maturing over two weeks.
fn estimator_after_six_weeks_of_daily_reports() -> ReportingDelayEstimator {
    let mut estimator = ReportingDelayEstimator::default();
    for today in 1_u32..=42 {
        let reports: Vec<DailyConversionReport> = (today.saturating_sub(28)..today)
            .map(|day| DailyConversionReport {
                day,
                conversions: u64::from((today - day).min(14)) * 3,
            })
            .collect();
        estimator.record_report(f64::from(today) * 24.0, &reports);
    }
    estimator
}

fn reporting_delay_fit(criterion: &mut Criterion) {
    let config = AllocatorConfig::default();
    let estimator = estimator_after_six_weeks_of_daily_reports();
    criterion.bench_function("reporting_delay_fit/six_weeks_daily", |bencher| {
        bencher.iter(|| {
            estimator.estimate(
                &config.reporting_delay,
                config.reporting_delay_estimate_prior_conversions,
            )
        })
    });
}

criterion_group!(benches, allocation_latency, reporting_delay_fit);
criterion_main!(benches);
