use adloop_config::{
    ConfigError, DatabaseSettings, EnvironmentVariables, RedisSettings, ServerSettings, TelemetrySettings,
    load_settings,
};
use serde::Deserialize;

const COMPILED_DEFAULTS: &str = include_str!("defaults.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct MlServiceSettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub telemetry: TelemetrySettings,
}

impl MlServiceSettings {
    pub fn load(environment: &EnvironmentVariables) -> Result<Self, ConfigError> {
        let settings: MlServiceSettings = load_settings(COMPILED_DEFAULTS, environment)?;
        settings.server.socket_address()?;
        settings.database.validate()?;
        if settings.redis.pool_size == 0 {
            return Err(ConfigError::rule_violated("redis.pool_size", "must be at least 1"));
        }
        Ok(settings)
    }
}
