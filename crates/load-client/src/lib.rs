//! Measurements that need a running service or a long replay, kept next to the code they measure:
//! - `allocate-load`: gRPC `Allocate` with 100 ads under concurrent load, throughput and latency percentiles;
//! - `cache-replay`: score-cache hit rate and staleness on replayed polling traffic, and the cost of each
//!   cache tier against recomputing.

pub mod requests;
