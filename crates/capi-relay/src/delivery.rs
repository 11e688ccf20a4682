//! Delivery to Meta's Conversions API: a round leases up to `batch_size` due events of one pixel, sends them
//! as one request (`POST {base_url}/{version}/{pixel_id}/events`, the same event ids on every re-send), and
//! records what Meta's answer means (`answer`): delivered; a batch refused for one invalid event is split in
//! halves until the good events go through and the bad one is a dead letter with Meta's answer; failures
//! and throttling wait and retry. `queue` owns the SQL.

pub mod answer;
pub mod queue;
pub mod settings;

pub use settings::{DeliverySettings, PixelCredentials};

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::DeliveryMetrics;
use answer::{BatchVerdict, names_a_refused_event, verdict};
use queue::{EventOutcome, LeasedEvent, PixelBatch, claim_pixel_batch, finish, pause_pixel};

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
    let Some(credentials) = settings.credentials_for(pixel_id) else {
        // Nothing can be sent without a token: answered as Meta answers a bad one, so the pixel pauses.
        return Some((
            401,
            json!({ "error": { "code": 190, "message": "adloop: no access token is configured for this pixel" } }),
        ));
    };
    let url = format!(
        "{}/{}/{pixel_id}/events",
        settings.base_url.trim_end_matches('/'),
        settings.api_version
    );
    let mut form: Vec<(&str, String)> = vec![("data", Value::Array(events).to_string())];
    form.extend(credentials);
    if let Some(code) = test_event_code {
        form.push(("test_event_code", code.to_owned()));
    }
    let response = http.post(url).form(&form).send().await.ok()?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Some((status, body))
}

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
    async fn send(&self, batch: &PixelBatch, events: &[&LeasedEvent]) -> Option<(u16, Value)> {
        let bodies = events.iter().map(|event| event.body.clone()).collect();
        post_to_meta(
            &self.http,
            &self.settings,
            &batch.pixel_id,
            bodies,
            batch.test_event_code.as_deref(),
        )
        .await
    }

    /// One round: lease a pixel's batch, send it (splitting on an invalid event), record the outcomes.
    pub async fn run_once(&self) -> Result<DeliveryReport, sqlx::Error> {
        let lease = Duration::from_secs_f64(self.settings.lease_seconds);
        let Some(claimed) = claim_pixel_batch(&self.pool, &self.worker_name, self.settings.batch_size, lease).await?
        else {
            return Ok(DeliveryReport::default());
        };
        let mut report = DeliveryReport {
            claimed: claimed.events.len(),
            ..DeliveryReport::default()
        };
        // Single events Meta refused without naming them (no 2804xxx subcode): bad events if anything else
        // of the batch went through, otherwise most likely a request-level problem (token, app secret,
        // permissions) that dead-lettering would turn into lost conversions.
        let mut refused_unnamed: Vec<(&LeasedEvent, Value)> = Vec::new();
        let mut pending: Vec<Vec<&LeasedEvent>> = vec![claimed.events.iter().collect()];
        while let Some(batch) = pending.pop() {
            let answer = self.send(&claimed, &batch).await;
            report.requests += 1;
            self.metrics.requests.inc();
            let body = || answer.as_ref().map(|(_, body)| body.clone()).unwrap_or(Value::Null);
            let outcome = match verdict(answer.as_ref().map(|(status, body)| (*status, body))) {
                BatchVerdict::Delivered => EventOutcome::Delivered,
                BatchVerdict::InvalidEvent if batch.len() > 1 => {
                    let (first, second) = batch.split_at(batch.len() / 2);
                    pending.push(second.to_vec());
                    pending.push(first.to_vec());
                    continue;
                }
                BatchVerdict::InvalidEvent if !names_a_refused_event(&body()) => {
                    refused_unnamed.push((batch[0], body()));
                    continue;
                }
                BatchVerdict::InvalidEvent => EventOutcome::Dead { error: body() },
                BatchVerdict::Retry => EventOutcome::Retry {
                    delay: backoff(batch.iter().map(|event| event.attempt).max().unwrap_or(1)),
                    error: answer
                        .as_ref()
                        .map_or(json!({"error": "no answer"}), |(_, body)| body.clone()),
                },
                BatchVerdict::Throttled => EventOutcome::Retry {
                    delay: Duration::from_secs(self.settings.throttle_wait_seconds),
                    error: body(),
                },
                BatchVerdict::TokenRejected => {
                    self.pause(
                        &claimed.pixel_id,
                        body(),
                        "meta rejected the access token for this pixel (code 190), or it has none",
                    )
                    .await?
                }
            };
            self.record(&batch, &outcome, &mut report).await?;
        }
        self.settle_refused_unnamed(&claimed.pixel_id, refused_unnamed, &mut report)
            .await?;
        Ok(report)
    }

    /// Single events refused without Meta naming them: dead letters when other events of the batch went
    /// through (so the request itself was fine) or after `UNNAMED_REFUSALS_BEFORE_DEAD` attempts; otherwise
    /// the pixel pauses with an alert and they wait.
    async fn settle_refused_unnamed(
        &self,
        pixel_id: &str,
        refused: Vec<(&LeasedEvent, Value)>,
        report: &mut DeliveryReport,
    ) -> Result<(), sqlx::Error> {
        let Some((_, last_answer)) = refused.last() else {
            return Ok(());
        };
        let request_was_fine = report.delivered > 0;
        let pause = if request_was_fine {
            None
        } else {
            Some(
                self.pause(
                    pixel_id,
                    last_answer.clone(),
                    "meta refused every event of a batch without naming one (code 100): check the pixel's token, \
                     app secret and permissions",
                )
                .await?,
            )
        };
        for (event, answer) in refused {
            let outcome = match &pause {
                Some(pause) if event.attempt < UNNAMED_REFUSALS_BEFORE_DEAD => pause.clone(),
                _ => EventOutcome::Dead { error: answer },
            };
            self.record(&[event], &outcome, report).await?;
        }
        Ok(())
    }

    /// Pauses `pixel_id` (its pending events wait, an alert is logged and counted); the outcome for the
    /// events at hand.
    async fn pause(&self, pixel_id: &str, reason: Value, why: &str) -> Result<EventOutcome, sqlx::Error> {
        let pause = Duration::from_secs(self.settings.token_error_pause_seconds);
        tracing::error!(
            alert = true,
            pixel_id = %pixel_id,
            pause_seconds = pause.as_secs(),
            why,
            "delivery for a pixel is paused; fix it, then `capi-relay pixels resume --pixel {pixel_id}`"
        );
        pause_pixel(&self.pool, pixel_id, pause, &reason).await?;
        self.metrics.pixel_pauses.inc();
        Ok(EventOutcome::Retry {
            delay: pause,
            error: reason,
        })
    }

    /// Records `outcome` for `batch` (fenced on the lease) and counts it.
    async fn record(
        &self,
        batch: &[&LeasedEvent],
        outcome: &EventOutcome,
        report: &mut DeliveryReport,
    ) -> Result<(), sqlx::Error> {
        let (counter, name) = match outcome {
            EventOutcome::Delivered => (&mut report.delivered, "delivered"),
            EventOutcome::Retry { .. } => (&mut report.retried, "retried"),
            EventOutcome::Dead { .. } => (&mut report.dead, "dead"),
        };
        let recorded = finish(&self.pool, &self.worker_name, batch, outcome).await? as usize;
        *counter += recorded;
        self.metrics.count(name, recorded);
        if *outcome == EventOutcome::Delivered && recorded > 0 {
            for event in batch {
                self.metrics.delivery_lag_seconds.observe(event.seconds_since_received);
            }
        }
        Ok(())
    }
}

/// Attempts after which an event Meta keeps refusing without naming it is a dead letter even when nothing
/// else of its batch went through.
const UNNAMED_REFUSALS_BEFORE_DEAD: i32 = 3;

const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
const BACKLOG_MEASURE_INTERVAL: Duration = Duration::from_secs(15);
const PRUNE_BATCH: i64 = 10_000;

/// Runs delivery rounds until `stop` says so: at once while events are due, then every poll interval. Loop
/// `loop_index` of `loop_count` first polls `loop_index / loop_count` of an interval late, so the loops take
/// turns instead of polling together and splitting a pixel's few due events into several requests. Loop 0
/// also deletes delivered and dead events past the window once a minute, and measures the backlog's age
/// (`oldest_due_event_seconds`) every 15 s.
pub fn spawn_delivery(
    deliverer: Deliverer,
    mut stop: watch::Receiver<bool>,
    loop_index: usize,
    loop_count: usize,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let poll_interval = Duration::from_millis(deliverer.settings.poll_interval_milliseconds);
        let prunes = loop_index == 0;
        let first_poll_after = poll_interval.mul_f64(loop_index as f64 / loop_count.max(1) as f64);
        tokio::select! {
            () = tokio::time::sleep(first_poll_after) => {}
            _ = stop.changed() => {}
        }
        let keep = Duration::from_secs_f64(deliverer.settings.keep_events_hours * 3600.0);
        let mut last_prune = tokio::time::Instant::now();
        let mut last_backlog_measure: Option<tokio::time::Instant> = None;
        while !*stop.borrow() {
            if prunes && last_backlog_measure.is_none_or(|measured| measured.elapsed() >= BACKLOG_MEASURE_INTERVAL) {
                match queue::oldest_due_seconds(&deliverer.pool).await {
                    Ok(seconds) => {
                        deliverer.metrics.oldest_due_event_seconds.set(seconds);
                    }
                    Err(error) => tracing::warn!(%error, "could not measure the delivery backlog"),
                }
                last_backlog_measure = Some(tokio::time::Instant::now());
            }
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
