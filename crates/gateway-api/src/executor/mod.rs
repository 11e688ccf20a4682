//! The safe executor. Changes wait in a Postgres queue (`queue`: enqueue, `FOR UPDATE SKIP LOCKED` claims
//! under leases, transitions fenced on (id, state, lease owner, attempt)) with the values they carry
//! (`change`); operators and tenants steer it (`controls`: pauses, status, rollback). A worker round
//! (`worker`) keeps its leases alive (`lease_keeper`), reads the real state through the Graph API
//! (`graph_client`), decides with pure rules (`guardrails`, laid over per tenant and account by
//! `guardrail_overrides`), plans batches (`batch_plan`), paces itself from Meta's usage headers and a shared
//! mutation window (`pacing`), classes Meta's answers by code (`graph_outcome`), waits after failures
//! (`backoff`) and counts what it did (`metrics`). `enqueue_jitter` is the optional delay at enqueue;
//! `service` runs rounds on notifications and a timer, and keeps the queue's planner statistics fresh
//! (`table_statistics`).

pub mod backoff;
pub mod batch_plan;
pub mod change;
pub mod controls;
pub mod enqueue_jitter;
pub mod graph_client;
pub mod graph_outcome;
pub mod guardrail_overrides;
pub mod guardrails;
pub mod lease_keeper;
pub mod metrics;
pub mod pacing;
pub mod queue;
pub mod retention;
pub mod service;
pub mod table_statistics;
pub mod worker;
