//! Delivery to Meta's Conversions API: a round leases up to `batch_size` due events of one pixel, sends them
//! as one request (`POST {base_url}/{version}/{pixel_id}/events`, the same event ids on every re-send), and
//! records what Meta's answer means (`answer`): delivered; a batch refused for one invalid event is split in
//! halves until the good events go through and the bad one is a dead letter with Meta's answer; failures
//! and throttling wait and retry. `queue` owns the SQL.

pub mod answer;
pub mod queue;

use std::time::Duration;

use adloop_config::Secret;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::DeliveryMetrics;
use answer::{BatchVerdict, verdict};
use queue::{EventOutcome, LeasedEvent, claim_pixel_batch, finish};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    /// Run delivery workers in this relay (they need `delivery.access_token`).
    pub enabled: bool,
    /// `https://graph.facebook.com` at Meta; meta-sim locally.
    pub base_url: String,
    pub api_version: String,
    /// The token the relay sends to Meta with (a secret: `ADLOOP_DELIVERY__ACCESS_TOKEN` or `_FILE`).
    #[serde(default)]
    pub access_token: Option<Secret<String>>,
    /// Events per request (Meta takes at most 1,000).
    pub batch_size: i64,
    /// Delivery loops in this relay, each with one request to Meta in flight.
    pub workers: usize,
    pub lease_seconds: f64,
    pub poll_interval_milliseconds: u64,
    pub request_timeout_ms: u64,
    /// How long a throttled batch waits before it is sent again.
    pub throttle_wait_seconds: u64,
    /// Delivered and dead events are kept this long (at least Meta's 48 h de-duplication window, so a
    /// re-sent event is still recognised), then pruned.
    pub keep_events_hours: f64,
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub claimed: usize,
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
    pub requests: usize,
}

pub struct Deliverer {
    pool: PgPool,
    http: reqwest::Client,
    settings: DeliverySettings,
    worker_name: String,
    metrics: DeliveryMetrics,
}

/// Posts `events` to the events edge of `pixel_id` with the relay's token (and `test_event_code`, which
/// makes Meta show them in Events Manager's test view only); `None` when Meta did not answer.
pub async fn post_to_meta(
    http: &reqwest::Client,
    settings: &DeliverySettings,
    pixel_id: &str,
    events: Vec<Value>,
    test_event_code: Option<&str>,
) -> Option<(u16, Value)> {
    let token = settings
        .access_token
        .as_ref()
        .map(|token| token.expose().clone())
        .unwrap_or_default();
    let url = format!(
        "{}/{}/{pixel_id}/events",
        settings.base_url.trim_end_matches('/'),
        settings.api_version
    );
    let mut form = vec![("data", Value::Array(events).to_string()), ("access_token", token)];
    if let Some(code) = test_event_code {
        form.push(("test_event_code", code.to_owned()));
    }
    let response = http.post(url).form(&form).send().await.ok()?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Some((status, body))
}

/// Waits after a failure: 2^attempt seconds, at most five minutes.
fn backoff(attempt: i32) -> Duration {
    Duration::from_secs(2_u64.saturating_pow(attempt.clamp(0, 8) as u32).min(300))
}

impl Deliverer {
    pub fn new(pool: PgPool, settings: DeliverySettings, worker_name: String) -> Result<Deliverer, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.request_timeout_ms))
            .build()?;
        Ok(Deliverer {
            pool,
            http,
            settings,
            worker_name,
            metrics: DeliveryMetrics::default(),
        })
    }

    /// Counts into `metrics` (registered in the relay's registry) instead of unregistered ones.
    pub fn with_metrics(mut self, metrics: DeliveryMetrics) -> Deliverer {
        self.metrics = metrics;
        self
    }

    /// Sends one batch; `None` when Meta did not answer.
    async fn send(&self, pixel_id: &str, events: &[&LeasedEvent]) -> Option<(u16, Value)> {
        let bodies = events.iter().map(|event| event.body.clone()).collect();
        post_to_meta(&self.http, &self.settings, pixel_id, bodies, None).await
    }

    /// One round: lease a pixel's batch, send it (splitting on an invalid event), record the outcomes.
    pub async fn run_once(&self) -> Result<DeliveryReport, sqlx::Error> {
        let lease = Duration::from_secs_f64(self.settings.lease_seconds);
        let Some((pixel_id, events)) =
            claim_pixel_batch(&self.pool, &self.worker_name, self.settings.batch_size, lease).await?
        else {
            return Ok(DeliveryReport::default());
        };
        let mut report = DeliveryReport {
            claimed: events.len(),
            ..DeliveryReport::default()
        };
        let mut pending: Vec<Vec<&LeasedEvent>> = vec![events.iter().collect()];
        while let Some(batch) = pending.pop() {
            let answer = self.send(&pixel_id, &batch).await;
            report.requests += 1;
            self.metrics.requests.inc();
            let outcome = match verdict(answer.as_ref().map(|(status, body)| (*status, body))) {
                BatchVerdict::Delivered => EventOutcome::Delivered,
                BatchVerdict::InvalidEvent if batch.len() > 1 => {
                    let (first, second) = batch.split_at(batch.len() / 2);
                    pending.push(second.to_vec());
                    pending.push(first.to_vec());
                    continue;
                }
                BatchVerdict::InvalidEvent => EventOutcome::Dead {
                    error: answer.map(|(_, body)| body).unwrap_or(Value::Null),
                },
                BatchVerdict::Retry => EventOutcome::Retry {
                    delay: backoff(batch.iter().map(|event| event.attempt).max().unwrap_or(1)),
                    error: answer.map_or(json!({"error": "no answer"}), |(_, body)| body),
                },
                BatchVerdict::Throttled => EventOutcome::Retry {
                    delay: Duration::from_secs(self.settings.throttle_wait_seconds),
                    error: answer.map(|(_, body)| body).unwrap_or(Value::Null),
                },
                BatchVerdict::TokenRejected => {
                    tracing::error!(
                        alert = true,
                        pixel_id = %pixel_id,
                        "meta rejected the relay's access token for this pixel (code 190): fix delivery.access_token"
                    );
                    EventOutcome::Retry {
                        delay: Duration::from_secs(300),
                        error: answer.map(|(_, body)| body).unwrap_or(Value::Null),
                    }
                }
            };
            let (counter, name) = match outcome {
                EventOutcome::Delivered => (&mut report.delivered, "delivered"),
                EventOutcome::Retry { .. } => (&mut report.retried, "retried"),
                EventOutcome::Dead { .. } => (&mut report.dead, "dead"),
            };
            let recorded = finish(&self.pool, &self.worker_name, &batch, &outcome).await? as usize;
            *counter += recorded;
            self.metrics.count(name, recorded);
        }
        Ok(report)
    }
}

/// How often the delivery loop prunes events past `keep_events_hours`, and how many at a time.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
const PRUNE_BATCH: i64 = 10_000;

/// Runs delivery rounds until `stop` says so: at once while events are due, then every poll interval; and
/// prunes old delivered and dead events once a minute.
/// Runs delivery rounds until `stop`; the worker that `prunes` also deletes events past the window.
pub fn spawn_delivery(deliverer: Deliverer, mut stop: watch::Receiver<bool>, prunes: bool) -> JoinHandle<()> {
    tokio::spawn(async move {
        let poll_interval = Duration::from_millis(deliverer.settings.poll_interval_milliseconds);
        let keep = Duration::from_secs_f64(deliverer.settings.keep_events_hours * 3600.0);
        let mut last_prune = tokio::time::Instant::now();
        while !*stop.borrow() {
            if prunes && last_prune.elapsed() >= PRUNE_INTERVAL {
                match queue::prune(&deliverer.pool, keep, PRUNE_BATCH).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "pruned events past the de-duplication window"),
                    Err(error) => tracing::warn!(%error, "could not prune old events"),
                }
                last_prune = tokio::time::Instant::now();
            }
            match deliverer.run_once().await {
                Ok(round) if round.claimed > 0 => {
                    tracing::info!(
                        claimed = round.claimed,
                        delivered = round.delivered,
                        retried = round.retried,
                        dead = round.dead,
                        requests = round.requests,
                        "delivery round"
                    );
                    continue;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "delivery round failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(poll_interval) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!("delivery stopped");
    })
}
