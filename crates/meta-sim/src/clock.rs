//! Simulated time. The world's hour 0 is the start date at 00:00 UTC. The clock runs in real time, faster than
//! real time (so the autopilot can live through 30 days in minutes), or only when told to (tests).

use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockMode {
    /// One simulated second per real second.
    Real,
    /// `simulated_hours_per_second` simulated hours per real second.
    Accelerated,
    /// Time moves only through `POST /_sim/clock {"advance_hours": n}`.
    Manual,
}

#[derive(Debug, Clone)]
pub struct SimClock {
    mode: ClockMode,
    simulated_hours_per_second: f64,
    /// Simulated seconds since hour 0 at the moment `anchor` was taken.
    simulated_seconds_at_anchor: f64,
    anchor: Instant,
}

impl SimClock {
    pub fn new(mode: ClockMode, simulated_hours_per_second: f64) -> SimClock {
        SimClock {
            mode,
            simulated_hours_per_second,
            simulated_seconds_at_anchor: 0.0,
            anchor: Instant::now(),
        }
    }

    fn seconds_per_real_second(&self) -> f64 {
        match self.mode {
            ClockMode::Real => 1.0,
            ClockMode::Accelerated => self.simulated_hours_per_second * 3600.0,
            ClockMode::Manual => 0.0,
        }
    }

    /// Simulated seconds since hour 0.
    pub fn now_seconds(&self) -> f64 {
        self.simulated_seconds_at_anchor + self.anchor.elapsed().as_secs_f64() * self.seconds_per_real_second()
    }

    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    pub fn simulated_hours_per_second(&self) -> f64 {
        self.simulated_hours_per_second
    }

    /// Changes mode or speed from now on, without jumping.
    pub fn set_mode(&mut self, mode: ClockMode, simulated_hours_per_second: f64) {
        self.simulated_seconds_at_anchor = self.now_seconds();
        self.anchor = Instant::now();
        self.mode = mode;
        self.simulated_hours_per_second = simulated_hours_per_second;
    }

    /// Jumps forward (never backward).
    pub fn advance_hours(&mut self, hours: f64) {
        self.simulated_seconds_at_anchor = self.now_seconds() + hours.max(0.0) * 3600.0;
        self.anchor = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let mut clock = SimClock::new(ClockMode::Manual, 0.0);
        assert_eq!(clock.now_seconds(), 0.0);
        clock.advance_hours(2.5);
        assert_eq!(clock.now_seconds(), 9000.0);
        clock.advance_hours(-1.0);
        assert_eq!(clock.now_seconds(), 9000.0, "the clock never goes back");
    }
}
