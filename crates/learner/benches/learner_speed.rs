//! In-process update speed of the instant learner (target: at least 200,000 events a second on one core).
//! Each event has five creative features and updates both heads, as an ad's delivery report does.

use adloop_learner::{InstantLearner, LearnerConfig, LearningUpdate, encode_features};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const EVENTS: usize = 10_000;

fn updates() -> Vec<LearningUpdate> {
    let names = [
        "has_pain_point",
        "has_number",
        "has_question",
        "has_face",
        "hook_type=demo",
        "hook_type=question",
        "duration_seconds",
        "has_subtitles",
    ];
    (0..EVENTS)
        .map(|index| {
            let raw = (0..5).map(|offset| {
                let name = names[(index + offset * 3) % names.len()];
                let value = if name == "duration_seconds" {
                    5.0 + (index % 40) as f64
                } else {
                    1.0
                };
                (name, value)
            });
            LearningUpdate {
                ad_id: format!("ad-{}", index % 500),
                account_id: format!("act_{}", index % 20),
                features: encode_features(raw, 64).expect("valid features"),
                impressions: 20.0 + (index % 7) as f64,
                clicks: (index % 3) as f64,
                matured_clicks: (index % 3) as f64,
                conversions: if index % 11 == 0 { 1.0 } else { 0.0 },
            }
        })
        .collect()
}

fn apply_events(criterion: &mut Criterion) {
    let updates = updates();
    let mut group = criterion.benchmark_group("instant_learner");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("apply 10k events, 5 features, both heads", |bencher| {
        let mut learner = InstantLearner::new(LearnerConfig::default());
        bencher.iter(|| {
            for update in &updates {
                std::hint::black_box(learner.apply(update));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, apply_events);
criterion_main!(benches);
