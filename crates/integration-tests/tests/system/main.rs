//! One test binary for every multi-service test (linking several binaries is slow on small machines).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod ad_changes;
mod allocation;
mod autopilot;
mod closed_loop;
mod cross_learning;
mod fixtures;
mod helpers;
mod learning;
mod operator_page;
mod relay_learning;
mod score_cache;
mod service_health;
mod shutdown;
mod tls;
mod tracing_across_services;
