//! meta-sim: a local, strict stand-in for the parts of Meta adloop talks to (the Marketing/Graph API subset
//! and the Conversions API), serving the campaign-sim world so budgets and statuses really change delivery.
//! Fault injection, inspection and an accelerated clock make it useful for tests, benchmarks and demos.

// Graph errors carry Meta's whole error shape; they are built only on failure paths, so their size is no cost.
#![allow(clippy::result_large_err)]

pub mod capi;
pub mod clock;
pub mod dates;
pub mod faults;
pub mod graph_error;
pub mod insights;
pub mod objects;
pub mod rate_limits;
pub mod report_runs;
mod routes;
pub mod settings;
pub mod startup;
pub mod state;
mod world_keeper;

pub const SERVICE_NAME: &str = "meta-sim";
pub const SERVICE_VERSION: &str = env!("CARGO_PKG_VERSION");
