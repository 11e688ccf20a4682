//! The closed loop, shortened from `make run`'s month: meta-sim's month scenario on a manual clock, every
//! account on autopilot through the gateway, ml-service and the executor, the shop's purchases reported by
//! the browser pixel and through the relay. Money moves to better ads than a uniform split finds, meta-sim's
//! own change history never breaks a guardrail, every purchase the relay accepted reaches meta-sim, and the
//! instant learner's CTR head is kept from the clicks of ads more than a week old in what the cycles feed it.

use std::collections::BTreeMap;

use adloop_demo::autopilot_client::{GatewayTenant, meta_sim_get};
use adloop_demo::month::{baselines, run_month};
use adloop_demo::website::Website;
use adloop_test_support::TestDatabase;
use serde_json::Value;

use crate::helpers::{gateway_key_for, spawn_capi_relay_with, spawn_gateway, spawn_manual_meta_sim, spawn_ml_service};

const DAYS: u32 = 10;
const PIXEL: &str = "100000000000001";
const META_SIM_TOKEN: &str = "meta-sim-dev-token";

fn month_scenario_path() -> String {
    format!("{}/../../scenarios/month.toml", env!("CARGO_MANIFEST_DIR"))
}

/// Every budget change meta-sim applied through the API: (ad set, campaign, simulated hour, old, new).
fn budget_changes(state: &Value) -> Vec<(String, String, f64, f64, f64)> {
    let mut changes = Vec::new();
    for object in state["objects"].as_array().unwrap() {
        for change in object["history"].as_array().into_iter().flatten() {
            let from_api = matches!(change["source"].as_str(), Some("api" | "batch"));
            if !from_api || change["field"] != "daily_budget" {
                continue;
            }
            let amount = |field: &str| change[field].as_str().unwrap().parse::<f64>().unwrap();
            changes.push((
                object["id"].as_str().unwrap().to_owned(),
                object["campaign_id"].as_str().unwrap_or_default().to_owned(),
                change["simulated_hour"].as_f64().unwrap(),
                amount("old_value"),
                amount("new_value"),
            ));
        }
    }
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shortened_month_on_autopilot_beats_a_uniform_split_within_the_guardrails_and_loses_no_conversion() {
    adloop_telemetry::init_telemetry_for_tests();
    // From a fixed date, so the cycles (and the draws each cycle slot seeds) are the same on every run.
    let meta_sim_url = spawn_manual_meta_sim("month", &[("ADLOOP_WORLD__START_DATE", "2026-11-02")]).await;
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service(&database).await;
    let gateway = spawn_gateway(
        &database,
        &ml_service.base_url(),
        &[
            ("ADLOOP_DATABASE__MAX_CONNECTIONS", "8"),
            ("ADLOOP_GRAPH__BASE_URL", meta_sim_url.as_str()),
            ("ADLOOP_GRAPH__ACCESS_TOKEN", META_SIM_TOKEN),
            ("ADLOOP_EXECUTOR__ENABLED", "true"),
            ("ADLOOP_EXECUTOR__WORKERS", "2"),
            ("ADLOOP_EXECUTOR__POLL_INTERVAL_MILLISECONDS", "100"),
            ("ADLOOP_AUTOPILOT__ENABLED", "true"),
            ("ADLOOP_AUTOPILOT__TICK_MILLISECONDS", "100"),
            ("ADLOOP_CLOCK__SOURCE", "meta_sim"),
        ],
    )
    .await;
    let relay = spawn_capi_relay_with(
        &database,
        &[
            ("ADLOOP_DELIVERY__ENABLED", "true"),
            ("ADLOOP_DELIVERY__BASE_URL", meta_sim_url.as_str()),
            ("ADLOOP_DELIVERY__ACCESS_TOKEN", META_SIM_TOKEN),
            ("ADLOOP_DELIVERY__POLL_INTERVAL_MILLISECONDS", "100"),
            ("ADLOOP_CLOCK__SOURCE", "meta_sim"),
        ],
    )
    .await;
    let relay_pool = sqlx::PgPool::connect(&format!("{}?options=-csearch_path%3Dcapi", database.url))
        .await
        .unwrap();
    let ingest_token = capi_relay::sources::create_source(&relay_pool, "shop", &[PIXEL.to_owned()])
        .await
        .unwrap();
    let api_key = gateway_key_for(&database, "loop").await;
    let http = reqwest::Client::new();
    let gateway_url = gateway.base_url();
    let tenant = GatewayTenant {
        http: &http,
        gateway_url: &gateway_url,
        api_key: &api_key,
    };
    let relay_url = relay.base_url();
    let website = Website {
        http: &http,
        meta_sim_url: &meta_sim_url,
        relay_url: &relay_url,
        pixel_id: PIXEL,
        ingest_token: &ingest_token,
        currency: adloop_money::Currency::parse("USD").unwrap(),
        pixel_loss_percent: 30,
        run_tag: "loop",
    };

    let month = run_month(&http, &meta_sim_url, &ml_service.base_url(), &tenant, &website, DAYS)
        .await
        .unwrap();

    // Every cycle ran, and changes reached meta-sim.
    let cycles: usize = month.days.iter().map(|day| day.cycles_completed).sum();
    let failed: usize = month.days.iter().map(|day| day.cycles_failed).sum();
    assert_eq!((cycles, failed), (3 * DAYS as usize, 0));
    let applied: usize = month.days.iter().map(|day| day.changes_applied).sum();
    assert!(applied > 0, "{month:?}");

    // The money found better ads than a uniform split of the same world does.
    let value = month.days.last().unwrap().cumulative_value;
    let baselines = baselines(&month_scenario_path(), month.seed, DAYS).unwrap();
    let uniform = baselines.iter().find(|baseline| baseline.policy == "uniform").unwrap();
    assert!(
        value > uniform.value,
        "adloop {value} against uniform {}",
        uniform.value
    );

    // meta-sim's own record of every budget it was asked to set keeps the executor's guardrails: at most
    // 20% a step, at most 4 changes per ad set and 15 actions per campaign in any simulated hour.
    let state = meta_sim_get(&http, &meta_sim_url, "_sim/state").await.unwrap();
    let changes = budget_changes(&state);
    assert!(!changes.is_empty());
    let mut per_ad_set_hour: BTreeMap<(String, i64), usize> = BTreeMap::new();
    let mut per_campaign_hour: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for (ad_set, campaign, hour, old, new) in &changes {
        assert!(
            (new - old).abs() <= 0.2 * old + 1e-9,
            "{ad_set} at hour {hour}: {old} → {new}"
        );
        *per_ad_set_hour.entry((ad_set.clone(), *hour as i64)).or_default() += 1;
        *per_campaign_hour.entry((campaign.clone(), *hour as i64)).or_default() += 1;
    }
    assert!(per_ad_set_hour.values().all(|count| *count <= 4), "{per_ad_set_hour:?}");
    assert!(
        per_campaign_hour.values().all(|count| *count <= 15),
        "{per_campaign_hour:?}"
    );

    // Every purchase the relay accepted reached meta-sim, and Meta counts each purchase once.
    let attribution = month.attribution;
    assert!(attribution.purchases > 0);
    assert_eq!(attribution.relay_accepted, attribution.purchases);
    assert_eq!(
        attribution.received_from_server, attribution.relay_accepted,
        "{attribution:?}"
    );
    assert_eq!(attribution.counted, attribution.purchases, "{attribution:?}");
    assert!(
        attribution.pixel_sent < attribution.purchases,
        "the pixel lost some: {attribution:?}"
    );

    // Ten days in, the month's first ads are more than a week old: the cycles' events carry each ad's creation
    // time, and ml-service's first-week rule withholds those ads' clicks from the CTR head.
    let metrics = ml_service.metrics_text().await;
    let withheld = adloop_telemetry::metrics::sample_value(&metrics, "adloop_ml_learner_ctr_trials_withheld_total");
    assert!(
        withheld.is_some_and(|events| events > 0.0),
        "old ads' delivery taught the CTR head:\n{metrics}"
    );
}
