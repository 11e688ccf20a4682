//! The pattern store: every pattern's vector and its delivery per contributing account, plus each account's
//! totals (its average rates, against which a pattern's lift is measured).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::approximate::{ApproximateConfig, ApproximateIndex, ApproximateIndexInputs};
use crate::vector::{PatternVector, dot};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// A pattern is shared (found, used in priors) only once this many distinct accounts contributed,
    /// not counting the account asking.
    pub min_accounts_to_share: usize,
    /// The most patterns held (about 400 bytes each with 64 dimensions, twice that once the approximate
    /// index holds them too); new patterns beyond it are refused.
    pub max_patterns: usize,
    pub approximate: ApproximateConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            min_accounts_to_share: 3,
            max_patterns: 200_000,
            approximate: ApproximateConfig::default(),
        }
    }
}

/// Delivery counts (fractional counts allowed: matured clicks are weighted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub impressions: f64,
    pub clicks: f64,
    /// Clicks old enough for their conversions to have been reported.
    pub matured_clicks: f64,
    pub conversions: f64,
}

impl Delivery {
    fn add(&mut self, other: &Delivery) {
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.matured_clicks += other.matured_clicks;
        self.conversions += other.conversions;
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("the pattern has {given} dimensions, the store holds {expected}-dimensional patterns")]
    Dimensions { given: usize, expected: usize },
    #[error("the store holds its most patterns ({0}); new patterns are not kept")]
    Full(usize),
}

/// A pattern similar to the query, with its pooled delivery and lifts (other accounts only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimilarPattern {
    pub pattern_id: String,
    pub similarity: f64,
    /// Distinct contributing accounts (at least `min_accounts_to_share`).
    pub accounts: usize,
    pub delivery: Delivery,
    /// Clicks its impressions would have had at each contributing account's average CTR.
    pub expected_clicks: f64,
    /// Conversions its matured clicks would have had at each account's average conversion rate.
    pub expected_conversions: f64,
}

impl SimilarPattern {
    /// Observed over expected clicks: 1.3 means 30% more clicks than its accounts' usual.
    pub fn ctr_lift(&self) -> f64 {
        ratio(self.delivery.clicks, self.expected_clicks)
    }

    pub fn conversion_lift(&self) -> f64 {
        ratio(self.delivery.conversions, self.expected_conversions)
    }
}

fn ratio(observed: f64, expected: f64) -> f64 {
    if expected > 0.0 { observed / expected } else { 1.0 }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Pattern {
    id: String,
    by_account: HashMap<String, Delivery>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PatternStore {
    config: StoreConfig,
    dimensions: Option<usize>,
    patterns: Vec<Pattern>,
    /// Row `i` is pattern `i`'s unit vector (one contiguous block: the scan streams through memory).
    vectors: Vec<f32>,
    index_by_id: HashMap<String, usize>,
    account_totals: HashMap<String, Delivery>,
    /// HNSW over the first patterns (built on demand, never stored; patterns after it are scanned exactly).
    #[serde(skip)]
    approximate: Option<Arc<ApproximateIndex>>,
}

impl PatternStore {
    pub fn new(config: StoreConfig) -> Self {
        PatternStore {
            config,
            ..PatternStore::default()
        }
    }

    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Adds `delivery` of `account_id`'s ads with pattern `pattern_id` (created with `vector` if new).
    pub fn record(
        &mut self,
        pattern_id: &str,
        vector: &PatternVector,
        account_id: &str,
        delivery: Delivery,
    ) -> Result<(), StoreError> {
        let expected = *self.dimensions.get_or_insert(vector.dimensions());
        if vector.dimensions() != expected {
            return Err(StoreError::Dimensions {
                given: vector.dimensions(),
                expected,
            });
        }
        let index = match self.index_by_id.get(pattern_id) {
            Some(index) => *index,
            None => {
                if self.patterns.len() >= self.config.max_patterns {
                    return Err(StoreError::Full(self.config.max_patterns));
                }
                self.patterns.push(Pattern {
                    id: pattern_id.to_owned(),
                    by_account: HashMap::new(),
                });
                self.vectors.extend_from_slice(vector.values());
                self.index_by_id.insert(pattern_id.to_owned(), self.patterns.len() - 1);
                self.patterns.len() - 1
            }
        };
        self.patterns[index]
            .by_account
            .entry(account_id.to_owned())
            .or_default()
            .add(&delivery);
        self.account_totals
            .entry(account_id.to_owned())
            .or_default()
            .add(&delivery);
        Ok(())
    }

    /// Whether an approximate index should be (re)built: the store is above the exact scan's size and the
    /// patterns the index does not cover have grown past a fifth of those it does.
    pub fn wants_approximate_index(&self) -> bool {
        let covered = self.approximate.as_ref().map_or(0, |index| index.covers());
        self.patterns.len() >= self.config.approximate.above_patterns
            && (self.patterns.len() - covered) * 5 >= covered.max(1)
    }

    /// What building the approximate index needs (a copy, so it can be built without holding the store): the
    /// vectors, as the index keeps them, and the index settings.
    pub fn approximate_index_inputs(&self) -> Option<ApproximateIndexInputs> {
        Some(ApproximateIndexInputs::from_rows(
            &self.vectors,
            self.dimensions?,
            &self.config.approximate,
        ))
    }

    /// Installs an index built from [`Self::approximate_index_inputs`]; one built before the store was
    /// reset (it covers more patterns than the store holds) is dropped.
    pub fn install_approximate_index(&mut self, index: ApproximateIndex) {
        if index.covers() <= self.patterns.len() {
            self.approximate = Some(Arc::new(index));
        }
    }

    /// The `top_k` most similar shared patterns, most similar first, pooled without `asking_account`'s own
    /// contributions: exact below `approximate.above_patterns` (or without an index yet), through the
    /// approximate index above it. A query of another length finds nothing.
    pub fn find_similar(
        &self,
        query: &PatternVector,
        top_k: usize,
        asking_account: Option<&str>,
    ) -> Vec<SimilarPattern> {
        match &self.approximate {
            Some(index) if self.patterns.len() >= self.config.approximate.above_patterns => {
                self.find_similar_approximately(index, query, top_k, asking_account)
            }
            _ => self.find_similar_exactly(query, top_k, asking_account),
        }
    }

    fn find_similar_approximately(
        &self,
        index: &ApproximateIndex,
        query: &PatternVector,
        top_k: usize,
        asking_account: Option<&str>,
    ) -> Vec<SimilarPattern> {
        let Some(dimensions) = self.dimensions.filter(|dimensions| *dimensions == query.dimensions()) else {
            return Vec::new();
        };
        // The index finds the candidates; their similarity is computed as the exact scan computes it, so both
        // paths rank (and break ties) alike.
        let mut candidates: Vec<(f64, usize)> = index
            .candidates(query.values())
            .into_iter()
            .map(|(_, pattern)| {
                let row = &self.vectors[pattern * dimensions..(pattern + 1) * dimensions];
                (dot(query.values(), row), pattern)
            })
            .collect();
        // Patterns added since the index was built: scanned exactly.
        let uncovered = self.vectors[index.covers() * dimensions..].chunks_exact(dimensions);
        for (offset, row) in uncovered.enumerate() {
            candidates.push((dot(query.values(), row), index.covers() + offset));
        }
        // Ties go to the pattern recorded first, as in the exact scan, so both paths answer alike.
        candidates.sort_by(|left, right| right.0.total_cmp(&left.0).then(left.1.cmp(&right.1)));
        candidates
            .into_iter()
            .filter(|(_, pattern)| self.is_shared(*pattern, asking_account))
            .take(top_k)
            .map(|(similarity, pattern)| self.pooled(pattern, similarity, asking_account))
            .collect()
    }

    /// [`Self::find_similar`] by scanning every pattern: always exact.
    pub fn find_similar_exactly(
        &self,
        query: &PatternVector,
        top_k: usize,
        asking_account: Option<&str>,
    ) -> Vec<SimilarPattern> {
        let Some(dimensions) = self.dimensions else {
            return Vec::new();
        };
        if query.dimensions() != dimensions || top_k == 0 {
            return Vec::new();
        }
        // (similarity, index), best first; a candidate is checked for sharing only if it would enter.
        let mut best: Vec<(f64, usize)> = Vec::with_capacity(top_k + 1);
        for (index, row) in self.vectors.chunks_exact(dimensions).enumerate() {
            let similarity = dot(query.values(), row);
            let would_enter = best.len() < top_k || best.last().is_some_and(|(lowest, _)| similarity > *lowest);
            if !would_enter || !self.is_shared(index, asking_account) {
                continue;
            }
            let position = best.partition_point(|(other, _)| *other >= similarity);
            best.insert(position, (similarity, index));
            best.truncate(top_k);
        }
        best.into_iter()
            .map(|(similarity, index)| self.pooled(index, similarity, asking_account))
            .collect()
    }

    fn is_shared(&self, index: usize, asking_account: Option<&str>) -> bool {
        let by_account = &self.patterns[index].by_account;
        let own = asking_account.is_some_and(|account| by_account.contains_key(account));
        by_account.len() - usize::from(own) >= self.config.min_accounts_to_share
    }

    fn pooled(&self, index: usize, similarity: f64, asking_account: Option<&str>) -> SimilarPattern {
        let pattern = &self.patterns[index];
        let mut delivery = Delivery::default();
        let mut expected_clicks = 0.0;
        let mut expected_conversions = 0.0;
        let mut accounts = 0;
        for (account, contribution) in &pattern.by_account {
            if Some(account.as_str()) == asking_account {
                continue;
            }
            let totals = self.account_totals.get(account).copied().unwrap_or_default();
            accounts += 1;
            delivery.add(contribution);
            expected_clicks += contribution.impressions * ratio_or_zero(totals.clicks, totals.impressions);
            expected_conversions +=
                contribution.matured_clicks * ratio_or_zero(totals.conversions, totals.matured_clicks);
        }
        SimilarPattern {
            pattern_id: pattern.id.clone(),
            similarity,
            accounts,
            delivery,
            expected_clicks,
            expected_conversions,
        }
    }
}

fn ratio_or_zero(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}
