//! Batch against single mode on the month's own changes: the changes the executor applied during the month,
//! day by day, enqueued again through the API for a fresh tenant on a fresh meta-sim world, once with the
//! gateway writing Graph batches and once writing one request per change. Each run counts the executor's
//! Graph requests (reads and writes, from the gateway's `/metrics`) and the time from each day's enqueue to
//! its last change finished; the two runs replay the same changes on the same world, so their ratio is the
//! saving batching buys.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::autopilot_client::{GatewayTenant, advance_simulated_hours, is_finished};
use crate::month::{executor_graph_requests, metrics_text};

/// One replay's figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplayFigures {
    /// `batch` or `single`: the gateway's `executor.write_mode` during the replay.
    pub mode: String,
    pub changes: usize,
    pub completed: usize,
    pub executor_graph_requests: u64,
    /// Summed over the days: from enqueueing the day's changes to the last one finished.
    pub seconds_applying: f64,
}

/// What the month's applied changes need to be enqueued again: the API's own fields of each change, by day.
pub fn replayable_change(applied: &Value) -> Value {
    let mut change = json!({});
    for field in [
        "ad_account_id",
        "campaign_id",
        "ad_set_id",
        "ad_id",
        "object_id",
        "kind",
        "currency",
        "amount",
        "status",
        "reason",
        "confidence",
    ] {
        if !applied[field].is_null() {
            change[field] = applied[field].clone();
        }
    }
    change
}

/// Enqueues each day's changes (under keys of the replay's own), waits for them, then moves meta-sim's
/// clock a day, as the month did.
pub async fn replay_month_changes(
    tenant: &GatewayTenant<'_>,
    meta_sim_url: &str,
    days: &[Vec<Value>],
    mode: &str,
) -> Result<ReplayFigures, String> {
    let requests_before = executor_graph_requests(&metrics_text(tenant.http, tenant.gateway_url).await?);
    let mut figures = ReplayFigures {
        mode: mode.to_owned(),
        changes: 0,
        completed: 0,
        executor_graph_requests: 0,
        seconds_applying: 0.0,
    };
    for (day, changes) in days.iter().enumerate() {
        if !changes.is_empty() {
            let bodies: Vec<Value> = changes
                .iter()
                .enumerate()
                .map(|(index, change)| {
                    let mut body = replayable_change(change);
                    body["idempotency_key"] = json!(format!("replay/{mode}/{day}/{index}"));
                    body
                })
                .collect();
            let started = Instant::now();
            let ids = enqueue(tenant, &bodies).await?;
            let finished = wait_until_finished(tenant, &ids).await?;
            figures.seconds_applying += started.elapsed().as_secs_f64();
            figures.changes += ids.len();
            figures.completed += finished.iter().filter(|state| *state == "completed").count();
        }
        advance_simulated_hours(tenant.http, meta_sim_url, 24.0).await?;
    }
    figures.executor_graph_requests =
        executor_graph_requests(&metrics_text(tenant.http, tenant.gateway_url).await?).saturating_sub(requests_before);
    Ok(figures)
}

async fn enqueue(tenant: &GatewayTenant<'_>, bodies: &[Value]) -> Result<Vec<i64>, String> {
    let mut ids = Vec::with_capacity(bodies.len());
    for chunk in bodies.chunks(500) {
        let url = format!("{}/v1/ad-changes", tenant.gateway_url);
        let answer = tenant
            .json(tenant.http.post(url).json(&json!({ "changes": chunk })))
            .await?;
        ids.extend(
            answer["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|change| change["id"].as_i64()),
        );
    }
    Ok(ids)
}

/// The changes' final states, once every one is completed, discarded or cancelled (polled often: the
/// replay times each day's changes).
async fn wait_until_finished(tenant: &GatewayTenant<'_>, ids: &[i64]) -> Result<Vec<String>, String> {
    let changes = tenant.wait_for_changes(ids, Duration::from_millis(20)).await?;
    let states: Vec<String> = changes
        .iter()
        .map(|change| change["state"].as_str().unwrap_or_default().to_owned())
        .collect();
    if changes.iter().all(is_finished) {
        Ok(states)
    } else {
        Err(format!("the replay's changes did not finish in time: {states:?}"))
    }
}

/// The report's section: the same changes in both modes, requests and time, and their ratios.
pub fn render_batching_section(batch: &ReplayFigures, single: &ReplayFigures) -> String {
    let ratio = |single_value: f64, batch_value: f64| single_value / batch_value.max(1e-9);
    format!(
        "\nBatch vs single mode — the month's {} applied changes replayed on a fresh world, once each way\n\
         | mode | changes completed | executor Graph requests | seconds applying |\n\
         |---|---|---|---|\n\
         | batch (≤ 50 operations a request) | {} of {} | {} | {:.1} |\n\
         | single (a request per call) | {} of {} | {} | {:.1} |\n\
         Batching sent {:.1}× fewer Graph requests; single mode took {:.2}× batch mode's time applying (one machine, \
         the same run; a day brings a few dozen changes, so time is mostly the executor's wake-ups and is noisy).\n",
        batch.changes,
        batch.completed,
        batch.changes,
        batch.executor_graph_requests,
        batch.seconds_applying,
        single.completed,
        single.changes,
        single.executor_graph_requests,
        single.seconds_applying,
        ratio(
            single.executor_graph_requests as f64,
            batch.executor_graph_requests as f64
        ),
        ratio(single.seconds_applying, batch.seconds_applying),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_change_keeps_the_api_fields_and_drops_the_queues_own() {
        let applied = json!({
            "id": 7, "state": "completed", "attempts": [{}], "idempotency_key": "autopilot/x",
            "ad_account_id": "act_1", "campaign_id": "c", "ad_set_id": "s", "object_id": "s",
            "kind": "budget_set", "currency": "USD", "amount": 1200, "status": null, "reason": "P(best) 0.4",
            "confidence": 0.4
        });
        let replayed = replayable_change(&applied);
        assert_eq!(replayed["amount"], 1200);
        assert_eq!(replayed["reason"], "P(best) 0.4");
        for dropped in ["id", "state", "attempts", "idempotency_key", "status"] {
            assert!(replayed.get(dropped).is_none(), "{dropped}: {replayed}");
        }
    }

    #[test]
    fn the_section_gives_both_modes_and_their_ratios() {
        let batch = ReplayFigures {
            mode: "batch".into(),
            changes: 100,
            completed: 100,
            executor_graph_requests: 20,
            seconds_applying: 2.0,
        };
        let single = ReplayFigures {
            mode: "single".into(),
            executor_graph_requests: 200,
            seconds_applying: 5.0,
            ..batch.clone()
        };
        let section = render_batching_section(&batch, &single);
        assert!(section.contains("10.0× fewer Graph requests"), "{section}");
        assert!(section.contains("took 2.50× batch mode"), "{section}");
    }
}
