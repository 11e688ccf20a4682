use adloop_allocator::AllocatorConfig;
use adloop_config::{
    ConfigError, DatabaseSettings, EnvironmentVariables, RedisSettings, ServerSettings, TelemetrySettings,
    load_settings,
};
use serde::Deserialize;

use crate::score_cache::ScoreCacheSettings;

const COMPILED_DEFAULTS: &str = include_str!("defaults.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct MlServiceSettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub telemetry: TelemetrySettings,
    pub score_cache: ScoreCacheSettings,
    #[serde(default)]
    pub allocator: AllocatorConfig,
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
        if !(0.0..=1.0).contains(&settings.score_cache.verify_sample_rate) {
            return Err(ConfigError::rule_violated(
                "score_cache.verify_sample_rate",
                "must be between 0 and 1",
            ));
        }
        Ok(settings)
    }
}
