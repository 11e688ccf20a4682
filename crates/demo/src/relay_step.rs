//! Conversions through capi-relay: purchases attributed to the allocated ads are sent to the relay in
//! adloop's own event shape with the dev ingest token, followed until meta-sim's Conversions API has them
//! and the relay has forwarded them to ml-service's learner (which learns each with its ad's creative flags).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::report::StepOutcome;
use crate::steps::ServiceEndpoints;

const CONVERSIONS: usize = 20;
const DELIVERY_DEADLINE: Duration = Duration::from_secs(30);

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// Twenty purchases, each attributed to one of `ad_ids` in turn, with ids unique to this run.
fn purchases(ad_ids: &[String]) -> Vec<Value> {
    let now = unix_now();
    (0..CONVERSIONS)
        .map(|index| {
            json!({
                "event_name": "Purchase",
                "event_time": now - 60,
                "event_id": format!("make-run-{now}-{index}"),
                "action_source": "website",
                "event_source_url": "https://shop.example/checkout",
                "customer": {
                    "email": format!("customer{index}@example.com"),
                    "phone": format!("+1 650 555 {:04}", 1000 + index),
                    "client_user_agent": "adloop make run",
                    "client_ip_address": "203.0.113.7",
                },
                "value_minor": 2500 + 100 * index as i64,
                "currency": "USD",
                "ad_id": ad_ids.get(index % ad_ids.len().max(1)).cloned().unwrap_or_else(|| "120330000000000001".into()),
            })
        })
        .collect()
}

/// A counter of the relay's `/metrics` (0 when absent).
fn counter(metrics: &str, name: &str) -> f64 {
    adloop_telemetry::metrics::sample_value(metrics, name).unwrap_or(0.0)
}

/// Conversions the relay has forwarded to ml-service's learner since it started.
async fn forwarded_count(http: &reqwest::Client, endpoints: &ServiceEndpoints) -> f64 {
    let metrics = match http.get(format!("{}/metrics", endpoints.relay_url)).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    counter(
        &metrics,
        "adloop_relay_learning_conversions_total{outcome=\"forwarded\"}",
    )
}

async fn delivered_count(http: &reqwest::Client, endpoints: &ServiceEndpoints, event_ids: &[String]) -> usize {
    let mut delivered = 0;
    for event_id in event_ids {
        let answer = http
            .get(format!("{}/v1/events/{event_id}", endpoints.relay_url))
            .query(&[("pixel_id", endpoints.dev_pixel_id.as_str())])
            .bearer_auth(&endpoints.dev_ingest_token)
            .send()
            .await;
        let Ok(answer) = answer else { continue };
        let status: Value = answer.json().await.unwrap_or_default();
        if status["events"][0]["state"] == "delivered" {
            delivered += 1;
        }
    }
    delivered
}

pub async fn send_conversions_through_relay(
    http: &reqwest::Client,
    endpoints: &ServiceEndpoints,
    ad_ids: &[String],
) -> StepOutcome {
    let step_name = "conversions (relay → meta-sim, relay → learner)";
    let forwarded_before = forwarded_count(http, endpoints).await;
    let events = purchases(ad_ids);
    let event_ids: Vec<String> = events
        .iter()
        .filter_map(|event| event["event_id"].as_str().map(str::to_owned))
        .collect();
    let started = Instant::now();
    let answer = http
        .post(format!("{}/v1/events", endpoints.relay_url))
        .bearer_auth(&endpoints.dev_ingest_token)
        .json(&json!({ "pixel_id": endpoints.dev_pixel_id, "events": events }))
        .send()
        .await;
    let answer: Value = match answer {
        Ok(response) if response.status().is_success() => response.json().await.unwrap_or_default(),
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return StepOutcome::failed(step_name, format!("the relay answered {status}: {body}"));
        }
        Err(error) => {
            return StepOutcome::failed(
                step_name,
                format!("no answer from the relay: {}", crate::request_failure(error)),
            );
        }
    };
    let mut delivered = 0;
    let mut forwarded = 0.0;
    while started.elapsed() < DELIVERY_DEADLINE {
        delivered = delivered_count(http, endpoints, &event_ids).await;
        forwarded = forwarded_count(http, endpoints).await - forwarded_before;
        if delivered == event_ids.len() && forwarded >= event_ids.len() as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let detail = format!(
        "{} accepted ({} stored); after {seconds:.1} s, {delivered} of {} delivered to meta-sim's Conversions API and \
         {forwarded} forwarded to ml-service's learner",
        answer["accepted"].as_array().map_or(0, Vec::len),
        answer["stored"],
        event_ids.len(),
    );
    if delivered == event_ids.len() && forwarded >= event_ids.len() as f64 {
        StepOutcome::passed(step_name, detail)
    } else {
        StepOutcome::failed(step_name, detail)
    }
}
