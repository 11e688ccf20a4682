//! The allocator as users rely on it: conserved totals, guard rails, honest explanations, accurate P(best).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod accuracy;
mod behaviour;
mod cache_keys;
mod fixtures;
mod guard_rails;
mod validation;
