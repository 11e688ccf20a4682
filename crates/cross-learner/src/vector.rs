//! Pattern vectors: unit-length, so cosine similarity is a dot product.

use adloop_learner::EncodedFeatures;
use serde::{Deserialize, Serialize};

/// The most dimensions a client embedding may have.
pub const MAX_EMBEDDING_DIMENSIONS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternVector(Vec<f32>);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VectorError {
    #[error("an embedding must have 1 to {MAX_EMBEDDING_DIMENSIONS} dimensions, got {0}")]
    Dimensions(usize),
    #[error("embedding value {index} must be a finite number")]
    NotFinite { index: usize },
    #[error("an embedding must not be all zeros")]
    Zero,
}

impl PatternVector {
    pub fn values(&self) -> &[f32] {
        &self.0
    }

    pub fn dimensions(&self) -> usize {
        self.0.len()
    }

    /// Cosine similarity with another vector of the same length.
    pub fn similarity(&self, other: &PatternVector) -> f64 {
        dot(&self.0, &other.0)
    }
}

pub(crate) fn dot(left: &[f32], right: &[f32]) -> f64 {
    // Four running sums let the compiler vectorise the loop.
    let mut sums = [0.0_f32; 4];
    let chunks = left.len() / 4 * 4;
    for index in (0..chunks).step_by(4) {
        for lane in 0..4 {
            sums[lane] += left[index + lane] * right[index + lane];
        }
    }
    let tail: f32 = left[chunks..].iter().zip(&right[chunks..]).map(|(a, b)| a * b).sum();
    f64::from(sums.iter().sum::<f32>() + tail)
}

/// A creative's features hashed into `dimensions` signed buckets (FNV-1a of the name picks the bucket and
/// the sign), then normalised: equal features, equal vector; shared features, high similarity.
pub fn feature_vector(features: &EncodedFeatures, dimensions: usize) -> Option<PatternVector> {
    if features.is_empty() || dimensions == 0 {
        return None;
    }
    let mut values = vec![0.0_f32; dimensions];
    for (name, value) in features.iter() {
        let hash = fnv1a(name.as_bytes());
        let bucket = (hash % dimensions as u64) as usize;
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        values[bucket] += sign * value as f32;
    }
    normalised(values)
}

/// A client's embedding, checked and normalised.
pub fn embedding_vector(values: &[f32]) -> Result<PatternVector, VectorError> {
    if values.is_empty() || values.len() > MAX_EMBEDDING_DIMENSIONS {
        return Err(VectorError::Dimensions(values.len()));
    }
    if let Some(index) = values.iter().position(|value| !value.is_finite()) {
        return Err(VectorError::NotFinite { index });
    }
    normalised(values.to_vec()).ok_or(VectorError::Zero)
}

fn normalised(mut values: Vec<f32>) -> Option<PatternVector> {
    let length = values.iter().map(|value| value * value).sum::<f32>().sqrt();
    if !(length.is_finite() && length > 0.0) {
        return None;
    }
    for value in &mut values {
        *value /= length;
    }
    Some(PatternVector(values))
}

pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use adloop_learner::encode_features;

    use super::*;

    fn vector(names: &[&str]) -> PatternVector {
        let features = encode_features(names.iter().map(|name| (*name, 1.0)), 64).unwrap();
        feature_vector(&features, 64).unwrap()
    }

    #[test]
    fn shared_features_mean_similar_patterns() {
        let base = vector(&["has_number", "has_question", "hook_type=demo"]);
        assert!((base.similarity(&base) - 1.0).abs() < 1e-6);
        let close = vector(&["has_number", "has_question", "hook_type=story"]);
        let far = vector(&["has_face", "ugc_style"]);
        assert!(base.similarity(&close) > base.similarity(&far));
        assert!(base.similarity(&close) > 0.5);
    }

    #[test]
    fn embeddings_are_checked() {
        assert_eq!(embedding_vector(&[]), Err(VectorError::Dimensions(0)));
        assert_eq!(
            embedding_vector(&[1.0, f32::NAN]),
            Err(VectorError::NotFinite { index: 1 })
        );
        assert_eq!(embedding_vector(&[0.0, 0.0]), Err(VectorError::Zero));
        assert!((embedding_vector(&[3.0, 4.0]).unwrap().values()[0] - 0.6).abs() < 1e-6);
    }
}
