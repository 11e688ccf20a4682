//! Posterior draws: each ad's CTR and ROAS drawn in pairs from its posterior, all ads from the same stratified
//! standard-normal quantiles paired across components by a scrambled Sobol sequence, so the probability of
//! being best reads even, reproducible samples ([`ComponentNormals`], [`draw_scores`]).

use std::sync::{Arc, Mutex, OnceLock};

use rand::SeedableRng as _;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::population::PopulationStats;
use crate::posterior::AdPosterior;

/// Above these shape parameters a normal with the exact mean and variance is indistinguishable from the
/// Beta for our purposes.
const NORMAL_APPROXIMATION_SHAPE: f64 = 50.0;

/// Paired posterior draws of an ad's CTR and ROAS: draw i of both comes from the same CTR draw (in no
/// particular order). They do not depend on the request's population: the blend into one score, which
/// does, is applied after any cache ([`ScoreDraws::blended`]), so a poll whose population moved still hits.
/// Stored as f32: 4 bytes a value keeps a cache of many ads' draws small, and seven significant digits are
/// far finer than the posteriors' spread. Computed in f64 and rounded once, so every caller (simulator,
/// service, cache tiers) sees the same bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreDraws {
    pub ctr: Vec<f32>,
    /// Return on ad spend, in value per unit of spend.
    pub roas: Vec<f32>,
}

impl ScoreDraws {
    /// Draws of each component (0 when the two components disagree: such draws are unusable).
    pub fn draw_count(&self) -> usize {
        if self.ctr.len() == self.roas.len() {
            self.ctr.len()
        } else {
            0
        }
    }

    /// Bytes the draws occupy (for cache weighing).
    pub fn size_in_bytes(&self) -> usize {
        (self.ctr.len() + self.roas.len()) * std::mem::size_of::<f32>()
    }

    /// Each draw's blended score: projected fatigue × weekday rhythm × (w·CTR/population CTR +
    /// (1−w)·ROAS/population ROAS).
    pub fn blended(&self, posterior: &AdPosterior, population: &PopulationStats) -> Vec<f32> {
        let ctr_weight = posterior.ctr_weight;
        let coming_day_factor = posterior.coming_day_factor();
        let ctr_scale = coming_day_factor * ctr_weight / population.ctr;
        let roas_scale = coming_day_factor * (1.0 - ctr_weight) / population.roas();
        self.ctr
            .iter()
            .zip(&self.roas)
            .map(|(ctr, roas)| (ctr_scale * f64::from(*ctr) + roas_scale * f64::from(*roas)) as f32)
            .collect()
    }
}

/// The mean of some draws, in f64.
pub fn mean_of(scores: &[f32]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let sum: f64 = scores.iter().map(|score| f64::from(*score)).sum();
    Some(sum / scores.len() as f64)
}

/// Standard-normal quantiles at the midpoints of `count` equal-probability strata: the draws of every
/// posterior component are these values, shuffled (Latin hypercube sampling), so each component's marginal
/// distribution is represented exactly and only the pairing between components is random. That makes a
/// few hundred draws as precise as thousands of plain random ones.
pub fn stratified_normal_quantiles(count: usize) -> Vec<f64> {
    (0..count)
        .map(|stratum| inverse_standard_normal_cdf((stratum as f64 + 0.5) / count as f64))
        .collect()
}

/// The standard normal quantile function (Acklam's rational approximation, relative error below 1.2e-9).
pub fn inverse_standard_normal_cdf(probability: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239e0,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838e0,
        -2.549732539343734e0,
        4.374664141464968e0,
        2.938163982698783e0,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996e0,
        3.754408661907416e0,
    ];
    const LOW: f64 = 0.02425;
    let probability = probability.clamp(1e-300, 1.0 - 1e-16);
    if probability < LOW {
        let q = (-2.0 * probability.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if probability <= 1.0 - LOW {
        let q = probability - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - probability).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// A Gamma(shape, 1) quantile from a standard-normal quantile (Wilson–Hilferty: the cube root of a gamma
/// variable is nearly normal; accurate for the shapes the priors guarantee, about 2 and up).
fn gamma_from_normal(shape: f64, standard_normal: f64) -> f64 {
    let nine_shape = 9.0 * shape;
    let cube_root = 1.0 - 1.0 / nine_shape + standard_normal / nine_shape.sqrt();
    shape * cube_root.max(0.0).powi(3)
}

/// The standard-normal draws behind every ad's posterior components: each component's draws are the
/// stratified quantiles (its marginal represented exactly), and the draws are paired across components by a
/// scrambled Sobol sequence instead of independent shuffles: draw k of every component takes the stratum
/// that the k-th Sobol point's coordinate ranks in, so the pairs fill the joint space evenly too. With
/// independent shuffles (plain Latin hypercube) the random pairing was what was left of the error in
/// P(best) (about ±0.016 at 1,024 draws); scrambled Sobol points are the standard quasi-Monte Carlo remedy
/// (`sobol_burley`: Owen-scrambled, so each seed gives an independent, unbiased randomisation). Beyond the
/// sequence's 65,536 points, independent shuffles. All ads of an allocation share them: each ad's empirical
/// distribution is what P(best) reads, and sharing the pairing across ads costs nothing in accuracy while
/// saving the work per ad and component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentNormals {
    pub ctr: Vec<f64>,
    pub ctr_second: Vec<f64>,
    pub conversion_rate: Vec<f64>,
    pub value: Vec<f64>,
}

/// Normals kept by [`ComponentNormals::shared`], with their (draw count, seed).
type KeptNormals = ((usize, u64), Arc<ComponentNormals>);

/// The longest sequence `sobol_burley` provides.
const SOBOL_MAX_POINTS: usize = 1 << 16;

impl ComponentNormals {
    pub fn new(draw_count: usize, seed: u64) -> ComponentNormals {
        let quantiles = stratified_normal_quantiles(draw_count);
        if draw_count > SOBOL_MAX_POINTS {
            return ComponentNormals::shuffled(&quantiles, seed);
        }
        let scramble_seed = (seed ^ (seed >> 32)) as u32;
        // The components that multiply into ROAS take the sequence's first (most even) dimensions.
        let paired = |dimension: u32| {
            let coordinates: Vec<f32> = (0..draw_count as u32)
                .map(|index| sobol_burley::sample(index, dimension, scramble_seed))
                .collect();
            // Each draw's stratum: the rank of its coordinate. The first 2^m points put exactly one coordinate
            // in each of 2^m equal intervals, so for those counts the interval is the rank (no sort).
            let mut stratum_of_draw = vec![0; draw_count];
            if draw_count.is_power_of_two() {
                for (stratum, coordinate) in stratum_of_draw.iter_mut().zip(&coordinates) {
                    *stratum = ((f64::from(*coordinate) * draw_count as f64) as usize).min(draw_count - 1);
                }
            } else {
                let mut by_coordinate: Vec<usize> = (0..draw_count).collect();
                by_coordinate.sort_by(|first, second| {
                    coordinates[*first]
                        .total_cmp(&coordinates[*second])
                        .then(first.cmp(second))
                });
                for (stratum, draw_index) in by_coordinate.into_iter().enumerate() {
                    stratum_of_draw[draw_index] = stratum;
                }
            }
            stratum_of_draw
                .into_iter()
                .map(|stratum| quantiles[stratum])
                .collect::<Vec<f64>>()
        };
        ComponentNormals {
            ctr: paired(0),
            conversion_rate: paired(1),
            value: paired(2),
            ctr_second: paired(3),
        }
    }

    /// The normals for `draw_count` draws under `seed`, built once per process for the few combinations in
    /// use: they depend on nothing else, and most requests share the default seed and one draw count, so
    /// rebuilding them (a few hundred inverse normal CDFs and Sobol points per component) on every
    /// allocation is wasted work. Large draw counts are built fresh to keep the memo small.
    pub fn shared(draw_count: usize, seed: u64) -> Arc<ComponentNormals> {
        /// Combinations kept; the oldest leaves first.
        const KEPT: usize = 16;
        /// Above this many draws (32 KiB a component) the normals are not kept.
        const LARGEST_KEPT_DRAW_COUNT: usize = 4096;
        static BUILT: OnceLock<Mutex<Vec<KeptNormals>>> = OnceLock::new();
        if draw_count > LARGEST_KEPT_DRAW_COUNT {
            return Arc::new(ComponentNormals::new(draw_count, seed));
        }
        let built = BUILT.get_or_init(Default::default);
        let lock = || built.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (draw_count, seed);
        if let Some((_, normals)) = lock().iter().find(|(kept_key, _)| *kept_key == key) {
            return normals.clone();
        }
        let normals = Arc::new(ComponentNormals::new(draw_count, seed));
        let mut kept = lock();
        if !kept.iter().any(|(kept_key, _)| *kept_key == key) {
            if kept.len() >= KEPT {
                kept.remove(0);
            }
            kept.push((key, normals.clone()));
        }
        normals
    }

    /// Independent shuffles of the quantiles (plain Latin hypercube sampling).
    fn shuffled(quantiles: &[f64], seed: u64) -> ComponentNormals {
        use rand::seq::SliceRandom as _;
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut shuffled = || {
            let mut values = quantiles.to_vec();
            values.shuffle(&mut rng);
            values
        };
        ComponentNormals {
            ctr: shuffled(),
            ctr_second: shuffled(),
            conversion_rate: shuffled(),
            value: shuffled(),
        }
    }

    pub fn draw_count(&self) -> usize {
        self.ctr.len()
    }
}

/// Draws an ad's CTR and ROAS, paired (each ROAS draw built from the same CTR draw). `normals` sets the
/// number of draws.
pub fn draw_scores(posterior: &AdPosterior, normals: &ComponentNormals) -> ScoreDraws {
    let roas_scale = 1000.0 / posterior.cpm;
    let ctr_interval = posterior.ctr();
    let ctr_sd = (ctr_interval.upper_95 - ctr_interval.mean).max(0.0) / 1.96;
    let ctr_is_normal =
        posterior.ctr_alpha > NORMAL_APPROXIMATION_SHAPE && posterior.ctr_beta > NORMAL_APPROXIMATION_SHAPE;

    let draw_count = normals.draw_count();
    let mut ctr_draws = Vec::with_capacity(draw_count);
    let mut roas_draws = Vec::with_capacity(draw_count);
    for index in 0..draw_count {
        let ctr = if ctr_is_normal {
            (ctr_interval.mean + ctr_sd * normals.ctr[index]).clamp(0.0, 1.0)
        } else {
            // Beta(α, β) = X / (X + Y) with X ~ Gamma(α), Y ~ Gamma(β).
            let clicks_part = gamma_from_normal(posterior.ctr_alpha, normals.ctr[index]);
            let non_clicks_part = gamma_from_normal(posterior.ctr_beta, normals.ctr_second[index]);
            clicks_part / (clicks_part + non_clicks_part).max(1e-300)
        };
        let conversion_rate = gamma_from_normal(posterior.conversion_rate_shape, normals.conversion_rate[index])
            / posterior.conversion_rate_rate;
        let value = (posterior.value_log_mean + posterior.value_log_sd * normals.value[index]).exp();
        ctr_draws.push(ctr as f32);
        roas_draws.push((ctr * conversion_rate * value * roas_scale) as f32);
    }
    ScoreDraws {
        ctr: ctr_draws,
        roas: roas_draws,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_normals_are_built_once_and_equal_fresh_ones() {
        let first = ComponentNormals::shared(512, 97);
        let again = ComponentNormals::shared(512, 97);
        assert!(Arc::ptr_eq(&first, &again), "the same combination is built once");
        let fresh = ComponentNormals::new(512, 97);
        assert_eq!(first.ctr, fresh.ctr);
        assert_eq!(first.conversion_rate, fresh.conversion_rate);
        assert_eq!(first.value, fresh.value);
        assert_eq!(first.ctr_second, fresh.ctr_second);
        let other_seed = ComponentNormals::shared(512, 98);
        assert_ne!(other_seed.ctr, first.ctr, "another seed is another pairing");
    }

    #[test]
    fn every_component_keeps_each_stratum_once_whatever_the_draw_count() {
        for draw_count in [16, 256, 1000, 1024, 4096] {
            for seed in [0, 7, u64::MAX] {
                let normals = ComponentNormals::new(draw_count, seed);
                let mut expected = stratified_normal_quantiles(draw_count);
                expected.sort_by(f64::total_cmp);
                for component in [
                    &normals.ctr,
                    &normals.ctr_second,
                    &normals.conversion_rate,
                    &normals.value,
                ] {
                    let mut sorted = component.clone();
                    sorted.sort_by(f64::total_cmp);
                    assert_eq!(sorted, expected, "{draw_count} draws, seed {seed}");
                }
            }
        }
    }

    #[test]
    fn quasi_random_pairing_fills_the_joint_space_more_evenly_than_shuffles() {
        // The share of draws with both of two components above their medians is 1/4 in expectation; the
        // Sobol pairing hits it almost exactly, independent shuffles only within sampling noise.
        let draw_count = 1024;
        let both_high = |first: &[f64], second: &[f64]| {
            first
                .iter()
                .zip(second)
                .filter(|(first, second)| **first > 0.0 && **second > 0.0)
                .count() as f64
                / draw_count as f64
        };
        let mut sobol_error: f64 = 0.0;
        let mut shuffled_error: f64 = 0.0;
        for seed in 0..20 {
            let sobol = ComponentNormals::new(draw_count, seed);
            let shuffled = ComponentNormals::shuffled(&stratified_normal_quantiles(draw_count), seed);
            sobol_error = sobol_error.max((both_high(&sobol.ctr, &sobol.conversion_rate) - 0.25).abs());
            shuffled_error = shuffled_error.max((both_high(&shuffled.ctr, &shuffled.conversion_rate) - 0.25).abs());
        }
        assert!(sobol_error < 0.002, "{sobol_error}");
        assert!(shuffled_error > 4.0 * sobol_error, "{shuffled_error} vs {sobol_error}");
    }
}
