//! The score cache: each ad's posterior draws, keyed by its canonical quantised posterior plus the model
//! version, seed and population (see `adloop_allocator::quantize`). Near-identical ad states share an entry;
//! any change that would alter the draws changes the key, so a hit is never stale.
//!
//! L1 is in-process (moka), bounded in bytes, with single-flight misses: concurrent requests missing one key
//! compute it once, and one request computes all its misses in one batch on the blocking pool. Because keys
//! are exact, entries never go stale; they only age out when unused for `idle_seconds` (an account polled
//! every few minutes keeps its entries). L2 is Redis, shared by replicas, read for L1 misses in one MGET and
//! written in the background with a TTL. Redis trouble never fails a request: the cache falls back to L1
//! only, skips Redis for a short back-off, and uses it again when it answers. A failed computation is never
//! cached: the request fails with a generic error and the next one tries again.

mod clock;
mod metrics;
mod redis_tier;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use adloop_allocator::{PreparedAd, PreparedAllocation, ScoreDraws, draw};
use rand::RngExt as _;
use serde::Deserialize;

pub use clock::{CacheClock, ManualClock, MonotonicClock};
pub use metrics::{CacheLabels, CacheMetrics};
use redis_tier::RedisTier;

/// Bytes an L1 entry costs beyond its key and draws (moka's bookkeeping, the Arcs, the Vec and String
/// headers), so the byte bound holds for real memory, not just payload.
const L1_ENTRY_OVERHEAD_BYTES: usize = 256;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreCacheSettings {
    /// Bytes kept in process (keys, draws and bookkeeping); the least valuable entries go first.
    pub l1_max_bytes: u64,
    /// An entry unused this long leaves L1; in Redis an entry lives this long after it was written.
    pub idle_seconds: u64,
    /// Each Redis entry lives idle_seconds ± up to this long, so entries written together do not expire
    /// together.
    pub ttl_jitter_seconds: u64,
    /// Longest wait for Redis before treating it as unavailable for this request.
    pub redis_timeout_milliseconds: u64,
    /// After a Redis failure, how long to use L1 only before trying Redis again.
    pub redis_retry_after_milliseconds: u64,
    /// Share of hits (L1 and L2) recomputed and compared, to count stale hits (0 disables the check).
    pub verify_sample_rate: f64,
}

/// Which tier answered each ad of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheTier {
    L1,
    L2,
    Computed,
}

/// Why draws could not be had. The detail is for the log; callers answer with a generic internal error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScoreCacheError {
    #[error("the draw computation failed: {0}")]
    ComputationFailed(String),
    #[error("no draws for some ads after every tier was tried")]
    Incomplete,
    #[error("draws for key {key} have {found} values where {expected} were expected")]
    WrongDrawCount { key: String, found: usize, expected: usize },
}

/// Each ad's draws for one request and the tier that supplied them.
pub struct CachedDraws {
    pub draws: Vec<Arc<ScoreDraws>>,
    pub tiers: Vec<CacheTier>,
}

struct L1Entry {
    draws: Arc<ScoreDraws>,
    last_used_millis: AtomicU64,
}

pub struct ScoreCache {
    l1: moka::future::Cache<String, Arc<L1Entry>>,
    redis: Option<RedisTier>,
    settings: ScoreCacheSettings,
    metrics: CacheMetrics,
    clock: Arc<dyn CacheClock>,
    draw_function: DrawFunction,
}

/// How an ad's draws are computed: the allocator's `draw` in the service; a test may pass one that fails.
pub type DrawFunction = Arc<dyn Fn(&PreparedAllocation, &PreparedAd) -> ScoreDraws + Send + Sync>;

pub struct ScoreCacheBuilder {
    settings: ScoreCacheSettings,
    metrics: CacheMetrics,
    redis: Option<deadpool_redis::Pool>,
    clock: Arc<dyn CacheClock>,
    draw_function: DrawFunction,
}

impl ScoreCacheBuilder {
    /// Use Redis as L2 (without it the cache is L1 only).
    pub fn redis(mut self, pool: deadpool_redis::Pool) -> Self {
        self.redis = Some(pool);
        self
    }

    /// Age entries by this clock (a replay in simulated time passes a [`ManualClock`]).
    pub fn clock(mut self, clock: Arc<dyn CacheClock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn draw_function(mut self, draw_function: DrawFunction) -> Self {
        self.draw_function = draw_function;
        self
    }

    pub fn build(self) -> ScoreCache {
        let l1 = moka::future::Cache::builder()
            .max_capacity(self.settings.l1_max_bytes)
            .weigher(|key: &String, entry: &Arc<L1Entry>| -> u32 {
                let bytes = key.len() + entry.draws.size_in_bytes() + L1_ENTRY_OVERHEAD_BYTES;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .build();
        self.metrics.redis_available.set(i64::from(self.redis.is_some()));
        let redis = self
            .redis
            .map(|pool| RedisTier::new(pool, &self.settings, self.metrics.clone()));
        ScoreCache {
            l1,
            redis,
            settings: self.settings,
            metrics: self.metrics,
            clock: self.clock,
            draw_function: self.draw_function,
        }
    }
}

impl ScoreCache {
    pub fn builder(settings: ScoreCacheSettings, metrics: CacheMetrics) -> ScoreCacheBuilder {
        ScoreCacheBuilder {
            settings,
            metrics,
            redis: None,
            clock: Arc::new(MonotonicClock::new()),
            draw_function: Arc::new(draw),
        }
    }

    /// Bytes L1 holds now, as its weigher counts them (after pending maintenance).
    pub async fn l1_weighted_bytes(&self) -> u64 {
        self.l1.run_pending_tasks().await;
        self.l1.weighted_size()
    }

    /// An L1 entry, unless it has been idle too long (then it is dropped and counts as a miss).
    async fn l1_get(&self, key: &str) -> Option<Arc<ScoreDraws>> {
        let entry = self.l1.get(key).await?;
        let now = self.clock.now_millis();
        let last_used = entry.last_used_millis.load(Ordering::Relaxed);
        if now.saturating_sub(last_used) > self.settings.idle_seconds * 1000 {
            self.l1.invalidate(key).await;
            return None;
        }
        entry.last_used_millis.fetch_max(now, Ordering::Relaxed);
        Some(Arc::clone(&entry.draws))
    }

    fn l1_entry(&self, draws: Arc<ScoreDraws>) -> Arc<L1Entry> {
        Arc::new(L1Entry {
            draws,
            last_used_millis: AtomicU64::new(self.clock.now_millis()),
        })
    }

    /// Each prepared ad's draws, from L1, then L2, then computed (single-flight per key, one batch per
    /// request). Every returned entry has exactly `prepared.draws_per_ad` draws.
    pub async fn draws_for(
        self: &Arc<Self>,
        prepared: &Arc<PreparedAllocation>,
    ) -> Result<CachedDraws, ScoreCacheError> {
        let ad_count = prepared.ads.len();
        let mut draws: Vec<Option<Arc<ScoreDraws>>> = Vec::with_capacity(ad_count);
        let mut tiers = vec![CacheTier::Computed; ad_count];
        for (index, ad) in prepared.ads.iter().enumerate() {
            let cached = self.l1_get(&ad.draws_key).await;
            if cached.is_some() {
                tiers[index] = CacheTier::L1;
            }
            draws.push(cached);
        }
        let l1_hits = draws.iter().filter(|entry| entry.is_some()).count() as u64;
        self.metrics.count("l1", "hit", l1_hits);
        self.metrics.count("l1", "miss", ad_count as u64 - l1_hits);

        let l1_missing: Vec<usize> = (0..ad_count).filter(|index| draws[*index].is_none()).collect();
        if !l1_missing.is_empty() {
            self.fill_from_redis(prepared, &l1_missing, &mut draws, &mut tiers)
                .await;
            let still_missing: Vec<usize> = l1_missing.into_iter().filter(|index| draws[*index].is_none()).collect();
            self.compute_missing(prepared, &still_missing, &mut draws).await?;
        }

        let draws: Vec<Arc<ScoreDraws>> = draws
            .into_iter()
            .collect::<Option<_>>()
            .ok_or(ScoreCacheError::Incomplete)?;
        for (ad, ad_draws) in prepared.ads.iter().zip(&draws) {
            if ad_draws.draw_count() != prepared.draws_per_ad || ad_draws.ctr.len() != prepared.draws_per_ad {
                self.l1.invalidate(&ad.draws_key).await;
                return Err(ScoreCacheError::WrongDrawCount {
                    key: ad.draws_key.clone(),
                    found: ad_draws.draw_count(),
                    expected: prepared.draws_per_ad,
                });
            }
        }
        self.metrics
            .l1_bytes
            .set(i64::try_from(self.l1.weighted_size()).unwrap_or(i64::MAX));
        self.verify_sample_in_background(prepared, &draws, &tiers);
        Ok(CachedDraws { draws, tiers })
    }

    async fn fill_from_redis(
        &self,
        prepared: &PreparedAllocation,
        missing: &[usize],
        draws: &mut [Option<Arc<ScoreDraws>>],
        tiers: &mut [CacheTier],
    ) {
        let Some(redis) = &self.redis else {
            self.metrics.count("l2", "miss", missing.len() as u64);
            return;
        };
        let keys: Vec<&str> = missing
            .iter()
            .map(|index| prepared.ads[*index].draws_key.as_str())
            .collect();
        let from_redis = redis.get_many(&keys, prepared.draws_per_ad).await;
        let mut l2_hits = 0;
        for (position, found) in from_redis.into_iter().enumerate() {
            let Some(found) = found else { continue };
            let index = missing[position];
            let found = Arc::new(found);
            self.l1
                .insert(prepared.ads[index].draws_key.clone(), self.l1_entry(Arc::clone(&found)))
                .await;
            draws[index] = Some(found);
            tiers[index] = CacheTier::L2;
            l2_hits += 1;
        }
        self.metrics.count("l2", "hit", l2_hits);
        self.metrics.count("l2", "miss", missing.len() as u64 - l2_hits);
    }

    /// Computes the missing ads' draws in one batch on the blocking pool, single-flight per key: a key
    /// another request is computing is awaited, not recomputed. Failures are not cached.
    async fn compute_missing(
        self: &Arc<Self>,
        prepared: &Arc<PreparedAllocation>,
        missing: &[usize],
        draws: &mut [Option<Arc<ScoreDraws>>],
    ) -> Result<(), ScoreCacheError> {
        if missing.is_empty() {
            return Ok(());
        }
        let batch: Arc<tokio::sync::OnceCell<Vec<Arc<ScoreDraws>>>> = Arc::new(tokio::sync::OnceCell::new());
        let mut computed_here = Vec::new();
        for (position, &index) in missing.iter().enumerate() {
            let key = prepared.ads[index].draws_key.clone();
            let batch_for_init = Arc::clone(&batch);
            let prepared_for_batch = Arc::clone(prepared);
            let missing_for_batch = missing.to_vec();
            let cache = Arc::clone(self);
            let draw_function = Arc::clone(&self.draw_function);
            let entry = self
                .l1
                .try_get_with(key.clone(), async move {
                    let computed = batch_for_init
                        .get_or_try_init(|| compute_batch(draw_function, prepared_for_batch, missing_for_batch))
                        .await?;
                    Ok::<_, ScoreCacheError>(cache.l1_entry(Arc::clone(&computed[position])))
                })
                .await
                .map_err(|error| (*error).clone())?;
            if batch
                .get()
                .is_some_and(|computed| Arc::ptr_eq(&entry.draws, &computed[position]))
            {
                computed_here.push((key, Arc::clone(&entry.draws)));
            }
            draws[index] = Some(Arc::clone(&entry.draws));
        }
        if let Some(redis) = &self.redis {
            redis.put_many_in_background(computed_here);
        }
        Ok(())
    }

    /// Recomputes a sampled share of hits (L1 and L2) off the request path and counts any that differ
    /// (stale). By construction none should.
    fn verify_sample_in_background(
        &self,
        prepared: &Arc<PreparedAllocation>,
        draws: &[Arc<ScoreDraws>],
        tiers: &[CacheTier],
    ) {
        let rate = self.settings.verify_sample_rate.min(1.0);
        if rate <= 0.0 {
            return;
        }
        let sampled: Vec<(usize, Arc<ScoreDraws>)> = {
            let mut rng = rand::rng();
            (0..draws.len())
                .filter(|index| tiers[*index] != CacheTier::Computed && rng.random_bool(rate))
                .map(|index| (index, Arc::clone(&draws[index])))
                .collect()
        };
        if sampled.is_empty() {
            return;
        }
        let prepared = Arc::clone(prepared);
        let metrics = self.metrics.clone();
        let draw_function = Arc::clone(&self.draw_function);
        tokio::task::spawn_blocking(move || {
            for (index, cached) in sampled {
                let recomputed = draw_function(&prepared, &prepared.ads[index]);
                metrics.verified_hits.inc();
                if recomputed != *cached {
                    metrics.stale_hits.inc();
                    tracing::error!(key = %prepared.ads[index].draws_key, "score cache served stale draws");
                }
            }
        });
    }
}

/// The draws of the ads at `missing`, in that order, computed on the blocking pool.
async fn compute_batch(
    draw_function: DrawFunction,
    prepared: Arc<PreparedAllocation>,
    missing: Vec<usize>,
) -> Result<Vec<Arc<ScoreDraws>>, ScoreCacheError> {
    tokio::task::spawn_blocking(move || {
        missing
            .iter()
            .map(|&index| Arc::new(draw_function(&prepared, &prepared.ads[index])))
            .collect()
    })
    .await
    .map_err(|join_error| ScoreCacheError::ComputationFailed(join_error.to_string()))
}
