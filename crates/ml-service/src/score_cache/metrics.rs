//! The score cache's Prometheus metrics.

use adloop_telemetry::metrics::Registry;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub tier: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Default)]
pub struct CacheMetrics {
    pub lookups: Family<CacheLabels, Counter>,
    pub verified_hits: Counter,
    pub stale_hits: Counter,
    pub redis_errors: Counter,
    pub redis_available: Gauge,
    pub l1_bytes: Gauge,
}

impl CacheMetrics {
    pub fn register(registry: &mut Registry) -> CacheMetrics {
        let metrics = CacheMetrics::default();
        registry.register(
            "score_cache_lookups",
            "Score cache lookups by tier (l1, l2) and outcome (hit, miss)",
            metrics.lookups.clone(),
        );
        registry.register(
            "score_cache_verified_hits",
            "Cache hits (L1 and L2) recomputed and compared, a sample of verify_sample_rate",
            metrics.verified_hits.clone(),
        );
        registry.register(
            "score_cache_stale_hits",
            "Sampled cache hits (L1 and L2) whose recomputed draws differed (must stay 0)",
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
        registry.register(
            "score_cache_l1_bytes",
            "Bytes the in-process score cache holds, as its byte bound counts them",
            metrics.l1_bytes.clone(),
        );
        metrics
    }

    pub(super) fn count(&self, tier: &'static str, outcome: &'static str, how_many: u64) {
        if how_many > 0 {
            self.lookups
                .get_or_create(&CacheLabels { tier, outcome })
                .inc_by(how_many);
        }
    }

    /// Lookups so far for one tier and outcome.
    pub fn lookups_of(&self, tier: &'static str, outcome: &'static str) -> u64 {
        self.lookups.get_or_create(&CacheLabels { tier, outcome }).get()
    }
}
