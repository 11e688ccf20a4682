//! `--allocator-config`, `--learner-config` and `--max-change-fraction`: how the adloop policies (and the
//! limited oracle) run, so allocator and learner settings can be tried on one's own scenarios before
//! ml-service gets them.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use campaign_sim::policy::PolicySettings;
use clap::Args;

/// How the adloop policies (and the limited oracle) run, for trying settings before giving them to
/// ml-service.
#[derive(Debug, Args)]
pub struct AdloopOptions {
    /// Allocator constants for the adloop policies: a TOML file with `AllocatorConfig`'s keys, as in
    /// ml-service's `[allocator]` settings (crates/allocator/src/config.rs); keys it leaves out keep their
    /// defaults, unknown keys are refused.
    #[arg(long)]
    pub allocator_config: Option<PathBuf>,
    /// Instant-learner constants for the adloop policy: a TOML file with `LearnerConfig`'s keys, as in
    /// ml-service's `[learner]` settings (crates/learner/src/config.rs, e.g. `[conversion]` `alpha = 0.2`);
    /// keys it leaves out keep their defaults, unknown keys are refused.
    #[arg(long)]
    pub learner_config: Option<PathBuf>,
    /// The largest change per ad per decision the adloop policies keep, as a fraction of its current
    /// budget; the limited oracle keeps the same.
    #[arg(long, default_value_t = campaign_sim::policy::DEFAULT_MAX_CHANGE_FRACTION)]
    pub max_change_fraction: f64,
}

impl AdloopOptions {
    /// The settings these options ask for, checked.
    pub fn policy_settings(&self) -> anyhow::Result<PolicySettings> {
        anyhow::ensure!(
            self.max_change_fraction.is_finite() && self.max_change_fraction > 0.0 && self.max_change_fraction <= 100.0,
            "--max-change-fraction must be more than 0 and at most 100 (0.5: ±50% a decision)"
        );
        let allocator = match &self.allocator_config {
            Some(path) => load_allocator_config(path)?,
            None => adloop_allocator::AllocatorConfig::default(),
        };
        let learner = match &self.learner_config {
            Some(path) => load_learner_config(path)?,
            None => adloop_learner::LearnerConfig::default(),
        };
        Ok(PolicySettings {
            allocator,
            learner,
            max_change_fraction: self.max_change_fraction,
            explain_decisions: false,
        })
    }

    /// A line saying what differs from the shipped settings, if anything.
    pub fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.max_change_fraction != campaign_sim::policy::DEFAULT_MAX_CHANGE_FRACTION {
            parts.push(format!(
                "adloop and oracle-limited keep ±{:.0}% a decision",
                self.max_change_fraction * 100.0
            ));
        }
        if let Some(path) = &self.allocator_config {
            parts.push(format!("allocator constants from {}", path.display()));
        }
        if let Some(path) = &self.learner_config {
            parts.push(format!("learner constants from {}", path.display()));
        }
        (!parts.is_empty()).then(|| format!("settings: {}\n", parts.join("; ")))
    }
}

/// An `AllocatorConfig` from a TOML file.
fn load_allocator_config(path: &Path) -> anyhow::Result<adloop_allocator::AllocatorConfig> {
    load_settings(
        path,
        "allocator",
        "AllocatorConfig's, crates/allocator/src/config.rs",
        adloop_allocator::AllocatorConfig::validate,
    )
}

/// A `LearnerConfig` from a TOML file.
fn load_learner_config(path: &Path) -> anyhow::Result<adloop_learner::LearnerConfig> {
    load_settings(
        path,
        "learner",
        "LearnerConfig's, crates/learner/src/config.rs",
        adloop_learner::LearnerConfig::validate,
    )
}

/// Settings of type `T` from the TOML file at `path`, laid over `T`'s defaults key by key (as ml-service
/// lays its settings file over its compiled defaults): a table that sets one key of a nested section keeps
/// that section's other defaults — the conversion head's own base rate, not a generic head's. Unknown keys (a
/// misspelt constant would silently keep its default) and values `validate` finds out of range are refused,
/// naming them. `what` names the settings in messages, `keys` says whose keys they are.
fn load_settings<T, E>(
    path: &Path,
    what: &str,
    keys: &str,
    validate: impl FnOnce(&T) -> Result<(), E>,
) -> anyhow::Result<T>
where
    T: serde::de::DeserializeOwned + serde::Serialize + Default,
    E: std::fmt::Display,
{
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {what} config {}", path.display()))?;
    let file: toml::Value = toml::from_str(&text).with_context(|| format!("{what} config {}", path.display()))?;
    let mut value = toml::Value::try_from(T::default()).context("the compiled defaults serialise as TOML")?;
    lay_over(&mut value, file);
    let mut unknown_keys = Vec::new();
    let settings: T = serde_ignored::deserialize(value, |key| unknown_keys.push(key.to_string()))
        .with_context(|| format!("{what} config {} (the keys are {keys})", path.display()))?;
    anyhow::ensure!(
        unknown_keys.is_empty(),
        "{what} config {}: unknown key(s) {} (the keys are {keys})",
        path.display(),
        unknown_keys.join(", ")
    );
    validate(&settings).map_err(|reason| anyhow::anyhow!("{what} config {}: {reason}", path.display()))?;
    Ok(settings)
}

/// Lays `overlay` over `base`: tables merge key by key, anything else replaces what was there.
fn lay_over(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(base_table), toml::Value::Table(overlay_table)) => {
            for (key, overlay_value) in overlay_table {
                match base_table.get_mut(&key) {
                    Some(base_value) => lay_over(base_value, overlay_value),
                    None => {
                        base_table.insert(key, overlay_value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_of_a_learner_head_keeps_that_heads_other_defaults() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("learner.toml");
        std::fs::write(&path, "[conversion]\nalpha = 0.3\n").unwrap();
        let loaded = load_learner_config(&path).unwrap();
        let shipped = adloop_learner::LearnerConfig::default();
        assert_eq!(loaded.conversion.alpha, 0.3);
        assert_eq!(loaded.conversion.base_rate, shipped.conversion.base_rate);
        assert_eq!(loaded.conversion.max_prior_trials, shipped.conversion.max_prior_trials);
        assert_eq!(loaded.ctr, shipped.ctr);
    }

    #[test]
    fn a_misspelt_key_inside_a_section_is_still_refused() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("learner.toml");
        std::fs::write(&path, "[drift]\nthreshhold = 10.0\n").unwrap();
        let refusal = format!("{:#}", load_learner_config(&path).unwrap_err());
        assert!(refusal.contains("threshhold"), "{refusal}");
    }
}
