//! What a replica builds from the learning log: the instant learner and the cross-learner's pattern store,
//! both applied event by event in log order, and the accounts sharing patterns when the store was built.

use std::collections::BTreeSet;

use adloop_cross_learner::{PatternStore, embedding_vector, record_shared_embedding_event, record_shared_event};
use adloop_learner::{AppliedUpdate, InstantLearner, LearningUpdate};
use serde::{Deserialize, Serialize};

use super::CrossLearnerSettings;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LearningState {
    pub learner: InstantLearner,
    pub patterns: PatternStore,
    /// Patterns under the clients' own embeddings of their creatives (not comparable with feature vectors).
    pub embedded_patterns: PatternStore,
    /// The accounts whose events the pattern store holds (those sharing when it was built).
    pub sharing_accounts: BTreeSet<String>,
    /// Counts pattern-store rebuilds, so an approximate index built from an older store is not installed.
    #[serde(skip)]
    pub pattern_store_generation: u64,
    feature_dimensions: usize,
}

impl LearningState {
    pub fn new(learner: InstantLearner, cross_learner: &CrossLearnerSettings) -> Self {
        LearningState {
            learner,
            patterns: PatternStore::new(cross_learner.store.clone()),
            embedded_patterns: PatternStore::new(cross_learner.embedded_store()),
            sharing_accounts: BTreeSet::new(),
            pattern_store_generation: 0,
            feature_dimensions: cross_learner.feature_dimensions,
        }
    }

    /// Applies one logged event to the learner and, when its account shares, to the pattern stores.
    pub fn apply(&mut self, update: &LearningUpdate, embedding: Option<&[f32]>) -> AppliedUpdate {
        let applied = self.learner.apply(update);
        self.add_to_patterns(update, embedding);
        applied
    }

    /// Adds the event to the pattern stores only (rebuilding them after the sharing accounts changed).
    pub fn add_to_patterns(&mut self, update: &LearningUpdate, embedding: Option<&[f32]>) {
        let account_id = update.account_id.as_str();
        if !update.carries_counts() || !self.sharing_accounts.contains(account_id) {
            return;
        }
        if let Err(error) = record_shared_event(&mut self.patterns, account_id, update, self.feature_dimensions) {
            tracing::debug!(%error, "a pattern was not kept");
        }
        let Some(embedding) = embedding.and_then(|values| embedding_vector(values).ok()) else {
            return;
        };
        if let Err(error) = record_shared_embedding_event(&mut self.embedded_patterns, account_id, update, &embedding) {
            tracing::debug!(%error, "an embedded pattern was not kept");
        }
    }

    /// Starts the pattern store afresh for a new set of sharing accounts (the caller replays the log).
    pub fn reset_patterns(&mut self, sharing_accounts: BTreeSet<String>, cross_learner: &CrossLearnerSettings) {
        self.patterns = PatternStore::new(cross_learner.store.clone());
        self.embedded_patterns = PatternStore::new(cross_learner.embedded_store());
        self.sharing_accounts = sharing_accounts;
        self.pattern_store_generation += 1;
    }

    pub fn feature_dimensions(&self) -> usize {
        self.feature_dimensions
    }
}
