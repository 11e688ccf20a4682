//! gRPC `Allocate` under load: an account (two weeks old, 100 ads unless `--ads` says otherwise) sent by
//! concurrent clients for a fixed time.
//!
//!     allocate-load --address 127.0.0.1:50051 [--concurrency 8] [--seconds 10] [--mode polling|cold]
//!                   [--ads 100] [--server-pid PID]
//!
//! `polling` repeats the account as a poller would (the score cache answers); `cold` gives every request a
//! new seed, so every ad's draws are computed (the cache never hits). Prints throughput and latency
//! percentiles from an HDR histogram. Given ml-service's process id (on this machine), it also prints the
//! server's CPU time per request next to the CPU time of the same allocation computed in this process
//! without any cache, both measured in this run, and the server's largest resident memory during the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adloop_load::requests::{account_scenario, request_for};
use adloop_proto::ml::v1 as proto;
use adloop_proto::ml::v1::ml_service_client::MlServiceClient;
use campaign_sim::World;
use hdrhistogram::Histogram;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// The same account every time: the score cache answers.
    Polling,
    /// A new seed every request: every ad's draws are computed.
    Cold,
}

#[derive(Debug, clap::Parser)]
#[command(about = "gRPC Allocate under load")]
struct Arguments {
    /// ml-service's gRPC address, host:port.
    #[arg(long)]
    address: String,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, value_enum, default_value_t = Mode::Polling)]
    mode: Mode,
    /// Ads in the account.
    #[arg(long, default_value_t = 100)]
    ads: usize,
    /// ml-service's process id, to read its CPU time and resident memory.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = <Arguments as clap::Parser>::parse();
    let cold = arguments.mode == Mode::Cold;
    let (concurrency, seconds) = (arguments.concurrency, arguments.seconds);

    let scenario = account_scenario(arguments.ads);
    let mut world = World::new(&scenario, 3);
    for _ in 0..14 * 24 {
        world.advance();
    }
    let allocation_request = request_for(world.observation());
    let request = Arc::new(proto::AllocateRequest::from(&allocation_request));
    let in_process_cpu = arguments
        .server_pid
        .map(|_| in_process_cpu_per_allocation(&allocation_request));
    let server_cpu_before = arguments.server_pid.map(process_cpu_seconds).transpose()?;
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", arguments.address))?;
    let channel = endpoint.connect().await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let next_seed = Arc::new(AtomicU64::new(1));
    let failures = Arc::new(AtomicU64::new(0));
    let largest_resident_bytes = Arc::new(AtomicU64::new(0));
    if let Some(pid) = arguments.server_pid {
        let largest = Arc::clone(&largest_resident_bytes);
        tokio::spawn(async move {
            while Instant::now() < deadline {
                if let Ok(resident) = resident_bytes(pid) {
                    largest.fetch_max(resident, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }

    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut client = MlServiceClient::new(channel.clone()).max_decoding_message_size(64 * 1024 * 1024);
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
                    Err(status) => {
                        if failures.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("first failure: {:?} {}", status.code(), status.message());
                        }
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
        "Allocate, {} ads, {} mode, {concurrency} concurrent clients, {seconds} s: {requests} requests ({:.0}/s), p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} failed",
        arguments.ads,
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
    if let (Some(pid), Some(before), Some(in_process)) = (arguments.server_pid, server_cpu_before, in_process_cpu) {
        let server_cpu_per_request = (process_cpu_seconds(pid)? - before) / requests.max(1) as f64;
        println!(
            "CPU per request: ml-service {:.2} ms; the same allocation in process, no cache, {:.2} ms; ratio {:.2}",
            server_cpu_per_request * 1000.0,
            in_process * 1000.0,
            server_cpu_per_request / in_process
        );
        println!(
            "ml-service resident memory: largest {:.0} MiB during the run (sampled every 200 ms), {:.0} MiB at the end",
            largest_resident_bytes.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0),
            resident_bytes(pid)? as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}

/// Resident memory of a process (Linux `/proc/<pid>/status`, VmRSS).
fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kibibytes = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))?
        .parse::<u64>()?;
    Ok(kibibytes * 1024)
}

/// User + system CPU seconds a process has used (Linux `/proc/<pid>/stat`, in 1/100 s ticks).
fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses and may hold spaces): utime is the 12th, stime
    // the 13th.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(index)
            .ok_or_else(|| anyhow::anyhow!("short /proc/{pid}/stat"))?
            .parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// CPU seconds one uncached allocation of `request` takes in this process (the allocator library alone).
fn in_process_cpu_per_allocation(request: &adloop_allocator::AllocationRequest) -> f64 {
    const ROUNDS: u32 = 300;
    let config = adloop_allocator::AllocatorConfig::default();
    let pid = std::process::id();
    let before = process_cpu_seconds(pid).unwrap_or(0.0);
    for _ in 0..ROUNDS {
        std::hint::black_box(adloop_allocator::allocate(request, &config).ok());
    }
    (process_cpu_seconds(pid).unwrap_or(0.0) - before) / f64::from(ROUNDS)
}
