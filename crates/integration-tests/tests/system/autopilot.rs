//! The autopilot end to end: meta-sim's simulated account read through the Graph API, ml-service's
//! allocation, the changes queued and applied by the executor, one run per cycle of the simulated clock,
//! a crashed cycle rerun without enqueuing anything twice, and the dry-run and approval modes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    RunningService, gateway_key_for, gateway_pool, spawn_gateway, spawn_manual_meta_sim, spawn_ml_service,
};
use adloop_test_support::TestDatabase;

const ACCOUNT: &str = "act_100000001";
const META_SIM_TOKEN: &str = "meta-sim-dev-token";

async fn advance_simulated_hours(meta_sim_url: &str, hours: f64) {
    let response = reqwest::Client::new()
        .post(format!("{meta_sim_url}/_sim/clock"))
        .json(&json!({ "advance_hours": hours }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

struct AutopilotStack {
    meta_sim_url: String,
    gateway: RunningService,
    _ml_service: RunningService,
    database: TestDatabase,
}

/// meta-sim three simulated days in, ml-service, and a gateway running the executor and the autopilot on
/// meta-sim's clock.
async fn spawn_autopilot_stack() -> AutopilotStack {
    spawn_autopilot_stack_on("stationary-10").await
}

async fn spawn_autopilot_stack_on(scenario: &str) -> AutopilotStack {
    spawn_autopilot_stack_with(scenario, &[]).await
}

/// The stack on `scenario`, meta-sim with these settings.
async fn spawn_autopilot_stack_with(scenario: &str, meta_sim_settings: &[(&str, &str)]) -> AutopilotStack {
    spawn_autopilot_stack_with_gateway_settings(scenario, meta_sim_settings, &[]).await
}

async fn spawn_autopilot_stack_with_gateway_settings(
    scenario: &str,
    meta_sim_settings: &[(&str, &str)],
    gateway_settings: &[(&str, &str)],
) -> AutopilotStack {
    adloop_telemetry::init_telemetry_for_tests();
    let meta_sim_url = spawn_manual_meta_sim(scenario, meta_sim_settings).await;
    advance_simulated_hours(&meta_sim_url, 72.0).await;
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service(&database).await;
    let mut settings = vec![
        ("ADLOOP_DATABASE__MAX_CONNECTIONS", "6"),
        ("ADLOOP_GRAPH__BASE_URL", meta_sim_url.as_str()),
        ("ADLOOP_GRAPH__ACCESS_TOKEN", META_SIM_TOKEN),
        ("ADLOOP_EXECUTOR__ENABLED", "true"),
        ("ADLOOP_EXECUTOR__WORKERS", "1"),
        ("ADLOOP_EXECUTOR__POLL_INTERVAL_MILLISECONDS", "100"),
        ("ADLOOP_AUTOPILOT__ENABLED", "true"),
        ("ADLOOP_CLOCK__SOURCE", "meta_sim"),
        ("ADLOOP_AUTOPILOT__TICK_MILLISECONDS", "100"),
        ("ADLOOP_AUTOPILOT__RUN_LEASE_SECONDS", "10"),
    ];
    settings.extend_from_slice(gateway_settings);
    let gateway = spawn_gateway(&database, &ml_service.base_url(), &settings).await;
    AutopilotStack {
        meta_sim_url,
        gateway,
        _ml_service: ml_service,
        database,
    }
}

async fn call(gateway: &RunningService, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("{}{path}", gateway.base_url());
    let mut request = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    }
    .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The account's runs once `done` holds for them, newest first (fails after 30 s).
/// Posts `settings` to the test account's autopilot as the gateway's own tenant.
async fn configure_autopilot(gateway: &RunningService, settings: Value) -> (u16, Value) {
    call(
        gateway,
        gateway.api_key(),
        "POST",
        &format!("/v1/accounts/{ACCOUNT}/autopilot"),
        Some(settings),
    )
    .await
}

async fn runs_when(gateway: &RunningService, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let (_, page) = call(
            gateway,
            gateway.api_key(),
            "GET",
            &format!("/v1/accounts/{ACCOUNT}/autopilot/runs"),
            None,
        )
        .await;
        let runs = page["runs"].as_array().cloned().unwrap_or_default();
        if done(&runs) {
            return runs;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "runs: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn finished(run: &Value) -> bool {
    matches!(run["state"].as_str(), Some("completed" | "failed"))
}

async fn account_changes(gateway: &RunningService) -> Vec<Value> {
    let (_, page) = call(
        gateway,
        gateway.api_key(),
        "GET",
        &format!("/v1/ad-changes?account={ACCOUNT}&limit=1000"),
        None,
    )
    .await;
    page["changes"].as_array().cloned().unwrap_or_default()
}

async fn meta_sim_budget(meta_sim_url: &str, ad_set_id: &str) -> i64 {
    let body: Value = reqwest::get(format!(
        "{meta_sim_url}/v25.0/{ad_set_id}?fields=daily_budget&access_token={META_SIM_TOKEN}"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    body["daily_budget"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_cycle_per_simulated_day_moves_budgets_in_meta_sim_and_a_crashed_cycle_reruns_without_duplicates() {
    let stack = spawn_autopilot_stack().await;
    let gateway = &stack.gateway;
    let (status, stored) = configure_autopilot(gateway, json!({ "enabled": true, "interval_seconds": 86_400 })).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(
        (stored["mode"].as_str(), stored["enabled"].as_bool()),
        (Some("live"), Some(true))
    );

    let runs = runs_when(gateway, |runs| runs.first().is_some_and(finished)).await;
    let first = &runs[0];
    assert_eq!(first["state"], "completed", "{first}");
    assert_eq!(first["ads_read"], 10);
    let enqueued = first["changes_enqueued"].as_i64().unwrap();
    assert!(enqueued > 0, "three days in, the allocation moves budgets: {first}");
    assert_eq!(
        first["summary"]["total_daily_budget"], 100_000,
        "the account's total is kept"
    );
    assert_eq!(first["summary"]["recommendations"].as_array().unwrap().len(), 10);
    // Three simulated days in, just past midnight: the recent window is the three whole days and the minutes of
    // today, the settled one seven days and the same minutes.
    let windows = &first["summary"]["windows"];
    let recent_hours = windows["recent_hours"].as_f64().unwrap();
    assert!((72.0..73.0).contains(&recent_hours), "{windows}");
    assert_eq!(
        windows["settled_hours"].as_f64().unwrap(),
        recent_hours + 96.0,
        "{windows}"
    );
    // The operator page's listing: the account with the allocation it runs on now.
    let (status, listed) = call(gateway, gateway.api_key(), "GET", "/v1/accounts", None).await;
    assert_eq!(status, 200, "{listed}");
    let account = &listed["accounts"][0];
    assert_eq!(
        (account["ad_account_id"].as_str(), account["autopilot"]["mode"].as_str()),
        (Some(ACCOUNT), Some("live"))
    );
    assert_eq!(account["latest_completed_run"]["id"], first["id"], "{listed}");
    assert!(
        account["latest_completed_run"]["summary"]["recommendations"][0]["probability_best"].is_number(),
        "{listed}"
    );
    let metrics = gateway.metrics_text().await;
    assert!(
        metrics.contains("adloop_gateway_autopilot_cycles_total{outcome=\"completed\"} 1"),
        "{metrics}"
    );

    // The executor applies them; meta-sim shows each completed budget.
    let started = Instant::now();
    let changes = loop {
        let changes = account_changes(gateway).await;
        if changes.iter().all(change_has_ended) && changes.len() as i64 == enqueued {
            break changes;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{changes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(changes.iter().all(|change| change["source"] == "autopilot"));
    let completed_budget = changes
        .iter()
        .find(|change| change["state"] == "completed" && change["kind"] == "budget_set")
        .expect("a budget change applied");
    let ad_set = completed_budget["ad_set_id"].as_str().unwrap();
    assert_eq!(
        meta_sim_budget(&stack.meta_sim_url, ad_set).await,
        completed_budget["amount"].as_i64().unwrap(),
        "meta-sim has the budget the autopilot asked for"
    );
    assert!(
        completed_budget["reason"].as_str().unwrap().contains("P(best)"),
        "the allocator's reason travels with the change: {completed_budget}"
    );

    // The same simulated day: no second cycle. A runner that crashed mid-cycle (its lease expired) is
    // replaced, and the rerun finds every change under its key instead of adding it again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs_when(gateway, |_| true).await.len(), 1);
    let pool = gateway_pool(&stack.database).await;
    sqlx::query("UPDATE autopilot_runs SET state = 'running', lease_expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    let rerun = runs_when(gateway, |runs| runs[0]["attempt"] == 2 && finished(&runs[0])).await;
    assert_eq!(rerun.len(), 1, "the rerun is the same cycle");
    assert_eq!(rerun[0]["state"], "completed", "{}", rerun[0]);
    assert_eq!(rerun[0]["changes_enqueued"], 0, "nothing enqueued twice: {}", rerun[0]);
    assert_eq!(account_changes(gateway).await.len(), changes.len());

    // The next simulated day is the next cycle.
    advance_simulated_hours(&stack.meta_sim_url, 24.0).await;
    let runs = runs_when(gateway, |runs| runs.len() == 2 && finished(&runs[0])).await;
    assert_eq!(runs[0]["state"], "completed", "{}", runs[0]);
    assert_eq!(
        runs[0]["cycle_slot"].as_i64().unwrap(),
        runs[1]["cycle_slot"].as_i64().unwrap() + 1
    );

    // Another tenant sees none of it.
    let other_key = gateway_key_for(&stack.database, "other-tenant").await;
    let (status, _) = call(
        gateway,
        &other_key,
        "GET",
        &format!("/v1/accounts/{ACCOUNT}/autopilot"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, other_runs) = call(
        gateway,
        &other_key,
        "GET",
        &format!("/v1/accounts/{ACCOUNT}/autopilot/runs"),
        None,
    )
    .await;
    assert_eq!(other_runs["runs"], json!([]));
    let (_, other_accounts) = call(gateway, &other_key, "GET", "/v1/accounts", None).await;
    assert_eq!(other_accounts["accounts"], json!([]));
}

#[tokio::test]
async fn an_account_whose_purchases_report_in_the_second_week_has_its_reporting_delays_learned() {
    // Half of late-reporting's purchases are reported 7–14 days after the click; the default schedule says
    // everything is in within a week.
    let stack = spawn_autopilot_stack_on("late-reporting").await;
    let gateway = &stack.gateway;
    let (status, stored) = configure_autopilot(
        gateway,
        json!({ "enabled": true, "mode": "dry_run", "interval_seconds": 86_400 }),
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    runs_when(gateway, |runs| runs.first().is_some_and(finished)).await;
    let cycles = 17;
    for cycle in 2..=cycles {
        advance_simulated_hours(&stack.meta_sim_url, 24.0).await;
        runs_when(gateway, |runs| runs.len() == cycle && finished(&runs[0])).await;
    }
    let runs = runs_when(gateway, |_| true).await;
    assert!(runs.iter().all(|run| run["state"] == "completed"), "{runs:?}");
    let learned = &runs[0]["summary"]["reporting_delay"];
    let within_a_week = learned["reported_within_7_days"].as_f64().unwrap();
    let within_two_weeks = learned["reported_within_14_days"].as_f64().unwrap();
    assert!(
        (0.3..0.75).contains(&within_a_week),
        "about half reported within a week (the default schedule says all): {learned}"
    );
    assert!(within_two_weeks > 0.9, "{learned}");
    // The estimator's memory is the last cycle's (each cycle recorded its read once).
    let pool = gateway_pool(&stack.database).await;
    let (slot,): (i64,) = sqlx::query_as("SELECT cycle_slot FROM autopilot_reporting_delays WHERE ad_account_id = $1")
        .bind(ACCOUNT)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(slot, runs[0]["cycle_slot"].as_i64().unwrap());
}

/// Whether a queued change is applied or has ended otherwise.
fn change_has_ended(change: &Value) -> bool {
    matches!(change["state"].as_str(), Some("completed" | "discarded" | "cancelled"))
}

/// Waits until every change queued for the account has ended.
async fn changes_settled(gateway: &RunningService) {
    let started = Instant::now();
    loop {
        let changes = account_changes(gateway).await;
        if changes.iter().all(change_has_ended) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{changes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many of a run summary's recommendations give a reason containing `words`.
fn recommendations_whose_reason_says(summary: &Value, words: &str) -> usize {
    summary["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|recommendation| {
            recommendation["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains(words))
        })
        .count()
}

/// Eight live daily cycles on `stack`, each day's budgets applied before the next day starts (so the executor
/// moves budgets and the days differ in volume, however slow the machine); the latest run's summary.
async fn eight_live_cycles(stack: &AutopilotStack) -> Value {
    let gateway = &stack.gateway;
    let (status, stored) = configure_autopilot(gateway, json!({ "enabled": true, "interval_seconds": 86_400 })).await;
    assert_eq!(status, 200, "{stored}");
    runs_when(gateway, |runs| runs.first().is_some_and(finished)).await;
    let cycles = 8;
    for cycle in 2..=cycles {
        changes_settled(gateway).await;
        advance_simulated_hours(&stack.meta_sim_url, 24.0).await;
        runs_when(gateway, |runs| runs.len() == cycle && finished(&runs[0])).await;
    }
    let runs = runs_when(gateway, |_| true).await;
    assert!(runs.iter().all(|run| run["state"] == "completed"), "{runs:?}");
    runs[0]["summary"].clone()
}

#[tokio::test]
async fn small_audiences_whose_cpm_rises_with_volume_are_read_as_delivery_curves_and_funded_by_marginal_return() {
    // saturating-audiences: the two best ads reach 15,000 and 40,000 people, so a day's CPM rises steeply
    // with the share of them it buys. Meta refuses insights pages it finds too large: here above 40 rows, so
    // the eight ads' four weeks of days (a page of 500 asked) come in pages of 31 after three refusals.
    let stack = spawn_autopilot_stack_with(
        "saturating-audiences",
        &[("ADLOOP_GRAPH__INSIGHTS_MAX_ROWS_PER_PAGE", "40")],
    )
    .await;
    let latest = eight_live_cycles(&stack).await;
    assert_eq!(latest["delivery_curves_unavailable"], Value::Null, "{latest}");
    assert_eq!(
        latest["ads_with_weekday_rhythms"], 0,
        "weekday rhythms are off by default: {latest}"
    );
    let with_curves = latest["ads_with_delivery_curves"].as_u64().unwrap();
    assert!(with_curves >= 2, "the small audiences' rising CPMs are seen: {latest}");
    let explained = recommendations_whose_reason_says(&latest, "its CPM rises with its daily volume");
    assert!(explained >= 2, "the recommendations say so: {latest}");

    // Hourly cycles read each ad's days once a day: a cycle of the same day reuses what an earlier one read
    // (and finds the same curves), the first after midnight reads the new day's.
    let gateway = &stack.gateway;
    let (status, stored) = configure_autopilot(gateway, json!({ "enabled": true, "interval_seconds": 3_600 })).await;
    assert_eq!(status, 200, "{stored}");
    // Each simulated hour brings a cycle (the switch itself may bring one at once: how many does not matter).
    let mut runs_seen = 8;
    for _ in 0..3 {
        advance_simulated_hours(&stack.meta_sim_url, 1.0).await;
        let runs = runs_when(gateway, |runs| runs.len() > runs_seen && runs.iter().all(finished)).await;
        runs_seen = runs.len();
    }
    let runs = runs_when(gateway, |runs| runs.iter().all(finished)).await;
    assert!(runs.iter().all(|run| run["state"] == "completed"), "{runs:?}");
    // Oldest first, from the last daily cycle (which read the days) on.
    let summaries: Vec<Value> = runs[..=runs.len() - 8]
        .iter()
        .rev()
        .map(|run| run["summary"].clone())
        .collect();
    // Hours of the account's day so far: the recent window is three whole days and today. The clock never
    // goes back, so fewer hours than the cycle before means a new day.
    let hours_today = |summary: &Value| summary["windows"]["recent_hours"].as_f64().unwrap() - 72.0;
    let mut reused = 0;
    for pair in summaries.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        let same_day = hours_today(later) >= hours_today(earlier);
        assert_eq!(later["delivery_days_read"], !same_day, "{earlier} then {later}");
        if same_day {
            reused += 1;
            assert_eq!(
                later["ads_with_delivery_curves"], earlier["ads_with_delivery_curves"],
                "{later}"
            );
        }
    }
    assert!(
        reused >= 2,
        "of three hourly steps at most one crosses midnight: {summaries:?}"
    );
}

#[tokio::test]
async fn ads_whose_buyers_keep_a_weekly_rhythm_of_their_own_are_weighed_by_their_ctr_on_the_coming_day() {
    // own-rhythms-and-rest: each ad's buyers peak on a weekday of their own (CTR up to ×1.4, down to ×0.7).
    // Three weeks delivered at the starting budgets, then one cycle (the rhythms switched on: they are off by
    // default) reads each ad's days and dates.
    let stack = spawn_autopilot_stack_with_gateway_settings(
        "own-rhythms-and-rest",
        &[],
        &[("ADLOOP_AUTOPILOT__WEEKDAY_RHYTHM__ENABLED", "true")],
    )
    .await;
    advance_simulated_hours(&stack.meta_sim_url, 18.0 * 24.0).await;
    let gateway = &stack.gateway;
    let (status, stored) = configure_autopilot(gateway, json!({ "enabled": true, "interval_seconds": 86_400 })).await;
    assert_eq!(status, 200, "{stored}");
    let runs = runs_when(gateway, |runs| runs.first().is_some_and(finished)).await;
    assert_eq!(runs[0]["state"], "completed", "{runs:?}");
    let summary = &runs[0]["summary"];
    let with_rhythms = summary["ads_with_weekday_rhythms"].as_u64().unwrap();
    assert!(
        with_rhythms >= 3,
        "most of the ten ads show their own rhythm: {summary}"
    );
    let explained = recommendations_whose_reason_says(summary, "its own weekday rhythm");
    assert_eq!(
        explained as u64, with_rhythms,
        "each such recommendation says so: {summary}"
    );
}

#[tokio::test]
async fn a_cycle_whose_days_meta_will_not_serve_allocates_without_curves_and_says_why() {
    // Pages of more than 20 rows refused: the lifetime and window reads (eight rows) pass, each ad's days
    // (a row per ad and day) do not, even at the smallest page the gateway asks for (25).
    let stack = spawn_autopilot_stack_with(
        "saturating-audiences",
        &[("ADLOOP_GRAPH__INSIGHTS_MAX_ROWS_PER_PAGE", "20")],
    )
    .await;
    let latest = eight_live_cycles(&stack).await;
    assert_eq!(latest["ads_with_delivery_curves"], 0, "{latest}");
    let why = latest["delivery_curves_unavailable"].as_str().unwrap_or_default();
    assert!(why.contains("reduce the amount of data"), "{latest}");
    assert_eq!(latest["recommendations"].as_array().unwrap().len(), 8, "{latest}");
}

#[tokio::test]
async fn dry_run_records_the_plan_only_and_approval_mode_holds_every_change() {
    let stack = spawn_autopilot_stack().await;
    let gateway = &stack.gateway;
    let key = gateway.api_key();
    let (status, refused) = configure_autopilot(gateway, json!({ "enabled": true, "mode": "yolo" })).await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (400, Some("mode")),
        "{refused}"
    );
    let (status, refused) = configure_autopilot(gateway, json!({ "enabled": true, "interval_seconds": 0 })).await;
    assert_eq!(
        (status, refused["error"]["field"].as_str()),
        (400, Some("interval_seconds")),
        "{refused}"
    );
    let (status, _) = call(gateway, key, "GET", "/v1/accounts/act_x/autopilot", None).await;
    assert_eq!(status, 400);

    configure_autopilot(gateway, json!({ "enabled": true, "mode": "dry_run" })).await;
    let runs = runs_when(gateway, |runs| runs.first().is_some_and(finished)).await;
    assert_eq!(runs[0]["state"], "completed", "{}", runs[0]);
    let planned = runs[0]["changes_planned"].as_i64().unwrap();
    assert!(planned > 0, "{}", runs[0]);
    assert_eq!(runs[0]["changes_enqueued"], 0);
    assert_eq!(runs[0]["summary"]["changes"].as_array().unwrap().len() as i64, planned);
    assert!(account_changes(gateway).await.is_empty(), "a dry run enqueues nothing");

    configure_autopilot(gateway, json!({ "enabled": true, "mode": "approval" })).await;
    advance_simulated_hours(&stack.meta_sim_url, 24.0).await;
    let runs = runs_when(gateway, |runs| runs.len() == 2 && finished(&runs[0])).await;
    assert_eq!(runs[0]["mode"], "approval");
    assert!(runs[0]["changes_enqueued"].as_i64().unwrap() > 0, "{}", runs[0]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let changes = account_changes(gateway).await;
    assert!(!changes.is_empty());
    assert!(
        changes.iter().all(|change| change["state"] == "awaiting_approval"),
        "{changes:?}"
    );

    configure_autopilot(gateway, json!({ "enabled": false })).await;
    advance_simulated_hours(&stack.meta_sim_url, 24.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        runs_when(gateway, |_| true).await.len(),
        2,
        "a disabled account runs no cycle"
    );
}
