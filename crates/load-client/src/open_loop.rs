//! The open loop every load client here uses: requests sent at a fixed rate whatever the service answers,
//! each timed from when it was due (so a slow service cannot hide its queueing: no coordinated omission),
//! with a bound on requests outstanding.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// What one request came to: its HTTP status (none when no answer came) and the ids the service
/// acknowledged with it.
pub struct Answer {
    pub status: Option<u16>,
    pub acknowledged: Vec<String>,
}

/// One stream's tally.
#[derive(Debug, Clone)]
pub struct StreamTally {
    pub name: &'static str,
    pub requests: u64,
    /// Requests the load client could not send because `max_in_flight` were outstanding (the service fell
    /// behind the rate).
    pub not_sent: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub acknowledged: Vec<String>,
    /// Microseconds from when each request was due to its answer.
    pub latency: Histogram<u64>,
    pub seconds: f64,
}

impl StreamTally {
    pub fn count(&self, predicate: impl Fn(u16) -> bool) -> u64 {
        self.statuses
            .iter()
            .filter(|(status, _)| predicate(**status))
            .map(|(_, count)| count)
            .sum()
    }

    /// 2xx answers.
    pub fn succeeded(&self) -> u64 {
        self.count(|status| (200..300).contains(&status))
    }

    /// 429: load shed by the service's bounds, a correct answer under overload.
    pub fn shed(&self) -> u64 {
        self.count(|status| status == 429)
    }

    /// Anything but 2xx and 429, and requests that got no answer: each one is a defect under this load.
    pub fn failed(&self) -> u64 {
        self.count(|status| !(200..300).contains(&status) && status != 429) + self.transport_errors
    }

    pub fn latency_milliseconds(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Sends `make(sequence)` at `rate_per_second` for `duration`, at most `max_in_flight` outstanding.
pub async fn run_stream<Make, Request>(
    name: &'static str,
    rate_per_second: f64,
    duration: Duration,
    max_in_flight: usize,
    make: Make,
) -> StreamTally
where
    Make: Fn(u64) -> Request,
    Request: Future<Output = Answer> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate_per_second.max(0.001));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    let mut tally = StreamTally {
        name,
        requests: 0,
        not_sent: 0,
        statuses: BTreeMap::new(),
        transport_errors: 0,
        acknowledged: Vec::new(),
        latency: Histogram::new_with_bounds(1, 300_000_000, 3).expect("valid histogram bounds"),
        seconds: 0.0,
    };
    let mut sequence = 0_u64;
    loop {
        let due = started + interval.mul_f64(sequence as f64);
        if due.duration_since(started) >= duration {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        sequence += 1;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            tally.not_sent += 1;
            continue;
        };
        let request = make(sequence);
        requests.spawn(async move {
            let answer = request.await;
            drop(permit);
            (due.elapsed().as_micros() as u64, answer)
        });
        tally.requests += 1;
    }
    while let Some(joined) = requests.join_next().await {
        let Ok((latency_micros, answer)) = joined else {
            tally.transport_errors += 1;
            continue;
        };
        let _ = tally.latency.record(latency_micros.max(1));
        match answer.status {
            Some(status) => *tally.statuses.entry(status).or_default() += 1,
            None => tally.transport_errors += 1,
        }
        tally.acknowledged.extend(answer.acknowledged);
    }
    tally.seconds = started.elapsed().as_secs_f64();
    tally
}
