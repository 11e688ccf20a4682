//! capi-relay: accepts conversion events, commits them to Postgres before answering, and relays them to
//! Meta's Conversions API.

pub mod admin;
pub mod delivery;
pub mod learning;
pub mod metrics;
mod routes;
pub mod settings;
pub mod sources;
pub mod startup;
pub mod store;

pub const SERVICE_NAME: &str = "capi-relay";
pub const SERVICE_VERSION: &str = env!("CARGO_PKG_VERSION");
