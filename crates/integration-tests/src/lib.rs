//! This crate only holds integration tests (`tests/system`), which start several adloop services in one
//! process against the real Postgres and Redis of the dev stack.
