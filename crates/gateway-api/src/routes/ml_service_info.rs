//! `GET /v1/ml/service-info`: which ml-service the gateway talks to, and proof that the call travelled
//! within the caller's trace (both sides report the trace id they saw).

use adloop_proto::ml::v1::GetServiceInfoRequest;
use adloop_service_kit::error::ServiceError;
use adloop_telemetry::propagation::current_trace_id;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use crate::ml_client::ml_service_call_failed;

#[derive(Debug, Serialize)]
pub struct ServiceInfo {
    pub service: &'static str,
    pub version: String,
    pub trace_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MlServiceInfoResponse {
    pub gateway: ServiceInfo,
    pub ml_service: ServiceInfo,
}

pub async fn get_ml_service_info(State(state): State<AppState>) -> Result<Json<MlServiceInfoResponse>, ServiceError> {
    let ml_service_info = state
        .ml_service
        .client()
        .get_service_info(GetServiceInfoRequest {})
        .await
        .map_err(ml_service_call_failed)?
        .into_inner();
    let ml_trace_id = Some(ml_service_info.trace_id).filter(|trace_id| !trace_id.is_empty());
    Ok(Json(MlServiceInfoResponse {
        gateway: ServiceInfo {
            service: crate::SERVICE_NAME,
            version: crate::SERVICE_VERSION.to_owned(),
            trace_id: current_trace_id(),
        },
        ml_service: ServiceInfo {
            service: "ml-service",
            version: ml_service_info.service_version,
            trace_id: ml_trace_id,
        },
    }))
}
