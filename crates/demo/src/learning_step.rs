//! The instant learner in the run: each simulated ad's delivery so far goes to the learner through the
//! gateway (`POST /api/internal/learning/event`) with its creative flags, and the weights are read back
//! (`GET /api/weights`) before and after, so the run shows them move as events arrive.
//!
//! meta-sim's ads carry no creative metadata, so the run tags each with creative flags by its position (a
//! real deployment takes them from its creative pipeline). The flags therefore say nothing true about the
//! simulated ads: the step shows the learner taking events and moving, not what it would learn.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::report::StepOutcome;
use crate::steps::ServiceEndpoints;

const FLAGS: [&str; 3] = ["has_pain_point", "has_number", "has_question"];

/// The run's creative flags for the ad at `position`: every combination of the three in turn.
pub fn demo_creative_flags(position: usize) -> Value {
    let combination = position % 8;
    let flags: serde_json::Map<String, Value> = FLAGS
        .iter()
        .enumerate()
        .map(|(bit, name)| ((*name).to_owned(), Value::Bool(combination & (1 << bit) != 0)))
        .collect();
    Value::Object(flags)
}

async fn weights(http: &reqwest::Client, endpoints: &ServiceEndpoints) -> Result<BTreeMap<String, f64>, String> {
    let response = http
        .get(format!("{}/api/weights", endpoints.gateway_url))
        .bearer_auth(&endpoints.api_key)
        .send()
        .await
        .map_err(crate::request_failure)?;
    if !response.status().is_success() {
        return Err(format!("the gateway answered {}", response.status()));
    }
    response.json().await.map_err(crate::request_failure)
}

fn describe(weights: &BTreeMap<String, f64>) -> String {
    weights
        .iter()
        .map(|(name, weight)| format!("{name} {weight:+.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sends one delivery event per ad (its lifetime impressions and clicks) and reports the weights before and
/// after. `run_id` keeps event ids unique to this run (a re-run is new evidence, not a duplicate).
pub async fn teach_the_learner(
    http: &reqwest::Client,
    endpoints: &ServiceEndpoints,
    ad_states: &[Value],
    run_id: u64,
) -> StepOutcome {
    let step_name = "instant learner (gateway → ml-service)";
    if ad_states.is_empty() {
        return StepOutcome::failed(step_name, "no ads to learn from (the allocation step failed)");
    }
    let before = match weights(http, endpoints).await {
        Ok(weights) => weights,
        Err(error) => return StepOutcome::failed(step_name, format!("cannot read the weights: {error}")),
    };
    let mut last_answer = Value::Null;
    for (position, ad) in ad_states.iter().enumerate() {
        let event = json!({
            "event_id": format!("make-run-{run_id}-delivery-{position}"),
            "ad_id": ad["ad_id"],
            "account_id": ad["account_id"],
            "event_type": "delivery",
            "features": demo_creative_flags(position),
            "impressions": ad["impressions"],
            "clicks": ad["clicks"],
        });
        let response = match http
            .post(format!("{}/api/internal/learning/event", endpoints.gateway_url))
            .bearer_auth(&endpoints.api_key)
            .json(&event)
            .send()
            .await
        {
            Ok(response) => response,
            Err(error) => {
                return StepOutcome::failed(
                    step_name,
                    format!("no answer from the gateway: {}", crate::request_failure(error)),
                );
            }
        };
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return StepOutcome::failed(
                step_name,
                format!("the gateway refused ad {position}'s event ({status}): {body}"),
            );
        }
        last_answer = response.json().await.unwrap_or(Value::Null);
    }
    let after = match weights(http, endpoints).await {
        Ok(weights) => weights,
        Err(error) => return StepOutcome::failed(step_name, format!("cannot read the weights: {error}")),
    };
    let moved = before.iter().any(|(name, weight)| after.get(name) != Some(weight));
    let detail = format!(
        "{} delivery events applied (model {}, {} events in the learner's log)\n    weights before: {}\n    weights after:  {}",
        ad_states.len(),
        last_answer["model_version"].as_str().unwrap_or("?"),
        last_answer["events_applied"],
        describe(&before),
        describe(&after),
    );
    if moved {
        StepOutcome::passed(step_name, detail)
    } else {
        StepOutcome::failed(step_name, format!("the weights did not move: {detail}"))
    }
}
