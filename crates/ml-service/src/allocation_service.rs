//! Allocation and scoring over the score cache: the allocator library's steps, with the per-ad draws taken
//! from the cache and the CPU-heavy steps run on the blocking pool.

use std::sync::Arc;

use adloop_allocator::{
    Allocation, AllocationRequest, AllocatorConfig, PreparedAllocation, ScoreDraws, finish_allocation, prepare,
};
use adloop_service_kit::error::{ErrorCode, ServiceError};

use crate::score_cache::{CacheTier, ScoreCache};

pub struct AllocationService {
    config: Arc<AllocatorConfig>,
    cache: Arc<ScoreCache>,
}

/// An ad's score from its draws: the mean blended score, and whether a cache supplied the draws.
pub struct CachedScore {
    pub score: f64,
    pub from_cache: bool,
}

fn internal(error: tokio::task::JoinError) -> ServiceError {
    ServiceError::new(ErrorCode::Internal, format!("allocation task failed: {error}"))
}

impl AllocationService {
    pub fn new(config: AllocatorConfig, cache: Arc<ScoreCache>) -> AllocationService {
        AllocationService {
            config: Arc::new(config),
            cache,
        }
    }

    async fn prepare(&self, request: &Arc<AllocationRequest>) -> Result<Arc<PreparedAllocation>, ServiceError> {
        let config = Arc::clone(&self.config);
        let request = Arc::clone(request);
        let prepared = tokio::task::spawn_blocking(move || prepare(&request, &config))
            .await
            .map_err(internal)?
            .map_err(|error| ServiceError::invalid_field(error.field, error.rule))?;
        Ok(Arc::new(prepared))
    }

    pub async fn allocate(&self, request: AllocationRequest) -> Result<Allocation, ServiceError> {
        let request = Arc::new(request);
        let prepared = self.prepare(&request).await?;
        let (draws, _tiers) = self.cache.draws_for(&prepared).await;
        let config = Arc::clone(&self.config);
        tokio::task::spawn_blocking(move || {
            let draw_references: Vec<&ScoreDraws> = draws.iter().map(Arc::as_ref).collect();
            finish_allocation(&request, &config, &prepared, &draw_references)
        })
        .await
        .map_err(internal)?
        .map_err(|error| ServiceError::invalid_field(error.field, error.rule))
    }

    /// Scores with the allocator's posteriors; the score is the mean of the (cached) draws.
    pub async fn score(
        &self,
        request: AllocationRequest,
    ) -> Result<Vec<(adloop_allocator::AdScore, CachedScore)>, ServiceError> {
        let request = Arc::new(request);
        let prepared = self.prepare(&request).await?;
        let (draws, tiers) = self.cache.draws_for(&prepared).await;
        // Posterior summaries of the prepared ads: a few arithmetic operations per ad.
        let analytic = adloop_allocator::score_prepared(&request, &prepared);
        Ok(analytic
            .into_iter()
            .zip(draws.iter().zip(tiers))
            .map(|(ad_score, (ad_draws, tier))| {
                let score = if ad_draws.scores.is_empty() {
                    ad_score.score
                } else {
                    ad_draws.scores.iter().sum::<f64>() / ad_draws.scores.len() as f64
                };
                (
                    ad_score,
                    CachedScore {
                        score,
                        from_cache: tier != CacheTier::Computed,
                    },
                )
            })
            .collect())
    }
}
