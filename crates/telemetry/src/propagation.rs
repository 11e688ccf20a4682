//! W3C trace-context (`traceparent` / `tracestate`) across service boundaries: extracted from incoming HTTP
//! headers or gRPC metadata, injected into outgoing gRPC calls, so one trace spans gateway → ml-service.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(metadata_key) = tonic::metadata::MetadataKey::from_bytes(key.as_bytes()) else {
            return;
        };
        let Ok(metadata_value) = tonic::metadata::MetadataValue::try_from(value.as_str()) else {
            return;
        };
        self.0.insert(metadata_key, metadata_value);
    }
}

/// The remote trace context carried by incoming HTTP headers (gRPC metadata are HTTP/2 headers too).
pub fn extract_remote_context(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_current_context(metadata: &mut tonic::metadata::MetadataMap) {
    let current_context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&current_context, &mut MetadataInjector(metadata));
}

/// The W3C trace id (32 lower-case hex characters) of the current span, if it belongs to a trace.
pub fn current_trace_id() -> Option<String> {
    let current_context = tracing::Span::current().context();
    let span_context = current_context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// A tonic client interceptor that carries the caller's trace into every gRPC request.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextInterceptor;

impl tonic::service::Interceptor for TraceContextInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        inject_current_context(request.metadata_mut());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_trace_id_of_a_traceparent_header() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let context = extract_remote_context(&headers);
        assert_eq!(
            context.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn malformed_traceparent_yields_no_remote_trace() {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static("not-a-trace"));
        assert!(!extract_remote_context(&headers).span().span_context().is_valid());
    }
}
