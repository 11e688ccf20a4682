//! How close the allocator's P(best) is to a 1,000,000-draw reference for a 100-ad account: the reference
//! draws jointly from the exact posteriors (Beta, Gamma, log-normal) and counts each ad's wins. Then the same
//! for the budget shares of the same ads with a delivery curve each (the split by marginal return, which
//! replaces P(best) as the target where ads have curves), against 1,000,000 exact joint draws split alike.
//!
//!     cargo run --release -p adloop-allocator --example probability_best_accuracy [draws-per-ad [account-seed]]

mod support;

use adloop_allocator::{
    AllocationRequest, AllocatorConfig, blended_scores, draw, prepare, probability_of_being_best, target_shares,
};

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
    let (largest_error, largest_probability) = largest_error_and_value(&estimated, &reference);
    println!(
        "100 ads, {} draws per ad: largest |P(best) - reference| = {largest_error:.4} (largest P(best) {largest_probability:.3}); estimate took {:.2} ms",
        prepared.draws_per_ad,
        estimate_time.as_secs_f64() * 1000.0
    );

    let curved = support::curved_request(100, request_seed);
    report_split_accuracy("every ad", &curved, &config);
    // Half the ads straight: each draw's best straight ad takes what the curved ones leave, as P(best) would.
    let mut half_curved = curved;
    for ad in half_curved.ads.iter_mut().skip(1).step_by(2) {
        ad.delivery_curve = None;
    }
    report_split_accuracy("every other ad", &half_curved, &config);
}

/// The split by marginal return on `request` (`which` ads with a curve) against its exact reference.
fn report_split_accuracy(which: &str, request: &AllocationRequest, config: &AllocatorConfig) {
    let prepared = prepare(request, config).expect("valid request");
    let started = std::time::Instant::now();
    let draws: Vec<_> = prepared.ads.iter().map(|ad| draw(&prepared, ad)).collect();
    let draw_references: Vec<_> = draws.iter().collect();
    let estimated = target_shares(request, &prepared, &draw_references);
    let estimate_time = started.elapsed();
    let reference = adloop_allocator::reference::exact_target_shares(request, &prepared, REFERENCE_DRAWS, 2026);
    let (largest_error, largest_share) = largest_error_and_value(&estimated, &reference);
    println!(
        "100 ads, a delivery curve on {which}, {} draws per ad: largest |share - reference| = {largest_error:.4} (largest share {largest_share:.3}); estimate took {:.2} ms",
        prepared.draws_per_ad,
        estimate_time.as_secs_f64() * 1000.0
    );
}

/// The largest abs(estimate − reference) over the ads, and the largest reference value.
fn largest_error_and_value(estimated: &[f64], reference: &[f64]) -> (f64, f64) {
    estimated
        .iter()
        .zip(reference)
        .fold((0.0_f64, 0.0_f64), |(error, largest), (estimate, reference)| {
            (error.max((estimate - reference).abs()), largest.max(*reference))
        })
}
