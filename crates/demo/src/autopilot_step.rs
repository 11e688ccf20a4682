//! The run's autopilot: turned on for the simulated account, then a cycle per simulated day (meta-sim's
//! clock moved a day at a time), each read from the gateway's run record and its changes followed to their
//! end in the executor.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::report::StepOutcome;
use crate::steps::ServiceEndpoints;

const ACCOUNT_ID: &str = "act_100000001";
const SIMULATED_DAYS: usize = 3;
const WAIT_LIMIT: Duration = Duration::from_secs(60);

async fn gateway_json(endpoints: &ServiceEndpoints, request: reqwest::RequestBuilder) -> Result<Value, String> {
    let response = request
        .bearer_auth(&endpoints.api_key)
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

const DAY_SECONDS: i64 = 86_400;

async fn runs(http: &reqwest::Client, endpoints: &ServiceEndpoints) -> Result<Vec<Value>, String> {
    let url = format!("{}/v1/accounts/{ACCOUNT_ID}/autopilot/runs", endpoints.gateway_url);
    let page = gateway_json(endpoints, http.get(url)).await?;
    Ok(page["runs"].as_array().cloned().unwrap_or_default())
}

/// The run of cycle `slot` once it has finished.
async fn wait_for_cycle(http: &reqwest::Client, endpoints: &ServiceEndpoints, slot: i64) -> Result<Value, String> {
    let started = Instant::now();
    loop {
        let newest = runs(http, endpoints).await?.into_iter().next();
        if let Some(run) = newest.filter(|run| {
            run["cycle_slot"].as_i64() == Some(slot) && matches!(run["state"].as_str(), Some("completed" | "failed"))
        }) {
            return Ok(run);
        }
        if started.elapsed() > WAIT_LIMIT {
            return Err(format!("cycle {slot} did not finish within {} s", WAIT_LIMIT.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn meta_sim_now_unix(http: &reqwest::Client, endpoints: &ServiceEndpoints) -> Result<i64, String> {
    let clock = crate::steps::meta_sim_clock(http, endpoints).await?;
    clock["now_unix"]
        .as_i64()
        .ok_or_else(|| "meta-sim's clock has no now_unix".to_owned())
}

/// Each change of a run at the end of its way through the executor (or as far as it got in the wait).
async fn follow_changes(
    http: &reqwest::Client,
    endpoints: &ServiceEndpoints,
    run: &Value,
) -> Result<Vec<Value>, String> {
    let ids: Vec<i64> = run["summary"]["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|change| change["ad_change_id"].as_i64())
        .collect();
    let started = Instant::now();
    loop {
        let mut changes = Vec::new();
        for id in &ids {
            let url = format!("{}/v1/ad-changes/{id}", endpoints.gateway_url);
            changes.push(gateway_json(endpoints, http.get(url)).await?);
        }
        let all_finished = changes
            .iter()
            .all(|change| matches!(change["state"].as_str(), Some("completed" | "discarded" | "cancelled")));
        if all_finished || started.elapsed() > WAIT_LIMIT {
            return Ok(changes);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn last_error(change: &Value) -> String {
    change["attempts"]
        .as_array()
        .and_then(|attempts| attempts.last())
        .and_then(|attempt| attempt["message"].as_str())
        .unwrap_or("no reason recorded")
        .to_owned()
}

async fn advance_simulated_hours(
    http: &reqwest::Client,
    endpoints: &ServiceEndpoints,
    hours: f64,
) -> Result<(), String> {
    let response = http
        .post(format!("{}/_sim/clock", endpoints.meta_sim_url))
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

async fn run_days(http: &reqwest::Client, endpoints: &ServiceEndpoints) -> Result<(Vec<String>, usize, bool), String> {
    // meta-sim's world starts afresh with every `make up`, while the gateway remembers the cycles of
    // earlier runs: move the new world past the last cycle already run, so this run's cycles are new.
    let last_slot = runs(http, endpoints)
        .await?
        .first()
        .and_then(|run| run["cycle_slot"].as_i64());
    let mut now_unix = meta_sim_now_unix(http, endpoints).await?;
    if let Some(last_slot) = last_slot.filter(|slot| *slot >= now_unix / DAY_SECONDS) {
        let seconds_to_next_slot = (last_slot + 1) * DAY_SECONDS - now_unix;
        advance_simulated_hours(http, endpoints, seconds_to_next_slot as f64 / 3600.0 + 0.01).await?;
        now_unix = meta_sim_now_unix(http, endpoints).await?;
    }
    let first_slot = now_unix / DAY_SECONDS;
    let url = format!("{}/v1/accounts/{ACCOUNT_ID}/autopilot", endpoints.gateway_url);
    let body = json!({ "enabled": true, "mode": "live", "interval_seconds": DAY_SECONDS });
    gateway_json(endpoints, http.post(url).json(&body)).await?;
    let mut lines = Vec::new();
    let mut applied_in_all = 0;
    let mut every_cycle_completed = true;
    for day in 0..SIMULATED_DAYS as i64 {
        if day > 0 {
            advance_simulated_hours(http, endpoints, 24.0).await?;
        }
        let run = &wait_for_cycle(http, endpoints, first_slot + day).await?;
        every_cycle_completed &= run["state"] == "completed";
        let changes = follow_changes(http, endpoints, run).await?;
        let applied = changes.iter().filter(|change| change["state"] == "completed").count();
        let refused: Vec<&Value> = changes.iter().filter(|change| change["state"] == "discarded").collect();
        applied_in_all += applied;
        let mut line = format!(
            "    cycle {} ({}): read {} ads, planned {}, enqueued {} → applied {}, refused {}",
            run["cycle_slot"],
            run["state"].as_str().unwrap_or("?"),
            run["ads_read"],
            run["changes_planned"],
            run["changes_enqueued"],
            applied,
            refused.len(),
        );
        if let Some(first) = refused.first() {
            line.push_str(&format!(" (e.g. {})", last_error(first)));
        }
        if let Some(error) = run["error"].as_str() {
            line.push_str(&format!("; error: {error}"));
        }
        lines.push(line);
    }
    Ok((lines, applied_in_all, every_cycle_completed))
}

pub async fn run_autopilot_for_simulated_days(http: &reqwest::Client, endpoints: &ServiceEndpoints) -> StepOutcome {
    let step_name = "autopilot (a cycle per simulated day)";
    match run_days(http, endpoints).await {
        Ok((lines, applied, every_cycle_completed)) => {
            let detail = format!(
                "{SIMULATED_DAYS} simulated days, {applied} changes applied in meta-sim\n{}",
                lines.join("\n")
            );
            if every_cycle_completed && applied > 0 {
                StepOutcome::passed(step_name, detail)
            } else {
                StepOutcome::failed(step_name, detail)
            }
        }
        Err(error) => StepOutcome::failed(step_name, error),
    }
}
