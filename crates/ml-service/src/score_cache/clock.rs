//! The time the score cache ages entries by: monotonic real time in the service, a hand-moved clock in a
//! replay of simulated weeks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub trait CacheClock: Send + Sync {
    /// Milliseconds since an arbitrary fixed start; never decreases.
    fn now_millis(&self) -> u64;
}

pub struct MonotonicClock {
    start: Instant,
}

impl MonotonicClock {
    pub fn new() -> MonotonicClock {
        MonotonicClock { start: Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock::new()
    }
}

impl CacheClock for MonotonicClock {
    fn now_millis(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to.
#[derive(Default)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    pub fn advance_millis(&self, millis: u64) {
        self.millis.fetch_add(millis, Ordering::Relaxed);
    }
}

impl CacheClock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.millis.load(Ordering::Relaxed)
    }
}
