//! capi-relay against a real Postgres (one test binary for the crate).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod adloop_events;
mod crash;
mod credentials;
mod delivery;
mod group_commit;
mod ingest;
mod store;
