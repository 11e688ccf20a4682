//! The run's executor step: the allocation's budgets enqueued through the gateway's ad-change API, applied by
//! the safe executor to meta-sim in Graph batches, then read back from meta-sim with the audit trail.

use std::time::{Duration, Instant};

use adloop_money::{GraphAmount, MinorUnits, Money};
use serde_json::{Value, json};

use crate::allocation_step::ObtainedAllocation;
use crate::autopilot_client::is_finished;
use crate::report::StepOutcome;
use crate::steps::ServiceEndpoints;

const ACCOUNT_ID: &str = "act_100000001";

pub async fn apply_through_executor(
    http: &reqwest::Client,
    endpoints: &ServiceEndpoints,
    allocation: Option<&ObtainedAllocation>,
) -> StepOutcome {
    let step_name = "executor (gateway → meta-sim)";
    let Some(allocation) = allocation else {
        return StepOutcome::failed(step_name, "no allocation to apply".to_owned());
    };
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let changes: Vec<Value> = allocation
        .recommendations
        .iter()
        .filter(|entry| entry["recommended_daily_budget"] != entry["current_daily_budget"])
        .map(|entry| {
            json!({
                "ad_account_id": ACCOUNT_ID,
                "campaign_id": entry["campaign_id"],
                "ad_set_id": entry["ad_set_id"],
                "kind": "budget_set",
                "currency": allocation.currency.code(),
                "amount": entry["recommended_daily_budget"],
                "old_budget": entry["current_daily_budget"],
                "reason": entry["reason"],
                "confidence": entry["probability_best"].as_f64().unwrap_or(0.0).clamp(0.0, 1.0),
                "source": "make run",
                "idempotency_key": format!("make-run-{run_id}-{}", entry["ad_set_id"].as_str().unwrap_or("?")),
            })
        })
        .collect();
    if changes.is_empty() {
        return StepOutcome::passed(step_name, "the allocation changes no budget".to_owned());
    }
    let enqueued = match http
        .post(format!("{}/v1/ad-changes", endpoints.gateway_url))
        .bearer_auth(&endpoints.api_key)
        .json(&json!({ "changes": changes }))
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => response.json::<Value>().await.unwrap_or_default(),
        Ok(response) => return StepOutcome::failed(step_name, format!("the gateway answered {}", response.status())),
        Err(error) => return StepOutcome::failed(step_name, crate::request_failure(error)),
    };
    let ids: Vec<i64> = enqueued["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|change| change["id"].as_i64())
        .collect();
    let started = Instant::now();
    let mut states = Vec::new();
    while started.elapsed() < Duration::from_secs(60) {
        states.clear();
        for id in &ids {
            let change: Value = match http
                .get(format!("{}/v1/ad-changes/{id}", endpoints.gateway_url))
                .bearer_auth(&endpoints.api_key)
                .send()
                .await
            {
                Ok(response) => response.json().await.unwrap_or_default(),
                Err(error) => return StepOutcome::failed(step_name, crate::request_failure(error)),
            };
            states.push(change);
        }
        let finished = states
            .iter()
            .all(|change| is_finished(change) || held_by_guardrail(change).is_some());
        if finished {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let completed: Vec<&Value> = states.iter().filter(|change| change["state"] == "completed").collect();
    let held: Vec<String> = states.iter().filter_map(held_by_guardrail).collect();
    let mut lines = vec![format!(
        "{} budget changes enqueued, {} applied by the executor in {:.1} s, {} held by a guardrail, {} refused or unfinished",
        ids.len(),
        completed.len(),
        started.elapsed().as_secs_f64(),
        held.len(),
        ids.len() - completed.len() - held.len()
    )];
    if let Some(rule) = held.first() {
        lines.push(format!(
            "    held by {rule}: they wait for the guardrail's window (an earlier run within the hour used it)"
        ));
    }
    let mut all_match = true;
    for change in completed.iter().take(3) {
        let ad_set_id = change["ad_set_id"].as_str().unwrap_or_default();
        let wanted = change["amount"].as_i64().unwrap_or(0);
        let in_meta_sim = read_budget(http, endpoints, ad_set_id, allocation).await;
        all_match &= in_meta_sim == Some(wanted);
        lines.push(format!(
            "    ad set {ad_set_id}: meta-sim now {}, as requested: {}",
            in_meta_sim.map_or("?".to_owned(), |budget| {
                Money {
                    amount: MinorUnits(budget),
                    currency: allocation.currency,
                }
                .to_string()
            }),
            in_meta_sim == Some(wanted)
        ));
    }
    if let Some(first) = completed.first() {
        let object = first["ad_set_id"].as_str().unwrap_or_default();
        let audit: Value = match http
            .get(format!("{}/v1/audit?object={object}", endpoints.gateway_url))
            .bearer_auth(&endpoints.api_key)
            .send()
            .await
        {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        let trail: Vec<String> = audit["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| {
                format!(
                    "{} by {}",
                    entry["event"].as_str().unwrap_or("?"),
                    entry["actor"].as_str().unwrap_or("?")
                )
            })
            .collect();
        lines.push(format!("    audit of ad set {object}: {}", trail.join(" → ")));
    }
    let detail = lines.join("\n");
    let every_change_accounted_for = completed.len() + held.len() == ids.len();
    if !every_change_accounted_for || !all_match {
        StepOutcome::failed(step_name, detail)
    } else {
        StepOutcome::passed(step_name, detail)
    }
}

/// The guardrail a queued change waits on (its last attempt was held), if it waits on one.
fn held_by_guardrail(change: &Value) -> Option<String> {
    let last_attempt = change["attempts"].as_array()?.last()?;
    let waiting = matches!(change["state"].as_str(), Some("available" | "retryable"));
    (waiting && last_attempt["outcome"] == "held").then(|| {
        last_attempt["detail"]["rule"]
            .as_str()
            .unwrap_or("a guardrail")
            .to_owned()
    })
}

async fn read_budget(
    http: &reqwest::Client,
    endpoints: &ServiceEndpoints,
    ad_set_id: &str,
    allocation: &ObtainedAllocation,
) -> Option<i64> {
    let body: Value = http
        .get(format!("{}/v25.0/{ad_set_id}", endpoints.meta_sim_url))
        .query(&[
            ("fields", "daily_budget"),
            ("access_token", endpoints.meta_sim_token.as_str()),
        ])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let graph_amount: i64 = body["daily_budget"].as_str()?.parse().ok()?;
    Some(GraphAmount(graph_amount).to_minor_units(allocation.currency).get())
}
