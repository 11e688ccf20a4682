//! meta-sim's HTTP surface: the Graph API subset, the Conversions API, and `/_sim` inspection and control.

mod batch;
mod capi;
mod graph;
mod inspect;
mod params;
mod pixel;

use std::sync::{Arc, Mutex, MutexGuard};

use adloop_telemetry::metrics::{Registry, render_prometheus_text};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::faults::{Endpoint, Fault};
use crate::graph_error::GraphError;
use crate::settings::parse_graph_version;
use crate::state::{RequestRecord, SimState};

/// Simulating an hour of a world costs tens of microseconds: a few are fine on an async worker.
const HOURS_SIMULATED_ON_AN_ASYNC_WORKER: u32 = 4;

#[derive(Clone)]
pub struct AppState {
    pub sim: Arc<Mutex<SimState>>,
    pub metrics_registry: Arc<Registry>,
}

impl AppState {
    /// The simulation, caught up to the clock. A poisoned lock (a panic while holding it) is recovered: the
    /// state is plain data and every handler leaves it consistent between statements. The world keeper
    /// (`crate::world_keeper`) keeps the world close to its clock, so this usually simulates an hour or
    /// none; a larger gap (a manual jump of days) is simulated with the async worker handed off to others.
    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        let mut guard = self.sim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let on_multi_threaded_runtime = tokio::runtime::Handle::try_current()
            .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if guard.hours_behind() > HOURS_SIMULATED_ON_AN_ASYNC_WORKER && on_multi_threaded_runtime {
            tokio::task::block_in_place(|| guard.catch_up());
        } else {
            guard.catch_up();
        }
        guard
    }
}

/// What a handler tells the request log about its request.
#[derive(Clone, Default)]
pub struct RequestAnnotations {
    pub parameter_names: Vec<String>,
    pub error_code: Option<u32>,
    pub graph_calls: usize,
}

/// The routes, plus a fallback that retries a path without its trailing slash: the SDKs end some paths with
/// one (`/v25.0/act_1/`) and Meta serves both forms.
pub fn router(state: AppState) -> Router {
    let routes = routes(state);
    let routes_for_fallback = routes.clone();
    routes.fallback(move |request: Request| {
        let routes = routes_for_fallback.clone();
        async move { retry_without_trailing_slash(routes, request).await }
    })
}

async fn retry_without_trailing_slash(routes: Router, mut request: Request) -> Response {
    let path = request.uri().path();
    if path.len() <= 1 || !path.ends_with('/') {
        return StatusCode::NOT_FOUND.into_response();
    }
    let trimmed_path = path.trim_end_matches('/');
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{trimmed_path}?{query}"),
        None => trimmed_path.to_owned(),
    };
    let Ok(uri) = path_and_query.parse() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    *request.uri_mut() = uri;
    match tower::ServiceExt::oneshot(routes, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn routes(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(adloop_service_kit::health::liveness))
        .route("/readyz", get(readiness))
        .route("/metrics", get(metrics))
        .route("/tr", get(pixel::get_pixel))
        .route("/tr/", get(pixel::get_pixel))
        .route("/_sim/state", get(inspect::get_state))
        .route("/_sim/requests", get(inspect::get_requests))
        .route("/_sim/capi/events", get(inspect::get_capi_events))
        .route("/_sim/reset", post(inspect::post_reset))
        .route("/_sim/clock", get(inspect::get_clock).post(inspect::post_clock))
        .route(
            "/_sim/faults",
            get(inspect::get_faults)
                .post(inspect::post_faults)
                .delete(inspect::delete_faults),
        )
        .route("/{version}", post(batch::post_batch))
        .route("/{version}/", post(batch::post_batch))
        .route(
            "/{version}/{object_id}",
            get(graph::get_object)
                .post(graph::post_object)
                .delete(graph::delete_object),
        )
        .route("/{version}/{object_id}/{edge}", get(graph::get_edge).post(post_edge))
        .layer(axum::middleware::from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

/// `POST /{version}/{id}/events` is the Conversions API; any other edge (`insights`, which starts a report
/// run) is a Graph call.
async fn post_edge(
    state: State<AppState>,
    Path((version, object_id, edge)): Path<(String, String, String)>,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if edge == "events" {
        return capi::post_edge(state, Path((version, object_id, edge)), query, headers, body).await;
    }
    graph::post_edge(state, Path((version, object_id, edge)), query, headers, body).await
}

/// Ready once the world is loaded and caught up with the clock; it has no other dependencies.
async fn readiness(State(state): State<AppState>) -> adloop_service_kit::health::ReadinessReport {
    drop(state.lock());
    adloop_service_kit::health::ReadinessReport::from_checks(
        crate::SERVICE_NAME,
        crate::SERVICE_VERSION,
        vec![adloop_service_kit::health::DependencyCheck::required("world", true)],
    )
}

async fn metrics(State(state): State<AppState>) -> String {
    render_prometheus_text(&state.metrics_registry)
}

/// Records every request in `/_sim/requests` (method, path, parameter names, status, Graph error code).
async fn log_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let started_at_unix_millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or(0);
    let response = next.run(request).await;
    // The pixel's image requests are counted apart (counters.pixel_events_received), not logged: a month
    // of them would push every Graph request out of the log.
    let not_a_meta_api_call = path.starts_with("/_sim") || path.starts_with("/tr");
    if not_a_meta_api_call || path == "/healthz" || path == "/readyz" || path == "/metrics" {
        return response;
    }
    let annotations = response
        .extensions()
        .get::<RequestAnnotations>()
        .cloned()
        .unwrap_or_default();
    let mut sim = state.lock();
    let simulated_hour = sim.simulated_hour();
    sim.record_request(RequestRecord {
        sequence: 0,
        received_at_unix_millis: started_at_unix_millis,
        simulated_hour,
        method,
        path,
        parameter_names: annotations.parameter_names,
        status: response.status().as_u16(),
        error_code: annotations.error_code,
        graph_calls: annotations.graph_calls,
    });
    response
}

/// Rejects versions that do not look like `v25.0` or are older than the configured minimum (code 2635).
pub fn check_version(version: &str, minimum_version: &str) -> Result<(), GraphError> {
    let Some(requested) = parse_graph_version(version) else {
        return Err(GraphError::unknown_object(version, "get"));
    };
    let minimum = parse_graph_version(minimum_version).unwrap_or((0, 0));
    if requested < minimum {
        return Err(GraphError::unsupported_version(version, minimum_version));
    }
    Ok(())
}

/// A request-level fault, if one fires: the response to send instead of the real one.
pub async fn injected_fault_response(state: &AppState, endpoint: Endpoint) -> Option<Response> {
    let (fault, latency) = {
        let mut sim = state.lock();
        let latency = sim.faults.draw_latency(endpoint);
        let fault = sim.faults.draw_fault(endpoint);
        if fault.is_some() {
            sim.counters.faults_injected += 1;
        }
        (fault, latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault? {
        Fault::GraphError {
            code,
            subcode,
            http_status,
            message,
        } => {
            let error = GraphError::injected(code, subcode, http_status, message);
            Some(annotated(error.clone().into_response(), Some(error.code), 0))
        }
        Fault::HttpStatus { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Some((status, status.canonical_reason().unwrap_or("error").to_owned()).into_response())
        }
        Fault::DropConnection => Some(dropped_connection_response()),
        Fault::Timeout { milliseconds } => {
            tokio::time::sleep(std::time::Duration::from_millis(milliseconds)).await;
            None
        }
    }
}

/// A response whose body fails at once, so the server closes the connection mid-response.
fn dropped_connection_response() -> Response {
    let failing_body = tokio_stream::iter(vec![Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other(
        "meta-sim dropped the connection (fault injection)",
    ))]);
    Response::new(Body::from_stream(failing_body))
}

/// Attaches what the request log should record.
pub fn annotated(mut response: Response, error_code: Option<u32>, graph_calls: usize) -> Response {
    let annotations = response
        .extensions()
        .get::<RequestAnnotations>()
        .cloned()
        .unwrap_or_default();
    response.extensions_mut().insert(RequestAnnotations {
        error_code,
        graph_calls,
        ..annotations
    });
    response
}

pub fn with_parameter_names(mut response: Response, parameter_names: Vec<String>) -> Response {
    let mut annotations = response
        .extensions()
        .get::<RequestAnnotations>()
        .cloned()
        .unwrap_or_default();
    annotations.parameter_names = parameter_names;
    response.extensions_mut().insert(annotations);
    response
}

pub fn with_usage_headers(mut response: Response, headers: Vec<(&'static str, String)>) -> Response {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(HeaderName::from_static(name), value);
        }
    }
    response
}
