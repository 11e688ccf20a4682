//! The relay's Prometheus metrics (under `adloop_relay_`): what became of each event received, and of each
//! delivery attempt.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
