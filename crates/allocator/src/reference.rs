//! A brute-force reference for P(best) and for the budget split, to measure the allocator's estimates
//! against: joint draws from the exact posteriors (Beta, Gamma, log-normal, no approximation), counting how
//! often each ad scores highest, or splitting each joint draw by marginal return where ads have delivery
//! curves. Slow by design; tests and the accuracy measurement use it, allocations never do.

use rand::SeedableRng as _;
use rand_distr::{Beta, Distribution as _, Gamma, StandardNormal};
use rand_pcg::Pcg64Mcg;

use crate::allocate::{PreparedAllocation, curved_ads};
use crate::delivery_curve::shares_equalising_marginal_returns;
use crate::input::AllocationRequest;
use crate::posterior::AdPosterior;

/// Draws every prepared ad's score from its exact posterior, one joint draw at a time.
struct ExactScores<'a> {
    prepared: &'a PreparedAllocation,
    samplers: Vec<(Beta<f64>, Gamma<f64>, &'a AdPosterior)>,
    rng: Pcg64Mcg,
}

impl<'a> ExactScores<'a> {
    fn new(prepared: &'a PreparedAllocation, seed: u64) -> ExactScores<'a> {
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
        ExactScores {
            prepared,
            samplers,
            rng: Pcg64Mcg::seed_from_u64(seed),
        }
    }

    /// The next joint draw, every ad's score in turn.
    fn next_joint_draw(&mut self, mut each_score: impl FnMut(usize, f64)) {
        let population = self.prepared.population;
        for (index, (beta, gamma, posterior)) in self.samplers.iter().enumerate() {
            let ctr: f64 = beta.sample(&mut self.rng);
            let rate: f64 = gamma.sample(&mut self.rng);
            let normal: f64 = StandardNormal.sample(&mut self.rng);
            let value = (posterior.value_log_mean + posterior.value_log_sd * normal).exp();
            let roas = ctr * rate * value * 1000.0 / posterior.cpm;
            let score = posterior.coming_day_factor()
                * (posterior.ctr_weight * ctr / population.ctr
                    + (1.0 - posterior.ctr_weight) * roas / population.roas());
            each_score(index, score);
        }
    }
}

/// Each prepared ad's share of wins over `joint_draws` exact joint draws.
pub fn exact_probability_of_being_best(prepared: &PreparedAllocation, joint_draws: usize, seed: u64) -> Vec<f64> {
    let mut exact = ExactScores::new(prepared, seed);
    let mut wins = vec![0_u64; prepared.ads.len()];
    for _ in 0..joint_draws {
        let mut best = (f64::MIN, 0);
        exact.next_joint_draw(|index, score| {
            if score > best.0 {
                best = (score, index);
            }
        });
        wins[best.1] += 1;
    }
    wins.iter().map(|count| *count as f64 / joint_draws as f64).collect()
}

/// Joint draws split at a time by [`exact_target_shares`] (bounds its memory: ads × this many scores).
const JOINT_DRAWS_PER_BATCH: usize = 20_000;

/// Each ad's share of the total over `joint_draws` exact joint draws when every draw's budget is split to
/// equalise the ads' marginal returns (the allocator's split where ads have delivery curves; every ad
/// eligible, as [`crate::target_shares`] takes them). Exact draws are independent across ads, so pairing them
/// needs no shuffle.
pub fn exact_target_shares(
    request: &AllocationRequest,
    prepared: &PreparedAllocation,
    joint_draws: usize,
    seed: u64,
) -> Vec<f64> {
    let every_ad: Vec<usize> = (0..prepared.ads.len()).collect();
    let curves = curved_ads(request, prepared, &every_ad);
    let total = request.total_daily_budget.get() as f64;
    let mut exact = ExactScores::new(prepared, seed);
    let mut shares = vec![0.0; prepared.ads.len()];
    let mut done = 0;
    while done < joint_draws {
        let batch = JOINT_DRAWS_PER_BATCH.min(joint_draws - done);
        let mut scores = vec![Vec::with_capacity(batch); prepared.ads.len()];
        for _ in 0..batch {
            exact.next_joint_draw(|index, score| scores[index].push(score as f32));
        }
        let score_slices: Vec<&[f32]> = scores.iter().map(Vec::as_slice).collect();
        let batch_shares = shares_equalising_marginal_returns(&score_slices, &curves, total, seed ^ done as u64);
        for (share, batch_share) in shares.iter_mut().zip(batch_shares) {
            *share += batch_share * batch as f64 / joint_draws as f64;
        }
        done += batch;
    }
    shares
}
