//! The relay's Prometheus metrics (under `adloop_relay_`): what became of each event received, and of each
//! delivery attempt.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// stored, deduplicated or refused.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The field a refused event failed on (`event_time`, `user_data.em`, …), without its index.
    pub field: String,
}

#[derive(Clone, Debug, Default)]
pub struct IngestMetrics {
    pub events: Family<OutcomeLabels, Counter>,
    pub refusals: Family<RefusalLabels, Counter>,
}

impl IngestMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = IngestMetrics::default();
        registry.register(
            "events",
            "Events received, by what became of them (a refused request counts each of its events)",
            metrics.events.clone(),
        );
        registry.register(
            "event_refusals",
            "Refused events by the field whose rule they broke",
            metrics.refusals.clone(),
        );
        metrics
    }

    pub fn count(&self, outcome: &'static str, events: usize) {
        self.events
            .get_or_create(&OutcomeLabels { outcome })
            .inc_by(events as u64);
    }

    pub fn count_refusal(&self, field: &str) {
        let field = field.split('.').next().map_or(field, |first| {
            if first == "user_data" || first == "custom_data" {
                field
            } else {
                first
            }
        });
        self.refusals
            .get_or_create(&RefusalLabels {
                field: field.to_owned(),
            })
            .inc();
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// delivered, retried or dead.
    pub outcome: &'static str,
}

/// Delivery: events by what their attempt came to, and the requests sent to Meta.
#[derive(Clone, Debug, Default)]
pub struct DeliveryMetrics {
    pub events: Family<DeliveryLabels, Counter>,
    pub requests: Counter,
    /// Pixels paused because Meta rejected their token (190) or none is configured: an alert.
    pub pixel_pauses: Counter,
}

impl DeliveryMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = DeliveryMetrics::default();
        registry.register(
            "delivered_events",
            "Events by what their delivery attempt came to (delivered, retried, dead)",
            metrics.events.clone(),
        );
        registry.register(
            "delivery_requests",
            "Requests sent to Meta's Conversions API",
            metrics.requests.clone(),
        );
        registry.register(
            "pixel_pauses",
            "Times a pixel was paused because Meta rejected its access token (190) or it has none (alert on any)",
            metrics.pixel_pauses.clone(),
        );
        metrics
    }

    pub fn count(&self, outcome: &'static str, events: usize) {
        if events > 0 {
            self.events
                .get_or_create(&DeliveryLabels { outcome })
                .inc_by(events as u64);
        }
    }
}

/// Group commit: how many events and requests each insert carried, and how long it took.
#[derive(Clone, Debug)]
pub struct CommitMetrics {
    pub events_per_commit: Histogram,
    pub requests_per_commit: Histogram,
    pub commit_seconds: Histogram,
}

impl CommitMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = CommitMetrics {
            events_per_commit: Histogram::new([1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0]),
            requests_per_commit: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            commit_seconds: Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]),
        };
        registry.register(
            "commit_events",
            "Events per insert (group commit: concurrent requests share one)",
            metrics.events_per_commit.clone(),
        );
        registry.register(
            "commit_requests",
            "Requests per insert (group commit)",
            metrics.requests_per_commit.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time of each insert, committed",
            metrics.commit_seconds.clone(),
        );
        metrics
    }
}
