use adloop_allocator::AllocatorConfig;
use adloop_config::{
    ConfigError, DatabaseSettings, EnvironmentVariables, RedisSettings, ServerSettings, TelemetrySettings,
    load_settings,
};
use adloop_learner::LearnerConfig;
use serde::Deserialize;

use crate::admission::AllocationLimits;
use crate::learning::{CrossLearnerSettings, LearningSettings};
use crate::score_cache::ScoreCacheSettings;

const COMPILED_DEFAULTS: &str = include_str!("defaults.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct MlServiceSettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub telemetry: TelemetrySettings,
    pub score_cache: ScoreCacheSettings,
    pub allocation_limits: AllocationLimits,
    #[serde(default)]
    pub allocator: AllocatorConfig,
    pub learning: LearningSettings,
    #[serde(default)]
    pub learner: LearnerConfig,
    #[serde(default)]
    pub cross_learner: CrossLearnerSettings,
}

impl MlServiceSettings {
    pub fn load(environment: &EnvironmentVariables) -> Result<Self, ConfigError> {
        let settings: MlServiceSettings = load_settings(COMPILED_DEFAULTS, environment)?;
        settings.server.socket_address()?;
        settings.database.validate()?;
        if settings.redis.pool_size == 0 {
            return Err(ConfigError::rule_violated("redis.pool_size", "must be at least 1"));
        }
        if let Err(rule) = settings.allocator.validate() {
            return Err(ConfigError::rule_violated("allocator", rule));
        }
        if let Err(error) = settings.learner.validate() {
            return Err(ConfigError::rule_violated(
                &format!("learner.{}", error.key),
                error.rule,
            ));
        }
        if !(1..=adloop_cross_learner::MAX_EMBEDDING_DIMENSIONS).contains(&settings.cross_learner.feature_dimensions) {
            return Err(ConfigError::rule_violated(
                "cross_learner.feature_dimensions",
                "must be 1 to 1024",
            ));
        }
        if settings.cross_learner.embedding_dimensions > adloop_cross_learner::MAX_EMBEDDING_DIMENSIONS {
            return Err(ConfigError::rule_violated(
                "cross_learner.embedding_dimensions",
                "must be 0 (embeddings off) to 1024",
            ));
        }
        if !(1..=100).contains(&settings.cross_learner.top_k) {
            return Err(ConfigError::rule_violated("cross_learner.top_k", "must be 1 to 100"));
        }
        if settings.cross_learner.store.min_accounts_to_share == 0 {
            return Err(ConfigError::rule_violated(
                "cross_learner.store.min_accounts_to_share",
                "must be at least 1",
            ));
        }
        if settings.learning.max_events_per_request == 0 {
            return Err(ConfigError::rule_violated(
                "learning.max_events_per_request",
                "must be at least 1",
            ));
        }
        let max_age = settings.learning.ctr_learning_max_ad_age_hours;
        if !(max_age.is_finite() && max_age >= 0.0) {
            return Err(ConfigError::rule_violated(
                "learning.ctr_learning_max_ad_age_hours",
                "must be a number of hours, 0 or more",
            ));
        }
        if settings.learning.snapshot_every_events < 1 {
            return Err(ConfigError::rule_violated(
                "learning.snapshot_every_events",
                "must be at least 1",
            ));
        }
        if settings.allocation_limits.max_running == 0 {
            return Err(ConfigError::rule_violated(
                "allocation_limits.max_running",
                "must be at least 1",
            ));
        }
        if settings.score_cache.l1_max_bytes < 1024 * 1024 {
            return Err(ConfigError::rule_violated(
                "score_cache.l1_max_bytes",
                "must be at least 1048576 (1 MiB)",
            ));
        }
        if !(0.0..=1.0).contains(&settings.score_cache.verify_sample_rate) {
            return Err(ConfigError::rule_violated(
                "score_cache.verify_sample_rate",
                "must be between 0 and 1",
            ));
        }
        Ok(settings)
    }
}

/// The score cache exactly as ml-service ships it (its compiled defaults): replays and benchmarks measure
/// this, not a stand-in.
pub fn shipped_score_cache_settings() -> Result<ScoreCacheSettings, ConfigError> {
    #[derive(Deserialize)]
    struct ScoreCacheSection {
        score_cache: ScoreCacheSettings,
    }
    let no_environment = EnvironmentVariables::from_pairs(Vec::<(String, String)>::new());
    let section: ScoreCacheSection = load_settings(COMPILED_DEFAULTS, &no_environment)?;
    Ok(section.score_cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(pairs: &[(&str, &str)]) -> Result<MlServiceSettings, ConfigError> {
        let mut environment = vec![("ADLOOP_DATABASE__URL", "postgres://adloop@127.0.0.1/adloop")];
        environment.extend_from_slice(pairs);
        MlServiceSettings::load(&EnvironmentVariables::from_pairs(environment))
    }

    #[test]
    fn record_event_stops_teaching_clicks_at_the_learner_librarys_age_and_a_bad_age_is_refused() {
        let settings = load_with(&[]).unwrap();
        assert_eq!(
            settings.learning.ctr_learning_max_ad_age_hours,
            adloop_learner::DEFAULT_CTR_LEARNING_MAX_AD_AGE_HOURS,
            "the simulator learns with the library's default: RecordEvent, the autopilot's events included, must agree"
        );
        for bad in ["-1", "NaN"] {
            let error = load_with(&[("ADLOOP_LEARNING__CTR_LEARNING_MAX_AD_AGE_HOURS", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("learning.ctr_learning_max_ad_age_hours"),
                "{bad}: {error}"
            );
        }
    }
}
