//! What the run asks of the gateway's autopilot and of meta-sim's clock: turn an account's autopilot on or
//! off, wait for a cycle to finish, follow its changes through the executor, move the simulated clock.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A day of the autopilot's (simulated) clock: the interval the run gives every account.
pub const DAY_SECONDS: i64 = 86_400;
/// How long the run waits for a cycle, or for a cycle's changes, before it says so.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// The gateway as one tenant sees it.
pub struct GatewayTenant<'a> {
    pub http: &'a reqwest::Client,
    pub gateway_url: &'a str,
    pub api_key: &'a str,
}

impl GatewayTenant<'_> {
    /// The JSON answer to `request`, sent with the tenant's key; an error status is an error naming it.
    pub(crate) async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, String> {
        let response = request
            .bearer_auth(self.api_key)
            .send()
            .await
            .map_err(crate::request_failure)?;
        let status = response.status();
        let body: Value = response.json().await.map_err(crate::request_failure)?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("the gateway answered {status}: {body}"))
        }
    }

    /// Turns the account's autopilot on (live, a cycle a day) or off.
    pub async fn set_autopilot(&self, account_id: &str, enabled: bool) -> Result<(), String> {
        let url = format!("{}/v1/accounts/{account_id}/autopilot", self.gateway_url);
        let body = json!({ "enabled": enabled, "mode": "live", "interval_seconds": DAY_SECONDS });
        self.json(self.http.post(url).json(&body)).await.map(|_| ())
    }

    /// ml-service's instant learner as the gateway shows it (`GET /v1/learner`).
    pub async fn learner(&self) -> Result<Value, String> {
        self.json(self.http.get(format!("{}/v1/learner", self.gateway_url)))
            .await
    }

    /// The account's runs, newest first.
    pub async fn runs(&self, account_id: &str) -> Result<Vec<Value>, String> {
        let url = format!("{}/v1/accounts/{account_id}/autopilot/runs", self.gateway_url);
        let page = self.json(self.http.get(url)).await?;
        Ok(page["runs"].as_array().cloned().unwrap_or_default())
    }

    /// The account's run of cycle `slot` once it has finished.
    pub async fn wait_for_cycle(&self, account_id: &str, slot: i64) -> Result<Value, String> {
        let started = Instant::now();
        loop {
            let newest = self.runs(account_id).await?.into_iter().next();
            if let Some(run) = newest.filter(|run| {
                run["cycle_slot"].as_i64() == Some(slot)
                    && matches!(run["state"].as_str(), Some("completed" | "failed"))
            }) {
                return Ok(run);
            }
            if started.elapsed() > WAIT_LIMIT {
                return Err(format!(
                    "{account_id}: cycle {slot} did not finish within {} s",
                    WAIT_LIMIT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Each change of a run at the end of its way through the executor (or as far as it got in the wait).
    pub async fn follow_changes(&self, run: &Value) -> Result<Vec<Value>, String> {
        let ids: Vec<i64> = run["summary"]["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|change| change["ad_change_id"].as_i64())
            .collect();
        self.wait_for_changes(&ids, Duration::from_millis(100)).await
    }

    /// The changes `ids`, read every `poll_interval` until each is finished (completed, discarded or
    /// cancelled) or the wait limit has passed: as far as they got.
    pub async fn wait_for_changes(&self, ids: &[i64], poll_interval: Duration) -> Result<Vec<Value>, String> {
        let started = Instant::now();
        loop {
            let mut changes = Vec::with_capacity(ids.len());
            for id in ids {
                let url = format!("{}/v1/ad-changes/{id}", self.gateway_url);
                changes.push(self.json(self.http.get(url)).await?);
            }
            if changes.iter().all(is_finished) || started.elapsed() > WAIT_LIMIT {
                return Ok(changes);
            }
            tokio::time::sleep(poll_interval).await;
        }
    }
}

/// Whether a change has reached the end of its way through the executor.
pub fn is_finished(change: &Value) -> bool {
    matches!(change["state"].as_str(), Some("completed" | "discarded" | "cancelled"))
}

/// Why the executor refused or dropped a change: its last attempt's message.
pub fn last_error(change: &Value) -> String {
    change["attempts"]
        .as_array()
        .and_then(|attempts| attempts.last())
        .and_then(|attempt| attempt["message"].as_str())
        .unwrap_or("no reason recorded")
        .to_owned()
}

/// The guardrail a refusal names (`guardrail "max_change_per_step": ...`), or `None` for other failures.
pub fn refusing_guardrail(change: &Value) -> Option<String> {
    let message = last_error(change);
    let rule = message.strip_prefix("guardrail \"")?;
    Some(rule.split('"').next()?.to_owned())
}

pub async fn meta_sim_now_unix(http: &reqwest::Client, meta_sim_url: &str) -> Result<i64, String> {
    let clock = meta_sim_get(http, meta_sim_url, "_sim/clock").await?;
    clock["now_unix"]
        .as_i64()
        .ok_or_else(|| "meta-sim's clock has no now_unix".to_owned())
}

/// One of meta-sim's inspection pages (`_sim/clock`, `_sim/state`).
pub async fn meta_sim_get(http: &reqwest::Client, meta_sim_url: &str, path: &str) -> Result<Value, String> {
    http.get(format!("{meta_sim_url}/{path}"))
        .send()
        .await
        .map_err(crate::request_failure)?
        .json()
        .await
        .map_err(crate::request_failure)
}

pub async fn advance_simulated_hours(http: &reqwest::Client, meta_sim_url: &str, hours: f64) -> Result<(), String> {
    let response = http
        .post(format!("{meta_sim_url}/_sim/clock"))
        .json(&json!({ "advance_hours": hours }))
        .send()
        .await
        .map_err(crate::request_failure)?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("meta-sim's clock answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_its_guardrail_and_other_failures_do_not() {
        let refused =
            json!({"attempts": [{"message": "guardrail \"max_change_per_step\": 100 → 200 is a 100% change"}]});
        assert_eq!(refusing_guardrail(&refused).as_deref(), Some("max_change_per_step"));
        let failed = json!({"attempts": [{"message": "(#100) Invalid parameter"}]});
        assert_eq!(refusing_guardrail(&failed), None);
        assert_eq!(last_error(&json!({})), "no reason recorded");
    }
}
