//! The time an autopilot schedule runs on: the system clock, or meta-sim's simulated clock in development
//! (so a simulated month, on its accelerated calendar, gets a cycle per simulated day).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::settings::AutopilotClock;

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("cannot read meta-sim's clock at {url}: {message}")]
    MetaSim { url: String, message: String },
}

#[derive(Clone)]
pub enum ClockReader {
    System,
    MetaSim { clock_url: String, http: reqwest::Client },
}

impl ClockReader {
    /// `graph_base_url` is where meta-sim serves the Graph API; its clock is at `/_sim/clock` beside it.
    pub fn new(clock: AutopilotClock, graph_base_url: &str) -> ClockReader {
        match clock {
            AutopilotClock::System => ClockReader::System,
            AutopilotClock::MetaSim => ClockReader::MetaSim {
                clock_url: format!("{}/_sim/clock", graph_base_url.trim_end_matches('/')),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap_or_default(),
            },
        }
    }

    /// Now, in Unix seconds.
    pub async fn now_unix(&self) -> Result<i64, ClockError> {
        match self {
            ClockReader::System => Ok(SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs() as i64)),
            ClockReader::MetaSim { clock_url, http } => {
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
                    .as_i64()
                    .ok_or_else(|| failed("the answer has no now_unix".into()))
            }
        }
    }
}
