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
    #[serde(default)]
    pub ingest: IngestSettings,
    pub delivery: crate::delivery::DeliverySettings,
    pub learning: crate::learning::LearningSettings,
    pub clock: adloop_service_kit::clock::ClockSettings,
}

/// How the relay reads incoming events.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// The calling code (digits) added to phone numbers sent without `+` or `00`; empty: such numbers are
    /// refused (Meta requires the country code).
    pub default_calling_code: String,
    /// Dates of birth written with slashes: `month_first` (2/16/1997) or `day_first`.
    pub date_order: String,
    /// How far in the future `event_time` may be (clock skew).
    pub future_tolerance_seconds: i64,
    /// Group commit: writer tasks (each with one insert in flight), the most events per insert, and the
    /// requests that may wait for a writer before new ones are refused with 429.
    pub commit_writers: usize,
    pub max_events_per_commit: usize,
    pub commit_queue_requests: usize,
    /// Request bodies (KiB) the ingest endpoints hold at once; beyond it requests are refused with 429.
    pub max_body_kib_in_flight: usize,
    /// How long a looked-up ingest token is remembered (a revoked token works at most this much longer).
    pub remember_tokens_seconds: u64,
    /// When set, `POST /api/meta/capi/test` also answers requests that carry no token, checking the event
    /// for this pixel, as the recovery plan's own check sends it. None by default; for a relay only trusted
    /// callers reach, since with a `test_event_code` the event goes to Meta's test view.
    pub capi_test_pixel_without_token: Option<String>,
}

impl IngestSettings {
    /// The normaliser's settings these stand for (`None`: an unknown date order).
    pub fn normalise_settings(&self) -> Option<adloop_capi_events::user_data::NormaliseSettings> {
        use adloop_capi_events::user_data::{DateOrder, NormaliseSettings};
        let date_order = match self.date_order.as_str() {
            "month_first" => DateOrder::MonthFirst,
            "day_first" => DateOrder::DayFirst,
            _ => return None,
        };
        Some(NormaliseSettings {
            default_calling_code: (!self.default_calling_code.is_empty()).then(|| self.default_calling_code.clone()),
            date_order,
            current_year: 0,
        })
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            default_calling_code: String::new(),
            date_order: "month_first".into(),
            future_tolerance_seconds: 600,
            commit_writers: 4,
            max_events_per_commit: 5000,
            commit_queue_requests: 4096,
            max_body_kib_in_flight: 32 * 1024,
            remember_tokens_seconds: 10,
            capi_test_pixel_without_token: None,
        }
    }
}

impl RelaySettings {
    pub fn load(environment: &EnvironmentVariables) -> Result<Self, ConfigError> {
        let settings: RelaySettings = load_settings(COMPILED_DEFAULTS, environment)?;
        settings.server.socket_address()?;
        settings.database.validate()?;
        let ingest = &settings.ingest;
        if !ingest.default_calling_code.bytes().all(|byte| byte.is_ascii_digit())
            || ingest.default_calling_code.len() > 3
        {
            return Err(ConfigError::rule_violated(
                "ingest.default_calling_code",
                "must be empty or a calling code of 1 to 3 digits (1, 44, 351)",
            ));
        }
        if ingest.normalise_settings().is_none() {
            return Err(ConfigError::rule_violated(
                "ingest.date_order",
                "must be month_first or day_first",
            ));
        }
        if !(1..=64).contains(&ingest.commit_writers) {
            return Err(ConfigError::rule_violated(
                "ingest.commit_writers",
                "must be between 1 and 64",
            ));
        }
        if !(1..=100_000).contains(&ingest.max_events_per_commit) {
            return Err(ConfigError::rule_violated(
                "ingest.max_events_per_commit",
                "must be between 1 and 100000",
            ));
        }
        if ingest.commit_queue_requests == 0 {
            return Err(ConfigError::rule_violated(
                "ingest.commit_queue_requests",
                "must be at least 1",
            ));
        }
        if ingest.max_body_kib_in_flight < crate::routes::MAX_BODY_BYTES / 1024 {
            return Err(ConfigError::rule_violated(
                "ingest.max_body_kib_in_flight",
                "must hold at least one largest request (8192 KiB)",
            ));
        }
        if let Some(pixel_id) = &ingest.capi_test_pixel_without_token
            && !crate::sources::is_valid_pixel_id(pixel_id)
        {
            return Err(ConfigError::rule_violated(
                "ingest.capi_test_pixel_without_token",
                format!("must be a pixel id (1 to 20 digits), got {pixel_id:?}"),
            ));
        }
        let delivery = &settings.delivery;
        if delivery.enabled && !delivery.has_any_token() {
            return Err(ConfigError::rule_violated(
                "delivery.access_token",
                "is required when delivery.enabled is true (the token the relay sends to Meta with; or one per pixel \
                 in delivery.pixels.<pixel_id>.access_token)",
            ));
        }
        if let Some(bad) = delivery
            .pixels
            .keys()
            .find(|pixel_id| !crate::sources::is_valid_pixel_id(pixel_id))
        {
            return Err(ConfigError::rule_violated(
                "delivery.pixels",
                format!("keys must be pixel ids (1 to 20 digits), got {bad:?}"),
            ));
        }
        if !(delivery.keep_events_hours >= 48.0 && delivery.keep_events_hours.is_finite()) {
            return Err(ConfigError::rule_violated(
                "delivery.keep_events_hours",
                "must be at least 48 (Meta's de-duplication window)",
            ));
        }
        if !(1..=1000).contains(&delivery.batch_size) {
            return Err(ConfigError::rule_violated(
                "delivery.batch_size",
                "must be between 1 and 1000 (Meta's limit)",
            ));
        }
        let learning = &settings.learning;
        if learning.enabled
            && !(learning.ml_service_endpoint.starts_with("http://")
                || learning.ml_service_endpoint.starts_with("https://"))
        {
            return Err(ConfigError::rule_violated(
                "learning.ml_service_endpoint",
                "must be an http:// or https:// URL (ml-service's gRPC endpoint)",
            ));
        }
        if !(1..=1000).contains(&learning.batch_size) {
            return Err(ConfigError::rule_violated(
                "learning.batch_size",
                "must be between 1 and 1000",
            ));
        }
        if !(1..=32).contains(&delivery.workers) {
            return Err(ConfigError::rule_violated(
                "delivery.workers",
                "must be between 1 and 32",
            ));
        }
        if !(0..=86_400).contains(&ingest.future_tolerance_seconds) {
            return Err(ConfigError::rule_violated(
                "ingest.future_tolerance_seconds",
                "must be between 0 and 86400",
            ));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(pairs: &[(&str, &str)]) -> Result<RelaySettings, ConfigError> {
        let mut environment = vec![("ADLOOP_DATABASE__URL", "postgres://adloop@127.0.0.1/adloop")];
        environment.extend_from_slice(pairs);
        RelaySettings::load(&EnvironmentVariables::from_pairs(environment))
    }

    #[test]
    fn the_token_less_check_pixel_must_be_a_pixel_id() {
        assert_eq!(load_with(&[]).unwrap().ingest.capi_test_pixel_without_token, None);
        let set = load_with(&[("ADLOOP_INGEST__CAPI_TEST_PIXEL_WITHOUT_TOKEN", "100000000000001")]).unwrap();
        assert_eq!(
            set.ingest.capi_test_pixel_without_token.as_deref(),
            Some("100000000000001")
        );
        let error = load_with(&[("ADLOOP_INGEST__CAPI_TEST_PIXEL_WITHOUT_TOKEN", "my pixel")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("ingest.capi_test_pixel_without_token"), "{error}");
    }
}
