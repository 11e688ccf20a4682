//! L2: draws in Redis, shared by replicas and kept across restarts. Reads are one MGET per request; writes
//! go out in the background as one pipeline of SET EX with jittered lifetimes. Any Redis failure or
//! time-out makes the tier step aside for a back-off period; it never fails a request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adloop_allocator::ScoreDraws;
use deadpool_redis::redis;
use rand::RngExt as _;

use super::{CacheMetrics, ScoreCacheSettings};

const REDIS_KEY_PREFIX: &str = "adloop:draws:";

pub(super) struct RedisTier {
    inner: Arc<RedisTierInner>,
}

struct RedisTierInner {
    pool: deadpool_redis::Pool,
    timeout: Duration,
    retry_after_milliseconds: u64,
    lifetime_seconds: u64,
    lifetime_jitter_seconds: u64,
    metrics: CacheMetrics,
    /// Milliseconds since `created` before which Redis is skipped (after a failure).
    skip_until_millis: AtomicU64,
    created: Instant,
}

/// Draws as Redis stores them: the CTR draws, then the ROAS draws, as little-endian f32s.
pub(super) fn encode(draws: &ScoreDraws) -> Vec<u8> {
    draws
        .ctr
        .iter()
        .chain(&draws.roas)
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

/// Draws from Redis bytes; `None` unless there are exactly `expected_count` draws of each component.
pub(super) fn decode(bytes: &[u8], expected_count: usize) -> Option<ScoreDraws> {
    if bytes.len() != expected_count * 2 * 4 {
        return None;
    }
    let mut values = bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
    let ctr = values.by_ref().take(expected_count).collect();
    let roas = values.collect();
    Some(ScoreDraws { ctr, roas })
}

impl RedisTier {
    pub(super) fn new(pool: deadpool_redis::Pool, settings: &ScoreCacheSettings, metrics: CacheMetrics) -> RedisTier {
        RedisTier {
            inner: Arc::new(RedisTierInner {
                pool,
                timeout: Duration::from_millis(settings.redis_timeout_milliseconds),
                retry_after_milliseconds: settings.redis_retry_after_milliseconds,
                lifetime_seconds: settings.idle_seconds,
                lifetime_jitter_seconds: settings.ttl_jitter_seconds,
                metrics,
                skip_until_millis: AtomicU64::new(0),
                created: Instant::now(),
            }),
        }
    }

    /// The draws stored under each key (`None` for absent or malformed ones, or all when Redis is away).
    pub(super) async fn get_many(&self, keys: &[&str], expected_count: usize) -> Vec<Option<ScoreDraws>> {
        let inner = &self.inner;
        if !inner.usable() {
            return vec![None; keys.len()];
        }
        let redis_keys: Vec<String> = keys.iter().map(|key| format!("{REDIS_KEY_PREFIX}{key}")).collect();
        let fetch = async {
            let mut connection = inner.pool.get().await.map_err(|error| error.to_string())?;
            redis::cmd("MGET")
                .arg(&redis_keys)
                .query_async::<Vec<Option<Vec<u8>>>>(&mut connection)
                .await
                .map_err(|error| error.to_string())
        };
        match tokio::time::timeout(inner.timeout, fetch).await {
            Ok(Ok(values)) => {
                inner.metrics.redis_available.set(1);
                values
                    .into_iter()
                    .map(|value| value.and_then(|bytes| decode(&bytes, expected_count)))
                    .collect()
            }
            Ok(Err(error)) => {
                inner.failed(&error);
                vec![None; keys.len()]
            }
            Err(_) => {
                inner.failed("time-out");
                vec![None; keys.len()]
            }
        }
    }

    /// Writes draws in the background (one pipeline of SET EX with jittered lifetimes).
    pub(super) fn put_many_in_background(&self, entries: Vec<(String, Arc<ScoreDraws>)>) {
        let inner = Arc::clone(&self.inner);
        if entries.is_empty() || !inner.usable() {
            return;
        }
        let mut pipeline = redis::pipe();
        {
            let mut rng = rand::rng();
            for (key, draws) in &entries {
                let jitter_span = 2 * inner.lifetime_jitter_seconds;
                let jittered = inner.lifetime_seconds + rng.random_range(0..=jitter_span);
                let lifetime = jittered.saturating_sub(inner.lifetime_jitter_seconds).max(1);
                pipeline
                    .cmd("SET")
                    .arg(format!("{REDIS_KEY_PREFIX}{key}"))
                    .arg(encode(draws))
                    .arg("EX")
                    .arg(lifetime)
                    .ignore();
            }
        }
        tokio::spawn(async move {
            let write = async {
                let mut connection = inner.pool.get().await.map_err(|error| error.to_string())?;
                pipeline
                    .query_async::<()>(&mut connection)
                    .await
                    .map_err(|error| error.to_string())
            };
            match tokio::time::timeout(inner.timeout * 4, write).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => inner.failed(&error),
                Err(_) => inner.failed("time-out"),
            }
        });
    }
}

impl RedisTierInner {
    fn usable(&self) -> bool {
        let now_millis = self.created.elapsed().as_millis() as u64;
        now_millis >= self.skip_until_millis.load(Ordering::Relaxed)
    }

    fn failed(&self, error: &str) {
        self.metrics.redis_errors.inc();
        self.metrics.redis_available.set(0);
        let retry_at = self.created.elapsed().as_millis() as u64 + self.retry_after_milliseconds;
        self.skip_until_millis.store(retry_at, Ordering::Relaxed);
        tracing::warn!(
            error,
            "score cache: redis unavailable, serving from the in-process cache only"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_survive_the_redis_encoding_bit_for_bit() {
        let draws = ScoreDraws {
            ctr: vec![0.0, 0.015, f32::MIN_POSITIVE],
            roas: vec![3.402_823_5e38, 1.0e-7, 2.5],
        };
        assert_eq!(decode(&encode(&draws), 3), Some(draws.clone()));
        assert_eq!(decode(&encode(&draws), 2), None, "a wrong length is refused");
    }
}
