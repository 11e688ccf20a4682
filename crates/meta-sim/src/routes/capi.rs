//! `POST /{version}/{pixel_id}/events`: the Conversions API.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::params::merge_parameters;
use super::{AppState, annotated, check_version, injected_fault_response, with_parameter_names};
use crate::faults::Endpoint;
use crate::graph_error::GraphError;

pub async fn post_edge(
    State(state): State<AppState>,
    Path((version, pixel_id, edge)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if edge != "events" {
        let error = GraphError::unknown_object(&format!("{pixel_id}/{edge}"), "post");
        return annotated(error.clone().into_response(), Some(error.code), 0);
    }
    let parameters = match merge_parameters(query.as_deref(), &headers, &body) {
        Ok(parameters) => parameters,
        Err(error) => return annotated(error.clone().into_response(), Some(error.code), 0),
    };
    let parameter_names: Vec<String> = parameters.keys().cloned().collect();
    if let Some(fault_response) = injected_fault_response(&state, Endpoint::Capi).await {
        return with_parameter_names(fault_response, parameter_names);
    }
    let mut sim = state.lock();
    let result = check_version(&version, &sim.settings.graph.minimum_version)
        .and_then(|()| sim.receive_capi_events(&pixel_id, &parameters));
    drop(sim);
    let response = match result {
        Ok(body) => annotated(Json(body).into_response(), None, 1),
        Err(error) => annotated(error.clone().into_response(), Some(error.code), 1),
    };
    with_parameter_names(response, parameter_names)
}
