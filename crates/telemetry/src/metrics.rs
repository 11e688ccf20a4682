//! Prometheus metrics: each service builds one [`Registry`] at start-up, registers its metrics in it, and
//! serves [`render_prometheus_text`] on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
pub use prometheus_client::registry::Registry;

/// The Prometheus text exposition of every metric in the registry.
pub fn render_prometheus_text(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRequestLabels {
    pub method: String,
    /// The matched route template (never the raw path, so ids cannot explode the label set).
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRouteLabels {
    pub method: String,
    pub route: String,
}

/// Request counters and latency histograms recorded by [`crate::http_middleware`].
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    pub requests_total: Family<HttpRequestLabels, Counter>,
    pub request_duration_seconds: Family<HttpRouteLabels, Histogram>,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let requests_total = Family::<HttpRequestLabels, Counter>::default();
        let request_duration_seconds = Family::<HttpRouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "http_requests",
            "HTTP requests served, by route and status",
            requests_total.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to serve an HTTP request, by route",
            request_duration_seconds.clone(),
        );
        HttpMetrics {
            requests_total,
            request_duration_seconds,
        }
    }
}
