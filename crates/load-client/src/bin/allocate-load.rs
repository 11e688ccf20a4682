//! gRPC `Allocate` under load: a 100-ad account (two weeks old) sent by concurrent clients for a fixed time.
//!
//!     allocate-load <address> [concurrency] [seconds] [polling|cold]
//!
//! `polling` repeats the account as a poller would (the score cache answers); `cold` gives every request a
//! new seed, so every ad's draws are computed (the cache never hits). Prints throughput and latency
//! percentiles from an HDR histogram.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adloop_load::requests::{hundred_ad_scenario, request_for};
use adloop_proto::ml::v1 as proto;
use adloop_proto::ml::v1::ml_service_client::MlServiceClient;
use campaign_sim::World;
use hdrhistogram::Histogram;

fn money(minor_units: i64, currency: &str) -> Option<proto::Money> {
    Some(proto::Money {
        minor_units,
        currency: currency.to_owned(),
    })
}

/// The allocator's request in the contract's terms.
fn grpc_request(request: &adloop_allocator::AllocationRequest) -> proto::AllocateRequest {
    let currency = request.currency.code();
    proto::AllocateRequest {
        ads: request
            .ads
            .iter()
            .map(|ad| proto::AdState {
                ids: Some(proto::AdIds {
                    account_id: ad.ids.account_id.clone(),
                    campaign_id: ad.ids.campaign_id.clone(),
                    ad_set_id: ad.ids.ad_set_id.clone(),
                    ad_id: ad.ids.ad_id.clone(),
                }),
                impressions: ad.impressions as i64,
                clicks: ad.clicks as i64,
                conversions: ad.conversions as i64,
                spend: money(ad.spend.get(), currency),
                conversion_value: money(ad.conversion_value.get(), currency),
                age_hours: ad.age_hours,
                current_daily_budget: money(ad.current_daily_budget.get(), currency),
                status: proto::AdStatus::Active as i32,
                recent: ad.recent.map(|recent| proto::RecentWindow {
                    hours: recent.hours,
                    impressions: recent.impressions as i64,
                    clicks: recent.clicks as i64,
                    spend: money(recent.spend.get(), currency),
                    conversions: recent.conversions as i64,
                    conversion_value: money(recent.conversion_value.get(), currency),
                }),
                frequency: ad.frequency,
                ..Default::default()
            })
            .collect(),
        total_daily_budget: money(request.total_daily_budget.get(), currency),
        constraints: Some(proto::AllocationConstraints {
            per_ad_floor: money(100, currency),
            per_ad_cap: None,
            max_change_fraction: 0.5,
        }),
        seed: 0,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().collect();
    let address = arguments
        .get(1)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("usage: allocate-load <address> [concurrency] [seconds] [polling|cold]"))?;
    let concurrency: usize = arguments.get(2).and_then(|text| text.parse().ok()).unwrap_or(8);
    let seconds: u64 = arguments.get(3).and_then(|text| text.parse().ok()).unwrap_or(10);
    let cold = arguments.get(4).is_some_and(|mode| mode == "cold");

    let scenario = hundred_ad_scenario();
    let mut world = World::new(&scenario, 3);
    for _ in 0..14 * 24 {
        world.advance();
    }
    let request = Arc::new(grpc_request(&request_for(world.observation())));
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?;
    let channel = endpoint.connect().await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let next_seed = Arc::new(AtomicU64::new(1));
    let failures = Arc::new(AtomicU64::new(0));

    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut client = MlServiceClient::new(channel.clone());
        let request = Arc::clone(&request);
        let next_seed = Arc::clone(&next_seed);
        let failures = Arc::clone(&failures);
        workers.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
            while Instant::now() < deadline {
                let mut message = (*request).clone();
                if cold {
                    message.seed = next_seed.fetch_add(1, Ordering::Relaxed);
                }
                let started = Instant::now();
                match client.allocate(message).await {
                    Ok(_) => {
                        let _ = histogram.record(started.elapsed().as_micros() as u64);
                    }
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            histogram
        }));
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for worker in workers {
        histogram.add(worker.await?)?;
    }
    let requests = histogram.len();
    println!(
        "Allocate, 100 ads, {} mode, {concurrency} concurrent clients, {seconds} s: {requests} requests ({:.0}/s), p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} failed",
        if cold {
            "cold (no cache hits)"
        } else {
            "polling (cache hits)"
        },
        requests as f64 / seconds as f64,
        histogram.value_at_quantile(0.50) as f64 / 1000.0,
        histogram.value_at_quantile(0.90) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
        failures.load(Ordering::Relaxed),
    );
    Ok(())
}
