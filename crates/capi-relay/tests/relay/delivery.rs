//! Delivery to meta-sim's Conversions API: events go out in one request per pixel batch with the ids they
//! were stored with; a batch Meta refuses for one bad event is split until the good ones go through and the
//! bad one is a dead letter with Meta's answer; an unanswered batch waits and is sent again.

use adloop_capi_events::event::{TimeRules, validate_event};
use adloop_capi_events::user_data::NormaliseSettings;
use adloop_config::{EnvironmentVariables, Secret};
use capi_relay::delivery::{Deliverer, DeliverySettings};
use capi_relay::store::store_events;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::store::relay_database;

pub const PIXEL: &str = "100000000000001";

pub async fn spawn_meta_sim() -> String {
    spawn_meta_sim_with(&[]).await
}

/// meta-sim with `extra` settings (environment variables) on top of the test defaults.
pub async fn spawn_meta_sim_with(extra: &[(&str, &str)]) -> String {
    let scenario_path = format!("{}/../../scenarios/stationary-10.toml", env!("CARGO_MANIFEST_DIR"));
    let mut variables = vec![
        ("ADLOOP_SERVER__HOST", "127.0.0.1"),
        ("ADLOOP_SERVER__PORT", "0"),
        ("ADLOOP_WORLD__SCENARIO_PATH", scenario_path.as_str()),
    ];
    variables.extend_from_slice(extra);
    let settings = meta_sim::settings::MetaSimSettings::load(&EnvironmentVariables::from_pairs(variables)).unwrap();
    let application = meta_sim::startup::Application::build(settings).await.unwrap();
    let base_url = format!("http://{}", application.local_address());
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    base_url
}

/// An ingest source for `PIXEL`; its id.
pub async fn test_source(pool: &PgPool) -> i64 {
    capi_relay::sources::create_source(pool, "test", &[PIXEL.into()])
        .await
        .unwrap();
    sqlx::query_scalar("SELECT id FROM ingest_sources")
        .fetch_one(pool)
        .await
        .unwrap()
}

fn deliverer(pool: &PgPool, meta_sim_url: &str) -> Deliverer {
    deliverer_named(pool, meta_sim_url, "delivery-test", 1000)
}

fn deliverer_named(pool: &PgPool, meta_sim_url: &str, name: &str, batch_size: i64) -> Deliverer {
    Deliverer::new(pool.clone(), delivery_settings(meta_sim_url, batch_size), name.into()).unwrap()
}

/// Delivery to `meta_sim_url` with meta-sim's all-access token.
pub fn delivery_settings(meta_sim_url: &str, batch_size: i64) -> DeliverySettings {
    DeliverySettings {
        enabled: true,
        base_url: meta_sim_url.to_owned(),
        api_version: "v25.0".into(),
        access_token: Some(Secret::new("meta-sim-dev-token".to_owned())),
        app_secret: None,
        pixels: Default::default(),
        batch_size,
        workers: 1,
        lease_seconds: 30.0,
        poll_interval_milliseconds: 100,
        request_timeout_ms: 5000,
        throttle_wait_seconds: 60,
        token_error_pause_seconds: 900,
        keep_events_hours: 72.0,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn lead(order: &str) -> adloop_capi_events::event::ValidatedEvent {
    let event = json!({
        "event_name": "Lead",
        "event_time": now() - 60,
        "action_source": "email",
        "event_id": order,
        "user_data": { "em": format!("{order}@example.com") },
    });
    validate_event(0, &event, now(), &TimeRules::default(), &NormaliseSettings::default()).unwrap()
}

pub async fn states(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("SELECT event_id, state FROM events ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn good_events_reach_meta_once_with_their_ids_and_a_bad_one_is_split_out_as_a_dead_letter() {
    let pool = relay_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let source_id = test_source(&pool).await;
    store_events(&pool, PIXEL, source_id, &[lead("lead-1"), lead("lead-2")])
        .await
        .unwrap();
    // An event Meta refuses (a plain-text email), as if stored by an older relay.
    sqlx::query(
        "INSERT INTO events (pixel_id, event_id, event_name, event_time, action_source, body) \
         VALUES ($1, 'lead-bad', 'Lead', $2, 'email', $3)",
    )
    .bind(PIXEL)
    .bind(now() - 60)
    .bind(
        json!({"event_name": "Lead", "event_time": now() - 60, "action_source": "email",
        "event_id": "lead-bad", "user_data": {"em": "plain@example.com"}}),
    )
    .execute(&pool)
    .await
    .unwrap();
    store_events(&pool, PIXEL, source_id, &[lead("lead-3")]).await.unwrap();

    let round = deliverer(&pool, &meta_sim_url).run_once().await.unwrap();
    assert_eq!((round.claimed, round.delivered, round.dead), (4, 3, 1), "{round:?}");
    assert!(round.requests > 1, "the refused batch was split: {round:?}");
    assert_eq!(
        states(&pool).await,
        [
            ("lead-1".into(), "delivered".into()),
            ("lead-2".into(), "delivered".into()),
            ("lead-bad".into(), "dead".into()),
            ("lead-3".into(), "delivered".into()),
        ]
    );
    let dead_letter: Value = sqlx::query_scalar("SELECT last_error FROM events WHERE event_id = 'lead-bad'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        dead_letter["error"]["code"], 100,
        "Meta's answer is kept: {dead_letter}"
    );

    let at_meta: Value = reqwest::get(format!("{meta_sim_url}/_sim/capi/events?pixel_id={PIXEL}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<&str> = at_meta["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["event_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["lead-1", "lead-2", "lead-3"], "each good event once, with its id");
    assert_eq!(
        deliverer(&pool, &meta_sim_url).run_once().await.unwrap().claimed,
        0,
        "nothing left to send"
    );
    // An operator fixed the cause: the dead letter goes back to the queue, the others stay delivered.
    let requeued = capi_relay::delivery::queue::requeue_dead(&pool, PIXEL, Some("lead-bad"))
        .await
        .unwrap();
    assert_eq!(requeued, 1);
    let pending: Vec<String> = sqlx::query_scalar("SELECT event_id FROM events WHERE state = 'pending'")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(pending, ["lead-bad"]);
}

#[tokio::test]
async fn an_unanswered_batch_waits_and_goes_again_with_the_same_ids() {
    let pool = relay_database().await;
    let source_id = test_source(&pool).await;
    store_events(&pool, PIXEL, source_id, &[lead("lead-1")]).await.unwrap();
    // Nobody listens there: no answer.
    let round = deliverer(&pool, "http://127.0.0.1:9").run_once().await.unwrap();
    assert_eq!((round.claimed, round.retried), (1, 1));
    let (state, attempt, waits): (String, i32, bool) =
        sqlx::query_as("SELECT state, attempt, next_attempt_at > now() FROM events WHERE event_id = 'lead-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempt, waits), ("pending", 1, true));

    let meta_sim_url = spawn_meta_sim().await;
    sqlx::query("UPDATE events SET next_attempt_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    let round = deliverer(&pool, &meta_sim_url).run_once().await.unwrap();
    assert_eq!(round.delivered, 1);
    let at_meta: Value = reqwest::get(format!("{meta_sim_url}/_sim/capi/events"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(at_meta["events"][0]["event_id"], "lead-1");
}

#[tokio::test]
async fn old_delivered_and_dead_events_are_pruned_but_never_pending_ones() {
    let pool = relay_database().await;
    let source_id = test_source(&pool).await;
    store_events(
        &pool,
        PIXEL,
        source_id,
        &[
            lead("old-delivered"),
            lead("old-dead"),
            lead("old-pending"),
            lead("new"),
        ],
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE events SET received_at = now() - interval '73 hours', \
             state = CASE event_id WHEN 'old-delivered' THEN 'delivered' WHEN 'old-dead' THEN 'dead' ELSE state END \
         WHERE event_id LIKE 'old-%'",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE events SET state = 'delivered' WHERE event_id = 'new'")
        .execute(&pool)
        .await
        .unwrap();
    let pruned = capi_relay::delivery::queue::prune(&pool, std::time::Duration::from_secs(72 * 3600), 100)
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    let left: Vec<String> = sqlx::query_scalar("SELECT event_id FROM events ORDER BY event_id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, ["new", "old-pending"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_share_the_delivery_and_send_each_event_once() {
    let pool = relay_database().await;
    let meta_sim_url = spawn_meta_sim().await;
    let source_id = test_source(&pool).await;
    let events: Vec<_> = (0..500).map(|number| lead(&format!("shared-{number}"))).collect();
    store_events(&pool, PIXEL, source_id, &events).await.unwrap();

    let replicas: Vec<_> = ["relay-a", "relay-b"]
        .into_iter()
        .map(|name| {
            let replica = deliverer_named(&pool, &meta_sim_url, name, 50);
            tokio::spawn(async move {
                let mut delivered = 0;
                loop {
                    let round = replica.run_once().await.unwrap();
                    if round.claimed == 0 {
                        return delivered;
                    }
                    delivered += round.delivered;
                }
            })
        })
        .collect();
    let mut per_replica = Vec::new();
    for replica in replicas {
        per_replica.push(replica.await.unwrap());
    }
    assert_eq!(per_replica.iter().sum::<usize>(), 500);
    assert!(
        per_replica.iter().all(|delivered| *delivered > 0),
        "both replicas worked: {per_replica:?}"
    );
    let at_meta: Value = reqwest::get(format!("{meta_sim_url}/_sim/capi/events?pixel_id={PIXEL}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = at_meta["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["event_id"].as_str().unwrap())
        .collect();
    let distinct: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(
        (ids.len(), distinct.len()),
        (500, 500),
        "each event reached Meta exactly once"
    );
}

#[tokio::test]
async fn the_backlog_age_is_the_wait_of_the_most_overdue_pending_event() {
    let pool = relay_database().await;
    let source_id = test_source(&pool).await;
    assert_eq!(
        capi_relay::delivery::queue::oldest_due_seconds(&pool).await.unwrap(),
        0.0
    );
    store_events(&pool, PIXEL, source_id, &[lead("waiting"), lead("sent"), lead("later")])
        .await
        .unwrap();
    sqlx::query(
        "UPDATE events SET next_attempt_at = now() + CASE event_id \
             WHEN 'waiting' THEN interval '-10 minutes' WHEN 'sent' THEN interval '-1 hour' \
             ELSE interval '5 minutes' END, \
             state = CASE event_id WHEN 'sent' THEN 'delivered' ELSE state END",
    )
    .execute(&pool)
    .await
    .unwrap();
    let oldest = capi_relay::delivery::queue::oldest_due_seconds(&pool).await.unwrap();
    assert!(
        (600.0..660.0).contains(&oldest),
        "the delivered event and the one not yet due do not count: {oldest}"
    );
}
