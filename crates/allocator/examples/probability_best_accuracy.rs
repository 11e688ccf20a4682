//! How close the allocator's P(best) is to a 1,000,000-draw reference for a 100-ad account: the reference
//! draws jointly from the exact posteriors (Beta, Gamma, log-normal) and counts each ad's wins.
//!
//!     cargo run --release -p adloop-allocator --example probability_best_accuracy [draws-per-ad [account-seed]]

mod support;

use adloop_allocator::{AllocatorConfig, blended_scores, draw, prepare, probability_of_being_best};

const REFERENCE_DRAWS: usize = 1_000_000;

fn main() {
    // The account the benchmark uses (7) unless a second argument names another.
    let request_seed = std::env::args()
        .nth(2)
        .and_then(|argument| argument.parse().ok())
        .unwrap_or(7);
    let request = support::account_like_request(100, request_seed);
    let mut config = AllocatorConfig::default();
    if let Some(draws_per_ad) = std::env::args().nth(1).and_then(|argument| argument.parse().ok()) {
        config.draws_per_ad = draws_per_ad;
    }
    let prepared = prepare(&request, &config).expect("valid request");
    let started = std::time::Instant::now();
    let draws: Vec<_> = prepared.ads.iter().map(|ad| draw(&prepared, ad)).collect();
    let draw_time = started.elapsed();
    let draw_references: Vec<_> = draws.iter().collect();
    let all_ads: Vec<usize> = (0..draws.len()).collect();
    let scores = blended_scores(&prepared, &draw_references, &all_ads);
    let estimated = probability_of_being_best(&scores.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let estimate_time = started.elapsed();
    println!(
        "draws {:.2} ms, sweep {:.2} ms",
        draw_time.as_secs_f64() * 1000.0,
        (estimate_time - draw_time).as_secs_f64() * 1000.0
    );

    let reference = adloop_allocator::reference::exact_probability_of_being_best(&prepared, REFERENCE_DRAWS, 2026);
    let mut largest_error: f64 = 0.0;
    let mut largest_probability: f64 = 0.0;
    for (estimate, reference) in estimated.iter().zip(&reference) {
        largest_error = largest_error.max((estimate - reference).abs());
        largest_probability = largest_probability.max(*reference);
    }
    println!(
        "100 ads, {} draws per ad: largest |P(best) - reference| = {largest_error:.4} (largest P(best) {largest_probability:.3}); estimate took {:.2} ms",
        prepared.draws_per_ad,
        estimate_time.as_secs_f64() * 1000.0
    );
}
