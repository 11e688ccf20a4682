//! Replays polling traffic through ml-service's real score cache, configured as shipped (its byte bound, idle
//! expiry, Redis L2 and hit verification): a 100-ad account (campaign-sim's world, delivering hour by hour,
//! two weeks old when the replay starts) polled every 5 minutes for 3 simulated days. The cache's clock is
//! moved 5 minutes per poll, so idle expiry acts in simulated time. Reports the hit rate after the first
//! hour, per tier, and the stale hits its verification found; then times each tier against recomputing.
//!
//!     cargo run --release -p adloop-load --bin cache-replay [world seeds, default 11 12 13]
//!
//! Redis: ADLOOP_TEST_REDIS_URL or redis://127.0.0.1:56379; the replay uses logical database 15 and empties
//! it first. The score cache's quantisation was chosen on world seed 3: report other seeds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adloop_allocator::{AllocatorConfig, draw, prepare};
use adloop_load::requests::{hundred_ad_scenario, polled_observation, request_for};
use campaign_sim::World;
use deadpool_redis::redis;
use ml_service::score_cache::{CacheMetrics, ManualClock, ScoreCache};
use ml_service::settings::shipped_score_cache_settings;

const POLLS_PER_HOUR: u32 = 12;
const POLL_INTERVAL_MILLIS: u64 = 5 * 60 * 1000;
const HOURS: u32 = 72;
const WARM_UP_HOURS: u32 = 1;
/// The account runs this long before polling starts: a live account, not a brand-new one.
const ACCOUNT_AGE_HOURS: u32 = 14 * 24;
const REPLAY_REDIS_DATABASE: u32 = 15;

/// Lookups counted by the cache's own metrics.
#[derive(Clone, Copy, Default)]
struct TierCounts {
    l1_hits: u64,
    l1_misses: u64,
    l2_hits: u64,
}

impl TierCounts {
    fn read(metrics: &CacheMetrics) -> TierCounts {
        TierCounts {
            l1_hits: metrics.lookups_of("l1", "hit"),
            l1_misses: metrics.lookups_of("l1", "miss"),
            l2_hits: metrics.lookups_of("l2", "hit"),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let world_seeds: Vec<u64> = {
        let given: Result<Vec<u64>, _> = std::env::args().skip(1).map(|argument| argument.parse()).collect();
        let given = given.map_err(|_| anyhow::anyhow!("usage: cache-replay [world seed]..."))?;
        if given.is_empty() { vec![11, 12, 13] } else { given }
    };
    let redis_pool = replay_redis_pool().await;
    if redis_pool.is_none() {
        println!("redis does not answer: replaying with L1 only (scripts/dev-stack up for L1 + L2)");
    }
    let mut last_prepared = None;
    for world_seed in world_seeds {
        last_prepared = Some(replay(world_seed, redis_pool.clone()).await?);
    }
    if let Some(prepared) = last_prepared {
        time_tiers(&prepared).await;
    }
    Ok(())
}

async fn replay_redis_pool() -> Option<deadpool_redis::Pool> {
    let base_url = std::env::var("ADLOOP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:56379".into());
    let url = format!("{}/{REPLAY_REDIS_DATABASE}", base_url.trim_end_matches('/'));
    let pool = deadpool_redis::Config::from_url(url)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .ok()?;
    let mut connection = pool.get().await.ok()?;
    redis::cmd("FLUSHDB").query_async::<()>(&mut connection).await.ok()?;
    Some(pool)
}

/// One world seed's replay; returns the last poll's prepared request (for timing the tiers).
async fn replay(
    world_seed: u64,
    redis_pool: Option<deadpool_redis::Pool>,
) -> anyhow::Result<adloop_allocator::PreparedAllocation> {
    let config = AllocatorConfig::default();
    let settings = shipped_score_cache_settings()?;
    let metrics = CacheMetrics::default();
    let clock = Arc::new(ManualClock::default());
    let mut builder = ScoreCache::builder(settings.clone(), metrics.clone()).clock(clock.clone());
    if let Some(pool) = redis_pool {
        builder = builder.redis(pool);
    }
    let cache = Arc::new(builder.build());

    let scenario = hundred_ad_scenario();
    let mut world = World::new(&scenario, world_seed);
    for _ in 0..ACCOUNT_AGE_HOURS {
        world.advance();
    }
    let mut after_warm_up = TierCounts::default();
    let mut last_prepared = None;
    for hour in 0..HOURS {
        if hour == WARM_UP_HOURS {
            after_warm_up = TierCounts::read(&metrics);
        }
        let before = world.observation().clone();
        world.advance();
        let after = world.observation().clone();
        for poll in 0..POLLS_PER_HOUR {
            let observation = polled_observation(&before, &after, f64::from(poll) / f64::from(POLLS_PER_HOUR));
            let prepared = Arc::new(prepare(&request_for(&observation), &config)?);
            cache.draws_for(&prepared).await?;
            clock.advance_millis(POLL_INTERVAL_MILLIS);
            last_prepared = Some(prepared);
        }
    }
    // Verification runs in the background: let it finish before reading its counters.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let end = TierCounts::read(&metrics);
    let l1_hits = end.l1_hits - after_warm_up.l1_hits;
    let l2_hits = end.l2_hits - after_warm_up.l2_hits;
    let lookups = l1_hits + end.l1_misses - after_warm_up.l1_misses;
    let hits = l1_hits + l2_hits;
    println!(
        "world seed {world_seed}: 100 ads polled every 5 min for {HOURS} h through the shipped score cache \
         ({} MiB L1, {} s idle): hit rate {:.2}% after the first hour ({hits} hits: {l1_hits} L1, {l2_hits} L2; \
         {} computed); {} stale of {} hits verified; L1 holds {:.1} MiB",
        settings.l1_max_bytes / (1024 * 1024),
        settings.idle_seconds,
        hits as f64 / lookups as f64 * 100.0,
        lookups - hits,
        metrics.stale_hits.get(),
        metrics.verified_hits.get(),
        cache.l1_weighted_bytes().await as f64 / (1024.0 * 1024.0),
    );
    let last = last_prepared.ok_or_else(|| anyhow::anyhow!("no polls"))?;
    Ok(Arc::try_unwrap(last).unwrap_or_else(|shared| (*shared).clone()))
}

/// Cost per ad of each way to get its draws.
async fn time_tiers(prepared: &adloop_allocator::PreparedAllocation) {
    const ROUNDS: u32 = 50;
    let ad_count = prepared.ads.len() as f64;

    let started = Instant::now();
    let mut computed = Vec::new();
    for _ in 0..ROUNDS {
        computed = prepared.ads.iter().map(|ad| draw(prepared, ad)).collect::<Vec<_>>();
    }
    let compute_micros = started.elapsed().as_secs_f64() * 1e6 / (f64::from(ROUNDS) * ad_count);

    let l1: moka::future::Cache<String, Arc<adloop_allocator::ScoreDraws>> = moka::future::Cache::new(10_000);
    for (ad, draws) in prepared.ads.iter().zip(&computed) {
        l1.insert(ad.draws_key.clone(), Arc::new(draws.clone())).await;
    }
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for ad in &prepared.ads {
            let _ = l1.get(&ad.draws_key).await;
        }
    }
    let l1_micros = started.elapsed().as_secs_f64() * 1e6 / (f64::from(ROUNDS) * ad_count);
    println!("per ad: compute draws {compute_micros:.1} µs, L1 (moka) lookup {l1_micros:.2} µs");

    let redis_url = std::env::var("ADLOOP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:56379".into());
    let Ok(pool) = deadpool_redis::Config::from_url(redis_url).create_pool(Some(deadpool_redis::Runtime::Tokio1))
    else {
        println!("per ad: L2 (Redis) not measured: bad URL");
        return;
    };
    let keys: Vec<String> = prepared
        .ads
        .iter()
        .map(|ad| format!("adloop:replay:{}", ad.draws_key))
        .collect();
    let Ok(mut connection) = pool.get().await else {
        println!("per ad: L2 (Redis) not measured: Redis does not answer (scripts/dev-stack up)");
        return;
    };
    let mut pipeline = redis::pipe();
    for (key, draws) in keys.iter().zip(&computed) {
        let bytes: Vec<u8> = draws
            .ctr
            .iter()
            .chain(&draws.roas)
            .flat_map(|value| value.to_le_bytes())
            .collect();
        pipeline.cmd("SET").arg(key).arg(bytes).arg("EX").arg(60).ignore();
    }
    if pipeline.query_async::<()>(&mut connection).await.is_err() {
        println!("per ad: L2 (Redis) not measured: SET failed");
        return;
    }
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let _: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut connection)
            .await
            .unwrap_or_default();
    }
    let l2_micros = started.elapsed().as_secs_f64() * 1e6 / (f64::from(ROUNDS) * ad_count);
    println!(
        "per ad: L2 (Redis MGET of {} ads, {} draws as f32) {l2_micros:.1} µs",
        prepared.ads.len(),
        prepared.draws_per_ad
    );
}
