//! The executor's Prometheus metrics (under `adloop_gateway_executor_`): what became of each claimed
//! change, the Graph requests it took, how long a round lasts and where its time goes, and what waits in the
//! queue. Unregistered metrics (the default)
//! count into nothing, so tests and tools can run an executor without a registry.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// completed, retried, discarded, held, awaiting_approval, lease_lost.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GraphRequestLabels {
    /// read (batched reads of accounts and objects) or write.
    pub purpose: &'static str,
    /// batch or single.
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// claim, read (accounts and objects through the Graph API), history (guardrail settings and applied
    /// changes), decide, write (Graph writes with their outcomes), or finish (recording outcomes; it
    /// happens within decide and write).
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PauseLabels {
    /// account (613 without subcode) or global (2635).
    pub scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PrunedLabels {
    /// changes (finished and dead letters), audit_entries, idempotency_keys or autopilot_runs.
    pub kind: &'static str,
}

#[derive(Clone, Debug)]
pub struct ExecutorMetrics {
    pub changes: Family<OutcomeLabels, Counter>,
    pub graph_requests: Family<GraphRequestLabels, Counter>,
    pub operations_per_batch: Histogram,
    pub round_duration_seconds: Histogram,
    pub round_phase_seconds: Family<PhaseLabels, Counter<f64, AtomicU64>>,
    pub self_pauses: Family<PauseLabels, Counter>,
    pub queue_changes: Family<StateLabels, Gauge>,
    pub oldest_due_change_seconds: Gauge<f64, AtomicU64>,
    pub pruned_rows: Family<PrunedLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

impl Default for ExecutorMetrics {
    fn default() -> Self {
        ExecutorMetrics {
            changes: Family::default(),
            graph_requests: Family::default(),
            operations_per_batch: Histogram::new([1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0]),
            round_duration_seconds: Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            round_phase_seconds: Family::default(),
            self_pauses: Family::default(),
            queue_changes: Family::default(),
            oldest_due_change_seconds: Gauge::default(),
            pruned_rows: Family::default(),
        }
    }
}

impl ExecutorMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ExecutorMetrics::default();
        let registry = registry.sub_registry_with_prefix("executor");
        registry.register(
            "changes",
            "Claimed changes by what became of them in a round",
            metrics.changes.clone(),
        );
        registry.register(
            "graph_requests",
            "HTTP requests to the Graph API, by purpose and mode",
            metrics.graph_requests.clone(),
        );
        registry.register(
            "operations_per_batch",
            "Operations in each Graph batch request",
            metrics.operations_per_batch.clone(),
        );
        registry.register(
            "round_duration_seconds",
            "Time from claim to the last outcome of a round that claimed something",
            metrics.round_duration_seconds.clone(),
        );
        registry.register(
            "round_phase_seconds",
            "Seconds rounds spent in each phase (read and history run side by side; finish overlaps decide and write)",
            metrics.round_phase_seconds.clone(),
        );
        registry.register(
            "self_pauses",
            "Times the executor paused itself because Meta said to stop",
            metrics.self_pauses.clone(),
        );
        registry.register(
            "queue_changes",
            "Open changes in the queue by state (every gateway reports the whole queue: aggregate with max)",
            metrics.queue_changes.clone(),
        );
        registry.register(
            "oldest_due_change_seconds",
            "How long the oldest due change has waited to be claimed (0 when none is due)",
            metrics.oldest_due_change_seconds.clone(),
        );
        registry.register(
            "pruned_rows",
            "Rows removed past their retention (executor.retention), by kind",
            metrics.pruned_rows.clone(),
        );
        metrics
    }

    pub fn count_pruned(&self, report: &super::retention::PruneReport) {
        for (kind, rows) in [
            ("changes", report.changes),
            ("audit_entries", report.audit_entries),
            ("idempotency_keys", report.idempotency_keys),
            ("autopilot_runs", report.autopilot_runs),
        ] {
            self.pruned_rows.get_or_create(&PrunedLabels { kind }).inc_by(rows);
        }
    }

    pub fn set_queue_depth(&self, depth: &super::queue::QueueDepth) {
        for (state, changes) in &depth.open_by_state {
            self.queue_changes.get_or_create(&StateLabels { state }).set(*changes);
        }
        self.oldest_due_change_seconds.set(depth.oldest_due_seconds);
    }

    pub fn add_phase_time(&self, phase: &'static str, elapsed: std::time::Duration) {
        self.round_phase_seconds
            .get_or_create(&PhaseLabels { phase })
            .inc_by(elapsed.as_secs_f64());
    }

    pub fn count_change(&self, outcome: &'static str) {
        self.changes.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn count_batch(&self, purpose: &'static str, operations: usize) {
        self.graph_requests
            .get_or_create(&GraphRequestLabels { purpose, mode: "batch" })
            .inc();
        self.operations_per_batch.observe(operations as f64);
    }

    /// One Graph request for one read or write (single mode).
    pub fn count_single(&self, purpose: &'static str) {
        self.graph_requests
            .get_or_create(&GraphRequestLabels {
                purpose,
                mode: "single",
            })
            .inc();
    }
}
