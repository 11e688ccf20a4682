//! Exactly-once effect under chaos: three gateway-api processes run the executor against one queue and a
//! meta-sim that injects 5xx answers, failed and throttled batch operations, dropped connections and
//! time-outs, while the test kills a random worker with SIGKILL every 0.7 s and starts a new one. At the
//! end every change is in one terminal state with one terminal audit entry, and meta-sim applied each
//! completed change's budget exactly once (a discarded change never, unless its outcome was unknown, which
//! its attempts record).
//!
//! This is the short version `make test` runs (60 changes); `ADLOOP_CHAOS_CHANGES` runs more (`make bench`
//! runs 200, every ad set of its scenario).

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use adloop_config::DatabaseSettings;
use adloop_money::{Currency, MinorUnits};
use adloop_test_support::TestDatabase;
use gateway_api::executor::change::{ChangeRequest, NewAdChange};
use gateway_api::executor::queue;
use rand::RngExt as _;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::executor::spawn_meta_sim_on;
use crate::process::gateway_command;

const TOKEN: &str = "meta-sim-dev-token";
const WORKERS: usize = 3;

fn start_worker(database_url: &str, meta_sim_url: &str) -> Child {
    gateway_command(database_url)
        .env("ADLOOP_DATABASE__MAX_CONNECTIONS", "6")
        .env("ADLOOP_EXECUTOR__WORKERS", "2")
        .env("ADLOOP_TELEMETRY__LOG_FILTER", "warn")
        .env("ADLOOP_EXECUTOR__ENABLED", "true")
        .env("ADLOOP_EXECUTOR__CLAIM_BATCH_SIZE", "20")
        .env("ADLOOP_EXECUTOR__LEASE_SECONDS", "4")
        .env("ADLOOP_EXECUTOR__RESCUE_INTERVAL_SECONDS", "1")
        .env("ADLOOP_EXECUTOR__POLL_INTERVAL_MILLISECONDS", "100")
        .env("ADLOOP_EXECUTOR__THROTTLE_WAIT_SECONDS", "1")
        // One campaign holds every ad set of this scenario; the campaign rule would hold most changes an hour.
        .env(
            "ADLOOP_EXECUTOR__GUARDRAILS__MAX_ACTIONS_PER_CAMPAIGN_PER_HOUR",
            "100000",
        )
        .env("ADLOOP_GRAPH__BASE_URL", meta_sim_url)
        .env("ADLOOP_GRAPH__ACCESS_TOKEN", TOKEN)
        .env("ADLOOP_GRAPH__REQUEST_TIMEOUT_MS", "800")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gateway-api")
}

async fn sim_state(meta_sim_url: &str) -> Value {
    reqwest::get(format!("{meta_sim_url}/_sim/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn terminal_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ad_changes WHERE state IN ('completed', 'discarded', 'cancelled')")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_takes_effect_once_while_workers_are_killed_and_meta_fails() {
    let changes_wanted: usize = std::env::var("ADLOOP_CHAOS_CHANGES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(60);
    let database = TestDatabase::create().await;
    let settings: DatabaseSettings = serde_json::from_value(json!({
        "url": database.url, "schema": "gateway", "max_connections": 5, "connect_timeout_seconds": 5,
    }))
    .unwrap();
    let pool = adloop_service_kit::postgres::connect_and_migrate(&settings, &gateway_api::startup::MIGRATOR)
        .await
        .unwrap();
    let meta_sim_url = spawn_meta_sim_on("many-ads-200", &[]).await;

    // One change per ad set: +5% on its current budget, a value no other change sends.
    let state = sim_state(&meta_sim_url).await;
    let ad_sets: Vec<&Value> = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|object| object["kind"] == "ad_set")
        .take(changes_wanted)
        .collect();
    assert!(ad_sets.len() >= changes_wanted.min(60), "{} ad sets", ad_sets.len());
    let mut targets: HashMap<String, i64> = HashMap::new();
    let changes: Vec<NewAdChange> = ad_sets
        .iter()
        .map(|ad_set| {
            let id = ad_set["id"].as_str().unwrap().to_owned();
            let target = ad_set["daily_budget"].as_i64().unwrap() * 105 / 100;
            targets.insert(id.clone(), target);
            NewAdChange {
                tenant_id: "tenant-chaos".into(),
                ad_account_id: ad_set["account_id"].as_str().unwrap().to_owned(),
                campaign_id: ad_set["campaign_id"].as_str().map(str::to_owned),
                ad_set_id: Some(id.clone()),
                ad_id: None,
                object_id: id.clone(),
                request: ChangeRequest::BudgetSet {
                    currency: Currency::parse("USD").unwrap(),
                    amount: MinorUnits(target),
                },
                old_budget: None,
                old_status: None,
                reason: "chaos".into(),
                confidence: None,
                source: "chaos".into(),
                idempotency_key: format!("chaos-{id}"),
                priority: 0,
                delay_seconds: 0.0,
                max_attempts: 8,
                needs_approval: false,
            }
        })
        .collect();

    let faults = json!({
        "seed": 11,
        "rules": [
            {"endpoint": "batch", "probability": 0.1, "fault": {"kind": "http_status", "status": 503}},
            {"endpoint": "batch", "probability": 0.05, "fault": {"kind": "drop_connection"}},
            {"endpoint": "batch", "probability": 0.05, "fault": {"kind": "timeout", "milliseconds": 1500}},
            {"endpoint": "batch_operation", "probability": 0.05, "fault": {"kind": "graph_error", "code": 2}},
            // Throttling answers (Meta's user and ad-account limits): the change waits, its attempt is kept.
            {"endpoint": "batch_operation", "probability": 0.03, "fault": {"kind": "graph_error", "code": 17, "subcode": 2446079}},
            {"endpoint": "batch_operation", "probability": 0.02, "fault": {"kind": "graph_error", "code": 80004}},
        ],
    });
    let client = reqwest::Client::new();
    assert!(
        client
            .post(format!("{meta_sim_url}/_sim/faults"))
            .json(&faults)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    queue::enqueue(&pool, &changes, "chaos").await.unwrap();

    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|_| start_worker(&database.url, &meta_sim_url))
        .collect();
    let started = Instant::now();
    let mut kills = 0;
    let mut faults_cleared = false;
    while terminal_count(&pool).await < changes.len() as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not every change finished within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
        let victim = rand::rng().random_range(0..WORKERS);
        let _ = workers[victim].kill();
        let _ = workers[victim].wait();
        kills += 1;
        workers[victim] = start_worker(&database.url, &meta_sim_url);
        // Faults for the first 10 s, so the run ends: a change may be discarded once its attempts are used.
        if !faults_cleared && started.elapsed() > Duration::from_secs(10) {
            client
                .delete(format!("{meta_sim_url}/_sim/faults"))
                .send()
                .await
                .unwrap();
            faults_cleared = true;
        }
    }
    for worker in &mut workers {
        let _ = worker.kill();
        let _ = worker.wait();
    }
    assert!(kills >= 3, "the run should see several SIGKILLs, saw {kills}");

    let rows: Vec<(String, String, Value, i64)> = sqlx::query_as(
        "SELECT c.object_id, c.state, c.errors, \
             (SELECT count(*) FROM audit_log a WHERE a.ad_change_id = c.id AND a.event IN ('completed', 'discarded')) \
         FROM ad_changes c",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let state = sim_state(&meta_sim_url).await;
    let budget_writes: HashMap<String, Vec<String>> = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|object| {
            let writes = object["history"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|record| record["field"] == "daily_budget")
                .map(|record| record["new_value"].as_str().unwrap().to_owned())
                .collect();
            (object["id"].as_str().unwrap().to_owned(), writes)
        })
        .collect();
    let mut completed = 0;
    for (object_id, state, errors, terminal_entries) in &rows {
        assert_eq!(*terminal_entries, 1, "{object_id}: one terminal audit entry ({state})");
        let writes = &budget_writes[object_id];
        let target = targets[object_id].to_string();
        match state.as_str() {
            "completed" => {
                completed += 1;
                assert_eq!(writes, &vec![target], "{object_id}: applied exactly once");
            }
            "discarded" => {
                let outcome_unknown =
                    errors.to_string().contains("unknown") || errors.to_string().contains("lease_expired");
                assert!(
                    writes.is_empty() || (outcome_unknown && writes == &vec![target]),
                    "{object_id}: a discarded change left {writes:?}; attempts {errors}"
                );
            }
            other => panic!("{object_id} ended {other}"),
        }
    }
    let rescued: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE event IN ('rescued', 'lease_lost')")
        .fetch_one(&pool)
        .await
        .unwrap();
    let retried: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE event = 'retryable'")
        .fetch_one(&pool)
        .await
        .unwrap();
    eprintln!(
        "chaos: {} changes, {completed} completed, {kills} SIGKILLs, {rescued} rescued or lost leases, {retried} retries, {:.1} s; meta-sim: {}",
        rows.len(),
        started.elapsed().as_secs_f64(),
        state["counters"]
    );
    assert!(retried > 0, "the injected faults reached the executor");
    assert!(
        completed * 10 >= rows.len() * 9,
        "most changes complete once faults stop: {completed} of {}",
        rows.len()
    );
}
