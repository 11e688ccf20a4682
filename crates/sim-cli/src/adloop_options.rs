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

/// An `AllocatorConfig` from a TOML file: unknown keys (a misspelt constant would silently keep its default)
/// and values out of range are refused, naming them.
fn load_allocator_config(path: &Path) -> anyhow::Result<adloop_allocator::AllocatorConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read allocator config {}", path.display()))?;
    let value: toml::Value = toml::from_str(&text).with_context(|| format!("allocator config {}", path.display()))?;
    let mut unknown_keys = Vec::new();
    let config: adloop_allocator::AllocatorConfig =
        serde_ignored::deserialize(value, |key| unknown_keys.push(key.to_string()))
            .with_context(|| format!("allocator config {}", path.display()))?;
    anyhow::ensure!(
        unknown_keys.is_empty(),
        "allocator config {}: unknown key(s) {} (the keys are AllocatorConfig's, crates/allocator/src/config.rs)",
        path.display(),
        unknown_keys.join(", ")
    );
    config
        .validate()
        .map_err(|reason| anyhow::anyhow!("allocator config {}: {reason}", path.display()))?;
    Ok(config)
}

/// A `LearnerConfig` from a TOML file: unknown keys (refused by the type itself) and values out of range are
/// refused, naming them.
fn load_learner_config(path: &Path) -> anyhow::Result<adloop_learner::LearnerConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read learner config {}", path.display()))?;
    let config: adloop_learner::LearnerConfig = toml::from_str(&text).with_context(|| {
        format!(
            "learner config {} (the keys are LearnerConfig's, crates/learner/src/config.rs)",
            path.display()
        )
    })?;
    config
        .validate()
        .map_err(|error| anyhow::anyhow!("learner config {}: {error}", path.display()))?;
    Ok(config)
}
