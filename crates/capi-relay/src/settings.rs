use adloop_config::{
    ConfigError, DatabaseSettings, EnvironmentVariables, ServerSettings, TelemetrySettings, load_settings,
};
use serde::Deserialize;

const COMPILED_DEFAULTS: &str = include_str!("defaults.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct RelaySettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
}

impl RelaySettings {
    pub fn load(environment: &EnvironmentVariables) -> Result<Self, ConfigError> {
        let settings: RelaySettings = load_settings(COMPILED_DEFAULTS, environment)?;
        settings.server.socket_address()?;
        settings.database.validate()?;
        Ok(settings)
    }
}
