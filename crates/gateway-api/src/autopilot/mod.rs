//! The autopilot: per enabled ad account, on its schedule, read the account through the Graph API
//! (`account_reader`), ask ml-service for an allocation, turn it into ad changes (`plan`) and hand them to
//! the safe executor's queue, whose guardrails decide what reaches Meta. Each cycle is a row
//! (`runs`) claimed by one runner under a lease; its slot on the gateway's clock (`crate::clock`) and its idempotency
//! keys make a rerun after a crash enqueue nothing twice. Accounts choose their mode and interval
//! (`account_settings`); `service` runs the scheduler in the gateway and counts its cycles (`metrics`).

pub mod account_reader;
pub mod account_settings;
pub mod cycle;
pub mod cycle_memory;
pub mod learning_feed;
pub mod metrics;
pub mod plan;
pub mod reporting_delays;
pub mod runs;
pub mod service;
pub mod settings;
