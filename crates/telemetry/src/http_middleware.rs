//! An axum middleware that gives every request a span joined to the caller's trace (W3C `traceparent`) and
//! records request metrics. gRPC calls served through an axum router pass through it too, and are measured
//! per service, method and status code ([`crate::grpc_metrics`]) instead of by route.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::grpc_metrics::{GrpcCall, service_and_method};
use crate::metrics::{HttpMetrics, HttpRequestLabels, HttpRouteLabels};
use crate::propagation::extract_remote_context;

const UNMATCHED_ROUTE: &str = "unmatched";

/// Use with `axum::middleware::from_fn_with_state(http_metrics, trace_and_measure_request)`.
pub async fn trace_and_measure_request(
    State(http_metrics): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched_path| matched_path.as_str().to_owned())
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let method = request.method().as_str().to_owned();
    let request_span = tracing::info_span!("request", http.method = %method, http.route = %route);
    let _ = request_span.set_parent(extract_remote_context(request.headers()));

    // Only calls to a service the router serves: a made-up service path stays one "unmatched" HTTP route
    // instead of a new gRPC series per name.
    if route != UNMATCHED_ROUTE
        && let Some((service, method)) = grpc_service_and_method(&request)
    {
        let call = GrpcCall::start(http_metrics.grpc.clone(), service, method);
        let response = next.run(request).instrument(request_span).await;
        return call.observe(response);
    }

    let started_at = Instant::now();
    let response = next.run(request).instrument(request_span).await;
    let elapsed_seconds = started_at.elapsed().as_secs_f64();

    http_metrics
        .requests_total
        .get_or_create(&HttpRequestLabels {
            method: method.clone(),
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    http_metrics
        .request_duration_seconds
        .get_or_create(&HttpRouteLabels { method, route })
        .observe(elapsed_seconds);
    response
}

fn grpc_service_and_method(request: &Request) -> Option<(String, String)> {
    let is_grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| content_type.starts_with("application/grpc"));
    if !is_grpc {
        return None;
    }
    service_and_method(request.uri().path())
}

/// `router` with a span per request (joined to the caller's trace) and request metrics.
pub fn traced_and_measured(router: axum::Router, http_metrics: HttpMetrics) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(
        http_metrics,
        trace_and_measure_request,
    ))
}
