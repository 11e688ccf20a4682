//! Optional random delay added to every change the API enqueues, as the original system had (3–18 s), so
//! changes computed together do not reach Meta in one burst. Off by default: adloop's pacing and batch
//! planning already spread writes, and a delay only slows a change down.

use rand::RngExt as _;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnqueueJitter {
    pub min_seconds: f64,
    pub max_seconds: f64,
}

/// The longest jitter adloop accepts: an hour.
const MAX_JITTER_SECONDS: f64 = 3600.0;

impl EnqueueJitter {
    /// The error names the setting (under `executor.enqueue_jitter.`) and the rule.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(0.0..=MAX_JITTER_SECONDS).contains(&self.min_seconds) {
            return Err(("min_seconds", "must be between 0 and 3600"));
        }
        if !(self.min_seconds..=MAX_JITTER_SECONDS).contains(&self.max_seconds) {
            return Err(("max_seconds", "must be between min_seconds and 3600"));
        }
        Ok(())
    }

    /// A delay drawn uniformly from [min, max] (0 when jitter is off).
    pub fn draw(&self, rng: &mut impl rand::Rng) -> f64 {
        if self.max_seconds <= 0.0 {
            return 0.0;
        }
        rng.random_range(self.min_seconds..=self.max_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_off_means_no_delay() {
        let mut rng = rand::rng();
        assert_eq!(EnqueueJitter::default().draw(&mut rng), 0.0);
        let jitter = EnqueueJitter {
            min_seconds: 3.0,
            max_seconds: 18.0,
        };
        let draws: Vec<f64> = (0..1000).map(|_| jitter.draw(&mut rng)).collect();
        assert!(draws.iter().all(|draw| (3.0..=18.0).contains(draw)));
        assert!(draws.iter().any(|draw| *draw < 6.0) && draws.iter().any(|draw| *draw > 15.0));
        let inverted = EnqueueJitter {
            min_seconds: 10.0,
            max_seconds: 5.0,
        };
        assert_eq!(inverted.validate().unwrap_err().0, "max_seconds");
    }
}
