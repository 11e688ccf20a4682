//! The autopilot's Prometheus metrics (under `adloop_gateway_autopilot_`): cycles by outcome and the
//! changes they planned and enqueued. Unregistered metrics (the default) count into nothing.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CycleLabels {
    /// completed, failed, or lease_lost (it outlived its lease and another runner took it over).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Default)]
pub struct AutopilotMetrics {
    pub cycles: Family<CycleLabels, Counter>,
    pub changes_planned: Counter,
    pub changes_enqueued: Counter,
}

impl AutopilotMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = AutopilotMetrics::default();
        let registry = registry.sub_registry_with_prefix("autopilot");
        registry.register("cycles", "Autopilot cycles run, by outcome", metrics.cycles.clone());
        registry.register(
            "changes_planned",
            "Ad changes the autopilot's cycles planned (dry runs included)",
            metrics.changes_planned.clone(),
        );
        registry.register(
            "changes_enqueued",
            "Ad changes the autopilot's cycles enqueued for the executor (reruns find theirs, not counted again)",
            metrics.changes_enqueued.clone(),
        );
        metrics
    }
}
