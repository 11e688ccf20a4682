//! One logistic-regression head trained online with FTRL-Proximal (McMahan et al., 2013).
//!
//! Each coordinate keeps `z` (its gradients less the proximal corrections) and `n` (its squared gradients);
//! its weight is computed from them on demand. The bias is one more coordinate without L1/L2. The starting
//! bias is the logit of the configured base rate, so an untrained head predicts a typical rate.
//!
//! An event is `trials` with `successes` (impressions with clicks, matured clicks with conversions): one step
//! on the summed gradient `trials * p - successes`. The expected square of that gradient is the binomial
//! variance `trials * p * (1 - p)`, so `n` also estimates the Fisher information each coordinate has seen,
//! which is where a prior's strength comes from.
//!
//! Each ad account has one more coordinate, its offset from the bias (a fixed effect), when events name
//! their account. Accounts differ in level (audience, price, product), and without their offsets whatever
//! feature happens to be commoner in a high-converting account takes the credit for its level: with a few
//! dozen ads the feature weights are confounded with the accounts they were seen in. Offsets are not feature
//! weights: `weights()` leaves them out, and a prediction without an account uses none.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::config::FtrlConfig;
use crate::features::EncodedFeatures;

const SMALLEST_PROBABILITY: f64 = 1e-12;

/// The most accounts a head keeps an offset for (about 100 bytes each); events of further accounts train
/// the shared coordinates only.
pub const MAX_ACCOUNT_OFFSETS: usize = 100_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Coordinate {
    z: f64,
    n: f64,
}

/// One ad's own evidence on a head (the sum of its squared gradients, the same information measure as a
/// coordinate's `n`), so its prior can leave it out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AdEvidence {
    pub information: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FtrlHead {
    config: FtrlConfig,
    bias: Coordinate,
    coordinates: HashMap<String, Coordinate>,
    /// Each account's offset from the bias, by account id (regularised as feature weights are).
    account_offsets: HashMap<String, Coordinate>,
}

/// How sure the head is of its prediction for some features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadCertainty {
    pub probability: f64,
    /// Variance of the logit, treating coordinates as independent: the sum over the active coordinates of
    /// x² / (information seen + L2 prior precision).
    pub logit_variance: f64,
}

impl HeadCertainty {
    /// The prediction as a Beta prior's pseudo-trials: the number of trials whose binomial information
    /// matches the logit's variance.
    pub fn equivalent_trials(&self) -> f64 {
        let probability_variance = self.probability * (1.0 - self.probability);
        1.0 / (self.logit_variance * probability_variance).max(f64::MIN_POSITIVE)
    }
}

impl FtrlHead {
    pub fn new(config: FtrlConfig) -> Self {
        FtrlHead {
            config,
            bias: Coordinate::default(),
            coordinates: HashMap::new(),
            account_offsets: HashMap::new(),
        }
    }

    pub fn config(&self) -> &FtrlConfig {
        &self.config
    }

    /// The predicted rate for `features` in `account` (empty: no account, no offset).
    pub fn predict(&self, features: &EncodedFeatures, account: &str) -> f64 {
        sigmoid(self.logit(features, account, None))
    }

    /// The prediction without `left_out` (one ad's own evidence) and its certainty.
    pub fn certainty_without(
        &self,
        features: &EncodedFeatures,
        account: &str,
        left_out: Option<&AdEvidence>,
    ) -> HeadCertainty {
        let precision_floor = self.config.l2.max(f64::MIN_POSITIVE);
        let (_, bias_information) = self.weight_and_information_without(&self.bias, 1.0, left_out, true);
        let mut logit_variance = 1.0 / (bias_information + precision_floor);
        if let Some(offset) = self.account_offsets.get(account) {
            let (_, information) = self.weight_and_information_without(offset, 1.0, left_out, false);
            logit_variance += 1.0 / (information + precision_floor);
        }
        for (name, value) in features.iter() {
            let coordinate = self.coordinates.get(name).copied().unwrap_or_default();
            let (_, information) = self.weight_and_information_without(&coordinate, value, left_out, false);
            logit_variance += value * value / (information + precision_floor);
        }
        HeadCertainty {
            probability: sigmoid(self.logit(features, account, left_out)),
            logit_variance,
        }
    }

    /// One step on `trials` with `successes` of an ad with `features` in `account` (empty: none); returns
    /// the loss per trial before the step and the summed gradient taken (for the ad's own sums).
    pub fn update(&mut self, features: &EncodedFeatures, account: &str, trials: f64, successes: f64) -> (f64, f64) {
        let probability = self.predict(features, account);
        let gradient = trials * probability - successes;
        let loss = loss_per_trial(probability, trials, successes);
        if gradient == 0.0 {
            return (loss, gradient);
        }
        let config = self.config.clone();
        step(&mut self.bias, gradient, &config, true);
        if let Some(offset) = self.account_offset_to_train(account) {
            step(offset, gradient, &config, false);
        }
        for (name, value) in features.iter() {
            let coordinate = match self.coordinates.get_mut(name) {
                Some(coordinate) => coordinate,
                None => self.coordinates.entry(name.to_owned()).or_default(),
            };
            step(coordinate, gradient * value, &config, false);
        }
        (loss, gradient)
    }

    /// Makes every coordinate learn fast again (its squared-gradient sum times `fraction`) while keeping
    /// its weight: after a concept flip the head moves to the new truth without starting from nothing.
    pub fn forget(&mut self, fraction: f64) {
        let config = self.config.clone();
        rescale_keeping_weight(&mut self.bias, fraction, &config, true);
        for coordinate in self.coordinates.values_mut().chain(self.account_offsets.values_mut()) {
            rescale_keeping_weight(coordinate, fraction, &config, false);
        }
    }

    /// The learned weight of every feature seen (zero ones included), by name.
    pub fn weights(&self) -> impl Iterator<Item = (&str, f64)> + '_ {
        self.coordinates
            .iter()
            .map(|(name, coordinate)| (name.as_str(), weight(coordinate, &self.config, false)))
    }

    /// The bias, including the starting logit of the base rate.
    pub fn bias(&self) -> f64 {
        logit(self.config.base_rate) + weight(&self.bias, &self.config, true)
    }

    pub fn feature_count(&self) -> usize {
        self.coordinates.len()
    }

    /// The offset of `account` an update trains: none without an account, or for a new one once
    /// `MAX_ACCOUNT_OFFSETS` are kept.
    fn account_offset_to_train(&mut self, account: &str) -> Option<&mut Coordinate> {
        if account.is_empty() {
            return None;
        }
        if !self.account_offsets.contains_key(account) {
            if self.account_offsets.len() >= MAX_ACCOUNT_OFFSETS {
                return None;
            }
            self.account_offsets.insert(account.to_owned(), Coordinate::default());
        }
        self.account_offsets.get_mut(account)
    }

    fn logit(&self, features: &EncodedFeatures, account: &str, left_out: Option<&AdEvidence>) -> f64 {
        let (bias, _) = self.weight_and_information_without(&self.bias, 1.0, left_out, true);
        let mut total = logit(self.config.base_rate) + bias;
        if let Some(offset) = self.account_offsets.get(account) {
            total += self.weight_and_information_without(offset, 1.0, left_out, false).0;
        }
        for (name, value) in features.iter() {
            if let Some(coordinate) = self.coordinates.get(name) {
                let (weight, _) = self.weight_and_information_without(coordinate, value, left_out, false);
                total += weight * value;
            }
        }
        total
    }

    /// A coordinate's weight and information without one ad's evidence: the information less the ad's, the
    /// weight shrunk towards zero by the ad's share of that information. An approximation (exact
    /// leave-one-out would refit), but the right shape: a weight learned from one ad alone falls back to
    /// nothing, one learned from thousands of ads barely moves.
    fn weight_and_information_without(
        &self,
        coordinate: &Coordinate,
        value: f64,
        left_out: Option<&AdEvidence>,
        is_bias: bool,
    ) -> (f64, f64) {
        let full_weight = weight(coordinate, &self.config, is_bias);
        let Some(evidence) = left_out.filter(|_| coordinate.n > 0.0) else {
            return (full_weight, coordinate.n);
        };
        let own_information = (evidence.information * value * value).min(coordinate.n);
        let kept_share = 1.0 - own_information / coordinate.n;
        (full_weight * kept_share, coordinate.n - own_information)
    }
}

fn step(coordinate: &mut Coordinate, gradient: f64, config: &FtrlConfig, is_bias: bool) {
    let current_weight = weight(coordinate, config, is_bias);
    let new_n = coordinate.n + gradient * gradient;
    let sigma = (new_n.sqrt() - coordinate.n.sqrt()) / config.alpha;
    coordinate.z += gradient - sigma * current_weight;
    coordinate.n = new_n;
}

fn weight(coordinate: &Coordinate, config: &FtrlConfig, is_bias: bool) -> f64 {
    let (l1, l2) = if is_bias { (0.0, 0.0) } else { (config.l1, config.l2) };
    if coordinate.z.abs() <= l1 {
        return 0.0;
    }
    let denominator = (config.beta + coordinate.n.sqrt()) / config.alpha + l2;
    -(coordinate.z - coordinate.z.signum() * l1) / denominator
}

fn rescale_keeping_weight(coordinate: &mut Coordinate, fraction: f64, config: &FtrlConfig, is_bias: bool) {
    let kept_weight = weight(coordinate, config, is_bias);
    coordinate.n *= fraction;
    if kept_weight == 0.0 {
        return;
    }
    let l1 = if is_bias { 0.0 } else { config.l1 };
    let l2 = if is_bias { 0.0 } else { config.l2 };
    let denominator = (config.beta + coordinate.n.sqrt()) / config.alpha + l2;
    coordinate.z = -kept_weight * denominator - kept_weight.signum() * l1;
}

/// Mean log loss per trial. Successes beyond the trials (conversions reported apart from their clicks)
/// count as positives alone.
fn loss_per_trial(probability: f64, trials: f64, successes: f64) -> f64 {
    let probability = probability.clamp(SMALLEST_PROBABILITY, 1.0 - SMALLEST_PROBABILITY);
    let failures = (trials - successes).max(0.0);
    let total = -(successes * probability.ln() + failures * (1.0 - probability).ln());
    total / trials.max(successes).max(f64::MIN_POSITIVE)
}

pub fn sigmoid(logit: f64) -> f64 {
    1.0 / (1.0 + (-logit).exp())
}

pub fn logit(probability: f64) -> f64 {
    (probability / (1.0 - probability)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::encode_features;

    fn features(names: &[&str]) -> EncodedFeatures {
        encode_features(names.iter().map(|name| (*name, 1.0)), 64).unwrap()
    }

    #[test]
    fn an_untrained_head_predicts_its_base_rate() {
        let head = FtrlHead::new(FtrlConfig::default());
        assert!((head.predict(&features(&["has_number"]), "") - 0.01).abs() < 1e-12);
    }

    #[test]
    fn forgetting_keeps_every_weight_and_raises_the_learning_rate() {
        let mut head = FtrlHead::new(FtrlConfig::default());
        let creative = features(&["has_number", "has_question"]);
        for _ in 0..200 {
            head.update(&creative, "", 20.0, 3.0);
        }
        let before: HashMap<String, f64> = head.weights().map(|(name, value)| (name.to_owned(), value)).collect();
        let prediction = head.predict(&creative, "");
        let mut forgetful = head.clone();
        forgetful.forget(0.01);
        for (name, value) in forgetful.weights() {
            assert!((value - before[name]).abs() < 1e-9, "{name} moved");
        }
        assert!((forgetful.predict(&creative, "") - prediction).abs() < 1e-9);
        // The same new evidence moves the forgetful head further.
        head.update(&creative, "", 20.0, 0.0);
        forgetful.update(&creative, "", 20.0, 0.0);
        assert!(forgetful.predict(&creative, "") < head.predict(&creative, ""));
    }

    #[test]
    fn more_evidence_means_more_certainty() {
        let mut head = FtrlHead::new(FtrlConfig::default());
        let creative = features(&["has_number"]);
        let untrained = head.certainty_without(&creative, "", None).equivalent_trials();
        // 2% CTR: one click in every fifth event of ten impressions.
        for event in 0..500 {
            let clicks = if event % 5 == 0 { 1.0 } else { 0.0 };
            head.update(&creative, "", 10.0, clicks);
        }
        let trained = head.certainty_without(&creative, "", None).equivalent_trials();
        assert!(untrained < 100.0, "an untrained head claims {untrained} trials");
        assert!(trained > 10.0 * untrained, "{trained} vs {untrained}");
    }
}
