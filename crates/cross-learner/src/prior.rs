//! A new ad's prior from its similar patterns.

use serde::{Deserialize, Serialize};

use crate::store::SimilarPattern;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrossPriorConfig {
    /// Pseudo-clicks (and pseudo-conversions) of "no lift" every pooled lift is shrunk towards: a handful
    /// of clicks on similar creatives says little.
    pub shrink_towards_no_lift: f64,
    /// The most the prior may change an ad's expected return (CTR lift × conversion lift), either way:
    /// the original's ±20% cap, now also downwards.
    pub max_effect: f64,
    /// The strongest the prior may be: pseudo-impressions for CTR, pseudo-conversions for conversions per
    /// click.
    pub max_ctr_strength_impressions: f64,
    pub max_conversion_strength_conversions: f64,
}

impl Default for CrossPriorConfig {
    fn default() -> Self {
        CrossPriorConfig {
            shrink_towards_no_lift: 20.0,
            max_effect: 0.2,
            max_ctr_strength_impressions: 2_000.0,
            max_conversion_strength_conversions: 10.0,
        }
    }
}

/// Lifts over the receiving account's own averages, with strengths.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CrossPrior {
    pub ctr_lift: f64,
    pub conversion_lift: f64,
    pub ctr_strength_impressions: f64,
    pub conversion_strength_conversions: f64,
}

/// Similarity-weighted pseudo-counts of the similar patterns (negative similarities count nothing),
/// shrunk towards no lift and clamped so the expected return moves at most `max_effect` either way. No
/// similar pattern, no prior.
pub fn cross_prior(similar: &[SimilarPattern], config: &CrossPriorConfig) -> Option<CrossPrior> {
    let mut clicks = 0.0;
    let mut expected_clicks = 0.0;
    let mut conversions = 0.0;
    let mut expected_conversions = 0.0;
    let mut impressions = 0.0;
    for pattern in similar {
        let weight = pattern.similarity.max(0.0);
        clicks += weight * pattern.delivery.clicks;
        expected_clicks += weight * pattern.expected_clicks;
        conversions += weight * pattern.delivery.conversions;
        expected_conversions += weight * pattern.expected_conversions;
        impressions += weight * pattern.delivery.impressions;
    }
    if impressions <= 0.0 {
        return None;
    }
    let shrink = config.shrink_towards_no_lift;
    let low = 1.0 - config.max_effect;
    let high = 1.0 + config.max_effect;
    let ctr_lift = ((clicks + shrink) / (expected_clicks + shrink)).clamp(low, high);
    let conversion_lift =
        ((conversions + shrink) / (expected_conversions + shrink)).clamp(low / ctr_lift, high / ctr_lift);
    Some(CrossPrior {
        ctr_lift,
        conversion_lift,
        ctr_strength_impressions: impressions.min(config.max_ctr_strength_impressions),
        conversion_strength_conversions: conversions.min(config.max_conversion_strength_conversions),
    })
}
