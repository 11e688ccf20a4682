use adloop_config::{
    ConfigError, DatabaseSettings, EnvironmentVariables, ServerSettings, TelemetrySettings, load_settings,
};
use serde::Deserialize;

const COMPILED_DEFAULTS: &str = include_str!("defaults.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct GatewaySettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub ml_service: MlServiceClientSettings,
    pub telemetry: TelemetrySettings,
}

/// How the gateway reaches ml-service over gRPC.
#[derive(Debug, Clone, Deserialize)]
pub struct MlServiceClientSettings {
    pub endpoint: String,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

impl GatewaySettings {
    pub fn load(environment: &EnvironmentVariables) -> Result<Self, ConfigError> {
        let settings: GatewaySettings = load_settings(COMPILED_DEFAULTS, environment)?;
        settings.server.socket_address()?;
        settings.database.validate()?;
        let endpoint = &settings.ml_service.endpoint;
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(ConfigError::rule_violated(
                "ml_service.endpoint",
                format!("`{endpoint}` must start with http:// or https://"),
            ));
        }
        if settings.ml_service.request_timeout_ms == 0 {
            return Err(ConfigError::rule_violated(
                "ml_service.request_timeout_ms",
                "must be at least 1",
            ));
        }
        Ok(settings)
    }
}
