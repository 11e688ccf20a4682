//! Fault injection, set at start-up (`[faults]` in the settings) or at run time (`/_sim/faults`): error rates
//! per endpoint and code, latency, time-outs and dropped connections, failures of single batch operations,
//! and a throttling window. Draws come from a seeded generator so a fault schedule is reproducible.

use std::time::{Duration, Instant};

use rand::RngExt as _;
use rand::SeedableRng as _;
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Every request.
    Any,
    /// `GET` of an object.
    GraphRead,
    /// `POST` to an object (budget and status updates).
    GraphWrite,
    Insights,
    /// The whole batch request.
    Batch,
    /// Each operation inside a batch (partial batch failures).
    BatchOperation,
    Capi,
}

impl Endpoint {
    fn matches(self, endpoint: Endpoint) -> bool {
        self == Endpoint::Any || self == endpoint
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// A Graph error body with this code and subcode, worded and typed as Meta sends it (see
    /// `GraphError::injected` for the catalogue); `http_status` and `message` override Meta's.
    GraphError {
        code: u32,
        #[serde(default)]
        subcode: Option<u32>,
        #[serde(default)]
        http_status: Option<u16>,
        #[serde(default)]
        message: Option<String>,
    },
    /// A bare HTTP status (e.g. 502, 503) with a plain-text body, as a proxy in front of Meta might answer.
    HttpStatus { status: u16 },
    /// The connection is closed before a response is written.
    DropConnection,
    /// The request hangs for this long before it is answered normally (a client time-out fires first).
    Timeout { milliseconds: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub endpoint: Endpoint,
    /// Share of matching requests that get the fault, 0..=1.
    pub probability: f64,
    pub fault: Fault,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyRule {
    pub endpoint: Endpoint,
    pub min_milliseconds: u64,
    pub max_milliseconds: u64,
}

/// Every request (and batch operation) is refused with this throttling error for `seconds` from when it is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThrottleWindow {
    pub code: u32,
    #[serde(default)]
    pub subcode: Option<u32>,
    pub seconds: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSettings {
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    #[serde(default)]
    pub latency: Vec<LatencyRule>,
    #[serde(default)]
    pub throttle_window: Option<ThrottleWindow>,
    /// A batch request with more operations than this is refused whole with code 1, "Please reduce the
    /// amount of data you're asking for", as Meta answers a request too heavy to serve in time.
    #[serde(default)]
    pub reduce_data_above_operations: Option<usize>,
}

impl FaultSettings {
    pub fn validate(&self) -> Result<(), String> {
        for (index, rule) in self.rules.iter().enumerate() {
            if !(0.0..=1.0).contains(&rule.probability) {
                return Err(format!("rules[{index}].probability: must be between 0 and 1"));
            }
            if let Fault::HttpStatus { status } = rule.fault
                && !(400..=599).contains(&status)
            {
                return Err(format!(
                    "rules[{index}].fault.status: must be an HTTP error status (400-599)"
                ));
            }
        }
        for (index, latency) in self.latency.iter().enumerate() {
            if latency.min_milliseconds > latency.max_milliseconds {
                return Err(format!(
                    "latency[{index}]: min_milliseconds must not exceed max_milliseconds"
                ));
            }
        }
        Ok(())
    }
}

/// The active faults with their generator and the end of the throttling window.
#[derive(Debug)]
pub struct FaultInjector {
    settings: FaultSettings,
    rng: Pcg64Mcg,
    throttled_until: Option<Instant>,
}

impl FaultInjector {
    pub fn new(settings: FaultSettings) -> FaultInjector {
        let throttled_until = settings
            .throttle_window
            .as_ref()
            .map(|window| Instant::now() + Duration::from_secs(window.seconds));
        FaultInjector {
            rng: Pcg64Mcg::seed_from_u64(settings.seed),
            settings,
            throttled_until,
        }
    }

    pub fn settings(&self) -> &FaultSettings {
        &self.settings
    }

    /// The throttling error code and subcode while the window lasts.
    pub fn active_throttle(&self) -> Option<(u32, Option<u32>)> {
        let window = self.settings.throttle_window.as_ref()?;
        self.throttled_until
            .filter(|until| Instant::now() < *until)
            .map(|_| (window.code, window.subcode))
    }

    /// The first fault rule that fires for this request, if any.
    pub fn draw_fault(&mut self, endpoint: Endpoint) -> Option<Fault> {
        for rule in &self.settings.rules {
            if rule.endpoint.matches(endpoint) && self.rng.random_bool(rule.probability) {
                return Some(rule.fault.clone());
            }
        }
        None
    }

    /// Extra latency for this request.
    pub fn draw_latency(&mut self, endpoint: Endpoint) -> Duration {
        let mut total = Duration::ZERO;
        for rule in &self.settings.latency {
            if rule.endpoint.matches(endpoint) {
                let milliseconds = self.rng.random_range(rule.min_milliseconds..=rule.max_milliseconds);
                total += Duration::from_millis(milliseconds);
            }
        }
        total
    }
}
