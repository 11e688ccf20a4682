//! How long a failed attempt waits before the next: exponential in the attempt number, capped, with
//! random jitter so changes that failed together do not all retry together.

use std::time::Duration;

use rand::RngExt as _;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// The delay is multiplied by a random factor in [1 − jitter, 1 + jitter].
    pub jitter_fraction: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(15 * 60),
            jitter_fraction: 0.2,
        }
    }
}

impl Backoff {
    /// The wait after attempt `attempt` (1 for the first) failed.
    pub fn delay_after(&self, attempt: u32, rng: &mut impl rand::Rng) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let unjittered = self.base.saturating_mul(1_u32 << exponent).min(self.cap);
        let jitter = if self.jitter_fraction > 0.0 {
            rng.random_range(1.0 - self.jitter_fraction..=1.0 + self.jitter_fraction)
        } else {
            1.0
        };
        unjittered.mul_f64(jitter).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn delays_double_per_attempt_within_the_jitter_and_stop_at_the_cap() {
        let backoff = Backoff::default();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
        for attempt in 1..=12 {
            let expected = (2.0 * 2f64.powi(attempt as i32 - 1)).min(900.0);
            let delay = backoff.delay_after(attempt, &mut rng).as_secs_f64();
            assert!(
                delay >= expected * 0.8 - 1e-9 && delay <= (expected * 1.2).min(900.0) + 1e-9,
                "attempt {attempt}: {delay} s, expected about {expected} s"
            );
        }
        let no_jitter = Backoff {
            jitter_fraction: 0.0,
            ..Backoff::default()
        };
        assert_eq!(no_jitter.delay_after(3, &mut rng), Duration::from_secs(8));
        assert_eq!(no_jitter.delay_after(40, &mut rng), Duration::from_secs(900));
    }
}
