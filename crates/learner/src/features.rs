//! Creative features as the learner takes them: named, canonical and bounded.
//!
//! A feature is a name and a number. Booleans are 0 or 1 (`has_pain_point`), categories are indicators named
//! `name=value` (`hook_type=question`), and numbers in [-1, 1] are used as they are. A number outside [-1, 1]
//! becomes the indicator of its power-of-two bucket (`duration_seconds` 12 → `duration_seconds@8`, meaning
//! [8, 16)): an unscaled amount such as dollars can never dominate the model (the original learned
//! "everything converts" from one event whose pipeline value was 7,500).

use serde::{Deserialize, Serialize};

/// The longest feature name accepted, after bucketing.
pub const MAX_FEATURE_NAME_LENGTH: usize = 96;

/// Features sorted by name, without zeros: the same creative always encodes to the same vector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EncodedFeatures(Vec<(String, f64)>);

impl EncodedFeatures {
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> + '_ {
        self.0.iter().map(|(name, value)| (name.as_str(), *value))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A stable 64-bit fingerprint (FNV-1a over names and value bits): equal features, equal fingerprint,
    /// on every machine and build.
    pub fn fingerprint(&self) -> u64 {
        let mut bytes = Vec::with_capacity(self.0.len() * 24);
        for (name, value) in &self.0 {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0xff);
            bytes.extend_from_slice(&value.to_bits().to_le_bytes());
        }
        fnv1a(&bytes)
    }

    /// Features already encoded (read back from the learner's own log): trusted, only re-sorted.
    pub fn from_encoded(mut features: Vec<(String, f64)>) -> Self {
        features.sort_by(|left, right| left.0.cmp(&right.0));
        EncodedFeatures(features)
    }

    pub fn into_inner(self) -> Vec<(String, f64)> {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    #[error(
        "feature name `{name}` must be 1 to {MAX_FEATURE_NAME_LENGTH} characters of a-z, 0-9, `_`, `.`, `-`, `:`, `=`, `@`"
    )]
    InvalidName { name: String },
    #[error("feature `{name}` must be a finite number")]
    NotFinite { name: String },
    #[error(
        "feature `{name}` is too large a number ({value:e}): its magnitude's bucket would need a name over {MAX_FEATURE_NAME_LENGTH} characters"
    )]
    TooLarge { name: String, value: f64 },
    #[error("feature `{name}` is given twice (names are compared in lower case)")]
    Duplicate { name: String },
    #[error("at most {limit} features per event, got {count}")]
    TooMany { count: usize, limit: usize },
}

impl FeatureError {
    /// The feature the error is about, when it is about one.
    pub fn feature_name(&self) -> Option<&str> {
        match self {
            FeatureError::InvalidName { name }
            | FeatureError::NotFinite { name }
            | FeatureError::TooLarge { name, .. }
            | FeatureError::Duplicate { name } => Some(name),
            FeatureError::TooMany { .. } => None,
        }
    }
}

/// 64-bit FNV-1a: small, stable across machines and builds (unlike the standard library's hasher).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME))
}

/// Encodes raw features: names lower-cased and checked, zeros dropped, large numbers bucketed, sorted.
pub fn encode_features<'a>(
    raw: impl IntoIterator<Item = (&'a str, f64)>,
    max_features: usize,
) -> Result<EncodedFeatures, FeatureError> {
    let mut encoded = Vec::new();
    let mut count = 0;
    for (raw_name, value) in raw {
        count += 1;
        if count > max_features {
            continue;
        }
        let name = raw_name.trim().to_ascii_lowercase();
        if !is_valid_name(&name) {
            return Err(FeatureError::InvalidName {
                name: printable(raw_name),
            });
        }
        if !value.is_finite() {
            return Err(FeatureError::NotFinite { name });
        }
        if value == 0.0 {
            continue;
        }
        if value.abs() <= 1.0 {
            encoded.push((name, value));
        } else {
            let bucket = bucket_name(&name, value);
            if bucket.len() > MAX_FEATURE_NAME_LENGTH {
                return Err(FeatureError::TooLarge { name, value });
            }
            encoded.push((bucket, 1.0));
        }
    }
    if count > max_features {
        return Err(FeatureError::TooMany {
            count,
            limit: max_features,
        });
    }
    encoded.sort_by(|left, right| left.0.cmp(&right.0));
    if let Some(pair) = encoded.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(FeatureError::Duplicate {
            name: pair[0].0.clone(),
        });
    }
    Ok(EncodedFeatures(encoded))
}

/// The indicator feature of a category: `hook_type` + `Question` → `hook_type=question` (characters a
/// feature name cannot hold become `_`).
pub fn categorical_feature_name(name: &str, value: &str) -> String {
    let value: String = value
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|character| if is_name_character(character) { character } else { '_' })
        .collect();
    format!("{}={value}", name.trim().to_ascii_lowercase())
}

/// The name users read: `has_pain_point` → `pain_point` (the recovery plan's weights drop the prefix).
pub fn display_name(name: &str) -> &str {
    name.strip_prefix("has_").unwrap_or(name)
}

fn bucket_name(name: &str, value: f64) -> String {
    let power = value.abs().log2().floor() as i32;
    let lower = 2f64.powi(power);
    let sign = if value < 0.0 { "-" } else { "" };
    format!("{name}@{sign}{lower}")
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_FEATURE_NAME_LENGTH && name.chars().all(is_name_character)
}

fn is_name_character(character: char) -> bool {
    character.is_ascii_lowercase() || character.is_ascii_digit() || "_.-:=@".contains(character)
}

/// A name fit for an error message: at most 64 characters, control characters escaped.
fn printable(name: &str) -> String {
    name.chars().take(64).flat_map(char::escape_debug).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(raw: &[(&str, f64)]) -> Result<EncodedFeatures, FeatureError> {
        encode_features(raw.iter().copied(), 64)
    }

    #[test]
    fn the_same_creative_encodes_the_same_whatever_the_order_and_case() {
        let one = encode(&[("has_number", 1.0), ("Has_Pain_Point", 1.0), ("has_question", 0.0)]).unwrap();
        let other = encode(&[("has_pain_point", 1.0), ("has_number", 1.0)]).unwrap();
        assert_eq!(one, other);
        assert_eq!(one.fingerprint(), other.fingerprint());
        assert_eq!(
            one.iter().collect::<Vec<_>>(),
            vec![("has_number", 1.0), ("has_pain_point", 1.0)]
        );
    }

    #[test]
    fn large_numbers_become_power_of_two_buckets() {
        let encoded = encode(&[
            ("duration_seconds", 12.0),
            ("pipeline_value", 7_500.0),
            ("delta", -3.0),
            ("share", 0.4),
        ])
        .unwrap();
        assert_eq!(
            encoded.iter().collect::<Vec<_>>(),
            vec![
                ("delta@-2", 1.0),
                ("duration_seconds@8", 1.0),
                ("pipeline_value@4096", 1.0),
                ("share", 0.4)
            ]
        );
    }

    #[test]
    fn bad_features_are_refused_by_name() {
        assert_eq!(
            encode(&[("has pain", 1.0)]),
            Err(FeatureError::InvalidName {
                name: "has pain".into()
            })
        );
        assert_eq!(
            encode(&[("x", f64::NAN)]),
            Err(FeatureError::NotFinite { name: "x".into() })
        );
        assert_eq!(
            encode(&[("x", 1.0), ("X", 1.0)]),
            Err(FeatureError::Duplicate { name: "x".into() })
        );
        // A number whose bucket name would be too long is too large, not a bad name.
        let too_large = encode(&[("x", -1.7e145)]).unwrap_err();
        assert!(
            matches!(too_large, FeatureError::TooLarge { ref name, .. } if name == "x"),
            "{too_large}"
        );
        assert!(too_large.to_string().contains("too large"), "{too_large}");
        let many: Vec<(String, f64)> = (0..65).map(|index| (format!("f{index}"), 1.0)).collect();
        assert_eq!(
            encode_features(many.iter().map(|(name, value)| (name.as_str(), *value)), 64),
            Err(FeatureError::TooMany { count: 65, limit: 64 })
        );
    }

    #[test]
    fn categories_and_display_names() {
        assert_eq!(
            categorical_feature_name("hook_type", "Bold Question?"),
            "hook_type=bold_question_"
        );
        assert_eq!(display_name("has_pain_point"), "pain_point");
        assert_eq!(display_name("hook_type=question"), "hook_type=question");
    }
}
