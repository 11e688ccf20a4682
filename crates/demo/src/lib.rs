//! The end-to-end run behind `make run`. It talks to services already started by `scripts/services up`
//! (their URLs come from the `ADLOOP_*` variables of `.data/dev.env`) and reports what it saw.

pub mod allocation_step;
pub mod report;
pub mod steps;
