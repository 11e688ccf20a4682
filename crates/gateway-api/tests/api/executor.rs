//! The executor end to end against meta-sim: changes claimed from the queue, checked against the real
//! current state, written in Graph batches, recorded with their audit trail.

use adloop_config::{EnvironmentVariables, Secret};
use adloop_money::{Currency, MinorUnits};
use gateway_api::executor::change::{AdChangeRow, ChangeRequest, ChangeState, NewAdChange, TargetStatus};
use gateway_api::executor::graph_client::{GraphClient, GraphSettings};
use gateway_api::executor::guardrails::GuardrailSettings;
use gateway_api::executor::worker::{Executor, ExecutorSettings, RoundReport, WriteMode};
use gateway_api::executor::{controls, queue};
use sqlx::PgPool;

use crate::queue::{enqueue_ids, queue_database};

const ACCOUNT: &str = "act_100000001";
const CAMPAIGN: &str = "23850000000001";
const TOKEN: &str = "meta-sim-dev-token";

fn ad_set(number: u32) -> String {
    format!("2385100000000{number}")
}

fn ad(number: u32) -> String {
    format!("2385200000000{number}")
}

/// meta-sim on port 0 with a manual clock, serving the ten-ad stationary scenario.
async fn spawn_meta_sim() -> String {
    spawn_meta_sim_with(&[]).await
}

async fn spawn_meta_sim_with(overrides: &[(&str, &str)]) -> String {
    spawn_meta_sim_on("stationary-10", overrides).await
}

/// meta-sim on port 0 with a manual clock, serving `scenarios/<scenario>.toml`; returns its base URL.
pub async fn spawn_meta_sim_on(scenario: &str, overrides: &[(&str, &str)]) -> String {
    let scenario_path = format!("{}/../../scenarios/{scenario}.toml", env!("CARGO_MANIFEST_DIR"));
    let mut pairs = vec![
        ("ADLOOP_SERVER__HOST", "127.0.0.1"),
        ("ADLOOP_SERVER__PORT", "0"),
        ("ADLOOP_WORLD__SCENARIO_PATH", scenario_path.as_str()),
        ("ADLOOP_CLOCK__MODE", "manual"),
    ];
    pairs.extend_from_slice(overrides);
    let settings = meta_sim::settings::MetaSimSettings::load(&EnvironmentVariables::from_pairs(pairs)).unwrap();
    let application = meta_sim::startup::Application::build(settings).await.unwrap();
    let base_url = format!("http://{}", application.local_address());
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    base_url
}

fn executor(pool: &PgPool, meta_sim_url: &str, write_mode: WriteMode, dry_run: bool) -> Executor {
    executor_on_version(pool, meta_sim_url, "v25.0", write_mode, dry_run)
}

fn executor_on_version(
    pool: &PgPool,
    meta_sim_url: &str,
    api_version: &str,
    write_mode: WriteMode,
    dry_run: bool,
) -> Executor {
    let graph = GraphClient::new(GraphSettings {
        base_url: meta_sim_url.to_owned(),
        api_version: api_version.into(),
        access_token: Some(Secret::new(TOKEN.to_owned())),
        app_secret: None,
        request_timeout_ms: 5000,
    })
    .unwrap();
    let settings = ExecutorSettings {
        dry_run,
        ..executor_settings(write_mode)
    };
    Executor::new(pool.clone(), graph, settings, "worker-test".into())
}

/// The executor's settings as the tests run it: the shipped guardrails and pacing, claims of 50.
fn executor_settings(write_mode: WriteMode) -> ExecutorSettings {
    ExecutorSettings {
        enabled: true,
        poll_interval_milliseconds: 100,
        rescue_interval_seconds: 5,
        claim_batch_size: 50,
        workers: 1,
        lease_seconds: 30.0,
        write_mode,
        dry_run: false,
        throttle_wait_seconds: 60.0,
        guardrails: GuardrailSettings::default(),
        enqueue_jitter: Default::default(),
        pacing: Default::default(),
        retention: Default::default(),
    }
}

fn change(object_id: &str, request: ChangeRequest, key: &str) -> NewAdChange {
    let is_ad_set = object_id.starts_with("23851");
    NewAdChange {
        tenant_id: "tenant-a".into(),
        ad_account_id: ACCOUNT.into(),
        campaign_id: Some(CAMPAIGN.into()),
        ad_set_id: is_ad_set.then(|| object_id.to_owned()),
        ad_id: (!is_ad_set).then(|| object_id.to_owned()),
        object_id: object_id.into(),
        request,
        old_budget: None,
        old_status: None,
        reason: "test".into(),
        confidence: Some(0.9),
        source: "test".into(),
        idempotency_key: key.into(),
        priority: 0,
        delay_seconds: 0.0,
        max_attempts: 5,
        needs_approval: false,
    }
}

fn set_budget(amount: i64) -> ChangeRequest {
    ChangeRequest::BudgetSet {
        currency: Currency::parse("USD").unwrap(),
        amount: MinorUnits(amount),
    }
}

async fn run_until_idle(executor: &Executor) -> RoundReport {
    let mut total = RoundReport::default();
    for _ in 0..20 {
        let round = executor.run_once().await.unwrap();
        if round.claimed == 0 {
            break;
        }
        total.claimed += round.claimed;
        total.completed += round.completed;
        total.discarded += round.discarded;
        total.retried += round.retried;
        total.held += round.held;
    }
    total
}

async fn sim_budget(meta_sim_url: &str, ad_set_id: &str) -> i64 {
    let body: serde_json::Value = reqwest::get(format!(
        "{meta_sim_url}/v25.0/{ad_set_id}?fields=daily_budget&access_token={TOKEN}"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    body["daily_budget"].as_str().unwrap().parse().unwrap()
}

async fn row(pool: &PgPool, id: i64) -> AdChangeRow {
    queue::find(pool, "tenant-a", id).await.unwrap().unwrap()
}

#[tokio::test]
async fn changes_flow_through_guardrails_and_graph_batches_into_meta_sim() {
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let mut registry = adloop_telemetry::metrics::Registry::with_prefix("adloop_gateway");
    let executor = executor(&pool, &meta_sim_url, WriteMode::Batch, false)
        .with_metrics(gateway_api::executor::metrics::ExecutorMetrics::register(&mut registry));
    let mut changes: Vec<NewAdChange> = (1..=5)
        .map(|number| change(&ad_set(number), set_budget(11_000), &format!("raise-{number}")))
        .collect();
    changes.push(change(
        &ad(6),
        ChangeRequest::Status {
            status: TargetStatus::Paused,
        },
        "pause-6",
    ));
    changes.push(change(&ad_set(7), set_budget(15_000), "too-much-7"));
    let mut in_yen = change(&ad_set(8), set_budget(11_000), "yen-8");
    in_yen.request = ChangeRequest::BudgetSet {
        currency: Currency::parse("JPY").unwrap(),
        amount: MinorUnits(11_000),
    };
    changes.push(in_yen);
    let ids: Vec<i64> = enqueue_ids(&pool, &changes).await;

    let report = run_until_idle(&executor).await;
    assert_eq!((report.completed, report.discarded), (6, 2), "{report:?}");
    let metrics = adloop_telemetry::metrics::render_prometheus_text(&registry);
    for line in [
        "adloop_gateway_executor_changes_total{outcome=\"completed\"} 6",
        "adloop_gateway_executor_changes_total{outcome=\"discarded\"} 2",
        "adloop_gateway_executor_graph_requests_total{purpose=\"write\",mode=\"batch\"} 5",
        "adloop_gateway_executor_graph_requests_total{purpose=\"read\",mode=\"batch\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    for number in 1..=5 {
        assert_eq!(sim_budget(&meta_sim_url, &ad_set(number)).await, 11_000);
    }
    assert_eq!(
        sim_budget(&meta_sim_url, &ad_set(7)).await,
        10_000,
        "the +50% change was refused"
    );
    let refused = row(&pool, ids[6]).await;
    assert_eq!(refused.state(), Some(ChangeState::Discarded));
    assert!(
        refused.errors.to_string().contains("max_change_per_step"),
        "{}",
        refused.errors
    );
    assert!(row(&pool, ids[7]).await.errors.to_string().contains("JPY"));
    let completed = row(&pool, ids[0]).await;
    assert_eq!(completed.errors[0]["detail"]["budget_before"], 10_000);
    assert_eq!(completed.errors[0]["detail"]["budget_sent"], 11_000);

    // One ad set per campaign per batch: five ad-set writes need five batches (the ad's pause rides along);
    // plus one read of the account and one of the objects.
    assert_eq!(executor.graph().requests_sent(), 7);

    // Meta saw nothing but its own token and the batch: no header or key of ours.
    let log: serde_json::Value = reqwest::get(format!("{meta_sim_url}/_sim/requests"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // (The test's own GET reads are in the log too; the executor only ever POSTs batches.)
    let executor_requests: Vec<&serde_json::Value> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|request| request["method"] == "POST")
        .collect();
    assert_eq!(executor_requests.len(), 7);
    for request in executor_requests {
        for name in request["parameter_names"].as_array().unwrap() {
            assert!(
                ["access_token", "batch", "include_headers"].contains(&name.as_str().unwrap()),
                "{request}"
            );
        }
    }
    let events: Vec<String> = sqlx::query_scalar("SELECT event FROM audit_log WHERE ad_change_id = $1 ORDER BY id")
        .bind(ids[0])
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(events, ["enqueued", "completed"]);
}

#[tokio::test]
async fn a_change_already_in_place_completes_without_a_write_and_dry_runs_change_nothing() {
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let dry = executor(&pool, &meta_sim_url, WriteMode::Single, true);
    let id = enqueue_ids(&pool, &[change(&ad_set(1), set_budget(11_000), "dry")]).await[0];
    let report = run_until_idle(&dry).await;
    assert_eq!(report.completed, 1);
    assert_eq!(
        sim_budget(&meta_sim_url, &ad_set(1)).await,
        10_000,
        "validate_only changes nothing"
    );
    assert_eq!(row(&pool, id).await.errors[0]["detail"]["dry_run"], true);

    let mut registry = adloop_telemetry::metrics::Registry::with_prefix("adloop_gateway");
    let live = executor(&pool, &meta_sim_url, WriteMode::Single, false)
        .with_metrics(gateway_api::executor::metrics::ExecutorMetrics::register(&mut registry));
    queue::enqueue(&pool, &[change(&ad_set(2), set_budget(10_000), "same")], "test")
        .await
        .unwrap();
    let before = live.graph().requests_sent();
    let report = run_until_idle(&live).await;
    assert_eq!(report.completed, 1);
    assert_eq!(live.graph().requests_sent() - before, 2, "two reads, no write");
    let metrics = adloop_telemetry::metrics::render_prometheus_text(&registry);
    assert!(
        metrics.contains("adloop_gateway_executor_graph_requests_total{purpose=\"read\",mode=\"single\"} 2"),
        "single mode counts each read request: {metrics}"
    );
}

#[tokio::test]
async fn a_rollback_returns_the_budget_it_replaced_through_the_guardrails() {
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let live = executor(&pool, &meta_sim_url, WriteMode::Batch, false);
    let raise = enqueue_ids(&pool, &[change(&ad_set(1), set_budget(11_500), "raise")]).await[0];
    let queued = enqueue_ids(&pool, &[change(&ad_set(2), set_budget(11_000), "queued")]).await[0];
    assert!(
        controls::rollback(&pool, "tenant-a", queued, "test").await.is_err(),
        "only a completed change can be rolled back"
    );
    run_until_idle(&live).await;
    assert_eq!(sim_budget(&meta_sim_url, &ad_set(1)).await, 11_500);
    assert!(
        controls::rollback(&pool, "tenant-b", raise, "test").await.is_err(),
        "another tenant's change is not found"
    );

    let inverse = controls::rollback(&pool, "tenant-a", raise, "test").await.unwrap();
    let again = controls::rollback(&pool, "tenant-a", raise, "test").await.unwrap();
    assert_eq!(again.id, inverse.id, "rolling back twice enqueues one inverse");
    run_until_idle(&live).await;
    assert_eq!(sim_budget(&meta_sim_url, &ad_set(1)).await, 10_000);
    let rolled_back = row(&pool, inverse.id).await;
    assert_eq!(rolled_back.state(), Some(ChangeState::Completed));
    assert_eq!(rolled_back.source, "rollback");

    let dry = executor(&pool, &meta_sim_url, WriteMode::Batch, true);
    let rehearsal = enqueue_ids(&pool, &[change(&ad_set(3), set_budget(11_000), "rehearsal")]).await[0];
    run_until_idle(&dry).await;
    assert!(
        controls::rollback(&pool, "tenant-a", rehearsal, "test").await.is_err(),
        "a dry run changed nothing to roll back"
    );
}

#[tokio::test]
async fn meta_stopping_an_account_or_retiring_the_version_pauses_the_executor_until_a_person_resumes() {
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let live = executor(&pool, &meta_sim_url, WriteMode::Batch, false);
    let abuse_block = serde_json::json!({ "rules": [{
        "endpoint": "batch_operation", "probability": 1.0,
        "fault": { "kind": "graph_error", "code": 613 },
    }] });
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{meta_sim_url}/_sim/faults"))
        .json(&abuse_block)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
    let id = enqueue_ids(&pool, &[change(&ad_set(1), set_budget(11_000), "blocked")]).await[0];
    live.run_once().await.unwrap();
    let status = controls::executor_status(&pool, "tenant-a").await.unwrap();
    assert_eq!(status["pauses"][0]["scope"], "account", "{status}");
    assert_eq!(status["pauses"][0]["id"], ACCOUNT);
    assert_ne!(row(&pool, id).await.state(), Some(ChangeState::Completed));

    client
        .delete(format!("{meta_sim_url}/_sim/faults"))
        .send()
        .await
        .unwrap();
    sqlx::query("UPDATE ad_changes SET run_at = now() WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        run_until_idle(&live).await.claimed,
        0,
        "nothing goes out while the account is paused, even once Meta answers again"
    );
    let account = controls::PauseScope::Account {
        tenant_id: "tenant-a".into(),
        ad_account_id: ACCOUNT.into(),
    };
    assert!(controls::resume(&pool, &account, "admin").await.unwrap());
    run_until_idle(&live).await;
    assert_eq!(row(&pool, id).await.state(), Some(ChangeState::Completed));
    assert_eq!(sim_budget(&meta_sim_url, &ad_set(1)).await, 11_000);

    let retired = executor_on_version(&pool, &meta_sim_url, "v12.0", WriteMode::Batch, false);
    queue::enqueue(&pool, &[change(&ad_set(2), set_budget(11_000), "old-version")], "test")
        .await
        .unwrap();
    retired.run_once().await.unwrap();
    let status = controls::executor_status(&pool, "tenant-b").await.unwrap();
    assert_eq!(
        status["pauses"][0]["scope"], "global",
        "every tenant is stopped: {status}"
    );
    assert!(status["pauses"][0]["reason"].as_str().unwrap().contains("api_version"));
    assert_eq!(sim_budget(&meta_sim_url, &ad_set(2)).await, 10_000);
}

#[tokio::test]
async fn a_read_that_fails_on_a_server_error_holds_its_change_seconds_not_a_throttling_minute() {
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let live = executor(&pool, &meta_sim_url, WriteMode::Single, false);
    let client = reqwest::Client::new();
    let bad_gateway = serde_json::json!({ "rules": [{
        "endpoint": "graph_read", "probability": 1.0, "fault": { "kind": "http_status", "status": 502 },
    }] });
    assert!(
        client
            .post(format!("{meta_sim_url}/_sim/faults"))
            .json(&bad_gateway)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let id = enqueue_ids(&pool, &[change(&ad_set(1), set_budget(11_000), "read-502")]).await[0];
    let report = live.run_once().await.unwrap();
    assert_eq!(report.held, 1, "{report:?}");
    let (state, attempt, due_in): (String, i32, f64) = sqlx::query_as(
        "SELECT state, attempt, EXTRACT(EPOCH FROM run_at - now())::float8 FROM ad_changes WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (state.as_str(), attempt),
        ("available", 0),
        "held without counting an attempt"
    );
    assert!(
        (0.0..5.0).contains(&due_in),
        "a 502 is transient: back in seconds (the backoff's first delay), not throttle_wait_seconds: {due_in}"
    );

    client
        .delete(format!("{meta_sim_url}/_sim/faults"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs_f64(due_in.max(0.0) + 0.1)).await;
    run_until_idle(&live).await;
    assert_eq!(row(&pool, id).await.state(), Some(ChangeState::Completed));
    assert_eq!(sim_budget(&meta_sim_url, &ad_set(1)).await, 11_000);
}

#[tokio::test]
async fn a_batch_refused_with_code_1_is_split_and_sent_again_until_it_fits() {
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let live = executor(&pool, &meta_sim_url, WriteMode::Batch, false);
    let answer = reqwest::Client::new()
        .post(format!("{meta_sim_url}/_sim/faults"))
        .json(&serde_json::json!({ "reduce_data_above_operations": 4 }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    let mut changes: Vec<NewAdChange> = (1..=8)
        .map(|number| change(&ad_set(number), set_budget(10_500), &format!("budget-{number}")))
        .collect();
    changes.extend((1..=6).map(|number| {
        change(
            &ad(number),
            ChangeRequest::Status {
                status: TargetStatus::Paused,
            },
            &format!("pause-{number}"),
        )
    }));
    queue::enqueue(&pool, &changes, "test").await.unwrap();

    let report = run_until_idle(&live).await;
    assert_eq!(report.completed, 14, "{report:?}");
    for number in 1..=8 {
        assert_eq!(sim_budget(&meta_sim_url, &ad_set(number)).await, 10_500);
    }
}

#[tokio::test]
async fn an_account_meta_throttles_is_not_claimed_by_any_worker_until_the_wait_is_over() {
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim_with(&[
        ("ADLOOP_RATE_LIMITS__ADS_MANAGEMENT_BASE_CALLS", "6"),
        ("ADLOOP_RATE_LIMITS__ADS_MANAGEMENT_CALLS_PER_ACTIVE_AD", "0"),
    ])
    .await;
    let first_worker = executor(&pool, &meta_sim_url, WriteMode::Batch, false);
    let changes: Vec<NewAdChange> = (1..=5)
        .map(|number| change(&ad_set(number), set_budget(10_500), &format!("first-{number}")))
        .collect();
    queue::enqueue(&pool, &changes, "test").await.unwrap();
    first_worker.run_once().await.unwrap();
    let (percent, blocked_for): (f64, f64) = sqlx::query_as(
        "SELECT highest_percent, EXTRACT(EPOCH FROM blocked_until - now())::float8 FROM graph_account_pacing \
         WHERE ad_account_id = $1",
    )
    .bind(ACCOUNT)
    .fetch_one(&pool)
    .await
    .expect("the usage headers blocked the account");
    assert!(percent >= 75.0 && blocked_for > 0.0, "{percent}% for {blocked_for} s");
    let status = controls::executor_status(&pool, "tenant-a").await.unwrap();
    assert_eq!(
        status["accounts_waiting_on_meta"][0]["ad_account_id"], ACCOUNT,
        "{status}"
    );
    let other_tenant = controls::executor_status(&pool, "tenant-b").await.unwrap();
    assert_eq!(other_tenant["accounts_waiting_on_meta"], serde_json::json!([]));

    let second_worker = executor(&pool, &meta_sim_url, WriteMode::Batch, false);
    queue::enqueue(&pool, &[change(&ad_set(6), set_budget(10_500), "later")], "test")
        .await
        .unwrap();
    let report = second_worker.run_once().await.unwrap();
    assert_eq!(report.claimed, 0, "another worker waits too");
    assert_eq!(second_worker.graph().requests_sent(), 0, "and sends Meta nothing");

    sqlx::query("UPDATE graph_account_pacing SET blocked_until = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        second_worker.run_once().await.unwrap().claimed > 0,
        "claimed again once the wait is over"
    );
}

/// Nine ad pauses and three ad-set budgets, all in one account.
fn twelve_writes(prefix: &str) -> Vec<NewAdChange> {
    let mut changes: Vec<NewAdChange> = (1..=9)
        .map(|number| {
            change(
                &ad(number),
                ChangeRequest::Status {
                    status: TargetStatus::Paused,
                },
                &format!("{prefix}-pause-{number}"),
            )
        })
        .collect();
    changes.extend((1..=3).map(|number| {
        change(
            &ad_set(number),
            set_budget(10_500),
            &format!("{prefix}-budget-{number}"),
        )
    }));
    changes
}

#[tokio::test]
async fn workers_share_a_mutation_budget_per_account_and_meta_never_refuses_a_write_for_speed() {
    // meta-sim allows 5 writes a second per account here (Meta: 100).
    let slow_meta = [("ADLOOP_RATE_LIMITS__MUTATIONS_PER_SECOND_PER_ACCOUNT", "5")];
    let paced = |pool: &PgPool, meta_sim_url: &str, per_second: u32| {
        let mut executor_settings = executor(pool, meta_sim_url, WriteMode::Batch, false).settings().clone();
        executor_settings.pacing.max_mutations_per_second_per_account = per_second;
        let graph = GraphClient::new(GraphSettings {
            base_url: meta_sim_url.to_owned(),
            api_version: "v25.0".into(),
            access_token: Some(Secret::new(TOKEN.to_owned())),
            app_secret: None,
            request_timeout_ms: 5000,
        })
        .unwrap();
        Executor::new(pool.clone(), graph, executor_settings, "paced-worker".into())
    };

    // Without adloop's pacing (its limit above Meta's), Meta refuses some writes and they wait.
    let unpaced_pool = queue_database().await;
    let unpaced_meta = spawn_meta_sim_with(&slow_meta).await;
    queue::enqueue(&unpaced_pool, &twelve_writes("unpaced"), "test")
        .await
        .unwrap();
    let unpaced = paced(&unpaced_pool, &unpaced_meta, 100).run_once().await.unwrap();
    assert!(unpaced.completed < 12 && unpaced.held > 0, "{unpaced:?}");

    // Paced to 5 per window, every write goes through in one round, spread over windows.
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim_with(&slow_meta).await;
    queue::enqueue(&pool, &twelve_writes("paced"), "test").await.unwrap();
    let started = std::time::Instant::now();
    let report = paced(&pool, &meta_sim_url, 5).run_once().await.unwrap();
    let discarded: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT errors FROM ad_changes WHERE state <> 'completed'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!((report.completed, report.held), (12, 0), "{report:?} {discarded:?}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "twelve writes at five a window need three windows"
    );
}

#[tokio::test]
async fn an_accounts_own_guardrails_apply_to_its_changes_only() {
    use gateway_api::executor::guardrail_overrides;
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let live = executor(&pool, &meta_sim_url, WriteMode::Batch, false);
    let wider_steps = serde_json::json!({ "max_change_fraction_per_step": 0.6, "max_net_change_fraction": 0.6 });
    guardrail_overrides::store(
        &pool,
        "tenant-a",
        Some(ACCOUNT),
        wider_steps.as_object().unwrap(),
        "test",
    )
    .await
    .unwrap();
    let mut elsewhere = change(&ad_set(2), set_budget(15_000), "other-tenant");
    elsewhere.tenant_id = "tenant-b".into();
    let ids: Vec<i64> = enqueue_ids(&pool, &[change(&ad_set(1), set_budget(15_000), "wider"), elsewhere]).await;
    run_until_idle(&live).await;
    assert_eq!(row(&pool, ids[0]).await.state(), Some(ChangeState::Completed));
    assert_eq!(sim_budget(&meta_sim_url, &ad_set(1)).await, 15_000);
    let other = queue::find(&pool, "tenant-b", ids[1]).await.unwrap().unwrap();
    assert_eq!(
        other.state(),
        Some(ChangeState::Discarded),
        "tenant-b keeps the 20% default"
    );
}

#[tokio::test]
async fn a_campaigns_hourly_action_limit_counts_the_changes_of_the_same_round() {
    use gateway_api::executor::guardrail_overrides;
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let live = executor(&pool, &meta_sim_url, WriteMode::Batch, false);
    let two_an_hour = serde_json::json!({ "max_actions_per_campaign_per_hour": 2 });
    guardrail_overrides::store(&pool, "tenant-a", None, two_an_hour.as_object().unwrap(), "test")
        .await
        .unwrap();
    let changes: Vec<NewAdChange> = (1..=4)
        .map(|number| change(&ad_set(number), set_budget(11_000), &format!("campaign-limit-{number}")))
        .collect();
    let ids = enqueue_ids(&pool, &changes).await;

    // One claim takes all four ad sets of the campaign; only two may be written this hour.
    let round = live.run_once().await.unwrap();
    assert_eq!((round.claimed, round.completed, round.held), (4, 2, 2));
    let mut written = 0;
    for (number, id) in (1..=4).zip(&ids) {
        let budget = sim_budget(&meta_sim_url, &ad_set(number)).await;
        let state = row(&pool, *id).await.state();
        if budget == 11_000 {
            written += 1;
            assert_eq!(state, Some(ChangeState::Completed));
        } else {
            assert_eq!(
                state,
                Some(ChangeState::Available),
                "held until an action leaves the hour"
            );
        }
    }
    assert_eq!(written, 2);
}

#[tokio::test]
async fn the_mutation_budget_is_a_sliding_window_so_no_boundary_lets_twice_the_limit_through() {
    use gateway_api::executor::pacing::{PacingSettings, reserve_mutations};
    let pool = queue_database().await;
    let settings = PacingSettings {
        max_mutations_per_second_per_account: 5,
        ..PacingSettings::default()
    };
    assert_eq!(reserve_mutations(&pool, &settings, ACCOUNT, 1).await.unwrap().0, 1);
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(reserve_mutations(&pool, &settings, ACCOUNT, 4).await.unwrap().0, 4);
    // The first write has left the 1.1 s window; the four just reserved have not. A fixed window that
    // started with the first write would now start afresh and grant five more: nine within 0.2 s.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let (granted, wait) = reserve_mutations(&pool, &settings, ACCOUNT, 5).await.unwrap();
    assert_eq!(granted, 1);
    assert!(wait <= std::time::Duration::from_millis(1100), "{wait:?}");
}

#[tokio::test]
async fn after_metas_budget_lock_the_ad_sets_next_changes_wait_without_asking_meta_again() {
    use gateway_api::executor::guardrail_overrides;
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let live = executor(&pool, &meta_sim_url, WriteMode::Batch, false);
    // adloop's own four-an-hour rule off, so the fifth change reaches Meta and meets its lock.
    let ten_an_hour = serde_json::json!({ "max_budget_changes_per_ad_set_per_hour": 10 });
    guardrail_overrides::store(&pool, "tenant-a", None, ten_an_hour.as_object().unwrap(), "test")
        .await
        .unwrap();
    for (step, amount) in [10_100, 10_200, 10_300, 10_400].into_iter().enumerate() {
        enqueue_ids(
            &pool,
            &[change(&ad_set(1), set_budget(amount), &format!("step-{step}"))],
        )
        .await;
        assert_eq!(run_until_idle(&live).await.completed, 1);
    }
    let refused = enqueue_ids(&pool, &[change(&ad_set(1), set_budget(10_500), "fifth")]).await[0];
    assert_eq!(run_until_idle(&live).await.held, 1);
    assert!(row(&pool, refused).await.errors.to_string().contains("1487632"));

    let requests_before = live.graph().requests_sent();
    let sixth = enqueue_ids(&pool, &[change(&ad_set(1), set_budget(10_600), "sixth")]).await[0];
    let round = live.run_once().await.unwrap();
    assert_eq!((round.claimed, round.held), (1, 1));
    let held = row(&pool, sixth).await;
    assert!(held.errors.to_string().contains("meta_budget_lock"), "{}", held.errors);
    assert_eq!(
        live.graph().requests_sent() - requests_before,
        1,
        "only the read of the ad set: no write Meta would refuse"
    );
    assert_eq!(sim_budget(&meta_sim_url, &ad_set(1)).await, 10_400);
}

/// The short pacing flood (`executor-bench --pacing-flood` is the long one): an ad account whose score
/// allows far fewer calls than the changes need, and not one throttling answer may reach a change.
#[tokio::test]
async fn a_flood_into_one_account_completes_without_meta_ever_throttling_a_change() {
    let pool = queue_database().await;
    // An account score of 300 points that drains in 10 s (30 a second): 120 changes need ~480 points.
    let meta_sim_url = spawn_meta_sim_on(
        "many-ads-200",
        &[
            ("ADLOOP_RATE_LIMITS__AD_ACCOUNT_SCORE_LIMIT", "300"),
            ("ADLOOP_RATE_LIMITS__AD_ACCOUNT_SCORE_DECAY_SECONDS", "10"),
        ],
    )
    .await;
    let graph = GraphClient::new(GraphSettings {
        base_url: meta_sim_url.clone(),
        api_version: "v25.0".into(),
        access_token: Some(Secret::new(TOKEN.to_owned())),
        app_secret: None,
        request_timeout_ms: 5000,
    })
    .unwrap();
    let mut settings = executor_settings(WriteMode::Batch);
    settings.guardrails.max_actions_per_campaign_per_hour = 1_000;
    settings.pacing.max_slow_down_seconds = 3.0;
    let live = Executor::new(pool.clone(), graph, settings, "flood-worker".into());
    let state: serde_json::Value = reqwest::get(format!("{meta_sim_url}/_sim/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let changes: Vec<NewAdChange> = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|object| object["kind"] == "ad_set")
        .take(120)
        .map(|ad_set| {
            let id = ad_set["id"].as_str().unwrap();
            let budget = ad_set["daily_budget"].as_i64().unwrap();
            change(id, set_budget(budget + budget / 10), &format!("flood-{id}"))
        })
        .collect();
    assert_eq!(changes.len(), 120);
    enqueue_ids(&pool, &changes).await;

    let started = std::time::Instant::now();
    loop {
        let round = live.run_once().await.unwrap();
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM ad_changes WHERE state IN ('available', 'retryable', 'running')")
                .fetch_one(&pool)
                .await
                .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "{open} changes still open"
        );
        if round.claimed == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    let completed: i64 = sqlx::query_scalar("SELECT count(*) FROM ad_changes WHERE state = 'completed'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(completed, 120);
    let throttled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ad_changes c WHERE EXISTS ( \
             SELECT 1 FROM jsonb_array_elements(c.errors) AS logged(entry) \
             CROSS JOIN LATERAL (SELECT COALESCE(logged.entry ->> 'code', logged.entry -> 'detail' ->> 'code')::int AS code) AS answer \
             WHERE answer.code IN (4, 17, 32, 613) OR answer.code BETWEEN 80000 AND 80014)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(throttled, 0, "a throttling answer reached a change");
    let paced: i64 = sqlx::query_scalar("SELECT count(*) FROM graph_account_pacing WHERE highest_percent >= 75")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        paced > 0,
        "the flood pressed the account: the executor slowed down from its usage"
    );
}

#[tokio::test]
async fn on_meta_sims_clock_the_guardrail_windows_count_simulated_hours() {
    use adloop_service_kit::clock::{Clock, ClockSource};
    let pool = queue_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let on_system_clock = executor(&pool, &meta_sim_url, WriteMode::Batch, false);
    let on_simulated_clock = executor(&pool, &meta_sim_url, WriteMode::Batch, false)
        .with_clock(Clock::new(ClockSource::MetaSim, &meta_sim_url));
    let apply = |executor: &Executor, amount: i64, key: &str| {
        let (pool, executor, key) = (pool.clone(), executor.clone(), key.to_owned());
        async move {
            let ids = enqueue_ids(&pool, &[change(&ad_set(1), set_budget(amount), &key)]).await;
            run_until_idle(&executor).await;
            row(&pool, ids[0]).await
        }
    };
    // 100.00 → 120.00 (+20%), then at once 144.00: 44% within six hours, refused on either clock.
    assert_eq!(
        apply(&on_simulated_clock, 12_000, "first").await.state(),
        Some(ChangeState::Completed)
    );
    let refused = apply(&on_simulated_clock, 14_400, "second").await;
    assert_eq!(refused.state(), Some(ChangeState::Discarded));
    assert!(
        refused.errors.to_string().contains("max_net_change_in_window"),
        "{}",
        refused.errors
    );

    // Seven simulated hours later, seconds of real time: only the simulated clock's window has passed.
    let response = reqwest::Client::new()
        .post(format!("{meta_sim_url}/_sim/clock"))
        .json(&serde_json::json!({ "advance_hours": 7 }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let on_wall_time = apply(&on_system_clock, 14_400, "third, on the system clock").await;
    assert_eq!(
        on_wall_time.state(),
        Some(ChangeState::Discarded),
        "real time: still within 6 h"
    );
    let on_simulated_time = apply(&on_simulated_clock, 14_400, "third").await;
    assert_eq!(
        on_simulated_time.state(),
        Some(ChangeState::Completed),
        "{}",
        on_simulated_time.errors
    );
    assert_eq!(sim_budget(&meta_sim_url, &ad_set(1)).await, 14_400);
}
