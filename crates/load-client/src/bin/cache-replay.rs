//! Replays polling traffic through the score cache's keys: a 100-ad account (campaign-sim's world, delivering
//! hour by hour, two weeks old when the replay starts) polled every 5 minutes for 3 simulated days. Reports the hit rate after the first hour,
//! checks that every hit is exact (recomputing the draws of sampled hits), and times each tier against
//! recomputing: an in-process moka lookup, a Redis MGET (when Redis answers at ADLOOP_TEST_REDIS_URL or
//! redis://127.0.0.1:56379) and computing the draws.
//!
//!     cargo run --release -p adloop-load --bin cache-replay

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use adloop_allocator::{AllocatorConfig, ScoreDraws, draw, prepare};
use adloop_load::requests::{hundred_ad_scenario, polled_observation, request_for};
use campaign_sim::World;
use deadpool_redis::redis;

const POLLS_PER_HOUR: u32 = 12;
const HOURS: u32 = 72;
const WARM_UP_HOURS: u32 = 1;
/// The account runs this long before polling starts: a live account, not a brand-new one.
const ACCOUNT_AGE_HOURS: u32 = 14 * 24;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = AllocatorConfig::default();
    let scenario = hundred_ad_scenario();
    let mut world = World::new(&scenario, 3);
    for _ in 0..ACCOUNT_AGE_HOURS {
        world.advance();
    }
    let mut cache: HashMap<String, Arc<ScoreDraws>> = HashMap::new();
    let (mut hits, mut misses, mut stale, mut checked) = (0_u64, 0_u64, 0_u64, 0_u64);
    let mut last_prepared = None;
    for hour in 0..HOURS {
        let before = world.observation().clone();
        world.advance();
        let after = world.observation().clone();
        for poll in 0..POLLS_PER_HOUR {
            let observation = polled_observation(&before, &after, f64::from(poll) / f64::from(POLLS_PER_HOUR));
            let request = request_for(&observation);
            let prepared = prepare(&request, &config)?;
            for ad in &prepared.ads {
                let counted = hour >= WARM_UP_HOURS;
                match cache.get(&ad.draws_key) {
                    Some(cached) => {
                        if counted {
                            hits += 1;
                        }
                        // Every 50th hit is recomputed: equal keys must mean identical draws.
                        if hits % 50 == 0 {
                            checked += 1;
                            if draw(&prepared, ad).scores != cached.scores {
                                stale += 1;
                            }
                        }
                    }
                    None => {
                        if counted {
                            misses += 1;
                        }
                        cache.insert(ad.draws_key.clone(), Arc::new(draw(&prepared, ad)));
                    }
                }
            }
            last_prepared = Some(prepared);
        }
    }
    let lookups = hits + misses;
    println!(
        "replay: 100 ads of a two-week-old account polled every 5 min for {HOURS} h: hit rate {:.2}% after the first hour ({hits} hits, {misses} misses); {stale} stale of {checked} hits recomputed",
        hits as f64 / lookups as f64 * 100.0
    );

    let prepared = last_prepared.ok_or_else(|| anyhow::anyhow!("no polls"))?;
    time_tiers(&prepared).await;
    Ok(())
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

    let l1: moka::future::Cache<String, Arc<ScoreDraws>> = moka::future::Cache::new(10_000);
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
            .scores
            .iter()
            .flat_map(|score| (*score as f32).to_le_bytes())
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
