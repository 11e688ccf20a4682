//! One test binary for every multi-service test (linking several binaries is slow on small machines).

mod helpers;
mod service_health;
mod shutdown;
mod tracing_across_services;
