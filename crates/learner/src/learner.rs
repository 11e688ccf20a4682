//! The instant learner: both heads, their drift tests, and each ad's own contribution (so its prior can
//! leave it out). Applying the same updates in the same order gives bit-identical state: this is what lets
//! every ml-service replica replay one log and agree.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::config::{DriftConfig, LearnerConfig};
use crate::drift::PageHinkley;
use crate::features::EncodedFeatures;
use crate::ftrl::{AdEvidence, FtrlHead, HeadCertainty};

/// The most a single count in one update may be (a day of a very large ad is far below it).
pub const MAX_COUNT: f64 = 1e12;

/// One event for the learner: delivery counts and conversions of one ad (or of no particular ad), with the
/// ad's creative features. Counts may be fractional (a rate reported for one impression is a soft label).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LearningUpdate {
    /// Empty when the event is not about a known ad.
    pub ad_id: String,
    /// The ad's account (empty: unknown): both heads learn each account's own level apart from what its
    /// creatives' features are worth.
    pub account_id: String,
    pub features: EncodedFeatures,
    pub impressions: f64,
    pub clicks: f64,
    /// Clicks old enough for their conversions to have arrived (the conversion head's trials).
    pub matured_clicks: f64,
    pub conversions: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpdateError {
    #[error("`{field}` must be a finite number from 0 to 1e12")]
    CountOutOfRange { field: &'static str },
    #[error("`clicks` ({clicks}) must not exceed `impressions` ({impressions})")]
    MoreClicksThanImpressions { clicks: f64, impressions: f64 },
    #[error("an event must carry impressions, clicks, matured clicks or conversions")]
    Empty,
}

impl LearningUpdate {
    pub fn validate(&self) -> Result<(), UpdateError> {
        for (field, value) in [
            ("impressions", self.impressions),
            ("clicks", self.clicks),
            ("matured_clicks", self.matured_clicks),
            ("conversions", self.conversions),
        ] {
            if !(value.is_finite() && (0.0..=MAX_COUNT).contains(&value)) {
                return Err(UpdateError::CountOutOfRange { field });
            }
        }
        if self.impressions > 0.0 && self.clicks > self.impressions {
            return Err(UpdateError::MoreClicksThanImpressions {
                clicks: self.clicks,
                impressions: self.impressions,
            });
        }
        if !self.carries_counts() {
            return Err(UpdateError::Empty);
        }
        Ok(())
    }

    /// Whether the update counts anything. A client's event must ([`UpdateError::Empty`]), but an accepted one
    /// may be left with nothing to teach: an old ad's impressions and clicks are withheld from the CTR head
    /// ([`crate::ad_teaches_ctr_head`]), and the event is still logged so that a re-send stays a duplicate.
    pub fn carries_counts(&self) -> bool {
        self.impressions + self.clicks + self.matured_clicks + self.conversions > 0.0
    }
}

/// What one update did: both heads' predictions for the event's features before and after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppliedUpdate {
    pub ctr_before: f64,
    pub ctr_after: f64,
    pub conversion_rate_before: f64,
    pub conversion_rate_after: f64,
    /// A head detected an abrupt change with this update and now learns fast again.
    pub drift_detected: bool,
}

/// A learned prior for one head: the expected rate and its strength in trials.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeadPrior {
    pub expected_rate: f64,
    /// Pseudo-trials (impressions for CTR, matured clicks for conversions per click), capped by the head's
    /// `max_prior_trials`.
    pub strength_trials: f64,
}

/// The learner's prior for an ad, computed without that ad's own events.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LearnedPrior {
    pub ctr: HeadPrior,
    pub conversions_per_click: HeadPrior,
}

impl LearnedPrior {
    /// The conversions-per-click belief's strength in pseudo-conversions (its pseudo-clicks times its rate),
    /// the unit the allocator weighs conversion priors in.
    pub fn conversion_strength_conversions(&self) -> f64 {
        self.conversions_per_click.strength_trials * self.conversions_per_click.expected_rate
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LearningHead {
    model: FtrlHead,
    drift: PageHinkley,
    drifts_detected: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct AdContribution {
    features_fingerprint: u64,
    ctr: AdEvidence,
    conversion: AdEvidence,
}

/// The learner's state. Serialisable as a whole for snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstantLearner {
    config: LearnerConfig,
    ctr: LearningHead,
    conversion: LearningHead,
    updates_applied: u64,
    ads: HashMap<String, AdContribution>,
}

impl InstantLearner {
    pub fn new(config: LearnerConfig) -> Self {
        InstantLearner {
            ctr: LearningHead::new(FtrlHead::new(config.ctr.clone())),
            conversion: LearningHead::new(FtrlHead::new(config.conversion.clone())),
            config,
            updates_applied: 0,
            ads: HashMap::new(),
        }
    }

    pub fn config(&self) -> &LearnerConfig {
        &self.config
    }

    /// Applies one validated update (see [`LearningUpdate::validate`]). An update without features (a
    /// conversion of an ad whose creative is unknown) teaches nothing: the learner learns about creatives,
    /// and moving only the bias with it would drift the base rates towards whichever events carry no
    /// creative (relayed conversions arrive apart from their clicks). Nor does one left without counts
    /// ([`LearningUpdate::carries_counts`]).
    pub fn apply(&mut self, update: &LearningUpdate) -> AppliedUpdate {
        debug_assert!(matches!(update.validate(), Ok(()) | Err(UpdateError::Empty)));
        let features = &update.features;
        let account = self.offset_account(&update.account_id);
        let ctr_before = self.ctr.model.predict(features, account);
        let conversion_rate_before = self.conversion.model.predict(features, account);
        self.updates_applied += 1;
        if features.is_empty() || !update.carries_counts() {
            return AppliedUpdate {
                ctr_before,
                ctr_after: ctr_before,
                conversion_rate_before,
                conversion_rate_after: conversion_rate_before,
                drift_detected: false,
            };
        }
        let drift = self.config.drift.clone();
        let ctr_step = self
            .ctr
            .learn(features, account, update.impressions, update.clicks, &drift);
        let conversion_step =
            self.conversion
                .learn(features, account, update.matured_clicks, update.conversions, &drift);
        self.remember_contribution(update, ctr_step.gradient, conversion_step.gradient);
        AppliedUpdate {
            ctr_before,
            ctr_after: self.ctr.model.predict(features, account),
            conversion_rate_before,
            conversion_rate_after: self.conversion.model.predict(features, account),
            drift_detected: ctr_step.drift_detected || conversion_step.drift_detected,
        }
    }

    /// The CTR predicted for `features` in `account_id` (empty: no particular account).
    pub fn predict_ctr(&self, features: &EncodedFeatures, account_id: &str) -> f64 {
        self.ctr.model.predict(features, self.offset_account(account_id))
    }

    /// The conversions per click predicted for `features` in `account_id` (empty: no particular account).
    pub fn predict_conversions_per_click(&self, features: &EncodedFeatures, account_id: &str) -> f64 {
        self.conversion.model.predict(features, self.offset_account(account_id))
    }

    /// The prior for `ad_id` of `account_id` with `features`, leaving out that ad's own events.
    pub fn prior_for(&self, ad_id: &str, account_id: &str, features: &EncodedFeatures) -> LearnedPrior {
        let own = self
            .ads
            .get(ad_id)
            .filter(|contribution| contribution.features_fingerprint == features.fingerprint());
        let account = self.offset_account(account_id);
        let ctr = self
            .ctr
            .model
            .certainty_without(features, account, own.map(|own| &own.ctr));
        let conversion = self
            .conversion
            .model
            .certainty_without(features, account, own.map(|own| &own.conversion));
        LearnedPrior {
            ctr: head_prior(ctr, self.config.ctr.max_prior_trials),
            conversions_per_click: head_prior(conversion, self.config.conversion.max_prior_trials),
        }
    }

    pub fn ctr_head(&self) -> &FtrlHead {
        &self.ctr.model
    }

    pub fn conversion_head(&self) -> &FtrlHead {
        &self.conversion.model
    }

    pub fn updates_applied(&self) -> u64 {
        self.updates_applied
    }

    /// How many abrupt changes each head has detected (CTR, conversions per click).
    pub fn drifts_detected(&self) -> (u64, u64) {
        (self.ctr.drifts_detected, self.conversion.drifts_detected)
    }

    /// How far each head's drift test has risen towards its threshold (CTR, conversions per click).
    pub fn drift_rise(&self) -> (f64, f64) {
        (self.ctr.drift.rise(), self.conversion.drift.rise())
    }

    pub fn tracked_ads(&self) -> usize {
        self.ads.len()
    }

    /// The account whose offset a prediction or update uses: none when offsets are off.
    fn offset_account<'account>(&self, account_id: &'account str) -> &'account str {
        if self.config.account_offsets { account_id } else { "" }
    }

    fn remember_contribution(&mut self, update: &LearningUpdate, ctr_gradient: f64, conversion_gradient: f64) {
        if update.ad_id.is_empty() {
            return;
        }
        let fingerprint = update.features.fingerprint();
        let has_room = self.ads.len() < self.config.max_tracked_ads;
        if !has_room && !self.ads.contains_key(&update.ad_id) {
            return;
        }
        let contribution = self.ads.entry(update.ad_id.clone()).or_default();
        if contribution.features_fingerprint != fingerprint {
            // New creative features: the old sums belong to other coordinates.
            *contribution = AdContribution {
                features_fingerprint: fingerprint,
                ..AdContribution::default()
            };
        }
        contribution.ctr.add(ctr_gradient);
        contribution.conversion.add(conversion_gradient);
    }
}

struct HeadStep {
    gradient: f64,
    drift_detected: bool,
}

impl LearningHead {
    fn new(model: FtrlHead) -> Self {
        LearningHead {
            model,
            drift: PageHinkley::default(),
            drifts_detected: 0,
        }
    }

    fn learn(
        &mut self,
        features: &EncodedFeatures,
        account: &str,
        trials: f64,
        successes: f64,
        drift: &DriftConfig,
    ) -> HeadStep {
        if trials == 0.0 && successes == 0.0 {
            return HeadStep {
                gradient: 0.0,
                drift_detected: false,
            };
        }
        let (loss, gradient) = self.model.update(features, account, trials, successes);
        // Only complete observations feed the drift test: a conversion reported alone (its clicks come in
        // another event) always has a high loss and would look like drift.
        let complete = trials > 0.0 && successes <= trials;
        let drift_detected = drift.enabled && complete && self.drift.observe(loss, drift);
        if drift_detected {
            self.model.forget(drift.forget_fraction);
            self.drifts_detected += 1;
        }
        HeadStep {
            gradient,
            drift_detected,
        }
    }
}

impl AdEvidence {
    fn add(&mut self, gradient: f64) {
        self.information += gradient * gradient;
    }
}

fn head_prior(certainty: HeadCertainty, max_trials: f64) -> HeadPrior {
    HeadPrior {
        expected_rate: certainty.probability,
        strength_trials: certainty.equivalent_trials().min(max_trials),
    }
}
