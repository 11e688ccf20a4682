//! How large a learner snapshot is, and how long it takes to encode and read back, with both pattern stores
//! full: 200,000 feature patterns (64 dimensions) from three sharing accounts, 20,000 embedded patterns of
//! 1,024 dimensions, and the instant learner tracking 200,000 ads. The shipped encoding (postcard) beside
//! JSON, the encoding snapshots had until 2026-12-04. `make bench` runs it; BENCHMARKS.md has the figures.
//!
//! cargo run --release -p ml-service --example learner_snapshot [-- --scale 0.1]

use std::collections::BTreeSet;
use std::time::Instant;

use adloop_learner::{InstantLearner, LearnerConfig, LearningUpdate, encode_features};
use ml_service::learning::state::LearningState;
use ml_service::learning::{CrossLearnerSettings, decode_snapshot, encode_snapshot};
use rand::{RngExt, SeedableRng};

const EMBEDDING_DIMENSIONS: usize = 1_024;
const FEATURE_VOCABULARY: usize = 60;

fn main() {
    let scale = scale_from_arguments();
    // The stores' capacities as shipped.
    let shipped = CrossLearnerSettings::default();
    let feature_patterns = (shipped.store.max_patterns as f64 * scale) as usize;
    let embedded_patterns = (shipped.max_embedded_patterns as f64 * scale) as usize;
    let resident_before = resident_megabytes("VmRSS");
    let state = full_state(feature_patterns, embedded_patterns);
    println!(
        "state: {} feature patterns, {} embedded patterns of {EMBEDDING_DIMENSIONS} dimensions, {} ads tracked; \
         {:.0} MB resident for it",
        state.patterns.pattern_count(),
        state.embedded_patterns.pattern_count(),
        state.learner.tracked_ads(),
        resident_megabytes("VmRSS") - resident_before
    );

    let started = Instant::now();
    let encoded = encode_snapshot(&state).expect("the state encodes");
    let encoded_in = started.elapsed();
    let started = Instant::now();
    let decoded = decode_snapshot(&encoded).expect("the snapshot reads back");
    let decoded_in = started.elapsed();
    assert_eq!(decoded.patterns.pattern_count(), state.patterns.pattern_count());
    drop(decoded);
    println!(
        "postcard (shipped): {:.1} MB, encoded in {:.2} s, read back in {:.2} s",
        encoded.len() as f64 / 1e6,
        encoded_in.as_secs_f64(),
        decoded_in.as_secs_f64()
    );
    drop(encoded);
    println!(
        "peak resident so far (state, snapshot bytes, state read back): {:.0} MB",
        resident_megabytes("VmHWM")
    );

    let started = Instant::now();
    let json = serde_json::to_string(&state).expect("the state encodes as JSON");
    let json_in = started.elapsed();
    println!(
        "JSON (before):      {:.1} MB, encoded in {:.2} s (Postgres stores a JSONB value of at most 255 MB)",
        json.len() as f64 / 1e6,
        json_in.as_secs_f64()
    );
}

/// A memory figure of this process from /proc/self/status (VmRSS now, VmHWM its peak), in MB.
fn resident_megabytes(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kilobytes| kilobytes * 1024.0 / 1e6)
}

fn scale_from_arguments() -> f64 {
    let arguments: Vec<String> = std::env::args().collect();
    match arguments.iter().position(|argument| argument == "--scale") {
        Some(index) => arguments
            .get(index + 1)
            .and_then(|value| value.parse().ok())
            .filter(|scale: &f64| *scale > 0.0 && *scale <= 1.0)
            .expect("--scale takes a number in (0, 1]"),
        None => 1.0,
    }
}

/// Every pattern from each of three sharing accounts, each feature pattern a distinct set of four features.
fn full_state(feature_patterns: usize, embedded_patterns: usize) -> LearningState {
    let settings = CrossLearnerSettings {
        embedding_dimensions: EMBEDDING_DIMENSIONS,
        ..CrossLearnerSettings::default()
    };
    let mut state = LearningState::new(InstantLearner::new(LearnerConfig::default()), &settings);
    let accounts = ["act_1", "act_2", "act_3"];
    state.reset_patterns(
        accounts
            .iter()
            .map(|account| account.to_string())
            .collect::<BTreeSet<_>>(),
        &settings,
    );
    let mut random = rand_pcg::Pcg64::seed_from_u64(7);
    let mut combinations = adloop_test_support::four_feature_creatives(FEATURE_VOCABULARY);
    for pattern in 0..feature_patterns {
        let names = combinations.next().expect("enough combinations of four features");
        let features = encode_features(names.iter().map(|name| (name.as_str(), 1.0)), 64).expect("valid features");
        for account in accounts {
            state.apply(
                &delivery(&format!("ad-{pattern}-{account}"), account, features.clone()),
                None,
            );
        }
    }
    let features = encode_features([("has_face", 1.0)], 64).expect("valid features");
    for pattern in 0..embedded_patterns {
        let embedding: Vec<f32> = (0..EMBEDDING_DIMENSIONS)
            .map(|_| random.random::<f32>() - 0.5)
            .collect();
        for account in accounts {
            let update = delivery(&format!("embedded-{pattern}-{account}"), account, features.clone());
            state.apply(&update, Some(&embedding));
        }
    }
    state
}

fn delivery(ad_id: &str, account_id: &str, features: adloop_learner::EncodedFeatures) -> LearningUpdate {
    LearningUpdate {
        ad_id: ad_id.to_owned(),
        account_id: account_id.to_owned(),
        features,
        impressions: 1_000.0,
        clicks: 12.0,
        matured_clicks: 10.0,
        conversions: 1.0,
    }
}
