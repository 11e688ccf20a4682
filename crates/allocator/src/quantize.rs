//! Canonical, quantised posteriors: the allocator draws from the quantised posterior, so two ad states that
//! quantise alike produce identical draws (a cache may share them), and any change that would alter the draws
//! changes the key (a cache can never serve a stale score).

use crate::population::PopulationStats;
use crate::posterior::AdPosterior;

/// Relative precision of an ad's quantised posterior parameters: 2^-5 ≈ 3%, well inside their posterior
/// uncertainty, so quantising changes no decision while polls minutes apart share an entry.
const POSTERIOR_MANTISSA_BITS: i32 = 5;
/// Second-order parameters (the fatigue projection, the spread of the mean conversion value) move with every
/// new conversion or click but change scores little: 2^-4 ≈ 6%.
const SECOND_ORDER_MANTISSA_BITS: i32 = 4;
/// The population's statistics are scales and weak priors shared by every ad: a change flips every key at
/// once, so they are quantised most coarsely (2^-3 ≈ 12%).
const POPULATION_MANTISSA_BITS: i32 = 3;

/// Rounds to the posterior precision; zero, negatives and non-finite values pass unchanged.
pub fn quantize(value: f64) -> f64 {
    quantize_to_bits(value, POSTERIOR_MANTISSA_BITS)
}

fn quantize_to_bits(value: f64, mantissa_bits: i32) -> f64 {
    if !(value.is_finite() && value > 0.0) {
        return value;
    }
    let exponent = value.log2().floor() as i32;
    let step = 2f64.powi(exponent - mantissa_bits);
    (value / step).round() * step
}

pub fn quantize_posterior(posterior: &AdPosterior) -> AdPosterior {
    AdPosterior {
        ctr_alpha: quantize(posterior.ctr_alpha),
        ctr_beta: quantize(posterior.ctr_beta),
        conversion_rate_shape: quantize(posterior.conversion_rate_shape),
        conversion_rate_rate: quantize(posterior.conversion_rate_rate),
        value_log_mean: (posterior.value_log_mean * 32.0).round() / 32.0,
        value_log_sd: quantize_to_bits(posterior.value_log_sd, SECOND_ORDER_MANTISSA_BITS),
        cpm: quantize(posterior.cpm),
        ctr_weight: (posterior.ctr_weight * 256.0).round() / 256.0,
        fatigue_factor: quantize_to_bits(posterior.fatigue_factor, SECOND_ORDER_MANTISSA_BITS),
        weekday_factor: quantize_to_bits(posterior.weekday_factor, SECOND_ORDER_MANTISSA_BITS),
        prior_source: posterior.prior_source.clone(),
        learned_conversion_link: posterior.learned_conversion_link,
    }
}

pub fn quantize_population(population: &PopulationStats) -> PopulationStats {
    let coarse = |value: f64| quantize_to_bits(value, POPULATION_MANTISSA_BITS);
    PopulationStats {
        ctr: coarse(population.ctr),
        conversions_per_click: coarse(population.conversions_per_click),
        value_per_conversion: coarse(population.value_per_conversion),
        cpm: coarse(population.cpm),
        conversion_prior_conversions: coarse(population.conversion_prior_conversions),
        learned_conversion_prior_conversions: coarse(population.learned_conversion_prior_conversions),
        learned_ctr_prior_impressions: coarse(population.learned_ctr_prior_impressions),
        conversion_ctr_link: population.conversion_ctr_link.signum() * coarse(population.conversion_ctr_link.abs()),
        conversion_ctr_link_sd: coarse(population.conversion_ctr_link_sd),
        recent_maturity_factor: coarse(population.recent_maturity_factor),
        conversion_value_log_sd: coarse(population.conversion_value_log_sd),
    }
}

/// The cache key of an ad's draws: every input of `draw_scores`, written exactly (quantised values print
/// exactly with `{:e}`), plus the model version. The blend weight, fatigue and the population are not
/// inputs of the draws (they are applied after the cache), so they are not in the key.
pub fn draws_key(posterior: &AdPosterior, draw_count: usize, seed: u64) -> String {
    format!(
        "{}|{draw_count}|{seed}|{:e}|{:e}|{:e}|{:e}|{:e}|{:e}|{:e}",
        crate::MODEL_VERSION,
        posterior.ctr_alpha,
        posterior.ctr_beta,
        posterior.conversion_rate_shape,
        posterior.conversion_rate_rate,
        posterior.value_log_mean,
        posterior.value_log_sd,
        posterior.cpm,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantisation_keeps_about_3_percent_precision_and_is_idempotent() {
        for value in [0.001234, 1.0, 3.3, 1234.5, 9.87e6] {
            let quantized = quantize(value);
            assert!(
                (quantized - value).abs() / value <= 2f64.powi(-6) + 1e-12,
                "{value} → {quantized}"
            );
            assert_eq!(quantize(quantized), quantized);
        }
        assert_eq!(quantize(0.0), 0.0);
    }
}
