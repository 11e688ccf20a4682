//! The approximate index: HNSW (the `instant-distance` crate: pure Rust, a small dependency set, parallel
//! builds) over the store's vectors, for stores too large to scan exactly within the latency target.
//!
//! The index is built from the patterns present at one moment and never changes; patterns added later are
//! scanned exactly until the next build, so a new pattern is findable at once.

use instant_distance::{Builder, HnswMap, Point, Search};
use serde::{Deserialize, Serialize};

use crate::vector::dot;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApproximateConfig {
    /// Below this many patterns the exact scan is used (it is fast enough and always exact).
    pub above_patterns: usize,
    /// Candidates kept while building and while searching: higher finds more of the true neighbours
    /// (recall) and costs more time.
    pub ef_construction: usize,
    pub ef_search: usize,
}

impl Default for ApproximateConfig {
    fn default() -> Self {
        ApproximateConfig {
            above_patterns: 150_000,
            ef_construction: 100,
            ef_search: 100,
        }
    }
}

#[derive(Clone)]
struct IndexedVector(Box<[f32]>);

impl Point for IndexedVector {
    fn distance(&self, other: &Self) -> f32 {
        (1.0 - dot(&self.0, &other.0)) as f32
    }
}

pub struct ApproximateIndex {
    map: HnswMap<IndexedVector, u32>,
    /// The index holds patterns `0..covers`.
    covers: usize,
}

impl std::fmt::Debug for ApproximateIndex {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ApproximateIndex")
            .field("covers", &self.covers)
            .finish()
    }
}

/// What building an index needs, copied out of the store so that the build runs without it: each pattern's
/// vector, already in the allocation the index keeps (one copy of the store's vectors, not two), and the
/// settings.
pub struct ApproximateIndexInputs {
    points: Vec<IndexedVector>,
    config: ApproximateConfig,
}

impl ApproximateIndexInputs {
    /// From `vectors` (rows of `dimensions` unit values, pattern `i` in row `i`).
    pub fn from_rows(vectors: &[f32], dimensions: usize, config: &ApproximateConfig) -> ApproximateIndexInputs {
        ApproximateIndexInputs {
            points: vectors
                .chunks_exact(dimensions.max(1))
                .map(|row| IndexedVector(row.into()))
                .collect(),
            config: config.clone(),
        }
    }

    pub fn pattern_count(&self) -> usize {
        self.points.len()
    }
}

impl ApproximateIndex {
    /// Builds the index over `vectors` (rows of `dimensions` unit values, pattern `i` in row `i`).
    /// Deterministic: the same vectors give the same index.
    pub fn build(vectors: &[f32], dimensions: usize, config: &ApproximateConfig) -> ApproximateIndex {
        ApproximateIndex::build_from(ApproximateIndexInputs::from_rows(vectors, dimensions, config))
    }

    /// Builds the index from inputs copied out of a store ([`crate::PatternStore::approximate_index_inputs`]).
    pub fn build_from(inputs: ApproximateIndexInputs) -> ApproximateIndex {
        let ApproximateIndexInputs { points, config } = inputs;
        let covers = points.len();
        let values: Vec<u32> = (0..covers as u32).collect();
        let map = Builder::default()
            .ef_construction(config.ef_construction)
            .ef_search(config.ef_search)
            .seed(0x6164_6c6f_6f70)
            .build(points, values);
        ApproximateIndex { map, covers }
    }

    pub fn covers(&self) -> usize {
        self.covers
    }

    /// Up to `ef_search` candidates near `query`, nearest first, as (similarity, pattern index).
    pub fn candidates(&self, query: &[f32]) -> Vec<(f64, usize)> {
        let mut search = Search::default();
        let query = IndexedVector(query.into());
        self.map
            .search(&query, &mut search)
            .map(|item| (1.0 - f64::from(item.distance), *item.value as usize))
            .collect()
    }
}
