//! Per-method gRPC metrics: `grpc_server_handled` (by service, method and status code) and
//! `grpc_server_handling_seconds` (by service and method), the names dashboards for gRPC servers expect.
//! A gRPC call's status arrives in its trailers, after the body, so the response body is observed to its
//! end; a call whose status is in the headers ("trailers-only", most errors) is recorded at once.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Methods are labelled only for calls the server implements: a client sending made-up method names gets
/// UNIMPLEMENTED under this one label instead of a new time series per name.
const UNIMPLEMENTED_METHOD: &str = "unimplemented";
const UNIMPLEMENTED_CODE: &str = "12";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcHandledLabels {
    pub grpc_service: String,
    pub grpc_method: String,
    pub grpc_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcMethodLabels {
    pub grpc_service: String,
    pub grpc_method: String,
}

#[derive(Clone, Debug)]
pub struct GrpcMetrics {
    pub handled_total: Family<GrpcHandledLabels, Counter>,
    pub handling_seconds: Family<GrpcMethodLabels, Histogram>,
}

impl GrpcMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let handled_total = Family::<GrpcHandledLabels, Counter>::default();
        let handling_seconds = Family::<GrpcMethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
        });
        registry.register(
            "grpc_server_handled",
            "gRPC calls completed, by service, method and status code (grpc_code: 0 OK, 3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 14 UNAVAILABLE, ...)",
            handled_total.clone(),
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Time from a gRPC call's arrival to its status, by service and method",
            handling_seconds.clone(),
        );
        GrpcMetrics {
            handled_total,
            handling_seconds,
        }
    }
}

/// `/adloop.ml.v1.MlService/Allocate` → (`adloop.ml.v1.MlService`, `Allocate`).
pub fn service_and_method(path: &str) -> Option<(String, String)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let plausible = |name: &str| {
        !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || character == '.' || character == '_')
    };
    (plausible(service) && plausible(method)).then(|| (service.to_owned(), method.to_owned()))
}

/// A call in flight: recorded once, when its status is known (or when its body is dropped unfinished).
pub struct GrpcCall {
    metrics: GrpcMetrics,
    service: String,
    method: String,
    started_at: Instant,
}

impl GrpcCall {
    pub fn start(metrics: GrpcMetrics, service: String, method: String) -> Self {
        GrpcCall {
            metrics,
            service,
            method,
            started_at: Instant::now(),
        }
    }

    fn record(self, code: &str) {
        let method = if code == UNIMPLEMENTED_CODE {
            UNIMPLEMENTED_METHOD.to_owned()
        } else {
            self.method
        };
        self.metrics
            .handled_total
            .get_or_create(&GrpcHandledLabels {
                grpc_service: self.service.clone(),
                grpc_method: method.clone(),
                grpc_code: code.to_owned(),
            })
            .inc();
        self.metrics
            .handling_seconds
            .get_or_create(&GrpcMethodLabels {
                grpc_service: self.service,
                grpc_method: method,
            })
            .observe(self.started_at.elapsed().as_secs_f64());
    }

    /// Records the call now if the response headers carry its status; otherwise wraps the body so the
    /// status is read from the trailers.
    pub fn observe(self, response: axum::response::Response) -> axum::response::Response {
        if let Some(code) = grpc_status(response.headers()) {
            self.record(&code);
            return response;
        }
        response.map(|body| {
            Body::new(ObservedBody {
                inner: body,
                call: Some(self),
            })
        })
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

struct ObservedBody {
    inner: Body,
    call: Option<GrpcCall>,
}

impl HttpBody for ObservedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status)
                    && let Some(call) = self.call.take()
                {
                    call.record(&code);
                }
            }
            // A body that failed or ended without trailers: the client saw no status (UNKNOWN, 2).
            Poll::Ready(Some(Err(_)) | None) => {
                if let Some(call) = self.call.take() {
                    call.record("2");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    /// The client went away before the status (CANCELLED, 1).
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.record("1");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method_and_odd_ones_are_refused() {
        assert_eq!(
            service_and_method("/adloop.ml.v1.MlService/Allocate"),
            Some(("adloop.ml.v1.MlService".to_owned(), "Allocate".to_owned()))
        );
        assert_eq!(service_and_method("/healthz"), None);
        assert_eq!(service_and_method("/a/b/c"), None);
        assert_eq!(service_and_method(&format!("/s/{}", "m".repeat(200))), None);
    }
}
