//! ml-service: adloop's gRPC service for budget allocation, scoring and learning (`adloop.ml.v1.MlService`).
//! gRPC, gRPC health, gRPC reflection, `/healthz`, `/readyz` and `/metrics` share one port.

pub mod admission;
mod allocation_service;
mod grpc;
mod http_routes;
pub mod learning;
pub mod score_cache;
pub mod settings;
pub mod startup;

pub const SERVICE_NAME: &str = "ml-service";
pub const SERVICE_VERSION: &str = env!("CARGO_PKG_VERSION");
