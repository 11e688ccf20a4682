//! Allocation latency: 100 ads (target ≤ 2.5 ms on one core) and 1,000 ads (target ≤ 25 ms), on
//! account-like states: ages from hours to weeks, CTRs around 1%, a few conversions per ad. And the fit of
//! an account's reporting-delay schedule on six weeks of daily reports (what the gateway runs per cycle).
//! The same ads are also timed as the autopilot sends them, spread over ten accounts, with a delivery
//! curve each (the split by marginal return), and with an instant-learner prior each (their lifts measured by
//! the account); and the fits of an account's delivery curves and of its ads'
//! own weekday rhythms on four weeks of its ads' days.

use adloop_allocator::{
    AllocatorConfig, DailyConversionReport, DailyDelivery, DeliveryHistory, ReportingDelayEstimator,
    WeekdayRhythmSettings, allocate, estimate_delivery_curves, estimate_weekday_ctr_multipliers,
};
use adloop_money::MinorUnits;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

#[path = "../examples/support/mod.rs"]
mod support;

/// An account-like request of so many ads from a seed.
type RequestOfSize = fn(usize, u64) -> adloop_allocator::AllocationRequest;

fn allocation_latency(criterion: &mut Criterion) {
    let config = AllocatorConfig::default();
    // Plain account-like ads, then the same ads as the autopilot sends them (a settled ad's week with its
    // last 72 hours inside), then those spread over ten accounts (one population prior each).
    let request_kinds: [(&str, RequestOfSize); 5] = [
        ("allocate", support::account_like_request),
        ("allocate_settled", support::autopilot_like_request),
        ("allocate_ten_accounts", support::ten_account_request),
        ("allocate_delivery_curves", support::curved_request),
        ("allocate_learned_priors", support::learned_prior_request),
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

/// The first of the bench's four weeks, in days since 1970-01-01.
const FIRST_DAY: u32 = 20_440;

/// `ad_count` ads' four weeks of days, each ad's volume moving from day to day and its CPM rising with it
/// (audiences of 50,000 to 2 million people), and its CTR (about 1%) following a weekly rhythm of its own.
fn four_weeks_of_days(ad_count: usize) -> Vec<DeliveryHistory> {
    (0..ad_count)
        .map(|ad| {
            let audience = 50_000.0 * (1.0 + (ad % 40) as f64);
            let days = (0..28_u64)
                .map(|day| {
                    let impressions = 5_000 + (ad as u64 * 7_919 + day * 104_729) % 40_000;
                    let wobble = 1.0 + 0.1 * (((ad as u64 + day) % 7) as f64 - 3.0) / 3.0;
                    let cost_per_impression = (1.0 + 0.75 * impressions as f64 / audience) * wobble;
                    let weekday_phase = (ad % 7) as f64 + day as f64;
                    let click_through_rate = 0.01 * (0.3 * (weekday_phase * std::f64::consts::TAU / 7.0).sin()).exp();
                    DailyDelivery {
                        day: FIRST_DAY + day as u32,
                        spend: MinorUnits((cost_per_impression * impressions as f64) as i64),
                        impressions,
                        clicks: (click_through_rate * impressions as f64).round() as u64,
                    }
                })
                .collect::<Vec<_>>();
            let lifetime_impressions: u64 = days.iter().map(|day| day.impressions).sum();
            let reach = audience * (1.0 - (-(lifetime_impressions as f64) / audience).exp());
            DeliveryHistory {
                days,
                lifetime_impressions,
                frequency: lifetime_impressions as f64 / reach,
            }
        })
        .collect()
}

/// Times `fit` (an estimate per ad from its days) on 100 and 1,000 ads' four weeks of days, after checking it
/// reads every ad (`what_every_ad_shows` says what a failure means).
fn time_daily_fit<T>(
    criterion: &mut Criterion,
    group_name: &str,
    what_every_ad_shows: &str,
    fit: impl Fn(&[DeliveryHistory]) -> Vec<Option<T>>,
) {
    let mut group = criterion.benchmark_group(group_name);
    group.sample_size(20);
    for ad_count in [100_usize, 1000] {
        let histories = four_weeks_of_days(ad_count);
        assert!(fit(&histories).iter().all(Option::is_some), "{what_every_ad_shows}");
        group.bench_with_input(
            BenchmarkId::from_parameter(ad_count),
            &histories,
            |bencher, histories| bencher.iter(|| fit(histories)),
        );
    }
    group.finish();
}

fn delivery_curve_fit(criterion: &mut Criterion) {
    let config = AllocatorConfig::default();
    time_daily_fit(
        criterion,
        "delivery_curve_fit",
        "the bench's days show a curve",
        |histories| estimate_delivery_curves(histories, &config.delivery_curve),
    );
}

/// What the autopilot runs per cycle with `weekday_rhythm.enabled` on, off the runtime's threads.
fn weekday_rhythm_fit(criterion: &mut Criterion) {
    let settings = WeekdayRhythmSettings {
        enabled: true,
        ..WeekdayRhythmSettings::default()
    };
    let now_day = f64::from(FIRST_DAY + 28) + 0.25;
    time_daily_fit(
        criterion,
        "weekday_rhythm_fit",
        "the bench's days are long enough to read",
        |histories| estimate_weekday_ctr_multipliers(histories, now_day, &settings),
    );
}

criterion_group!(
    benches,
    allocation_latency,
    reporting_delay_fit,
    delivery_curve_fit,
    weekday_rhythm_fit
);
criterion_main!(benches);
