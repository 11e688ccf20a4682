//! Prometheus metrics: each service builds one [`Registry`] at start-up, registers its metrics in it, and
//! serves [`render_prometheus_text`] on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
pub use prometheus_client::registry::Registry;

/// The value of one sample in Prometheus text: `sample` is the metric name with its labels exactly as
/// rendered (`adloop_relay_events_total{outcome="stored"}`). `None` when the text has no such sample.
pub fn sample_value(prometheus_text: &str, sample: &str) -> Option<f64> {
    prometheus_text
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Every sample of `metric` with its value of `label`, in the text's order (`("claim", 1.2)` for
/// `metric{phase="claim"} 1.2`).
pub fn samples_by_label(prometheus_text: &str, metric: &str, label: &str) -> Vec<(String, f64)> {
    let label_prefix = format!("{label}=\"");
    prometheus_text
        .lines()
        .filter_map(|line| {
            let labels_and_value = line.strip_prefix(metric)?.strip_prefix('{')?;
            let label_value = labels_and_value
                .split(label_prefix.as_str())
                .nth(1)?
                .split('"')
                .next()?;
            let value = labels_and_value.rsplit(' ').next()?.parse().ok()?;
            Some((label_value.to_owned(), value))
        })
        .collect()
}

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

/// Request counters and latency histograms recorded by [`crate::http_middleware`]: per route for HTTP,
/// per gRPC service, method and status code for gRPC calls.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    pub requests_total: Family<HttpRequestLabels, Counter>,
    pub request_duration_seconds: Family<HttpRouteLabels, Histogram>,
    pub grpc: crate::grpc_metrics::GrpcMetrics,
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
            grpc: crate::grpc_metrics::GrpcMetrics::register(registry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x_total things\n\
        x_total{phase=\"claim\"} 1.5\n\
        x_total{phase=\"write\",worker=\"a\"} 2\n\
        x_total_other 7\n\
        y_sum 3.25\n";

    #[test]
    fn samples_are_read_by_exact_name_and_by_label() {
        assert_eq!(sample_value(TEXT, "y_sum"), Some(3.25));
        assert_eq!(sample_value(TEXT, "x_total{phase=\"claim\"}"), Some(1.5));
        assert_eq!(
            sample_value(TEXT, "x_total"),
            None,
            "a prefix of another sample is not a sample"
        );
        assert_eq!(
            samples_by_label(TEXT, "x_total", "phase"),
            vec![("claim".to_owned(), 1.5), ("write".to_owned(), 2.0)]
        );
    }
}
