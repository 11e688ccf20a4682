//! The learner's constants, with the reasons for their defaults. ml-service reads them from its `[learner]`
//! settings; a snapshot records them, and one taken under other constants is not reused.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearnerConfig {
    /// The click-through-rate head: trials are impressions, successes clicks.
    pub ctr: FtrlConfig,
    /// The conversions-per-matured-click head: trials are clicks old enough to have reported their
    /// conversions, successes conversions.
    pub conversion: FtrlConfig,
    pub drift: DriftConfig,
    /// Learn each ad account's own level (an offset from the bias) apart from the features, from the
    /// account ids events carry. Without it, features seen more often in a better account take the credit
    /// for the account (measured in the learners table, README).
    pub account_offsets: bool,
    /// The most features one event may carry (creatives have a handful; more is a client bug).
    pub max_features_per_event: usize,
    /// The most ads whose own contribution is remembered, so their prior can leave it out (about 100 bytes
    /// each). Ads beyond it still train the model; their prior then includes their own events.
    pub max_tracked_ads: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FtrlConfig {
    /// Per-coordinate learning rate scale: a coordinate's rate is alpha / (beta + sqrt(sum of its squared
    /// gradients)).
    pub alpha: f64,
    pub beta: f64,
    /// L1 strength: a weight whose accumulated evidence stays below it is exactly zero. Small, because
    /// creatives have few features and each is meant to be learned.
    pub l1: f64,
    /// L2 strength: shrinks every weight towards zero; also the prior precision of an untrained weight.
    pub l2: f64,
    /// The rate predicted before any event (the model's starting bias): an untrained learner predicts a
    /// typical rate, not 50%.
    pub base_rate: f64,
    /// The most a prior from this head may weigh, in trials (pseudo-impressions for CTR, pseudo-clicks for
    /// conversions per click): the learner informs a new ad, its own delivery soon decides.
    pub max_prior_trials: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftConfig {
    pub enabled: bool,
    /// Page-Hinkley tolerance: a rise of mean loss (nats per trial) smaller than this is not drift.
    pub tolerance: f64,
    /// Page-Hinkley threshold: cumulative excess loss (nats) that signals drift. With a tolerance of 0.05 and
    /// single-impression loss variance near 0.5, a false alarm on a stationary stream has probability near
    /// exp(-2 * 0.05 * 60 / 0.5) = 6e-6 per excursion.
    pub threshold: f64,
    /// Observations before the test may fire (the loss of a young model falls; the test only looks for rises).
    pub min_observations: u64,
    /// On drift each coordinate's accumulated squared gradients are multiplied by this: learning rates rise
    /// (by 1/sqrt of it) while the weights stay where they are.
    pub forget_fraction: f64,
}

impl Default for LearnerConfig {
    fn default() -> Self {
        LearnerConfig {
            ctr: FtrlConfig {
                base_rate: 0.01,
                max_prior_trials: 2_000.0,
                ..FtrlConfig::default()
            },
            conversion: FtrlConfig {
                base_rate: 0.03,
                max_prior_trials: 200.0,
                ..FtrlConfig::default()
            },
            drift: DriftConfig::default(),
            account_offsets: true,
            max_features_per_event: 64,
            max_tracked_ads: 200_000,
        }
    }
}

impl Default for FtrlConfig {
    fn default() -> Self {
        FtrlConfig {
            alpha: 0.1,
            beta: 1.0,
            l1: 0.1,
            l2: 1.0,
            base_rate: 0.01,
            max_prior_trials: 2_000.0,
        }
    }
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            enabled: true,
            tolerance: 0.05,
            threshold: 60.0,
            min_observations: 30,
            forget_fraction: 0.01,
        }
    }
}

/// A constant out of its range, named by its key under `learner`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid value for `learner.{key}`: {rule}")]
pub struct ConfigError {
    pub key: String,
    pub rule: &'static str,
}

impl LearnerConfig {
    /// A stable fingerprint of every constant (FNV-1a over their printed values): state built under one
    /// fingerprint is only reused under the same one.
    pub fn fingerprint(&self) -> String {
        format!("{:016x}", crate::features::fnv1a(format!("{self:?}").as_bytes()))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.ctr.validate("ctr")?;
        self.conversion.validate("conversion")?;
        self.drift.validate()?;
        if self.max_features_per_event == 0 {
            return Err(error("max_features_per_event", "must be at least 1"));
        }
        Ok(())
    }
}

impl FtrlConfig {
    fn validate(&self, head: &str) -> Result<(), ConfigError> {
        let positive = |value: f64| value.is_finite() && value > 0.0;
        let non_negative = |value: f64| value.is_finite() && value >= 0.0;
        if !positive(self.alpha) {
            return Err(error(&format!("{head}.alpha"), "must be a positive number"));
        }
        if !non_negative(self.beta) || !non_negative(self.l1) || !non_negative(self.l2) {
            return Err(error(&format!("{head}.beta/l1/l2"), "must be zero or positive"));
        }
        if !(self.base_rate > 0.0 && self.base_rate < 1.0) {
            return Err(error(
                &format!("{head}.base_rate"),
                "must be between 0 and 1, exclusive",
            ));
        }
        if !non_negative(self.max_prior_trials) {
            return Err(error(&format!("{head}.max_prior_trials"), "must be zero or positive"));
        }
        Ok(())
    }
}

impl DriftConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(error("drift.tolerance", "must be zero or positive"));
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(error("drift.threshold", "must be a positive number"));
        }
        if !(self.forget_fraction > 0.0 && self.forget_fraction <= 1.0) {
            return Err(error("drift.forget_fraction", "must be in (0, 1]"));
        }
        Ok(())
    }
}

fn error(key: &str, rule: &'static str) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        rule,
    }
}
