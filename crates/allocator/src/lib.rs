//! adloop's budget allocator, as a pure library: ml-service serves it over gRPC and the simulator runs the
//! very same code as the `adloop` policy.
//!
//! For each ad it builds posteriors from the evidence a real allocator has (recent evidence at full weight,
//! older evidence of each rate forgotten as far as the ad's own data show that rate changed; conversions
//! measured against the spend old enough to have reported them, the reporting schedule checked against the
//! account): CTR ~ Beta, conversions per click ~ Gamma (Poisson counts), cost per impression observed, value
//! per conversion ~ log-normal around a shrunk mean with the account's measured spread. Priors come from the
//! request's own population, from the instant learner and cross-learner, and from a bounded creative-DNA
//! nudge, each with an explicit strength.
//!
//! The objective is relative ROAS (value per unit of spend) on every posterior draw (the original's CTR→ROAS
//! age blend is a setting, off), projected through the ad's fatigue trend. Budget shares follow each ad's
//! probability of being the best (Thompson sampling's allocation rule), estimated from posterior draws, then
//! held to floors, caps, an exploration floor for young ads and a maximum change per step relative to the real
//! current budget, and rounded so the total is conserved exactly in minor units. Every recommendation explains
//! itself.

mod account_population;
mod allocate;
mod blend;
mod budget;
mod config;
mod ctr_link;
mod decision;
mod delay;
mod delay_estimate;
mod delivery_curve;
mod draws;
mod fatigue;
mod forgetting;
mod input;
mod learned_link;
pub mod learned_prior;
mod learning_capacity;
mod population;
mod posterior;
mod probability_best;
pub mod quantize;
mod reasons;
pub mod reference;
mod value_dispersion;
mod weekday_rhythm;

pub use allocate::{
    AdScore, Allocation, PreparedAd, PreparedAllocation, Recommendation, allocate, blended_scores, check_ad_count,
    draw, finish_allocation, prepare, score_ads, score_prepared, target_shares,
};
pub use blend::CtrWeightSchedule;
pub use budget::{BudgetBounds, change_limit_bounds, fit_budgets};
pub use config::AllocatorConfig;
pub use decision::Decision;
pub use delay::{DelayComponent, ReportingDelay};
pub use delay_estimate::{DailyConversionReport, ReportingDelayEstimator};
pub use delivery_curve::{
    DailyDelivery, DeliveryCurve, DeliveryCurveSettings, DeliveryHistory, audience_size, estimate_delivery_curves,
};
pub use draws::{ScoreDraws, draw_scores, mean_of};
pub use input::{
    AdIds, AdInput, AdStatus, AllocationConstraints, AllocationRequest, InputError, Prior, RecentWindow,
    validate_request,
};
pub use learned_prior::PriorScales;
pub use population::{PopulationStats, population_stats};
pub use posterior::{AdPosterior, Interval, build_posterior};
pub use probability_best::probability_of_being_best;
pub use weekday_rhythm::{WeekdayRhythmSettings, estimate_weekday_ctr_multipliers, weekday_multiplier_is_worth_saying};

/// Changes whenever a change to the code would change any score or allocation, so cached results miss.
pub const MODEL_VERSION: &str = "allocator-20";
