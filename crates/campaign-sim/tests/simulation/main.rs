//! The campaign world and its policies as users rely on them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod conservation_and_determinism;
mod delayed_reporting;
mod delivery_realism;
mod learning_phase;
mod regret;
mod scenarios;
mod seed_v1_faithfulness;

use campaign_sim::Scenario;

pub const ALL_SCENARIOS: &[&str] = &[
    "stationary-10",
    "fatigue",
    "delayed-conversions",
    "many-ads-200",
    "cold-start",
    "drift",
    "tiny-budget",
    "jpy-account",
    "saturating-audiences",
    "binding-minimums",
    "own-rhythms-and-rest",
    "pareto-order-values",
];

pub fn load_scenario(name: &str) -> Scenario {
    let path = format!("{}/../../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {path}: {error}"));
    Scenario::from_toml(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}
