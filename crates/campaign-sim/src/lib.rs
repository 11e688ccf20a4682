//! The simulated campaign world adloop's allocators are measured in.
//!
//! A [`Scenario`] describes accounts → campaigns → ad sets → ads, each ad with hidden truths (CTR, conversion
//! rate, value per conversion, CPM) and how they move (fatigue with frequency, drift, day-of-week and
//! hour-of-day seasonality, noise). The [`World`] delivers each ad set's daily budget as Meta would (paced over
//! the day, at most 25% over budget on any day), draws impressions → clicks → conversions, and reports each
//! conversion only after a random lag. A [`Policy`] sees only what a real allocator would and sets budgets;
//! [`run_simulation`] measures it against the same world the [`policy::Oracle`] sees through.
//!
//! Everything is deterministic for a seed and does no I/O, so the CLI, meta-sim and benchmarks share it.
//! Each ad has its own ad set (the usual one-ad-per-ad-set testing structure), so an ad's budget is its ad
//! set's daily budget.

pub mod auction;
mod delay;
mod observation;
pub mod policy;
pub mod random_world;
mod regret_ratio;
mod rng;
mod runner;
mod scenario;
mod summary;
mod truth;
mod world;

pub use observation::{
    AdIdentity, AdObservation, AdStatus, DAILY_INSIGHTS_DAYS, DailyInsights, Observation, WindowStats,
};
pub use policy::{HiddenTruths, Policy, PolicyError, TrueRates};
pub use regret_ratio::{PairedRegrets, geometric_mean_ratio, geometric_mean_regret_ratio};
pub use runner::{DecisionRecord, RunResult, SimulationError, run_simulation};
pub use scenario::{Scenario, ScenarioError};
pub use summary::{
    IntervalEstimate, PairedDifference, PolicyFactory, PolicySummary, compare_policies, paired_regret_difference,
    summarize_runs,
};
pub use truth::AdTruth;
pub use world::{BudgetApplication, BudgetError, DailyAdStats, StepOutcome, World};
