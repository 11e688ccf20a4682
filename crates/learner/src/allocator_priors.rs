//! The instant learner's priors in an allocation request, as ml-service and the simulator's `adloop` policy
//! both add them.

use adloop_allocator::{AllocationRequest, Prior};

use crate::features::encode_features;
use crate::learner::InstantLearner;

/// The name the instant learner's priors carry (`prior_source` in every recommendation).
pub const INSTANT_LEARNER_SOURCE: &str = "instant_learner";

/// Gives every ad with creative features and no instant-learner prior yet the learner's prior, leaving out
/// the ad's own events. An ad whose features the learner refuses gets none.
pub fn add_instant_learner_priors(learner: &InstantLearner, request: &mut AllocationRequest) {
    let max_features = learner.config().max_features_per_event;
    for ad in &mut request.ads {
        let has_one = ad.priors.iter().any(|prior| prior.source == INSTANT_LEARNER_SOURCE);
        if has_one || ad.creative_features.is_empty() {
            continue;
        }
        let raw = ad.creative_features.iter().map(|(name, value)| (name.as_str(), *value));
        let Ok(features) = encode_features(raw, max_features) else {
            continue;
        };
        let learned = learner.prior_for(&ad.ids.ad_id, &ad.ids.account_id, &features);
        ad.priors.push(Prior {
            source: INSTANT_LEARNER_SOURCE.to_owned(),
            expected_ctr: learned.ctr.expected_rate,
            ctr_strength_impressions: learned.ctr.strength_trials,
            expected_conversions_per_click: learned.conversions_per_click.expected_rate,
            conversion_strength_conversions: learned.conversion_strength_conversions(),
            rates_are_lifts: false,
        });
    }
}
