//! meta-sim over HTTP, rule by rule, as a Graph API and Conversions API client meets it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod batch;
mod capi;
mod faults_and_inspection;
mod graph_objects;
mod helpers;
mod insights;
mod rate_limits;
mod settings_file;
