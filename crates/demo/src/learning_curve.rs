//! The instant learner's creative-feature weights as the month teaches them, day by day, beside the
//! scenario's true effects: what the month's HTML report draws to show the weights moving as events arrive.

use std::collections::BTreeMap;

use campaign_sim::Scenario;
use serde_json::Value;

/// One creative feature on both heads: a learned weight (logit scale) or a scenario's true effect (log
/// scale; at ads' rates of a few percent the two scales differ by a few percent of the effect).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FeatureWeights {
    pub ctr: f64,
    pub conversions_per_click: f64,
}

/// Which of a feature's two weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    Ctr,
    ConversionsPerClick,
}

impl Head {
    pub fn of(self, weights: &FeatureWeights) -> f64 {
        match self {
            Head::Ctr => weights.ctr,
            Head::ConversionsPerClick => weights.conversions_per_click,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Head::Ctr => "CTR",
            Head::ConversionsPerClick => "conversions per click",
        }
    }
}

/// Every feature weight in `GET /v1/learner`'s answer, both heads (a feature one head lacks weighs 0 there).
pub fn learned_feature_weights(learner: &Value) -> BTreeMap<String, FeatureWeights> {
    let mut weights: BTreeMap<String, FeatureWeights> = BTreeMap::new();
    for (head, field) in [(Head::Ctr, "ctr"), (Head::ConversionsPerClick, "conversions_per_click")] {
        let Some(head_weights) = learner[field]["weights"].as_object() else {
            continue;
        };
        for (name, weight) in head_weights {
            let entry = weights.entry(name.clone()).or_default();
            let weight = weight.as_f64().unwrap_or(0.0);
            match head {
                Head::Ctr => entry.ctr = weight,
                Head::ConversionsPerClick => entry.conversions_per_click = weight,
            }
        }
    }
    weights
}

/// Each creative feature's true effects in the scenario's ad groups. A feature the groups give different
/// effects (a meaning that flips between accounts) has no one truth and is left out.
pub fn scenario_feature_effects(scenario: &Scenario) -> BTreeMap<String, FeatureWeights> {
    let mut effects: BTreeMap<String, Option<FeatureWeights>> = BTreeMap::new();
    for feature in scenario.ad_groups.iter().flat_map(|group| &group.features) {
        let this_group = FeatureWeights {
            ctr: feature.ctr_log_effect,
            conversions_per_click: feature.conversion_rate_log_effect,
        };
        effects
            .entry(feature.name.clone())
            .and_modify(|agreed| {
                if *agreed != Some(this_group) {
                    *agreed = None;
                }
            })
            .or_insert(Some(this_group));
    }
    effects
        .into_iter()
        .filter_map(|(name, effect)| Some((name, effect?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_learners_weights_are_read_per_feature_from_both_heads() {
        let learner = serde_json::json!({
            "ctr": {"weights": {"fast_cuts": 0.2, "testimonial": -0.1}},
            "conversions_per_click": {"weights": {"testimonial": 0.3}}
        });
        let weights = learned_feature_weights(&learner);
        assert_eq!(
            weights["testimonial"],
            FeatureWeights {
                ctr: -0.1,
                conversions_per_click: 0.3
            }
        );
        assert_eq!(weights["fast_cuts"].conversions_per_click, 0.0);
    }

    #[test]
    fn a_feature_whose_effect_differs_between_groups_has_no_truth() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scenarios/creative-reversed.toml"
        ))
        .expect("the shipped scenario");
        let scenario = Scenario::from_toml(&text).expect("a valid scenario");
        let flipped: Vec<&str> = scenario.ad_groups[0]
            .features
            .iter()
            .filter(|feature| {
                scenario.ad_groups.iter().any(|group| {
                    group.features.iter().any(|other| {
                        other.name == feature.name
                            && other.conversion_rate_log_effect != feature.conversion_rate_log_effect
                    })
                })
            })
            .map(|feature| feature.name.as_str())
            .collect();
        assert!(
            !flipped.is_empty(),
            "creative-reversed flips some feature between its accounts"
        );
        let effects = scenario_feature_effects(&scenario);
        for name in flipped {
            assert!(!effects.contains_key(name), "{name} has no one truth");
        }

        let month = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/month.toml"))
            .expect("the shipped scenario");
        let effects = scenario_feature_effects(&Scenario::from_toml(&month).expect("a valid scenario"));
        assert_eq!(effects["testimonial"].conversions_per_click, 0.35);
        assert_eq!(effects["fast_cuts"].ctr, 0.3);
    }
}
