//! A policy that lives in another process and speaks JSON lines over stdin/stdout, so any allocator in any
//! language can be compared on exactly the same simulated campaign.
//!
//! adloop-sim writes one JSON object per line to the policy's stdin:
//! - `{"type":"start","scenario":..,"seed":..,"currency":..,"decision_interval_hours":..}` once per run;
//! - `{"type":"decide","observation":{..}}` at each decision; the policy answers with one line
//!   `{"budgets":{"<ad_id>":<minor units>,..}}` (ads it leaves out get no budget), optionally with the
//!   observation's `"hour"`, so an extra line printed for an earlier decision is caught at once;
//! - `{"type":"end"}` when the run is over; then stdin closes and the process should exit.
//!
//! The policy's stderr passes through to the terminal (its logs belong there). A policy that does not answer a
//! decision within its time-out (`--policy-timeout-seconds`) is stopped, and the error names the hour; one
//! that exits, prints something other than an answer, or an answer longer than 16 MiB is reported with what
//! it printed.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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
    /// The hour of the decision answered, if the policy says it: an answer for another hour means the policy
    /// printed more than one line for an earlier decision, and every later answer would be read for the wrong
    /// hour.
    #[serde(default)]
    hour: Option<u32>,
}

pub struct ExternalPolicy {
    command_line: String,
    child: Child,
    /// `None` once closed.
    stdin: Option<ChildStdin>,
    /// The policy's stdout, line by line, read by a thread of its own so a silent policy can time out (`Err`:
    /// a line too long to be an answer, after which nothing more is read).
    stdout_lines: mpsc::Receiver<Result<String, String>>,
    decision_timeout: Duration,
}

/// The longest answer line read: 2,000 ads' budgets take about 100 KiB, so anything near this is not an
/// answer, and reading it whole would only hold memory.
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// Lines read ahead of the decision that asks for them; beyond it the policy's writes wait.
const LINES_READ_AHEAD: usize = 4;

/// At most this much of what a broken policy printed goes into the error.
const PRINTED_EXCERPT_CHARACTERS: usize = 300;

fn excerpt(printed: &str) -> String {
    let trimmed = printed.trim();
    if trimmed.is_empty() {
        return "nothing".into();
    }
    let mut excerpt: String = trimmed.chars().take(PRINTED_EXCERPT_CHARACTERS).collect();
    if trimmed.chars().count() > PRINTED_EXCERPT_CHARACTERS {
        excerpt.push('…');
    }
    format!("{excerpt:?}")
}

fn failed(command_line: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Failed {
        policy: format!("external ({command_line})"),
        reason: reason.into(),
    }
}

impl ExternalPolicy {
    /// Starts `command_line` with `sh -c` and announces the run; each decision must be answered within
    /// `decision_timeout`.
    pub fn start(
        command_line: &str,
        scenario: &Scenario,
        seed: u64,
        decision_timeout: Duration,
    ) -> Result<ExternalPolicy, PolicyError> {
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
        let (line_sender, stdout_lines) = mpsc::sync_channel(LINES_READ_AHEAD);
        std::thread::spawn(move || read_lines(BufReader::new(stdout), &line_sender));
        let mut policy = ExternalPolicy {
            command_line: command_line.to_owned(),
            child,
            stdin: Some(stdin),
            stdout_lines,
            decision_timeout,
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
        if stdin.write_all(line.as_bytes()).and_then(|()| stdin.flush()).is_err() {
            let reason = self.exited_having_printed();
            return Err(failed(&self.command_line, reason));
        }
        Ok(())
    }

    /// Why the process stopped listening: its exit status and what it printed that was not an answer.
    fn exited_having_printed(&mut self) -> String {
        let exit = match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(error) => format!("an unknown status ({error})"),
        };
        let printed: Vec<String> = self
            .stdout_lines
            .try_iter()
            .map(|line| line.unwrap_or_else(|too_long| too_long))
            .collect();
        format!(
            "the process exited ({exit}) instead of reading the next message; it printed {}",
            excerpt(&printed.join("\n"))
        )
    }

    fn receive_decision(&mut self, hour: u32) -> Result<DecisionFromPolicy, PolicyError> {
        let line = match self.stdout_lines.recv_timeout(self.decision_timeout) {
            Ok(Ok(line)) => line,
            Ok(Err(too_long)) => {
                let _ = self.child.kill();
                return Err(failed(
                    &self.command_line,
                    format!("its answer to the decision at hour {hour} is {too_long}"),
                ));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                return Err(failed(
                    &self.command_line,
                    format!(
                        "no answer to the decision at hour {hour} within {} s (the process was stopped; raise \
                         --policy-timeout-seconds if it needs longer)",
                        self.decision_timeout.as_secs_f64()
                    ),
                ));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(failed(
                    &self.command_line,
                    format!("the process exited before answering the decision at hour {hour}"),
                ));
            }
        };
        serde_json::from_str(&line).map_err(|error| {
            failed(
                &self.command_line,
                format!(
                    "its answer to the decision at hour {hour} is not {{\"budgets\":{{\"<ad_id>\":<minor units>}}}} \
                     ({error}); it printed {}",
                    excerpt(&line)
                ),
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
        let mut decision = self.receive_decision(observation.hour)?;
        if let Some(answered_hour) = decision.hour.filter(|hour| *hour != observation.hour) {
            return Err(failed(
                &self.command_line,
                format!(
                    "its answer to the decision at hour {} is for hour {answered_hour}: it printed more than one \
                     line for an earlier decision (one answer per decision on stdout; logs go to stderr)",
                    observation.hour
                ),
            ));
        }
        let budgets = observation
            .ads
            .iter()
            .map(|ad| MinorUnits(decision.budgets.remove(&ad.identity.ad_id).unwrap_or(0)))
            .collect();
        if let Some(unknown_ad_id) = decision.budgets.keys().next() {
            return Err(failed(
                &self.command_line,
                format!(
                    "budgets.{unknown_ad_id} in the answer at hour {}: no such ad in the observation",
                    observation.hour
                ),
            ));
        }
        Ok(budgets)
    }
}

/// Sends the policy's stdout line by line until it closes, the receiver goes, or a line exceeds
/// [`MAX_ANSWER_BYTES`] (reported once, then reading stops).
fn read_lines(mut stdout: impl std::io::BufRead, line_sender: &mpsc::SyncSender<Result<String, String>>) {
    loop {
        let mut line = Vec::new();
        match (&mut stdout).take(MAX_ANSWER_BYTES + 1).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() as u64 > MAX_ANSWER_BYTES {
            let _ = line_sender.send(Err(format!(
                "longer than {} MiB, so not an answer",
                MAX_ANSWER_BYTES / (1024 * 1024)
            )));
            return;
        }
        while line.last().is_some_and(|byte| *byte == b'\n' || *byte == b'\r') {
            line.pop();
        }
        if line_sender
            .send(Ok(String::from_utf8_lossy(&line).into_owned()))
            .is_err()
        {
            return;
        }
    }
}

impl Drop for ExternalPolicy {
    fn drop(&mut self) {
        let _ = self.send(&MessageToPolicy::End);
        // Closing stdin tells the process to finish; wait so no zombie is left behind. Its stdout is no longer
        // read either (the reader stops at its next line), so a policy still printing cannot block on a full
        // pipe and never exit.
        drop(self.stdin.take());
        let (_, nothing_more) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.stdout_lines, nothing_more));
        let _ = self.child.wait();
    }
}
