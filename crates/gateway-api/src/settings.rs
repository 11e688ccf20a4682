use adloop_config::{
    ConfigError, DatabaseSettings, EnvironmentVariables, ServerSettings, TelemetrySettings, load_settings,
};
use adloop_service_kit::request_bounds::RequestBounds;
use serde::Deserialize;

use crate::autopilot::settings::AutopilotSettings;
use crate::executor::graph_client::GraphSettings;
use crate::executor::worker::ExecutorSettings;
use crate::relay_health::RelaySettings;
use adloop_service_kit::clock::ClockSettings;

const COMPILED_DEFAULTS: &str = include_str!("defaults.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct GatewaySettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub ml_service: MlServiceClientSettings,
    pub telemetry: TelemetrySettings,
    pub executor: ExecutorSettings,
    pub graph: GraphSettings,
    /// Bounds on the API's requests (health, readiness and metrics are exempt).
    pub http_limits: RequestBounds,
    pub api_keys: ApiKeySettings,
    pub autopilot: AutopilotSettings,
    pub clock: ClockSettings,
    /// capi-relay, as the operator's page reads its health.
    pub relay: RelaySettings,
}

/// Which requests may come without an API key.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeySettings {
    /// Serve the recovery plan's routes (`GET /api/weights`, `POST /api/internal/learning/event`,
    /// `POST /api/v1/ml/battle-hardened/select`) to requests that carry no `Authorization` header, as the
    /// original system's callers and the plan's own test send them. Off by default; for a gateway only trusted
    /// callers can reach (the original's internal routes sat on its internal network).
    pub open_recovery_plan_routes: bool,
}

/// How the gateway reaches ml-service over gRPC.
#[derive(Debug, Clone, Deserialize)]
pub struct MlServiceClientSettings {
    pub endpoint: String,
    /// The CA (PEM) that signed ml-service's certificate when `endpoint` is https:// and not signed by a
    /// public CA; without it the public roots verify the server.
    pub ca_certificate_path: Option<String>,
    /// Attach a Google-signed ID token of this gateway's service account to every call (ml-service on
    /// Cloud Run, where IAM admits only its callers' accounts), fetched from `google_metadata_url`.
    pub google_id_token: bool,
    pub google_metadata_url: String,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

impl GatewaySettings {
    pub fn load(environment: &EnvironmentVariables) -> Result<Self, ConfigError> {
        let settings: GatewaySettings = load_settings(COMPILED_DEFAULTS, environment)?;
        settings.server.socket_address()?;
        settings.database.validate()?;
        checked_section("http_limits", settings.http_limits.validate())?;
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
        // A round holds a connection for its queries and one for its lease keeper; the wake-up listener
        // holds one more, and the API needs some.
        let workers = settings.executor.workers;
        let pool_fits = workers >= 1 && workers * 2 + 2 <= settings.database.max_connections as usize;
        if settings.executor.enabled && !pool_fits {
            return Err(ConfigError::rule_violated(
                "executor.workers",
                "must be at least 1 and at most (database.max_connections - 2) / 2",
            ));
        }
        checked_section("executor.guardrails", settings.executor.guardrails.validate())?;
        checked_section("executor.enqueue_jitter", settings.executor.enqueue_jitter.validate())?;
        checked_section("executor.pacing", settings.executor.pacing.validate())?;
        checked_section("executor.retention", settings.executor.retention.validate())?;
        checked_section("autopilot", settings.autopilot.validate())?;
        checked_section("relay", settings.relay.validate())?;
        if settings.autopilot.enabled && settings.graph.access_token.is_none() {
            return Err(ConfigError::rule_violated(
                "graph.access_token",
                "is required when autopilot.enabled is true (the Meta token the autopilot reads accounts with)",
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

/// A settings section's own check, its failing key named under the section (`executor.pacing.{key}`).
fn checked_section(section: &str, checked: Result<(), (&'static str, &'static str)>) -> Result<(), ConfigError> {
    checked.map_err(|(key, rule)| ConfigError::rule_violated(&format!("{section}.{key}"), rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(pairs: &[(&str, &str)]) -> Result<GatewaySettings, ConfigError> {
        let mut environment = vec![
            ("ADLOOP_DATABASE__URL", "postgres://adloop@127.0.0.1/adloop"),
            ("ADLOOP_EXECUTOR__ENABLED", "true"),
            ("ADLOOP_GRAPH__ACCESS_TOKEN", "test-token"),
        ];
        environment.extend_from_slice(pairs);
        GatewaySettings::load(&EnvironmentVariables::from_pairs(environment))
    }

    #[test]
    fn executor_workers_must_fit_the_database_pool() {
        assert_eq!(
            load_with(&[]).unwrap().executor.workers,
            4,
            "the shipped default fits 10 connections"
        );
        let error = load_with(&[("ADLOOP_EXECUTOR__WORKERS", "5")]).unwrap_err().to_string();
        assert!(error.contains("executor.workers"), "{error}");
        let error = load_with(&[("ADLOOP_EXECUTOR__WORKERS", "0")]).unwrap_err().to_string();
        assert!(error.contains("executor.workers"), "{error}");
        let bigger_pool = [
            ("ADLOOP_EXECUTOR__WORKERS", "5"),
            ("ADLOOP_DATABASE__MAX_CONNECTIONS", "12"),
        ];
        assert_eq!(load_with(&bigger_pool).unwrap().executor.workers, 5);
        let executor_off = [
            ("ADLOOP_EXECUTOR__ENABLED", "false"),
            ("ADLOOP_DATABASE__MAX_CONNECTIONS", "4"),
        ];
        assert!(
            load_with(&executor_off).is_ok(),
            "a gateway without the executor needs no connections for it"
        );
    }

    #[test]
    fn the_autopilots_reporting_delay_prior_is_the_allocators_default_and_a_bad_one_is_refused() {
        let settings = load_with(&[]).unwrap();
        let allocator = adloop_allocator::AllocatorConfig::default();
        assert_eq!(settings.autopilot.reporting_delay_prior, allocator.reporting_delay);
        assert_eq!(
            settings.autopilot.reporting_delay_prior_conversions,
            allocator.reporting_delay_estimate_prior_conversions
        );
        let error = load_with(&[("ADLOOP_AUTOPILOT__REPORTING_DELAY_PRIOR_CONVERSIONS", "-1")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("autopilot.reporting_delay_prior_conversions"), "{error}");
    }
}
