use adloop_config::{
    ConfigError, DatabaseSettings, EnvironmentVariables, ServerSettings, TelemetrySettings, load_settings,
};
use serde::Deserialize;

use crate::executor::graph_client::GraphSettings;
use crate::executor::worker::ExecutorSettings;

const COMPILED_DEFAULTS: &str = include_str!("defaults.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct GatewaySettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub ml_service: MlServiceClientSettings,
    pub telemetry: TelemetrySettings,
    pub executor: ExecutorSettings,
    pub graph: GraphSettings,
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
        if settings.executor.enabled && settings.graph.access_token.is_none() {
            return Err(ConfigError::rule_violated(
                "graph.access_token",
                "is required when executor.enabled is true (the Meta token the executor writes with)",
            ));
        }
        if !(1..=500).contains(&settings.executor.claim_batch_size) {
            return Err(ConfigError::rule_violated(
                "executor.claim_batch_size",
                "must be between 1 and 500",
            ));
        }
        if let Err((key, rule)) = settings.executor.guardrails.validate() {
            return Err(ConfigError::rule_violated(&format!("executor.guardrails.{key}"), rule));
        }
        if let Err((key, rule)) = settings.executor.enqueue_jitter.validate() {
            return Err(ConfigError::rule_violated(
                &format!("executor.enqueue_jitter.{key}"),
                rule,
            ));
        }
        if let Err((key, rule)) = settings.executor.pacing.validate() {
            return Err(ConfigError::rule_violated(&format!("executor.pacing.{key}"), rule));
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
