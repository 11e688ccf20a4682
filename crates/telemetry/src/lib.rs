//! Observability shared by every adloop service:
//! - [`init_telemetry`]: the `tracing` subscriber (JSON or pretty logs) with an OpenTelemetry layer that
//!   exports over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set;
//! - [`propagation`]: W3C trace-context in and out of HTTP headers and gRPC metadata;
//! - [`http_middleware`]: one span and request metrics per HTTP (or gRPC-over-HTTP/2) request;
//! - [`grpc_metrics`]: per-method gRPC call counts by status code, and latencies;
//! - [`metrics`]: Prometheus text rendering.

pub mod grpc_metrics;
pub mod http_middleware;
pub mod metrics;
pub mod propagation;
mod subscriber;

pub use subscriber::{TelemetryError, TelemetryGuard, init_telemetry, init_telemetry_for_tests};

/// The OTLP collector endpoint from the standard `OTEL_EXPORTER_OTLP_ENDPOINT` variable, if set and non-empty.
pub fn otlp_endpoint_from_environment() -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
}
