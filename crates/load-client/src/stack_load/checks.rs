//! What the stack owes its users after the load, checked against the databases and meta-sim.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use sqlx::PgPool;

use super::MemoryTrace;
use crate::open_loop::StreamTally;

/// One verdict with what it found.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub finding: String,
}

fn check(name: &'static str, passed: bool, finding: String) -> Check {
    Check { name, passed, finding }
}

/// Whether the executor or the relay still has work due: a change running, or due within minutes (a change
/// a guardrail holds for an hour is not), or an event pending.
pub async fn work_left(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM gateway.ad_changes \
                        WHERE state = 'running' \
                           OR (state IN ('available', 'retryable') AND run_at <= now() + make_interval(secs => $1))) \
             OR EXISTS (SELECT 1 FROM capi.events WHERE state = 'pending')",
    )
    .bind(WORK_DUE_WITHIN.as_secs_f64())
    .fetch_one(pool)
    .await
}

/// How soon a change must be due to count as work left: a change retrying after a fault waits its backoff
/// (2 s doubling per attempt, so seven failed attempts in a row wait about two minutes), a change a guardrail
/// holds for an hour is not work left. The drain must be allowed at least this long, or a change waiting out
/// its backoff reads as lost.
pub const WORK_DUE_WITHIN: std::time::Duration = std::time::Duration::from_secs(300);

/// Each ad set's budget as its last completed change set it (changes to one object are applied one at a
/// time, so completion order is write order).
async fn last_completed_budgets(pool: &PgPool) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT DISTINCT ON (c.object_id) c.object_id, c.requested_budget_minor FROM gateway.ad_changes c \
         JOIN gateway.audit_log a ON a.ad_change_id = c.id AND a.event = 'completed' \
         WHERE c.state = 'completed' AND c.requested_budget_minor IS NOT NULL ORDER BY c.object_id, a.id DESC",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

fn stream<'a>(streams: &'a [StreamTally], prefix: &str) -> Option<&'a StreamTally> {
    streams.iter().find(|stream| stream.name.starts_with(prefix))
}

pub async fn checks_of(
    pool: &PgPool,
    streams: &[StreamTally],
    during_outage: &StreamTally,
    world_after: &Value,
    capi_events: &Value,
    memory: &[(&'static str, f64, MemoryTrace)],
) -> Result<Vec<Check>, sqlx::Error> {
    let mut checks = Vec::new();

    let failed: Vec<String> = streams
        .iter()
        .chain(std::iter::once(during_outage))
        .filter(|stream| stream.failed() > 0)
        .map(|stream| {
            format!(
                "{}: {:?}, {} unanswered",
                stream.name, stream.statuses, stream.transport_errors
            )
        })
        .collect();
    checks.push(check(
        "every request answered 2xx (or 429 when shed), Redis down included",
        failed.is_empty(),
        if failed.is_empty() {
            "none failed".into()
        } else {
            failed.join("; ")
        },
    ));

    // Changes: every acknowledged one is in the queue, in a final state; completed ones are at meta-sim.
    let acknowledged_changes: Vec<i64> = stream(streams, "ad changes")
        .map(|stream| stream.acknowledged.iter().filter_map(|id| id.parse().ok()).collect())
        .unwrap_or_default();
    // A change that waits, due later, with why in its last audit entry: held (a guardrail's rule, Meta's own
    // hourly budget lock, code 613, or Meta's throttling of the read) or retrying after a failed attempt. A
    // held change is `available`, or `retryable` when an earlier attempt had failed; a retry's backoff doubles
    // per attempt and can outlast the drain (`WORK_DUE_WITHIN`).
    let states: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT c.id, c.state, CASE WHEN c.state IN ('available', 'retryable') AND c.run_at > now() THEN \
             (SELECT coalesce(a.detail->>'detail', a.detail->>'message') FROM gateway.audit_log a \
              WHERE a.object_id = c.object_id AND a.ad_change_id = c.id \
                AND a.detail->>'outcome' IN ('held', 'retry') \
              ORDER BY a.id DESC LIMIT 1) END \
         FROM gateway.ad_changes c WHERE c.id = ANY($1)",
    )
    .bind(&acknowledged_changes)
    .fetch_all(pool)
    .await?;
    let missing = acknowledged_changes.len() - states.len();
    let held = states.iter().filter(|(_, _, rule)| rule.is_some()).count();
    let unfinished: Vec<(i64, String)> = states
        .iter()
        .filter(|(_, state, rule)| rule.is_none() && !matches!(state.as_str(), "completed" | "discarded" | "cancelled"))
        .map(|(id, state, _)| (*id, state.clone()))
        .collect();
    checks.push(check(
        "no lost change: every acknowledged change is in the queue, finished or waiting with the reason recorded",
        missing == 0 && unfinished.is_empty() && !acknowledged_changes.is_empty(),
        format!(
            "{} acknowledged, {missing} missing, {held} waiting until later with the reason recorded (a guardrail, Meta's budget lock or throttling, a retry's backoff), {} neither finished nor waiting{}",
            acknowledged_changes.len(),
            unfinished.len(),
            unfinished
                .first()
                .map(|(id, state)| format!(" (e.g. #{id} {state})"))
                .unwrap_or_default()
        ),
    ));
    let expected_budgets = last_completed_budgets(pool).await?;
    let budgets_at_meta_sim: HashMap<String, i64> = world_after["objects"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|object| object["kind"] == "ad_set")
        .filter_map(|object| Some((object["id"].as_str()?.to_owned(), object["daily_budget"].as_i64()?)))
        .collect();
    let mismatched: Vec<String> = expected_budgets
        .iter()
        .filter(|(ad_set, amount)| budgets_at_meta_sim.get(*ad_set) != Some(amount))
        .map(|(ad_set, amount)| {
            format!(
                "{ad_set}: queue {amount}, meta-sim {:?}",
                budgets_at_meta_sim.get(ad_set)
            )
        })
        .collect();
    checks.push(check(
        "each ad set's budget at meta-sim is its last completed change's",
        mismatched.is_empty() && !expected_budgets.is_empty(),
        format!(
            "{} ad sets changed, {} differ{}",
            expected_budgets.len(),
            mismatched.len(),
            mismatched
                .first()
                .map(|first| format!(" (e.g. {first})"))
                .unwrap_or_default()
        ),
    ));
    let expired_leases: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM gateway.ad_changes WHERE state = 'running') \
              + (SELECT count(*) FROM capi.events WHERE state = 'pending' AND lease_expires_at < now())",
    )
    .fetch_one(pool)
    .await?;
    checks.push(check(
        "no stuck lease once the faults stop",
        expired_leases == 0,
        format!("{expired_leases} changes running or events under an expired lease"),
    ));

    // Purchases: every acknowledged event stored, delivered, and received by meta-sim.
    let acknowledged_events: Vec<String> = stream(streams, "purchases")
        .map(|stream| stream.acknowledged.clone())
        .unwrap_or_default();
    let event_states: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, count(*) FROM capi.events WHERE event_id = ANY($1) GROUP BY state ORDER BY state",
    )
    .bind(&acknowledged_events)
    .fetch_all(pool)
    .await?;
    let event_states: BTreeMap<String, i64> = event_states.into_iter().collect();
    let delivered = event_states.get("delivered").copied().unwrap_or(0);
    let received_ids: HashSet<&str> = capi_events["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|event| event["event_id"].as_str())
        .collect();
    let not_received = acknowledged_events
        .iter()
        .filter(|id| !received_ids.contains(id.as_str()))
        .count();
    checks.push(check(
        "no lost event: every acknowledged purchase delivered to meta-sim",
        delivered == acknowledged_events.len() as i64 && not_received == 0 && !acknowledged_events.is_empty(),
        format!(
            "{} acknowledged, by state {event_states:?}, {not_received} never received by meta-sim",
            acknowledged_events.len()
        ),
    ));

    // Learning events: every acknowledged one in ml-service's log.
    let acknowledged_learning: Vec<String> = stream(streams, "learning")
        .map(|stream| stream.acknowledged.clone())
        .unwrap_or_default();
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM ml.learning_events WHERE event_id = ANY($1)")
        .bind(&acknowledged_learning)
        .fetch_one(pool)
        .await?;
    checks.push(check(
        "no lost learning event: every acknowledged one is in ml-service's log",
        logged == acknowledged_learning.len() as i64 && logged > 0,
        format!("{} acknowledged, {logged} logged", acknowledged_learning.len()),
    ));

    for (service, limit, trace) in memory {
        let (first, last) = trace.first_and_last_thirds();
        checks.push(check(
            "memory under the manifest's limit",
            trace.peak() < *limit && !trace.samples.is_empty(),
            format!(
                "{service}: peak {:.0} MiB of {limit:.0}; first third {first:.0}, last third {last:.0} MiB",
                trace.peak()
            ),
        ));
    }
    Ok(checks)
}
