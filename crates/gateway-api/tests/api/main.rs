//! Tests of the gateway-api binary as an operator runs it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod chaos;
mod executor;
mod process;
mod queue;
mod queue_model;
