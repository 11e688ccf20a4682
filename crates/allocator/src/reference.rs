//! A brute-force reference for P(best), to measure the allocator's estimate against: joint draws from the
//! exact posteriors (Beta, Gamma, log-normal, no approximation), counting how often each ad scores highest.
//! Slow by design; tests and the accuracy measurement use it, allocations never do.

use rand::SeedableRng as _;
use rand_distr::{Beta, Distribution as _, Gamma, StandardNormal};
use rand_pcg::Pcg64Mcg;

use crate::allocate::PreparedAllocation;

/// Each prepared ad's share of wins over `joint_draws` exact joint draws.
pub fn exact_probability_of_being_best(prepared: &PreparedAllocation, joint_draws: usize, seed: u64) -> Vec<f64> {
    let population = prepared.population;
    let samplers: Vec<_> = prepared
        .ads
        .iter()
        .filter_map(|ad| {
            let posterior = &ad.posterior;
            let beta = Beta::new(posterior.ctr_alpha, posterior.ctr_beta).ok()?;
            let gamma = Gamma::new(posterior.conversion_rate_shape, 1.0 / posterior.conversion_rate_rate).ok()?;
            Some((beta, gamma, posterior))
        })
        .collect();
    debug_assert_eq!(
        samplers.len(),
        prepared.ads.len(),
        "prepared posteriors are always valid"
    );
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut wins = vec![0_u64; samplers.len()];
    for _ in 0..joint_draws {
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
    wins.iter().map(|count| *count as f64 / joint_draws as f64).collect()
}
