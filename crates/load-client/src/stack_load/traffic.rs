//! The steady load: four request streams at fixed rates (open loops, each request timed from when it was
//! due), each remembering what the services acknowledged so the run can look for every bit of it afterwards.
//! - budget changes through gateway-api's API (5 a request) for random ad sets of meta-sim's world;
//! - allocations through gateway-api (ml-service's `Allocate`, its score cache and Redis);
//! - learning events through gateway-api (ml-service's event-sourced instant learner);
//! - website purchases through capi-relay's drop-in endpoint (10 a request), delivered to meta-sim.

use std::future::Future;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::open_loop::Answer;
use crate::relay_bench::purchase_event;

pub const CHANGES_PER_REQUEST: u64 = 5;
pub const EVENTS_PER_RELAY_REQUEST: u64 = 10;

/// A well-mixed 64-bit hash of a sequence number (SplitMix64): the streams' "random" choices, the same in
/// every run.
pub fn mixed(sequence: u64) -> u64 {
    let mut value = sequence.wrapping_add(0x9E37_79B9_7F4A_7C15);
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

/// An ad set of meta-sim's world, as a change names it.
#[derive(Debug, Clone)]
pub struct AdSetTarget {
    pub ad_account_id: String,
    pub campaign_id: String,
    pub ad_set_id: String,
}

pub fn ad_sets_of(world: &Value) -> Vec<AdSetTarget> {
    world["objects"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|object| object["kind"] == "ad_set")
        .map(|object| AdSetTarget {
            ad_account_id: object["account_id"].as_str().unwrap_or_default().to_owned(),
            campaign_id: object["campaign_id"].as_str().unwrap_or_default().to_owned(),
            ad_set_id: object["id"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// Where the streams send, and with which credentials.
#[derive(Clone)]
pub struct Targets {
    pub http: reqwest::Client,
    pub gateway_url: String,
    pub api_key: String,
    pub relay_url: String,
    pub ingest_token: String,
    pub pixel_id: String,
    pub ad_sets: Arc<Vec<AdSetTarget>>,
    /// Distinguishes this run's ids from any earlier run's.
    pub run_id: String,
}

async fn post(request: reqwest::RequestBuilder) -> (Option<u16>, Value) {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (Some(status), response.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (None, Value::Null),
    }
}

/// Five budget changes, each to a random ad set and within ±8% of the world's 50.00 USD (inside the default
/// 20% step and net-change guardrails whatever order they are applied in).
pub fn change_request(targets: &Targets, sequence: u64) -> impl Future<Output = Answer> + Send + use<> {
    let changes: Vec<Value> = (0..CHANGES_PER_REQUEST)
        .map(|index| {
            let draw = mixed(sequence * CHANGES_PER_REQUEST + index);
            let ad_set = &targets.ad_sets[(draw % targets.ad_sets.len() as u64) as usize];
            let amount = 4_600 + (draw >> 32) % 801;
            json!({
                "ad_account_id": ad_set.ad_account_id,
                "campaign_id": ad_set.campaign_id,
                "ad_set_id": ad_set.ad_set_id,
                "kind": "budget_set",
                "currency": "USD",
                "amount": amount,
                "reason": "stack load",
                "confidence": 0.9,
                "idempotency_key": format!("{}-{sequence}-{index}", targets.run_id),
            })
        })
        .collect();
    let request = targets
        .http
        .post(format!("{}/v1/ad-changes", targets.gateway_url))
        .bearer_auth(&targets.api_key)
        .json(&json!({ "changes": changes }));
    async move {
        let (status, body) = post(request).await;
        let acknowledged = if status.is_some_and(|status| status == 200) {
            body["changes"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|change| change["id"].as_i64().map(|id| id.to_string()))
                .collect()
        } else {
            Vec::new()
        };
        Answer { status, acknowledged }
    }
}

/// An allocation for one of 20 accounts of 10 ads whose delivery grows a little every 50 requests: repeated
/// states the score cache may serve, and new ones it must compute.
pub fn allocation_request(targets: &Targets, sequence: u64) -> impl Future<Output = Answer> + Send + use<> {
    let account = sequence % 20;
    let growth = 1 + sequence / 50;
    let ads: Vec<Value> = (0..10_u64)
        .map(|ad| {
            let impressions = 10_000 * growth + 1_000 * ad;
            let clicks = impressions * (8 + ad) / 1_000;
            json!({
                "ad_id": format!("load-{account}-{ad}"),
                "impressions": impressions,
                "clicks": clicks,
                "conversions": clicks * (2 + ad % 3) / 100,
                "spend": impressions,
                "conversion_value": clicks * (2 + ad % 3) * 50,
                "age_hours": 240,
                "current_daily_budget": 10_000,
            })
        })
        .collect();
    let request = targets
        .http
        .post(format!("{}/v1/allocations", targets.gateway_url))
        .bearer_auth(&targets.api_key)
        .json(&json!({ "currency": "USD", "total_daily_budget": 100_000, "ads": ads }));
    async move {
        let (status, _) = post(request).await;
        Answer {
            status,
            acknowledged: Vec::new(),
        }
    }
}

/// One delivery update for the instant learner, with an id of its own.
pub fn learning_request(targets: &Targets, sequence: u64) -> impl Future<Output = Answer> + Send + use<> {
    let draw = mixed(sequence ^ 0x5EED);
    let event_id = format!("{}-learning-{sequence}", targets.run_id);
    let impressions = 500 + draw % 500;
    let request = targets
        .http
        .post(format!("{}/api/internal/learning/event", targets.gateway_url))
        .bearer_auth(&targets.api_key)
        .json(&json!({
            "event_id": event_id,
            "ad_id": format!("load-ad-{}", draw % 50),
            "account_id": format!("act_{}", 1 + draw % 4),
            "features": { "has_number": draw.is_multiple_of(2), "has_question": draw.is_multiple_of(3), "hook_type": "testimonial" },
            "impressions": impressions,
            "clicks": impressions / 100,
            "matured_clicks": impressions / 100,
            "conversions": draw % 3,
        }));
    async move {
        let (status, _) = post(request).await;
        let acknowledged = if status == Some(200) {
            vec![event_id]
        } else {
            Vec::new()
        };
        Answer { status, acknowledged }
    }
}

/// Ten website purchases with raw customer data for the relay to normalise and hash.
pub fn relay_request(targets: &Targets, sequence: u64) -> impl Future<Output = Answer> + Send + use<> {
    let event_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64 - 5)
        .unwrap_or(0);
    let first = sequence * EVENTS_PER_RELAY_REQUEST;
    let events: Vec<String> = (first..first + EVENTS_PER_RELAY_REQUEST)
        .map(|number| purchase_event(&targets.run_id, 0, number, event_time))
        .collect();
    let event_ids: Vec<String> = (first..first + EVENTS_PER_RELAY_REQUEST)
        .map(|number| format!("{}-0-{number}", targets.run_id))
        .collect();
    let request = targets
        .http
        .post(format!("{}/v25.0/{}/events", targets.relay_url, targets.pixel_id))
        .bearer_auth(&targets.ingest_token)
        .header("content-type", "application/json")
        .body(format!(r#"{{"data":[{}]}}"#, events.join(",")));
    async move {
        let (status, _) = post(request).await;
        let acknowledged = if status == Some(200) { event_ids } else { Vec::new() };
        Answer { status, acknowledged }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_spreads_consecutive_numbers() {
        let buckets: std::collections::HashSet<u64> = (0..100).map(|sequence| mixed(sequence) % 10).collect();
        assert_eq!(buckets.len(), 10);
    }
}
