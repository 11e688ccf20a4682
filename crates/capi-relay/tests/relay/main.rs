//! capi-relay against a real Postgres (one test binary for the crate).

mod store;
