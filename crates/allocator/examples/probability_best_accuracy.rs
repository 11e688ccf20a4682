//! How close the allocator's P(best) is to a 1,000,000-draw reference for a 100-ad account: the reference
//! draws jointly from the exact posteriors (Beta, Gamma, log-normal) and counts each ad's wins.
//!
//!     cargo run --release -p adloop-allocator --example probability_best_accuracy [draws-per-ad]

mod support;

use adloop_allocator::{AllocatorConfig, draw, prepare, probability_of_being_best};
use rand::SeedableRng as _;
use rand_distr::{Beta, Distribution as _, Gamma, StandardNormal};

const REFERENCE_DRAWS: usize = 1_000_000;

fn main() {
    let request = support::account_like_request(100, 7);
    let mut config = AllocatorConfig::default();
    if let Some(draws_per_ad) = std::env::args().nth(1).and_then(|argument| argument.parse().ok()) {
        config.draws_per_ad = draws_per_ad;
    }
    let prepared = prepare(&request, &config).expect("valid request");
    let started = std::time::Instant::now();
    let draws: Vec<_> = prepared.ads.iter().map(|ad| draw(&prepared, ad)).collect();
    let draw_time = started.elapsed();
    let estimated = probability_of_being_best(&draws.iter().collect::<Vec<_>>());
    let estimate_time = started.elapsed();
    println!(
        "draws {:.2} ms, sweep {:.2} ms",
        draw_time.as_secs_f64() * 1000.0,
        (estimate_time - draw_time).as_secs_f64() * 1000.0
    );

    let population = prepared.population;
    let samplers: Vec<_> = prepared
        .ads
        .iter()
        .map(|ad| {
            let posterior = ad.posterior.clone();
            let beta = Beta::new(posterior.ctr_alpha, posterior.ctr_beta).expect("valid beta");
            let gamma =
                Gamma::new(posterior.conversion_rate_shape, 1.0 / posterior.conversion_rate_rate).expect("valid gamma");
            (beta, gamma, posterior)
        })
        .collect();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(2026);
    let mut wins = vec![0_u64; samplers.len()];
    for _ in 0..REFERENCE_DRAWS {
        let mut best = (f64::MIN, 0);
        for (index, (beta, gamma, posterior)) in samplers.iter().enumerate() {
            let ctr: f64 = beta.sample(&mut rng);
            let rate: f64 = gamma.sample(&mut rng);
            let normal: f64 = StandardNormal.sample(&mut rng);
            let value = (posterior.value_log_mean + posterior.value_log_sd * normal).exp();
            let roas = ctr * rate * value * 1000.0 / posterior.cpm;
            let score = posterior.fatigue_factor
                * (posterior.ctr_weight * ctr / population.ctr
                    + (1.0 - posterior.ctr_weight) * roas / population.roas());
            if score > best.0 {
                best = (score, index);
            }
        }
        wins[best.1] += 1;
    }
    let mut largest_error: f64 = 0.0;
    let mut largest_probability: f64 = 0.0;
    for (index, estimate) in estimated.iter().enumerate() {
        let reference = wins[index] as f64 / REFERENCE_DRAWS as f64;
        largest_error = largest_error.max((estimate - reference).abs());
        largest_probability = largest_probability.max(reference);
    }
    println!(
        "100 ads, {} draws per ad: largest |P(best) - reference| = {largest_error:.4} (largest P(best) {largest_probability:.3}); estimate took {:.2} ms",
        prepared.draws_per_ad,
        estimate_time.as_secs_f64() * 1000.0
    );
}
