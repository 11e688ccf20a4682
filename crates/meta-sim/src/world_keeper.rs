//! Keeps the simulated world close to its clock from a thread of its own, a day of simulated time per lock
//! hold at most, so requests find it caught up and never wait on a long catch-up (an accelerated clock left
//! alone for an hour runs thousands of simulated hours). It stops when the simulation is dropped.

use std::sync::{Mutex, Weak};
use std::time::Duration;

use crate::state::SimState;

/// The most simulated hours run per hold of the lock; requests wait at most that long for it.
const HOURS_PER_LOCK_HOLD: u32 = 24;
const PAUSE_BETWEEN_ROUNDS: Duration = Duration::from_millis(100);

pub fn spawn(sim: Weak<Mutex<SimState>>) {
    std::thread::Builder::new()
        .name("meta-sim-world-keeper".into())
        .spawn(move || keep_up(sim))
        .map(|_| ())
        .unwrap_or_else(|error| tracing::warn!(%error, "meta-sim: no world keeper thread; requests catch up"));
}

fn keep_up(sim: Weak<Mutex<SimState>>) {
    loop {
        let Some(sim) = sim.upgrade() else { return };
        let caught_up = {
            let mut state = sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            state.catch_up_at_most(HOURS_PER_LOCK_HOLD)
        };
        drop(sim);
        if caught_up {
            std::thread::sleep(PAUSE_BETWEEN_ROUNDS);
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use adloop_config::EnvironmentVariables;

    use super::*;
    use crate::settings::MetaSimSettings;

    /// A simulation whose accelerated clock runs 360 simulated hours a second.
    fn simulation(clock_mode: &str) -> SimState {
        let scenario_path = format!("{}/../../scenarios/stationary-10.toml", env!("CARGO_MANIFEST_DIR"));
        let settings = MetaSimSettings::load(&EnvironmentVariables::from_pairs([
            ("ADLOOP_WORLD__SCENARIO_PATH", scenario_path.as_str()),
            ("ADLOOP_CLOCK__MODE", clock_mode),
            ("ADLOOP_CLOCK__SIMULATED_HOURS_PER_SECOND", "360"),
        ]))
        .expect("settings");
        SimState::new(settings).expect("simulation")
    }

    #[test]
    fn the_keeper_follows_an_accelerated_clock_without_any_request() {
        let sim = Arc::new(Mutex::new(simulation("accelerated")));
        spawn(Arc::downgrade(&sim));
        std::thread::sleep(Duration::from_millis(600));
        let state = sim.lock().expect("lock");
        // About 216 simulated hours have passed; the keeper, not a request, ran them.
        assert!(state.world().hour() > 100, "world hour {}", state.world().hour());
        assert!(state.hours_behind() < 150, "{} hours behind", state.hours_behind());
    }

    #[test]
    fn a_bounded_catch_up_runs_no_more_than_it_is_allowed() {
        let mut state = simulation("manual");
        state.catch_up();
        let start_hour = state.world().hour();
        state.clock.advance_hours(100.0);
        assert!(!state.catch_up_at_most(HOURS_PER_LOCK_HOLD));
        assert_eq!(state.world().hour(), start_hour + 24);
        assert_eq!(state.hours_behind(), 76);
        state.catch_up();
        assert_eq!(state.hours_behind(), 0);
    }
}
