//! A policy that lives in another process and speaks JSON lines over stdin/stdout, so any allocator in any
//! language can be compared on exactly the same simulated campaign.
//!
//! adloop-sim writes one JSON object per line to the policy's stdin:
//! - `{"type":"start","scenario":..,"seed":..,"currency":..,"decision_interval_hours":..}` once per run;
//! - `{"type":"decide","observation":{..}}` at each decision; the policy answers with one line
//!   `{"budgets":{"<ad_id>":<minor units>,..}}` (ads it leaves out get no budget);
//! - `{"type":"end"}` when the run is over; then stdin closes and the process should exit.
//!
//! The policy's stderr passes through to the terminal.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use adloop_money::MinorUnits;
use campaign_sim::{HiddenTruths, Observation, Policy, PolicyError, Scenario};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum MessageToPolicy<'a> {
    Start {
        scenario: &'a str,
        seed: u64,
        currency: &'a str,
        decision_interval_hours: u32,
    },
    Decide {
        observation: &'a Observation,
    },
    End,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionFromPolicy {
    budgets: HashMap<String, i64>,
}

pub struct ExternalPolicy {
    command_line: String,
    child: Child,
    /// `None` once closed.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

fn failed(command_line: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Failed {
        policy: format!("external ({command_line})"),
        reason: reason.into(),
    }
}

impl ExternalPolicy {
    /// Starts `command_line` with `sh -c` and announces the run.
    pub fn start(command_line: &str, scenario: &Scenario, seed: u64) -> Result<ExternalPolicy, PolicyError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command_line)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| failed(command_line, format!("cannot start: {error}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(failed(command_line, "no pipes to the process"));
        };
        let mut policy = ExternalPolicy {
            command_line: command_line.to_owned(),
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
        };
        policy.send(&MessageToPolicy::Start {
            scenario: &scenario.name,
            seed,
            currency: scenario.currency.code(),
            decision_interval_hours: scenario.decision_interval_hours,
        })?;
        Ok(policy)
    }

    fn send(&mut self, message: &MessageToPolicy<'_>) -> Result<(), PolicyError> {
        let mut line = serde_json::to_string(message).map_err(|error| failed(&self.command_line, error.to_string()))?;
        line.push('\n');
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(failed(&self.command_line, "the run has ended"));
        };
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|error| failed(&self.command_line, format!("cannot write to the process: {error}")))
    }

    fn receive_decision(&mut self) -> Result<DecisionFromPolicy, PolicyError> {
        let mut line = String::new();
        let bytes_read = self
            .stdout
            .read_line(&mut line)
            .map_err(|error| failed(&self.command_line, format!("cannot read from the process: {error}")))?;
        if bytes_read == 0 {
            return Err(failed(
                &self.command_line,
                "the process exited before answering a decision",
            ));
        }
        serde_json::from_str(&line).map_err(|error| {
            failed(
                &self.command_line,
                format!("answer is not {{\"budgets\":{{\"<ad_id>\":<minor units>}}}}: {error}"),
            )
        })
    }
}

impl Policy for ExternalPolicy {
    fn name(&self) -> &str {
        "external"
    }

    fn decide(
        &mut self,
        observation: &Observation,
        _hidden: &HiddenTruths<'_>,
    ) -> Result<Vec<MinorUnits>, PolicyError> {
        self.send(&MessageToPolicy::Decide { observation })?;
        let mut decision = self.receive_decision()?;
        let budgets = observation
            .ads
            .iter()
            .map(|ad| MinorUnits(decision.budgets.remove(&ad.identity.ad_id).unwrap_or(0)))
            .collect();
        if let Some(unknown_ad_id) = decision.budgets.keys().next() {
            return Err(failed(
                &self.command_line,
                format!("budgets.{unknown_ad_id}: no such ad in the observation"),
            ));
        }
        Ok(budgets)
    }
}

impl Drop for ExternalPolicy {
    fn drop(&mut self) {
        let _ = self.send(&MessageToPolicy::End);
        // Closing stdin tells the process to finish; wait so no zombie is left behind.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
