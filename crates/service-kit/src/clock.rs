//! The time a service's schedules, windows and event-time checks run on (`[clock] source`): the system
//! clock in production, or meta-sim's simulated clock in development, so a simulated month — days passing
//! in seconds — gets an autopilot cycle per simulated day, guardrails that count simulated hours, and a relay
//! that judges event times by the simulated calendar.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// Where the time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockSource {
    /// The machine's UTC clock (production, against Meta).
    System,
    /// meta-sim's simulated clock (`/_sim/clock` beside the Meta APIs the service calls). It must not run
    /// slower than real time while changes wait on it (meta-sim's accelerated or manual clock, moved forward
    /// by the run).
    MetaSim,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSettings {
    pub source: ClockSource,
}

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("cannot read meta-sim's clock at {url}: {message}")]
    MetaSim { url: String, message: String },
}

/// How long a change held on a simulated clock waits (in real time) before it is looked at again: simulated
/// time may pass much faster than real time, so "an hour from now" may come in seconds.
const SIMULATED_CLOCK_RECHECK: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub enum Clock {
    System,
    MetaSim { clock_url: String, http: reqwest::Client },
}

impl Clock {
    /// `meta_sim_base_url` is where meta-sim serves the Graph and Conversions APIs; its clock is at
    /// `/_sim/clock` beside them.
    pub fn new(source: ClockSource, meta_sim_base_url: &str) -> Clock {
        match source {
            ClockSource::System => Clock::System,
            ClockSource::MetaSim => Clock::MetaSim {
                clock_url: format!("{}/_sim/clock", meta_sim_base_url.trim_end_matches('/')),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap_or_default(),
            },
        }
    }

    pub fn is_simulated(&self) -> bool {
        matches!(self, Clock::MetaSim { .. })
    }

    /// Now, in Unix seconds.
    pub async fn now_unix(&self) -> Result<f64, ClockError> {
        match self {
            Clock::System => Ok(system_now_unix()),
            Clock::MetaSim { clock_url, http } => {
                let failed = |message: String| ClockError::MetaSim {
                    url: clock_url.clone(),
                    message,
                };
                let report: serde_json::Value = http
                    .get(clock_url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|error| failed(error.without_url().to_string()))?
                    .json()
                    .await
                    .map_err(|error| failed(error.without_url().to_string()))?;
                report["now_unix"]
                    .as_f64()
                    .ok_or_else(|| failed("the answer has no now_unix".into()))
            }
        }
    }

    /// The real time to wait for `clock_seconds` of this clock to pass: the same on the system clock; on a
    /// simulated one at most `SIMULATED_CLOCK_RECHECK`, then the waiting change is looked at again.
    pub fn real_wait(&self, clock_seconds: f64) -> Duration {
        let wait = Duration::from_secs_f64(clock_seconds.max(0.0));
        if self.is_simulated() {
            wait.min(SIMULATED_CLOCK_RECHECK)
        } else {
            wait
        }
    }
}

fn system_now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}
