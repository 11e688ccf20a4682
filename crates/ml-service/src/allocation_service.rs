//! Allocation and scoring over the score cache: the allocator library's steps, with the per-ad draws taken
//! from the cache, the CPU-heavy steps on the blocking pool, and admission control in front.

use std::sync::Arc;

use adloop_allocator::{
    Allocation, AllocationRequest, AllocatorConfig, PreparedAllocation, ScoreDraws, finish_allocation, mean_of, prepare,
};
use adloop_service_kit::error::{ErrorCode, ServiceError};

use crate::admission::Admission;
use crate::score_cache::{CacheTier, ScoreCache};

pub struct AllocationService {
    config: Arc<AllocatorConfig>,
    cache: Arc<ScoreCache>,
    admission: Admission,
}

/// An ad's score from its draws: the mean blended score, and whether a cache supplied the draws.
pub struct CachedScore {
    pub score: f64,
    pub from_cache: bool,
}

/// Callers learn only that something failed inside; the detail goes to the log.
fn internal_failure(detail: &dyn std::fmt::Display) -> ServiceError {
    tracing::error!(error = %detail, "allocation failed inside ml-service");
    ServiceError::new(ErrorCode::Internal, "internal error while computing the allocation")
}

impl AllocationService {
    pub fn new(config: AllocatorConfig, cache: Arc<ScoreCache>, admission: Admission) -> AllocationService {
        AllocationService {
            config: Arc::new(config),
            cache,
            admission,
        }
    }

    pub fn config(&self) -> &AllocatorConfig {
        &self.config
    }

    async fn prepare(&self, request: &Arc<AllocationRequest>) -> Result<Arc<PreparedAllocation>, ServiceError> {
        let config = Arc::clone(&self.config);
        let request = Arc::clone(request);
        let prepared = tokio::task::spawn_blocking(move || prepare(&request, &config))
            .await
            .map_err(|join_error| internal_failure(&join_error))?
            .map_err(|error| ServiceError::invalid_field(error.field, error.rule))?;
        Ok(Arc::new(prepared))
    }

    pub async fn allocate(&self, request: AllocationRequest) -> Result<Allocation, ServiceError> {
        let _ticket = self.admission.admit().await?;
        let request = Arc::new(request);
        let prepared = self.prepare(&request).await?;
        let cached = self
            .cache
            .draws_for(&prepared)
            .await
            .map_err(|error| internal_failure(&error))?;
        let config = Arc::clone(&self.config);
        tokio::task::spawn_blocking(move || {
            let draw_references: Vec<&ScoreDraws> = cached.draws.iter().map(Arc::as_ref).collect();
            finish_allocation(&request, &config, &prepared, &draw_references)
        })
        .await
        .map_err(|join_error| internal_failure(&join_error))?
        .map_err(|error| ServiceError::invalid_field(error.field, error.rule))
    }

    /// Scores with the allocator's posteriors; the score is the mean of the (cached) draws.
    pub async fn score(
        &self,
        request: AllocationRequest,
    ) -> Result<Vec<(adloop_allocator::AdScore, CachedScore)>, ServiceError> {
        let _ticket = self.admission.admit().await?;
        let request = Arc::new(request);
        let prepared = self.prepare(&request).await?;
        let cached = self
            .cache
            .draws_for(&prepared)
            .await
            .map_err(|error| internal_failure(&error))?;
        // Posterior summaries of the prepared ads: a few arithmetic operations per ad.
        let analytic = adloop_allocator::score_prepared(&request, &prepared);
        Ok(analytic
            .into_iter()
            .zip(prepared.ads.iter().zip(cached.draws.iter().zip(cached.tiers)))
            .map(|(ad_score, (prepared_ad, (ad_draws, tier)))| {
                let blended = ad_draws.blended(&prepared_ad.posterior, &prepared.population);
                let score = mean_of(&blended).unwrap_or(ad_score.score);
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
