//! The cross-learner between a learning stream and the allocator: which events feed the pattern store (those
//! of sharing accounts), and the prior a sharing account's new ad gets from its similar patterns. ml-service
//! and the simulator's `adloop` policy both go through here, so they hold the same store and give the same
//! priors.

use std::collections::BTreeSet;

use adloop_allocator::{AllocationRequest, Prior};
use adloop_learner::{EncodedFeatures, LearningUpdate, encode_features};
use serde::{Deserialize, Serialize};

use crate::prior::{CrossPriorConfig, cross_prior};
use crate::store::{Delivery, PatternStore, SimilarPattern, StoreError};
use crate::vector::feature_vector;

/// The name the cross-learner's priors carry in allocations.
pub const CROSS_LEARNER_SOURCE: &str = "cross_learner";

/// How patterns are found and turned into priors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PatternQuerySettings {
    /// Length of the hashed feature vectors.
    pub feature_dimensions: usize,
    /// How many similar patterns make an ad's prior.
    pub top_k: usize,
    pub prior: CrossPriorConfig,
}

impl Default for PatternQuerySettings {
    fn default() -> Self {
        PatternQuerySettings {
            feature_dimensions: 64,
            top_k: 5,
            prior: CrossPriorConfig::default(),
        }
    }
}

/// Similar patterns for a query, and the prior they make.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarPatterns {
    pub patterns: Vec<SimilarPattern>,
    pub prior: Option<Prior>,
}

/// A pattern's id: the fingerprint of its encoded features, in hex.
pub fn pattern_id(features: &EncodedFeatures) -> String {
    format!("{:016x}", features.fingerprint())
}

/// Adds one learning event of `account_id` to `store`. Events without features (a relayed conversion that
/// names only its ad) add nothing: the store pools creatives, and such an event does not say which.
pub fn record_shared_event(
    store: &mut PatternStore,
    account_id: &str,
    update: &LearningUpdate,
    feature_dimensions: usize,
) -> Result<(), StoreError> {
    let Some(vector) = feature_vector(&update.features, feature_dimensions) else {
        return Ok(());
    };
    let delivery = Delivery {
        impressions: update.impressions,
        clicks: update.clicks,
        matured_clicks: update.matured_clicks,
        conversions: update.conversions,
    };
    store.record(&pattern_id(&update.features), &vector, account_id, delivery)
}

/// The patterns other accounts shared that are most similar to `features`, and the prior they make, for
/// `account_id`; nothing when that account does not share (it neither gives nor receives).
pub fn similar_patterns(
    store: &PatternStore,
    sharing_accounts: &BTreeSet<String>,
    features: &EncodedFeatures,
    account_id: &str,
    top_k: usize,
    settings: &PatternQuerySettings,
) -> SimilarPatterns {
    let nothing = SimilarPatterns {
        patterns: Vec::new(),
        prior: None,
    };
    if !sharing_accounts.contains(account_id) {
        return nothing;
    }
    let Some(query) = feature_vector(features, settings.feature_dimensions) else {
        return nothing;
    };
    let patterns = store.find_similar(&query, top_k, Some(account_id));
    let prior = cross_prior(&patterns, &settings.prior).map(|prior| Prior {
        source: CROSS_LEARNER_SOURCE.to_owned(),
        expected_ctr: prior.ctr_lift,
        ctr_strength_impressions: prior.ctr_strength_impressions,
        expected_conversions_per_click: prior.conversion_lift,
        conversion_strength_conversions: prior.conversion_strength_conversions,
        rates_are_lifts: true,
    });
    SimilarPatterns { patterns, prior }
}

/// Gives every ad with creative features in a sharing account, and no cross-learner prior yet, the prior its
/// similar patterns make (if they make one). `max_features` is the learner's limit on features per event.
pub fn add_cross_learner_priors(
    store: &PatternStore,
    sharing_accounts: &BTreeSet<String>,
    request: &mut AllocationRequest,
    settings: &PatternQuerySettings,
    max_features: usize,
) {
    for ad in &mut request.ads {
        let has_one = ad.priors.iter().any(|prior| prior.source == CROSS_LEARNER_SOURCE);
        if has_one || ad.creative_features.is_empty() || ad.ids.account_id.is_empty() {
            continue;
        }
        let raw = ad.creative_features.iter().map(|(name, value)| (name.as_str(), *value));
        let Ok(features) = encode_features(raw, max_features) else {
            continue;
        };
        let found = similar_patterns(
            store,
            sharing_accounts,
            &features,
            &ad.ids.account_id,
            settings.top_k,
            settings,
        );
        if let Some(prior) = found.prior {
            ad.priors.push(prior);
        }
    }
}
