//! The score cache: each ad's posterior draws, keyed by its canonical quantised posterior plus the model
//! version, seed and population (see `adloop_allocator::quantize`). Near-identical ad states share an entry;
//! any change that would alter the draws changes the key, so a hit is never stale.
//!
//! L1 is in-process (moka, single-flight: concurrent misses on one key compute once). L2 is Redis, shared by
//! replicas, read for L1 misses in one MGET and written in the background. Redis trouble never fails a
//! request: the cache falls back to L1 only, skips Redis for a short back-off, and uses it again when it
//! answers. Draws are stored and used as f32, so a value read from any tier is bit-identical to one computed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adloop_allocator::{PreparedAllocation, ScoreDraws, draw};
use adloop_telemetry::metrics::Registry;
use deadpool_redis::redis;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rand::RngExt as _;
use serde::Deserialize;

const REDIS_KEY_PREFIX: &str = "adloop:draws:";

#[derive(Debug, Clone, Deserialize)]
pub struct ScoreCacheSettings {
    /// Entries kept in process.
    pub l1_capacity: u64,
    pub ttl_seconds: u64,
    /// Each Redis entry lives ttl ± up to this long, so entries written together do not expire together.
    pub ttl_jitter_seconds: u64,
    /// Longest wait for Redis before treating it as unavailable for this request.
    pub redis_timeout_milliseconds: u64,
    /// After a Redis failure, how long to use L1 only before trying Redis again.
    pub redis_retry_after_milliseconds: u64,
    /// Share of hits recomputed and compared, to count stale hits (0 disables the check).
    pub verify_sample_rate: f64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub tier: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone)]
pub struct CacheMetrics {
    pub lookups: Family<CacheLabels, Counter>,
    pub stale_hits: Counter,
    pub redis_errors: Counter,
    pub redis_available: Gauge,
}

impl CacheMetrics {
    pub fn register(registry: &mut Registry) -> CacheMetrics {
        let metrics = CacheMetrics {
            lookups: Family::default(),
            stale_hits: Counter::default(),
            redis_errors: Counter::default(),
            redis_available: Gauge::default(),
        };
        registry.register(
            "score_cache_lookups",
            "Score cache lookups by tier (l1, l2) and outcome (hit, miss)",
            metrics.lookups.clone(),
        );
        registry.register(
            "score_cache_stale_hits",
            "Sampled cache hits whose recomputed draws differed (must stay 0)",
            metrics.stale_hits.clone(),
        );
        registry.register(
            "score_cache_redis_errors",
            "Redis errors and time-outs in the score cache",
            metrics.redis_errors.clone(),
        );
        registry.register(
            "score_cache_redis_available",
            "1 while the score cache uses Redis, 0 while it backs off",
            metrics.redis_available.clone(),
        );
        metrics
    }

    fn count(&self, tier: &'static str, outcome: &'static str, how_many: u64) {
        if how_many > 0 {
            self.lookups
                .get_or_create(&CacheLabels { tier, outcome })
                .inc_by(how_many);
        }
    }
}

/// Which tier answered each ad of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheTier {
    L1,
    L2,
    Computed,
}

pub struct ScoreCache {
    l1: moka::future::Cache<String, Arc<ScoreDraws>>,
    redis: Option<deadpool_redis::Pool>,
    settings: ScoreCacheSettings,
    metrics: CacheMetrics,
    /// Milliseconds since `created` before which Redis is skipped (after a failure).
    redis_skip_until_millis: AtomicU64,
    created: Instant,
}

/// Rounds draws to f32 precision, the precision every tier stores and serves.
fn to_stored_precision(mut draws: ScoreDraws) -> ScoreDraws {
    for score in &mut draws.scores {
        *score = f64::from(*score as f32);
    }
    draws
}

fn encode(draws: &ScoreDraws) -> Vec<u8> {
    draws
        .scores
        .iter()
        .flat_map(|score| (*score as f32).to_le_bytes())
        .collect()
}

fn decode(bytes: &[u8], expected_count: usize) -> Option<ScoreDraws> {
    if bytes.len() != expected_count * 4 {
        return None;
    }
    let scores = bytes
        .chunks_exact(4)
        .map(|chunk| f64::from(f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])))
        .collect();
    Some(ScoreDraws { scores })
}

impl ScoreCache {
    pub fn new(settings: ScoreCacheSettings, redis: Option<deadpool_redis::Pool>, metrics: CacheMetrics) -> ScoreCache {
        let l1 = moka::future::Cache::builder()
            .max_capacity(settings.l1_capacity)
            .time_to_live(Duration::from_secs(settings.ttl_seconds))
            .build();
        metrics.redis_available.set(i64::from(redis.is_some()));
        ScoreCache {
            l1,
            redis,
            settings,
            metrics,
            redis_skip_until_millis: AtomicU64::new(0),
            created: Instant::now(),
        }
    }

    fn redis_usable(&self) -> Option<&deadpool_redis::Pool> {
        let now_millis = self.created.elapsed().as_millis() as u64;
        if now_millis < self.redis_skip_until_millis.load(Ordering::Relaxed) {
            return None;
        }
        self.redis.as_ref()
    }

    fn redis_failed(&self, error: &str) {
        self.metrics.redis_errors.inc();
        self.metrics.redis_available.set(0);
        let retry_at = self.created.elapsed().as_millis() as u64 + self.settings.redis_retry_after_milliseconds;
        self.redis_skip_until_millis.store(retry_at, Ordering::Relaxed);
        tracing::warn!(
            error,
            "score cache: redis unavailable, serving from the in-process cache only"
        );
    }

    async fn redis_get_many(&self, keys: &[String], expected_count: usize) -> Vec<Option<ScoreDraws>> {
        let Some(pool) = self.redis_usable() else {
            return vec![None; keys.len()];
        };
        let redis_keys: Vec<String> = keys.iter().map(|key| format!("{REDIS_KEY_PREFIX}{key}")).collect();
        let fetch = async {
            let mut connection = pool.get().await.map_err(|error| error.to_string())?;
            redis::cmd("MGET")
                .arg(&redis_keys)
                .query_async::<Vec<Option<Vec<u8>>>>(&mut connection)
                .await
                .map_err(|error| error.to_string())
        };
        match tokio::time::timeout(Duration::from_millis(self.settings.redis_timeout_milliseconds), fetch).await {
            Ok(Ok(values)) => {
                self.metrics.redis_available.set(1);
                values
                    .into_iter()
                    .map(|value| value.and_then(|bytes| decode(&bytes, expected_count)))
                    .collect()
            }
            Ok(Err(error)) => {
                self.redis_failed(&error);
                vec![None; keys.len()]
            }
            Err(_) => {
                self.redis_failed("time-out");
                vec![None; keys.len()]
            }
        }
    }

    /// Writes computed draws to Redis in the background (a pipeline of SET EX with jittered TTLs).
    fn redis_put_many(self: &Arc<Self>, entries: Vec<(String, Arc<ScoreDraws>)>) {
        if entries.is_empty() || self.redis_usable().is_none() {
            return;
        }
        let mut pipeline = redis::pipe();
        {
            let mut rng = rand::rng();
            for (key, draws) in &entries {
                let jitter_span = 2 * self.settings.ttl_jitter_seconds;
                let jittered = self.settings.ttl_seconds + rng.random_range(0..=jitter_span);
                let ttl = jittered.saturating_sub(self.settings.ttl_jitter_seconds).max(1);
                pipeline
                    .cmd("SET")
                    .arg(format!("{REDIS_KEY_PREFIX}{key}"))
                    .arg(encode(draws))
                    .arg("EX")
                    .arg(ttl)
                    .ignore();
            }
        }
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            let Some(pool) = cache.redis_usable() else { return };
            let write = async {
                let mut connection = pool.get().await.map_err(|error| error.to_string())?;
                pipeline
                    .query_async::<()>(&mut connection)
                    .await
                    .map_err(|error| error.to_string())
            };
            match tokio::time::timeout(
                Duration::from_millis(cache.settings.redis_timeout_milliseconds * 4),
                write,
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(error)) => cache.redis_failed(&error),
                Err(_) => cache.redis_failed("time-out"),
            }
        });
    }

    /// Each prepared ad's draws, from L1, then L2, then computed (single-flight per key).
    pub async fn draws_for(
        self: &Arc<Self>,
        prepared: &Arc<PreparedAllocation>,
    ) -> (Vec<Arc<ScoreDraws>>, Vec<CacheTier>) {
        let ad_count = prepared.ads.len();
        let mut draws: Vec<Option<Arc<ScoreDraws>>> = Vec::with_capacity(ad_count);
        let mut tiers = vec![CacheTier::Computed; ad_count];
        for (index, ad) in prepared.ads.iter().enumerate() {
            let cached = self.l1.get(&ad.draws_key).await;
            if cached.is_some() {
                tiers[index] = CacheTier::L1;
            }
            draws.push(cached);
        }
        let l1_hits = draws.iter().filter(|entry| entry.is_some()).count() as u64;
        self.metrics.count("l1", "hit", l1_hits);
        self.metrics.count("l1", "miss", ad_count as u64 - l1_hits);
        self.verify_sample(prepared, &draws).await;

        let missing: Vec<usize> = (0..ad_count).filter(|index| draws[*index].is_none()).collect();
        if !missing.is_empty() {
            let keys: Vec<String> = missing
                .iter()
                .map(|index| prepared.ads[*index].draws_key.clone())
                .collect();
            let from_redis = self.redis_get_many(&keys, prepared.draws_per_ad).await;
            let mut to_store = Vec::new();
            let mut l2_hits = 0;
            for (position, index) in missing.iter().enumerate() {
                let key = &prepared.ads[*index].draws_key;
                let entry = match &from_redis[position] {
                    Some(found) => {
                        l2_hits += 1;
                        tiers[*index] = CacheTier::L2;
                        let found = Arc::new(found.clone());
                        self.l1.insert(key.clone(), Arc::clone(&found)).await;
                        found
                    }
                    None => {
                        let prepared_for_init = Arc::clone(prepared);
                        let ad_index = *index;
                        let computed = self
                            .l1
                            .get_with(key.clone(), async move {
                                let draws = tokio::task::spawn_blocking(move || {
                                    to_stored_precision(draw(&prepared_for_init, &prepared_for_init.ads[ad_index]))
                                })
                                .await
                                .unwrap_or_else(|_| ScoreDraws { scores: Vec::new() });
                                Arc::new(draws)
                            })
                            .await;
                        to_store.push((key.clone(), Arc::clone(&computed)));
                        computed
                    }
                };
                draws[*index] = Some(entry);
            }
            self.metrics.count("l2", "hit", l2_hits);
            self.metrics.count("l2", "miss", missing.len() as u64 - l2_hits);
            self.redis_put_many(to_store);
        }
        let draws = draws
            .into_iter()
            .map(|entry| entry.unwrap_or_else(|| Arc::new(ScoreDraws { scores: Vec::new() })))
            .collect();
        (draws, tiers)
    }

    /// Recomputes a sampled share of L1 hits and counts any that differ (stale). By construction none should.
    async fn verify_sample(&self, prepared: &Arc<PreparedAllocation>, draws: &[Option<Arc<ScoreDraws>>]) {
        if self.settings.verify_sample_rate <= 0.0 {
            return;
        }
        let sampled: Vec<usize> = {
            let mut rng = rand::rng();
            (0..draws.len())
                .filter(|index| draws[*index].is_some() && rng.random_bool(self.settings.verify_sample_rate.min(1.0)))
                .collect()
        };
        for index in sampled {
            let prepared_for_check = Arc::clone(prepared);
            let recomputed = tokio::task::spawn_blocking(move || {
                to_stored_precision(draw(&prepared_for_check, &prepared_for_check.ads[index]))
            })
            .await;
            if let (Ok(recomputed), Some(cached)) = (recomputed, &draws[index])
                && recomputed.scores != cached.scores
            {
                self.metrics.stale_hits.inc();
                tracing::error!(key = %prepared.ads[index].draws_key, "score cache served stale draws");
            }
        }
    }
}
