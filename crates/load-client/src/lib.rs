//! Measurements that need a running service or a long replay, kept next to the code they measure:
//! - `allocate-load`: gRPC `Allocate` with 100 ads under concurrent load, throughput and latency percentiles;
//! - `cache-replay`: score-cache hit rate and staleness on replayed polling traffic, and the cost of each
//!   cache tier against recomputing;
//! - `executor-bench`: the safe executor end to end (API → queue → guardrails → Graph batches → audit),
//!   batch against single-request mode, one replica against two, beside a bare Postgres claim ceiling;
//! - `relay-bench`: capi-relay's durable ingest and delivery;
//! - `learning-bench`: the instant learner's durable intake and read-your-writes latency;
//! - `learner-memory`: ml-service's resident memory with both pattern stores filled to their capacity;
//! - `stack-load`: gateway-api, capi-relay and ml-service together under steady load, with faults in
//!   meta-sim and a Redis crash: nothing lost, nothing stuck, memory flat.

pub mod executor_bench;
pub mod learner_memory;
pub mod learning_bench;
pub mod memory;
pub mod open_loop;
pub mod processes;
pub mod relay_bench;
pub mod requests;
pub mod stack_load;
