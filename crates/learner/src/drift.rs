//! Page-Hinkley test for a rise in the mean of a stream (here: a head's loss per trial).
//!
//! It sums each observation's excess over the running mean (less a tolerance) and fires when that sum has
//! climbed more than a threshold above its lowest point: a sustained rise, not one bad event.

use serde::{Deserialize, Serialize};

use crate::config::DriftConfig;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageHinkley {
    observations: u64,
    mean: f64,
    cumulative_excess: f64,
    lowest_cumulative_excess: f64,
}

impl PageHinkley {
    /// Adds one observation; true when it completes a detected rise (the test then starts afresh).
    pub fn observe(&mut self, value: f64, config: &DriftConfig) -> bool {
        if !value.is_finite() {
            return false;
        }
        self.observations += 1;
        self.mean += (value - self.mean) / self.observations as f64;
        self.cumulative_excess += value - self.mean - config.tolerance;
        self.lowest_cumulative_excess = self.lowest_cumulative_excess.min(self.cumulative_excess);
        let rise = self.cumulative_excess - self.lowest_cumulative_excess;
        if self.observations >= config.min_observations && rise > config.threshold {
            *self = PageHinkley::default();
            return true;
        }
        false
    }

    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// How far the cumulative excess has risen above its lowest point (fires above the threshold).
    pub fn rise(&self) -> f64 {
        self.cumulative_excess - self.lowest_cumulative_excess
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DriftConfig {
        DriftConfig::default()
    }

    #[test]
    fn a_steady_stream_never_fires_and_a_lasting_rise_does() {
        let mut test = PageHinkley::default();
        // A deterministic wobble around 0.3 nats.
        for step in 0..20_000 {
            let wobble = ((step * 7919) % 100) as f64 / 100.0 - 0.5;
            assert!(
                !test.observe(0.3 + 0.4 * wobble, &config()),
                "false alarm at step {step}"
            );
        }
        let fired_after = (1..=1_000).find(|_| test.observe(1.3, &config()));
        let fired_after = fired_after.expect("a rise of 1 nat per observation must be detected");
        assert!(fired_after <= 100, "detected only after {fired_after} observations");
    }

    #[test]
    fn a_falling_loss_is_not_drift() {
        let mut test = PageHinkley::default();
        for step in 0..10_000 {
            assert!(!test.observe(2.0 / (1.0 + step as f64 / 100.0), &config()));
        }
    }
}
