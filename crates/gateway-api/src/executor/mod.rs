//! The safe executor: a Postgres queue of ad changes (`queue`), the values it carries (`change`), how long
//! a failed attempt waits (`backoff`) and whether a change may be applied now (`guardrails`, pure). Claiming is `FOR UPDATE SKIP LOCKED` under leases; every transition
//! of a claimed change is fenced on (id, state, lease owner, attempt), so a worker that lost its lease can
//! never overwrite the outcome of the worker that took over.

pub mod backoff;
pub mod batch_plan;
pub mod change;
pub mod enqueue_jitter;
pub mod graph_client;
pub mod graph_outcome;
pub mod guardrail_overrides;
pub mod guardrails;
pub mod lease_keeper;
pub mod metrics;
pub mod pacing;
pub mod queue;
pub mod service;
pub mod worker;
