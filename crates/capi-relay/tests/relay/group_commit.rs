//! Group commit through the real relay: concurrent requests share inserts, every request's answer still
//! says what became of its own events, and nothing is acknowledged that is not stored.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::ingest::{PIXEL, purchase, spawn_relay_with};

/// A value of the relay's `/metrics` text (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    adloop_telemetry::metrics::sample_value(text, name).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_inserts_and_each_answer_counts_its_own_events() {
    // One writer, so concurrent requests can only be stored by sharing its inserts.
    let relay = spawn_relay_with(&[("ADLOOP_INGEST__COMMIT_WRITERS", "1")]).await;
    let http = reqwest::Client::new();
    // 60 requests of one event; every third repeats an earlier request's event id.
    let order_of = |request: usize| {
        if request % 3 == 2 {
            format!("order-{}", request - 1)
        } else {
            format!("order-{request}")
        }
    };
    let answers = join_all_spawned(
        (0..60)
            .map(|request| {
                let body = json!({ "data": [purchase(&order_of(request))], "access_token": relay.token });
                let request_to = http
                    .post(format!("{}/v25.0/{PIXEL}/events", relay.base_url))
                    .json(&body);
                async move {
                    let answer = request_to.send().await.unwrap();
                    (answer.status().as_u16(), answer.json::<Value>().await.unwrap())
                }
            })
            .collect(),
    )
    .await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    let distinct_orders: HashSet<String> = (0..60).map(order_of).collect();
    let stored: u64 = answers
        .iter()
        .map(|(_, answer)| answer["adloop"]["stored"].as_u64().unwrap())
        .sum();
    let deduplicated: u64 = answers
        .iter()
        .map(|(_, answer)| answer["adloop"]["deduplicated"].as_u64().unwrap())
        .sum();
    assert_eq!(
        stored as usize,
        distinct_orders.len(),
        "each distinct event is stored by exactly one answer"
    );
    assert_eq!(stored + deduplicated, 60);
    let in_table: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&relay.pool)
        .await
        .unwrap();
    assert_eq!(in_table as usize, distinct_orders.len());

    let metrics = reqwest::get(format!("{}/metrics", relay.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let inserts = metric(&metrics, "adloop_relay_commit_requests_count");
    let requests = metric(&metrics, "adloop_relay_commit_requests_sum");
    assert_eq!(requests, 60.0, "{metrics}");
    assert!(
        inserts < requests,
        "60 concurrent requests took {inserts} inserts: none shared one"
    );
}

/// Runs every future concurrently on this runtime and returns their outputs in order.
async fn join_all_spawned<T: Send + 'static>(
    futures: Vec<impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

#[tokio::test]
async fn a_body_larger_than_the_limit_is_refused_before_it_is_read() {
    let relay = spawn_relay_with(&[]).await;
    let oversized = vec![b' '; 9 * 1024 * 1024];
    let answer = reqwest::Client::new()
        .post(format!("{}/v25.0/{PIXEL}/events", relay.base_url))
        .bearer_auth(&relay.token)
        .header("content-type", "application/json")
        .body(oversized)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 413);
    let error: Value = answer.json().await.unwrap();
    assert_eq!(error["error"]["code"], 100, "{error}");
}
