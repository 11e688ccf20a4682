//! Delivery credentials and Meta's test view: a pixel's own token and `appsecret_proof` against a meta-sim
//! that requires the app secret; a rejected token pauses the pixel (nothing more is sent for it) until it is
//! resumed; test-event codes travel with their events, one code per request.

use adloop_config::Secret;
use capi_relay::delivery::queue::resume_pixel;
use capi_relay::delivery::{Deliverer, PixelCredentials};
use capi_relay::store::{EventRow, insert_rows};
use serde_json::Value;

use crate::delivery::{PIXEL, delivery_settings, lead, spawn_meta_sim_with, states, test_source};
use crate::store::relay_database;

/// meta-sim requiring `appsecret_proof` (secret "shh") and knowing one extra token, valid for `PIXEL` only.
async fn strict_meta_sim() -> String {
    // One file per call: tests of one process (plain `cargo test`) may start strict meta-sims at once.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let config = std::env::temp_dir().join(format!("adloop-relay-credentials-{}-{call}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "[access]\napp_secret = \"shh\"\n[[access.account_tokens]]\ntoken = \"pixel-token\"\npixel_ids = [\"{PIXEL}\"]\n"
        ),
    )
    .unwrap();
    let meta_sim_url = spawn_meta_sim_with(&[("ADLOOP_CONFIG_FILE", config.to_str().unwrap())]).await;
    // meta-sim read it when it started; a secret, even a test's, is not left behind in the temp folder.
    std::fs::remove_file(&config).unwrap();
    meta_sim_url
}

async fn events_at_meta(meta_sim_url: &str) -> Vec<Value> {
    let answer: Value = reqwest::get(format!("{meta_sim_url}/_sim/capi/events?pixel_id={PIXEL}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_pixels_own_token_and_the_app_secret_proof_are_sent() {
    let pool = relay_database().await;
    let meta_sim_url = strict_meta_sim().await;
    let source_id = test_source(&pool).await;
    capi_relay::store::store_events(&pool, PIXEL, source_id, &[lead("lead-1")])
        .await
        .unwrap();
    let mut settings = delivery_settings(&meta_sim_url, 1000);
    // The default token is not one meta-sim knows: only the pixel's own can succeed.
    settings.access_token = Some(Secret::new("not-a-token".to_owned()));
    settings.app_secret = Some(Secret::new("shh".to_owned()));
    settings.pixels.insert(
        PIXEL.to_owned(),
        PixelCredentials {
            access_token: Some(Secret::new("pixel-token".to_owned())),
            app_secret: None,
        },
    );
    let round = Deliverer::new(pool.clone(), settings.clone(), "credentials".into())
        .unwrap()
        .run_once()
        .await
        .unwrap();
    assert_eq!(round.delivered, 1, "{round:?}");
    assert_eq!(events_at_meta(&meta_sim_url).await.len(), 1);

    // Without the app secret meta-sim refuses the call (code 100, naming no event): the event is not
    // dead-lettered for a configuration mistake; the pixel pauses and it waits.
    capi_relay::store::store_events(&pool, PIXEL, source_id, &[lead("lead-2")])
        .await
        .unwrap();
    settings.app_secret = None;
    let round = Deliverer::new(pool.clone(), settings, "no-proof".into())
        .unwrap()
        .run_once()
        .await
        .unwrap();
    assert_eq!((round.delivered, round.dead, round.retried), (0, 0, 1), "{round:?}");
    let paused: i64 = sqlx::query_scalar("SELECT count(*) FROM pixel_pauses WHERE pixel_id = $1")
        .bind(PIXEL)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(paused, 1);
}

#[tokio::test]
async fn a_rejected_token_pauses_the_pixel_until_it_is_resumed() {
    let pool = relay_database().await;
    let meta_sim_url = strict_meta_sim().await;
    let source_id = test_source(&pool).await;
    capi_relay::store::store_events(&pool, PIXEL, source_id, &[lead("lead-1"), lead("lead-2")])
        .await
        .unwrap();
    let mut settings = delivery_settings(&meta_sim_url, 1);
    settings.access_token = Some(Secret::new("revoked-token".to_owned()));
    settings.app_secret = Some(Secret::new("shh".to_owned()));
    let deliverer = Deliverer::new(pool.clone(), settings.clone(), "paused".into()).unwrap();
    let first = deliverer.run_once().await.unwrap();
    assert_eq!((first.claimed, first.retried), (1, 1), "{first:?}");
    // The pixel is paused: the other event is not even tried.
    let second = deliverer.run_once().await.unwrap();
    assert_eq!(second.claimed, 0, "{second:?}");
    let reason: Value = sqlx::query_scalar("SELECT reason FROM pixel_pauses WHERE pixel_id = $1")
        .bind(PIXEL)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(reason["error"]["code"], 190, "{reason}");

    // The token is fixed and the pixel resumed: both events go.
    assert!(resume_pixel(&pool, PIXEL).await.unwrap());
    settings.access_token = Some(Secret::new("pixel-token".to_owned()));
    let fixed = Deliverer::new(pool.clone(), settings, "fixed".into()).unwrap();
    let mut delivered = 0;
    for _ in 0..2 {
        delivered += fixed.run_once().await.unwrap().delivered;
    }
    assert_eq!(delivered, 2);
    assert!(states(&pool).await.iter().all(|(_, state)| state == "delivered"));
}

#[tokio::test]
async fn test_event_codes_travel_with_their_events_one_code_per_request() {
    let pool = relay_database().await;
    let meta_sim_url = spawn_meta_sim_with(&[]).await;
    let source_id = test_source(&pool).await;
    let rows = [
        EventRow::new(PIXEL, source_id, lead("live-1"), None),
        EventRow::new(PIXEL, source_id, lead("test-1"), Some("TEST123")),
        EventRow::new(PIXEL, source_id, lead("live-2"), None),
    ];
    insert_rows(&pool, &rows.iter().collect::<Vec<_>>()).await.unwrap();
    let deliverer = Deliverer::new(pool.clone(), delivery_settings(&meta_sim_url, 1000), "codes".into()).unwrap();
    let mut requests = 0;
    loop {
        let round = deliverer.run_once().await.unwrap();
        if round.claimed == 0 {
            break;
        }
        requests += round.requests;
    }
    assert_eq!(requests, 2, "live events in one request, the test event in another");
    let at_meta = events_at_meta(&meta_sim_url).await;
    let code_of = |event_id: &str| {
        at_meta
            .iter()
            .find(|event| event["event_id"] == event_id)
            .map(|event| event["test_event_code"].clone())
            .unwrap()
    };
    assert_eq!(code_of("test-1"), "TEST123");
    assert_eq!(code_of("live-1"), Value::Null);
    assert_eq!(code_of("live-2"), Value::Null);
}
