//! HTTP load on the relay's drop-in endpoint: closed loops (each client sends its next request when the
//! last is answered) for throughput, and an open loop at a fixed request rate for accept latency
//! (`crate::open_loop`: timed from when each request was due, so a slow relay cannot hide its queueing).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::open_loop::{Answer, run_stream};

/// Where the load goes and with which token.
#[derive(Debug, Clone)]
pub struct Target {
    pub base_url: String,
    pub ingest_token: String,
    pub pixel_id: String,
}

/// What a load phase measured.
#[derive(Debug, Clone)]
pub struct LoadFigures {
    pub requests: u64,
    /// Events acknowledged with 200.
    pub events: u64,
    /// Requests answered with anything else, or not at all.
    pub failed_requests: u64,
    pub seconds: f64,
    /// Accept latency in microseconds.
    pub latency: Histogram<u64>,
}

impl LoadFigures {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }

    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }

    pub fn latency_milliseconds(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// One website purchase with raw customer information (so the relay normalises and hashes as it would for
/// real traffic) and an event id unique to `(run, client, sequence)`.
pub fn purchase_event(run: &str, client: usize, sequence: u64, event_time: i64) -> String {
    format!(
        r#"{{"event_name":"Purchase","event_time":{event_time},"event_id":"{run}-{client}-{sequence}","action_source":"website","event_source_url":"https://shop.example/checkout","user_data":{{"em":["Customer.{sequence}@Example.com"],"ph":["+1 (650) 555-{phone:04}"],"fn":"Mary","ln":"O'Brien","ct":"Menlo Park","st":"CA","zp":"94025-1234","country":"us","external_id":"crm-{client}-{sequence}","client_ip_address":"203.0.113.7","client_user_agent":"Mozilla/5.0 (X11; Linux x86_64)","fbc":"fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890","fbp":"fb.1.1558571054389.1098115397"}},"custom_data":{{"currency":"USD","value":{value}.99,"content_ids":["sku-{client}"]}}}}"#,
        phone = sequence % 10_000,
        value = sequence % 200,
    )
}

fn request_body(run: &str, client: usize, first_sequence: u64, events: usize) -> String {
    let event_time = unix_now() - 5;
    let events: Vec<String> = (0..events as u64)
        .map(|offset| purchase_event(run, client, first_sequence + offset, event_time))
        .collect();
    format!(r#"{{"data":[{}]}}"#, events.join(","))
}

/// Sends one request; the relay's HTTP status, if it answered.
async fn send_for_status(http: &reqwest::Client, target: &Target, body: String) -> Option<u16> {
    let answer = http
        .post(format!("{}/v25.0/{}/events", target.base_url, target.pixel_id))
        .bearer_auth(&target.ingest_token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    Some(answer.status().as_u16())
}

/// Sends one request; its events if the relay acknowledged them.
async fn send(http: &reqwest::Client, target: &Target, body: String, events: usize) -> Option<u64> {
    let status = send_for_status(http, target, body).await?;
    (200..300).contains(&status).then_some(events as u64)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

/// `clients` loops, each sending requests of `events_per_request` events until `duration` has passed.
pub async fn closed_loop(
    target: &Target,
    run: &str,
    clients: usize,
    events_per_request: usize,
    duration: Duration,
) -> LoadFigures {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (http, target, run) = (http.clone(), target.clone(), run.to_owned());
        loops.spawn(async move {
            let mut figures = (0_u64, 0_u64, 0_u64, new_histogram());
            let mut sequence = 0_u64;
            while started.elapsed() < duration {
                let body = request_body(&run, client, sequence, events_per_request);
                sequence += events_per_request as u64;
                let sent_at = Instant::now();
                let acknowledged = send(&http, &target, body, events_per_request).await;
                let _ = figures.3.record(sent_at.elapsed().as_micros() as u64);
                figures.0 += 1;
                match acknowledged {
                    Some(events) => figures.1 += events,
                    None => figures.2 += 1,
                }
            }
            figures
        });
    }
    let mut total = LoadFigures {
        requests: 0,
        events: 0,
        failed_requests: 0,
        seconds: 0.0,
        latency: new_histogram(),
    };
    while let Some(Ok((requests, events, failed, latency))) = loops.join_next().await {
        total.requests += requests;
        total.events += events;
        total.failed_requests += failed;
        let _ = total.latency.add(&latency);
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
}

/// One-event requests at `requests_per_second` for `duration`, at most `max_in_flight` outstanding (a
/// request due when that many are outstanding counts as failed: the relay could not keep up).
pub async fn open_loop(
    target: &Target,
    run: &str,
    requests_per_second: u32,
    duration: Duration,
    max_in_flight: usize,
) -> LoadFigures {
    let http = reqwest::Client::new();
    let (target, run) = (target.clone(), run.to_owned());
    let tally = run_stream(
        "relay open loop",
        f64::from(requests_per_second.max(1)),
        duration,
        max_in_flight,
        move |sequence| {
            let body = request_body(&run, 0, sequence, 1);
            let (http, target) = (http.clone(), target.clone());
            async move {
                let status = send_for_status(&http, &target, body).await;
                Answer {
                    status,
                    acknowledged: Vec::new(),
                }
            }
        },
    )
    .await;
    LoadFigures {
        requests: tally.requests + tally.not_sent,
        events: tally.succeeded(),
        failed_requests: tally.not_sent + tally.shed() + tally.failed(),
        seconds: tally.seconds,
        latency: tally.latency,
    }
}
