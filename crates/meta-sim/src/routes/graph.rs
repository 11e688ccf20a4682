//! `GET|POST|DELETE /{version}/{object_id}` and `GET /{version}/{object_id}/insights`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::params::{as_text_parameters, merge_parameters};
use super::{AppState, annotated, check_version, injected_fault_response, with_parameter_names, with_usage_headers};
use crate::faults::Endpoint;
use crate::state::GraphCall;

/// The parts of a Graph request the handlers share.
struct GraphRequest {
    version: String,
    object_id: String,
    edge: Option<String>,
    method: &'static str,
    query: Option<String>,
}

/// `http://<Host>/<version>`, the base of paging links in answers to this request.
pub fn link_base(headers: &HeaderMap, version: &str) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/{version}")
}

async fn handle_graph_call(state: AppState, request: GraphRequest, headers: HeaderMap, body: Bytes) -> Response {
    let GraphRequest {
        version,
        object_id,
        edge,
        method,
        query,
    } = request;
    let parameters = match merge_parameters(query.as_deref(), &headers, &body) {
        Ok(parameters) => parameters,
        Err(error) => return annotated(error.clone().into_response(), Some(error.code), 0),
    };
    let parameter_names: Vec<String> = parameters.keys().cloned().collect();
    let endpoint = match (method, edge.as_deref()) {
        (_, Some("insights")) => Endpoint::Insights,
        ("GET", _) => Endpoint::GraphRead,
        _ => Endpoint::GraphWrite,
    };
    if let Some(fault_response) = injected_fault_response(&state, endpoint).await {
        return with_parameter_names(fault_response, parameter_names);
    }

    let minimum_version = state.lock().settings.graph.minimum_version.clone();
    if let Err(error) = check_version(&version, &minimum_version) {
        return with_parameter_names(
            annotated(error.clone().into_response(), Some(error.code), 0),
            parameter_names,
        );
    }
    let call = GraphCall {
        method: method.to_owned(),
        object_id,
        edge,
        params: as_text_parameters(&parameters),
        link_base: link_base(&headers, &version),
    };
    let mut sim = state.lock();
    let result = sim.execute_graph_call(&call, "api");
    let account_id = sim.account_of(&call.object_id);
    let is_insights = call.edge.as_deref() == Some("insights");
    let usage_headers = sim.usage_headers(account_id.as_slice(), is_insights);
    drop(sim);
    let response = match result {
        Ok(body) => annotated(Json(body).into_response(), None, 1),
        Err(error) => annotated(error.clone().into_response(), Some(error.code), 1),
    };
    with_parameter_names(with_usage_headers(response, usage_headers), parameter_names)
}

pub async fn get_object(
    State(state): State<AppState>,
    Path((version, object_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    handle_graph_call(
        state,
        GraphRequest {
            version,
            object_id,
            edge: None,
            method: "GET",
            query,
        },
        headers,
        Bytes::new(),
    )
    .await
}

pub async fn get_edge(
    State(state): State<AppState>,
    Path((version, object_id, edge)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    handle_graph_call(
        state,
        GraphRequest {
            version,
            object_id,
            edge: Some(edge),
            method: "GET",
            query,
        },
        headers,
        Bytes::new(),
    )
    .await
}

pub async fn post_edge(
    State(state): State<AppState>,
    Path((version, object_id, edge)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle_graph_call(
        state,
        GraphRequest {
            version,
            object_id,
            edge: Some(edge),
            method: "POST",
            query,
        },
        headers,
        body,
    )
    .await
}

pub async fn post_object(
    State(state): State<AppState>,
    Path((version, object_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle_graph_call(
        state,
        GraphRequest {
            version,
            object_id,
            edge: None,
            method: "POST",
            query,
        },
        headers,
        body,
    )
    .await
}

pub async fn delete_object(
    State(state): State<AppState>,
    Path((version, object_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle_graph_call(
        state,
        GraphRequest {
            version,
            object_id,
            edge: None,
            method: "DELETE",
            query,
        },
        headers,
        body,
    )
    .await
}
