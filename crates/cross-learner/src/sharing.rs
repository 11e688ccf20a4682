//! The cross-learner between a learning stream and the allocator: which events feed the pattern stores (those
//! of sharing accounts), and the prior a sharing account's new ad gets from its similar patterns. ml-service
//! and the simulator's `adloop` policy both go through here, so they hold the same store and give the same
//! priors.
//!
//! Creatives are compared by their hashed features, or by a client's own embedding of them: embeddings live
//! in a store of their own (they cannot be compared with feature vectors), keyed by their content.

use std::collections::{BTreeSet, HashMap};

use adloop_allocator::{AllocationRequest, Prior};
use adloop_learner::{EncodedFeatures, LearningUpdate, encode_features};
use serde::{Deserialize, Serialize};

use crate::prior::{CrossPriorConfig, cross_prior};
use crate::store::{Delivery, PatternStore, SimilarPattern, StoreError};
use crate::vector::{PatternVector, feature_vector, fnv1a};

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

/// An embedded pattern's id: the fingerprint of the embedding's values, in hex after an `e`.
pub fn embedding_pattern_id(embedding: &PatternVector) -> String {
    let bytes: Vec<u8> = embedding
        .values()
        .iter()
        .flat_map(|value| value.to_bits().to_le_bytes())
        .collect();
    format!("e{:016x}", fnv1a(&bytes))
}

/// Adds one learning event of `account_id` about a creative with this `embedding` to the embedding store.
pub fn record_shared_embedding_event(
    store: &mut PatternStore,
    account_id: &str,
    update: &LearningUpdate,
    embedding: &PatternVector,
) -> Result<(), StoreError> {
    store.record(
        &embedding_pattern_id(embedding),
        embedding,
        account_id,
        delivery_of(update),
    )
}

fn delivery_of(update: &LearningUpdate) -> Delivery {
    Delivery {
        impressions: update.impressions,
        clicks: update.clicks,
        matured_clicks: update.matured_clicks,
        conversions: update.conversions,
    }
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
    store.record(&pattern_id(&update.features), &vector, account_id, delivery_of(update))
}

/// The patterns other accounts shared that are most similar to `query` (a feature vector or an embedding,
/// searched in the store that holds its kind), and the prior they make, for `account_id`; nothing when that
/// account does not share (it neither gives nor receives) or the query is empty.
pub fn similar_patterns(
    store: &PatternStore,
    sharing_accounts: &BTreeSet<String>,
    query: Option<&PatternVector>,
    account_id: &str,
    top_k: usize,
    prior_config: &CrossPriorConfig,
) -> SimilarPatterns {
    let nothing = SimilarPatterns {
        patterns: Vec::new(),
        prior: None,
    };
    let Some(query) = query.filter(|_| sharing_accounts.contains(account_id)) else {
        return nothing;
    };
    let patterns = store.find_similar(query, top_k, Some(account_id));
    let prior = cross_prior(&patterns, prior_config).map(|prior| Prior {
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
/// Each distinct creative of an account is searched once ([`creative_searches`]): an account's ads often share
/// their features (one creative in several ad sets), and a search scans up to the whole store.
pub fn add_cross_learner_priors(
    store: &PatternStore,
    sharing_accounts: &BTreeSet<String>,
    request: &mut AllocationRequest,
    settings: &PatternQuerySettings,
    max_features: usize,
) {
    for search in creative_searches(sharing_accounts, request, settings, max_features) {
        let found = search.run(store, sharing_accounts, settings);
        search.give_prior(request, found.prior);
    }
}

/// One search [`add_cross_learner_priors`] makes: a creative of a sharing account, and the ads of the request
/// that carry it.
#[derive(Debug, Clone)]
pub struct CreativeSearch {
    pub account_id: String,
    query: Option<PatternVector>,
    /// Positions in the request's ads.
    ad_positions: Vec<usize>,
}

impl CreativeSearch {
    /// The creative's similar patterns and the prior they make, from `store` as it is now.
    pub fn run(
        &self,
        store: &PatternStore,
        sharing_accounts: &BTreeSet<String>,
        settings: &PatternQuerySettings,
    ) -> SimilarPatterns {
        similar_patterns(
            store,
            sharing_accounts,
            self.query.as_ref(),
            &self.account_id,
            settings.top_k,
            &settings.prior,
        )
    }

    /// Gives `prior` (if any) to every ad of `request` that carries this creative.
    pub fn give_prior(&self, request: &mut AllocationRequest, prior: Option<Prior>) {
        let Some(prior) = prior else { return };
        for &position in &self.ad_positions {
            request.ads[position].priors.push(prior.clone());
        }
    }
}

/// The searches that give `request`'s ads their cross-learner priors: one per distinct creative of a sharing
/// account among the ads with creative features and no cross-learner prior yet.
pub fn creative_searches(
    sharing_accounts: &BTreeSet<String>,
    request: &AllocationRequest,
    settings: &PatternQuerySettings,
    max_features: usize,
) -> Vec<CreativeSearch> {
    let mut searches: Vec<CreativeSearch> = Vec::new();
    let mut search_by_account_and_pattern: HashMap<(&str, String), usize> = HashMap::new();
    for (position, ad) in request.ads.iter().enumerate() {
        let has_one = ad.priors.iter().any(|prior| prior.source == CROSS_LEARNER_SOURCE);
        if has_one || ad.creative_features.is_empty() || !sharing_accounts.contains(&ad.ids.account_id) {
            continue;
        }
        let raw = ad.creative_features.iter().map(|(name, value)| (name.as_str(), *value));
        let Ok(features) = encode_features(raw, max_features) else {
            continue;
        };
        let search = *search_by_account_and_pattern
            .entry((ad.ids.account_id.as_str(), pattern_id(&features)))
            .or_insert_with(|| {
                searches.push(CreativeSearch {
                    account_id: ad.ids.account_id.clone(),
                    query: feature_vector(&features, settings.feature_dimensions),
                    ad_positions: Vec::new(),
                });
                searches.len() - 1
            });
        searches[search].ad_positions.push(position);
    }
    searches
}
