//! Simulation speed in ad-days per second: 50 ads for 30 days under the uniform policy (target ≥ 1 million
//! ad-days/s on one core), and the same world under seed-v1 to show what a heavier policy costs.

use campaign_sim::policy::built_in_policy;
use campaign_sim::{Scenario, run_simulation};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const AD_COUNT: u64 = 50;
const DAYS: u32 = 30;

fn fifty_ad_scenario() -> Scenario {
    let text = format!(
        r#"
name = "bench-50"
currency = "USD"
days = {DAYS}
total_daily_budget = 500000

[[ad_groups]]
name_prefix = "ad"
count = {AD_COUNT}
ctr = {{ median = 0.01, log_sd = 0.3 }}
conversion_rate = {{ median = 0.02, log_sd = 0.4 }}
value_per_conversion = {{ median = 5000, log_sd = 0.3 }}
cpm = {{ median = 1000, log_sd = 0.2 }}
"#
    );
    Scenario::from_toml(&text).expect("bench scenario is valid")
}

fn simulated_ad_days_per_second(criterion: &mut Criterion) {
    let scenario = fifty_ad_scenario();
    let mut group = criterion.benchmark_group("simulate 50 ads x 30 days");
    group.throughput(Throughput::Elements(AD_COUNT * u64::from(DAYS)));
    for policy_name in ["uniform", "seed-v1"] {
        let mut seed = 0_u64;
        group.bench_function(policy_name, |bencher| {
            bencher.iter(|| {
                seed += 1;
                let mut policy = built_in_policy(policy_name, seed).expect("built-in policy");
                run_simulation(&scenario, policy.as_mut(), seed, DAYS).expect("simulation runs")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, simulated_ad_days_per_second);
criterion_main!(benches);
