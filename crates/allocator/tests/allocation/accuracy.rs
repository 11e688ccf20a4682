//! P(best) from the Rao-Blackwellised sweep against a large reference: joint draws from the exact posteriors
//! (Beta, Gamma, log-normal; no normal approximation), counting how often each ad wins.

use adloop_allocator::{AllocatorConfig, build_posterior, draw, population_stats, prepare, probability_of_being_best};
use rand::SeedableRng as _;
use rand_distr::{Beta, Distribution as _, Gamma, StandardNormal};

use crate::fixtures::*;

const REFERENCE_JOINT_DRAWS: usize = 200_000;

#[test]
fn probability_of_best_is_within_0_01_of_an_exact_reference() {
    // Near-tied ads with few conversions: where approximations would show.
    let ads: Vec<_> = (0..8)
        .map(|index| {
            let conversions = 3 + index as u64;
            ad(
                &format!("ad-{index}"),
                20_000 + 1_000 * index as u64,
                200 + 5 * index as u64,
                conversions,
                20_000,
                5_000 * conversions as i64,
                96.0,
            )
        })
        .collect();
    let request = request(ads, 80_000);
    let config = AllocatorConfig::default();
    let prepared = prepare(&request, &config).unwrap();
    let draws: Vec<_> = prepared.ads.iter().map(|ad| draw(&prepared, ad)).collect();
    let estimated = probability_of_being_best(&draws.iter().collect::<Vec<_>>());

    // The reference uses the same quantised posteriors, drawn exactly.
    let population = prepared.population;
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(99);
    let samplers: Vec<_> = prepared
        .ads
        .iter()
        .map(|prepared_ad| {
            let posterior = &prepared_ad.posterior;
            (
                Beta::new(posterior.ctr_alpha, posterior.ctr_beta).unwrap(),
                Gamma::new(posterior.conversion_rate_shape, 1.0 / posterior.conversion_rate_rate).unwrap(),
                posterior.clone(),
            )
        })
        .collect();
    let mut wins = vec![0_usize; samplers.len()];
    for _ in 0..REFERENCE_JOINT_DRAWS {
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
    for (index, estimate) in estimated.iter().enumerate() {
        let reference = wins[index] as f64 / REFERENCE_JOINT_DRAWS as f64;
        assert!(
            (estimate - reference).abs() < 0.01,
            "ad {index}: {estimate:.4} vs reference {reference:.4}"
        );
    }
    // The unquantised posterior is within quantisation of the one drawn from.
    let raw = build_posterior(
        &request.ads[0],
        request.currency,
        &population_stats(&request.ads, request.currency, &config),
        &config,
    );
    assert!((raw.ctr_alpha - prepared.ads[0].posterior.ctr_alpha).abs() / raw.ctr_alpha < 0.01);
}
