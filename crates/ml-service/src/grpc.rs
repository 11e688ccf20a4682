//! The `adloop.ml.v1.MlService` handler. Each rpc arrives with the subsystem that implements it; until then
//! it answers UNIMPLEMENTED.

use adloop_proto::ml::v1::ml_service_server::MlService;
use adloop_proto::ml::v1::{
    AllocateRequest, AllocateResponse, FindSimilarPatternsRequest, FindSimilarPatternsResponse, GetServiceInfoRequest,
    GetServiceInfoResponse, GetWeightsRequest, GetWeightsResponse, RecordEventRequest, RecordEventResponse,
    ScoreRequest, ScoreResponse,
};
use adloop_telemetry::propagation::current_trace_id;
use tonic::{Request, Response, Status};

#[derive(Debug, Default)]
pub struct MlServiceHandler {}

impl MlServiceHandler {
    pub fn new() -> Self {
        MlServiceHandler {}
    }
}

fn not_yet_available(rpc_name: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc_name} is not available in ml-service {}",
        crate::SERVICE_VERSION
    ))
}

#[tonic::async_trait]
impl MlService for MlServiceHandler {
    async fn allocate(&self, _request: Request<AllocateRequest>) -> Result<Response<AllocateResponse>, Status> {
        Err(not_yet_available("Allocate"))
    }

    async fn score(&self, _request: Request<ScoreRequest>) -> Result<Response<ScoreResponse>, Status> {
        Err(not_yet_available("Score"))
    }

    async fn record_event(
        &self,
        _request: Request<RecordEventRequest>,
    ) -> Result<Response<RecordEventResponse>, Status> {
        Err(not_yet_available("RecordEvent"))
    }

    async fn get_weights(&self, _request: Request<GetWeightsRequest>) -> Result<Response<GetWeightsResponse>, Status> {
        Err(not_yet_available("GetWeights"))
    }

    async fn find_similar_patterns(
        &self,
        _request: Request<FindSimilarPatternsRequest>,
    ) -> Result<Response<FindSimilarPatternsResponse>, Status> {
        Err(not_yet_available("FindSimilarPatterns"))
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
