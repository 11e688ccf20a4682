//! adloop's instant learner, as a pure library: ml-service applies its ordered event log with it, and the
//! simulator runs the very same code.
//!
//! Two online logistic regressions over an ad's creative features, trained with FTRL-Proximal
//! (per-coordinate learning rates, L1 and L2): one predicts the click-through rate (trials are impressions,
//! successes clicks), the other conversions per *matured* click (trials are clicks old enough for their
//! conversions to have arrived, successes conversions), so recent clicks never count as failures before they
//! could convert. Every update is one step on the event's summed gradient, applied at once.
//!
//! A Page-Hinkley test on each head's loss notices an abrupt change (a concept flip) and makes the head learn
//! fast again without forgetting what it knows. An ad's prior is computed without that ad's own events (the
//! allocator already counts them as evidence), with a strength derived from the learner's own certainty.

mod allocator_priors;
mod config;
mod delivery_feed;
mod drift;
mod features;
mod ftrl;
mod learner;
mod offline_fit;

pub use allocator_priors::{INSTANT_LEARNER_SOURCE, add_instant_learner_priors};
pub use config::{ConfigError, DriftConfig, FtrlConfig, LearnerConfig};
pub use delivery_feed::{
    DEFAULT_CTR_LEARNING_MAX_AD_AGE_HOURS, DeliveryFeed, DeliveryTotals, ad_age_hours, ad_teaches_ctr_head,
};
pub use drift::PageHinkley;
pub use features::{EncodedFeatures, FeatureError, categorical_feature_name, display_name, encode_features};
pub use ftrl::{FtrlHead, HeadCertainty};
pub use learner::{AppliedUpdate, HeadPrior, InstantLearner, LearnedPrior, LearningUpdate, UpdateError};
pub use offline_fit::{HeadKind, OfflineFit, OfflineFitRow, fit_offline, rows_by_ad};
