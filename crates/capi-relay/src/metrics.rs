//! The relay's Prometheus metrics (under `adloop_relay_`): what became of each event received, and of each
//! delivery attempt.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PixelIdentifierLabels {
    pub pixel_id: String,
    /// A `user_data` key (em, ph, external_id, fbc, client_ip_address, …).
    pub identifier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PixelLabels {
    pub pixel_id: String,
}

#[derive(Clone, Debug, Default)]
pub struct IngestMetrics {
    pub events: Family<OutcomeLabels, Counter>,
    pub refusals: Family<RefusalLabels, Counter>,
    /// Accepted events per pixel, and how many carried each identifier: their ratio is the pixel's
    /// match-quality estimate (the more identifiers, the more of its events Meta can match to people).
    pub stored_by_pixel: Family<PixelLabels, Counter>,
    pub identifiers: Family<PixelIdentifierLabels, Counter>,
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
        registry.register(
            "pixel_events",
            "Events accepted per pixel (stored now or already stored)",
            metrics.stored_by_pixel.clone(),
        );
        registry.register(
            "pixel_identifiers",
            "Accepted events per pixel carrying each user_data identifier (divide by pixel_events: match quality)",
            metrics.identifiers.clone(),
        );
        metrics
    }

    /// Counts a request's stored events of `pixel_id` and the identifiers each carried.
    pub fn count_identifiers<'a>(&self, pixel_id: &str, user_data_keys: impl Iterator<Item = &'a str>, events: usize) {
        let mut per_identifier: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        for key in user_data_keys {
            *per_identifier.entry(key).or_default() += 1;
        }
        self.stored_by_pixel
            .get_or_create(&PixelLabels {
                pixel_id: pixel_id.to_owned(),
            })
            .inc_by(events as u64);
        for (identifier, count) in per_identifier {
            self.identifiers
                .get_or_create(&PixelIdentifierLabels {
                    pixel_id: pixel_id.to_owned(),
                    identifier: identifier.to_owned(),
                })
                .inc_by(count);
        }
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

/// Delivery: events by what their attempt came to, the requests sent to Meta, pauses, and lag.
#[derive(Clone, Debug)]
pub struct DeliveryMetrics {
    pub events: Family<DeliveryLabels, Counter>,
    pub requests: Counter,
    /// Pixels paused because Meta rejected their token (190) or none is configured: an alert.
    pub pixel_pauses: Counter,
    /// From acceptance to Meta's acknowledgement, per delivered event.
    pub delivery_lag_seconds: Histogram,
    /// The delivery backlog's age, measured by the pruning worker.
    pub oldest_due_event_seconds: Gauge<f64, AtomicU64>,
}

impl Default for DeliveryMetrics {
    fn default() -> Self {
        DeliveryMetrics {
            events: Family::default(),
            requests: Counter::default(),
            pixel_pauses: Counter::default(),
            oldest_due_event_seconds: Gauge::default(),
            delivery_lag_seconds: Histogram::new([
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21_600.0, 86_400.0,
            ]),
        }
    }
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
            "delivery_lag_seconds",
            "Seconds from the relay accepting an event to Meta acknowledging it",
            metrics.delivery_lag_seconds.clone(),
        );
        registry.register(
            "oldest_due_event_seconds",
            "How long the most overdue pending event has waited to be sent (0 when none is due; every relay reports the whole table: aggregate with max)",
            metrics.oldest_due_event_seconds.clone(),
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LearningLabels {
    /// forwarded, retried or dead.
    pub outcome: &'static str,
}

/// Attributed conversions forwarded to ml-service's learner.
#[derive(Clone, Debug, Default)]
pub struct LearningMetrics {
    pub conversions: Family<LearningLabels, Counter>,
}

impl LearningMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = LearningMetrics::default();
        registry.register(
            "learning_conversions",
            "Attributed conversions sent to ml-service's learner, by outcome (forwarded, retried, dead)",
            metrics.conversions.clone(),
        );
        metrics
    }

    pub fn count(&self, outcome: &'static str, conversions: usize) {
        if conversions > 0 {
            self.conversions
                .get_or_create(&LearningLabels { outcome })
                .inc_by(conversions as u64);
        }
    }
}
