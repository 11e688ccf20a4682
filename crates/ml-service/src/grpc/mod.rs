//! The `adloop.ml.v1.MlService` handler. Allocate and Score run the allocator over the score cache;
//! RecordEvent and GetWeights the instant learner; FindSimilarPatterns and the pattern-sharing rpcs the
//! cross-learner.

use std::sync::Arc;

use adloop_allocator::InputError;
use adloop_proto::allocation as convert;
use adloop_proto::ml::v1::ml_service_server::MlService;
use adloop_proto::ml::v1::{
    AllocateRequest, AllocateResponse, FindSimilarPatternsRequest, FindSimilarPatternsResponse,
    GetPatternSharingRequest, GetServiceInfoRequest, GetServiceInfoResponse, GetWeightsRequest, GetWeightsResponse,
    PatternSharing, RecordEventRequest, RecordEventResponse, ScoreRequest, ScoreResponse, SetPatternSharingRequest,
};
use adloop_service_kit::error::ServiceError;
use adloop_telemetry::propagation::current_trace_id;
use tonic::{Request, Response, Status};

use crate::allocation_service::AllocationService;
use crate::learning::LearningService;

mod learning;
mod patterns;

pub struct MlServiceHandler {
    allocation: Arc<AllocationService>,
    learning: Arc<LearningService>,
}

impl MlServiceHandler {
    pub fn new(allocation: Arc<AllocationService>, learning: Arc<LearningService>) -> Self {
        MlServiceHandler { allocation, learning }
    }
}

impl MlServiceHandler {
    async fn add_learned_priors(&self, request: &mut adloop_allocator::AllocationRequest) {
        if self.learning.settings().priors_in_allocations {
            self.learning.add_priors(request).await;
        }
        if self.learning.cross_learner_settings().priors_in_allocations {
            self.learning.add_cross_learner_priors(request).await;
        }
    }

    /// Checked before the ads are even converted: an oversized request costs nothing more.
    fn refuse_too_many_ads(&self, ad_count: usize) -> Result<(), Status> {
        adloop_allocator::check_ad_count(ad_count, self.allocation.config()).map_err(invalid_argument)
    }
}

fn invalid_argument(error: InputError) -> Status {
    Status::from(ServiceError::invalid_field(error.field, error.rule))
}

#[tonic::async_trait]
impl MlService for MlServiceHandler {
    async fn allocate(&self, request: Request<AllocateRequest>) -> Result<Response<AllocateResponse>, Status> {
        self.refuse_too_many_ads(request.get_ref().ads.len())?;
        let mut allocation_request = convert::allocation_request(request.get_ref()).map_err(invalid_argument)?;
        self.add_learned_priors(&mut allocation_request).await;
        let currency = allocation_request.currency;
        let ad_count = allocation_request.ads.len();
        let allocation = self.allocation.allocate(allocation_request).await?;
        tracing::debug!(ad_count, relaxed = allocation.change_limit_relaxed, "allocated");
        Ok(Response::new(convert::allocate_response(&allocation, currency)))
    }

    async fn score(&self, request: Request<ScoreRequest>) -> Result<Response<ScoreResponse>, Status> {
        self.refuse_too_many_ads(request.get_ref().ads.len())?;
        let mut score_request = convert::score_request(request.get_ref()).map_err(invalid_argument)?;
        self.add_learned_priors(&mut score_request).await;
        let scores = self.allocation.score(score_request).await?;
        Ok(Response::new(ScoreResponse {
            scores: scores
                .iter()
                .map(|(ad_score, cached)| {
                    let mut message = convert::ad_score(ad_score, cached.from_cache);
                    message.score = cached.score;
                    message
                })
                .collect(),
            model_version: adloop_allocator::MODEL_VERSION.to_owned(),
        }))
    }

    async fn record_event(
        &self,
        request: Request<RecordEventRequest>,
    ) -> Result<Response<RecordEventResponse>, Status> {
        learning::record_event(&self.learning, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_weights(&self, _request: Request<GetWeightsRequest>) -> Result<Response<GetWeightsResponse>, Status> {
        learning::get_weights(&self.learning).await.map(Response::new)
    }

    async fn find_similar_patterns(
        &self,
        request: Request<FindSimilarPatternsRequest>,
    ) -> Result<Response<FindSimilarPatternsResponse>, Status> {
        patterns::find_similar_patterns(&self.learning, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn set_pattern_sharing(
        &self,
        request: Request<SetPatternSharingRequest>,
    ) -> Result<Response<PatternSharing>, Status> {
        patterns::set_pattern_sharing(&self.learning, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_pattern_sharing(
        &self,
        request: Request<GetPatternSharingRequest>,
    ) -> Result<Response<PatternSharing>, Status> {
        patterns::get_pattern_sharing(&self.learning, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_service_info(
        &self,
        _request: Request<GetServiceInfoRequest>,
    ) -> Result<Response<GetServiceInfoResponse>, Status> {
        Ok(Response::new(GetServiceInfoResponse {
            service_version: crate::SERVICE_VERSION.to_owned(),
            trace_id: current_trace_id().unwrap_or_default(),
        }))
    }
}
