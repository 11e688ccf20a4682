//! gateway-api: adloop's HTTP front door. It calls ml-service over gRPC, carrying the caller's trace, and
//! hosts the safe executor (`executor`): the queue of ad changes applied to Meta, and the autopilot
//! (`autopilot`) that keeps each enabled account's budgets following the allocator.

pub mod admin;
pub mod api_keys;
pub mod autopilot;
pub mod executor;
pub mod ml_client;
pub mod relay_health;
mod routes;
pub mod settings;
pub mod startup;

pub const SERVICE_NAME: &str = "gateway-api";
pub const SERVICE_VERSION: &str = env!("CARGO_PKG_VERSION");
