//! adloop's cross-learner, as a pure library: ml-service keeps its store and answers `FindSimilarPatterns`
//! with it, and the simulator can run the very same code.
//!
//! A *pattern* is a creative: its encoded features (hashed into a fixed-length vector) or a client's own
//! embedding. For each pattern the store pools delivery across the accounts that opted in, as *lifts*: the
//! pattern's clicks against the clicks its impressions would have had at its account's average CTR, and its
//! conversions against its matured clicks at the account's average conversion rate. Money never travels
//! (it differs by currency, price and CPM); account ids never leave the store; a pattern is shared only once
//! enough distinct accounts contributed (k-anonymity).
//!
//! A new ad's similar patterns (exact cosine top-k, without its own account's contributions) become a
//! prior: similarity-weighted pseudo-counts shrunk towards "no lift", with bounded strength, and an effect on
//! the ad's expected return of at most ±20%.

mod approximate;
mod prior;
mod sharing;
mod store;
mod vector;

pub use approximate::{ApproximateConfig, ApproximateIndex, ApproximateIndexInputs};
pub use prior::{CrossPrior, CrossPriorConfig, cross_prior};
pub use sharing::{
    CROSS_LEARNER_SOURCE, CreativeSearch, PatternQuerySettings, SimilarPatterns, add_cross_learner_priors,
    creative_searches, embedding_pattern_id, pattern_id, record_shared_embedding_event, record_shared_event,
    similar_patterns,
};
pub use store::{Delivery, PatternStore, SimilarPattern, StoreConfig, StoreError};
pub use vector::{MAX_EMBEDDING_DIMENSIONS, PatternVector, VectorError, embedding_vector, feature_vector};
