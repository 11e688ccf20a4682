//! The parts every adloop service does identically, kept in one place:
//! - [`error`]: the shared error code set, mapped to both HTTP status and gRPC code;
//! - [`calendar`]: civil dates ↔ days since 1970, without a date library;
//! - [`clock`]: the system clock, or meta-sim's simulated one in development;
//! - [`postgres`]: connect to the service's own schema and run its migrations;
//! - [`operations`]: the `migrate` and `check-settings` commands of every service;
//! - [`grpc_client`]: endpoints for gRPC clients, plain or TLS;
//! - [`google_id_token`]: ID tokens for calling an IAM-protected Cloud Run service;
//! - [`health`]: liveness and readiness answers;
//! - [`serve`]: serve a router on a bound listener until a stop signal, then drain;
//! - [`appsecret_proof`]: the proof Meta asks of apps that require the app secret;
//! - [`instance`]: a name for this process that no other replica shares (lease owners);
//! - [`percent_encoding`]: values escaped for a URL query or a form body;
//! - [`request_bounds`]: requests in flight and body size of an HTTP API, refused with clear errors.

pub mod appsecret_proof;
pub mod bearer_tokens;
pub mod calendar;
pub mod clock;
pub mod error;
pub mod google_id_token;
pub mod grpc_client;
pub mod health;
pub mod instance;
pub mod operations;
pub mod percent_encoding;
pub mod postgres;
pub mod request_bounds;
pub mod serve;
