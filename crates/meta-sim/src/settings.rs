use adloop_config::{ConfigError, EnvironmentVariables, Secret, ServerSettings, TelemetrySettings, load_settings};
use serde::Deserialize;

use crate::clock::ClockMode;
use crate::faults::FaultSettings;
use crate::rate_limits::RateLimitSettings;

const COMPILED_DEFAULTS: &str = include_str!("defaults.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct MetaSimSettings {
    pub server: ServerSettings,
    pub telemetry: TelemetrySettings,
    pub world: WorldSettings,
    pub clock: ClockSettings,
    pub graph: GraphSettings,
    pub access: AccessSettings,
    pub capi: CapiSettings,
    pub rate_limits: RateLimitSettings,
    pub faults: FaultSettings,
    pub inspection: InspectionSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorldSettings {
    pub scenario_path: String,
    pub seed: u64,
    pub start_date: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClockSettings {
    pub mode: ClockMode,
    pub simulated_hours_per_second: f64,
}

/// Meta's minimum daily budgets for one currency, by what the ad set optimises for (major units).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinimumDailyBudgets {
    pub impressions: f64,
    pub high_frequency: f64,
    pub low_frequency: f64,
    pub video_views: f64,
}

/// Which of the minimums the simulated ad sets obey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetGoal {
    Impressions,
    HighFrequency,
    LowFrequency,
    VideoViews,
}

impl MinimumDailyBudgets {
    pub fn for_goal(&self, goal: BudgetGoal) -> f64 {
        match goal {
            BudgetGoal::Impressions => self.impressions,
            BudgetGoal::HighFrequency => self.high_frequency,
            BudgetGoal::LowFrequency => self.low_frequency,
            BudgetGoal::VideoViews => self.video_views,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct GraphSettings {
    pub minimum_version: String,
    /// Every goal's minimum for currencies without an entry in `minimum_daily_budgets`.
    pub minimum_daily_budget_major_units: f64,
    /// Per currency code (`USD`), Meta's minimums by goal, in major units.
    pub minimum_daily_budgets: std::collections::BTreeMap<String, MinimumDailyBudgets>,
    /// The goal the simulated ad sets optimise for, which decides the minimum their budgets must meet.
    pub ad_set_budget_goal: BudgetGoal,
    pub batch_timeout_milliseconds: u64,
    /// Meta runs operations without `depends_on` in parallel, in no promised order: meta-sim runs them in a
    /// shuffled order (seeded by `batch_order_seed` and the batch's number), so a client relying on the
    /// order it wrote fails here. Off: request order.
    pub batch_shuffle_independent_operations: bool,
    pub batch_order_seed: u64,
    /// Meta documents that a batch cannot include multiple ad sets of the same campaign: writes to a second
    /// ad set of a campaign in one batch are refused (error 100) when this is on.
    pub batch_one_ad_set_per_campaign: bool,
    /// The most rows a synchronous insights page may hold before meta-sim answers as Meta does to an
    /// answer that is too large (code 1, "Please reduce the amount of data you're asking for"). Meta does not
    /// document its bound (users meet it on daily ad-level reads of a few hundred rows); the default is Meta's
    /// largest `limit`, so only a lower setting refuses anything.
    pub insights_max_rows_per_page: usize,
    /// Async insights report runs: how many status polls before a run completes, and how many runs are kept.
    pub async_report_polls_before_completion: u32,
    pub async_report_runs_kept: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccountToken {
    pub token: Secret<String>,
    #[serde(default)]
    pub ad_account_ids: Vec<String>,
    #[serde(default)]
    pub pixel_ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccessSettings {
    pub default_token: Secret<String>,
    pub account_tokens: Vec<AccountToken>,
    /// When set, every call must carry `appsecret_proof` = hex HMAC-SHA256 of its access token keyed with
    /// this secret, as Meta requires of apps with "Require App Secret" on.
    #[serde(default)]
    pub app_secret: Option<Secret<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CapiSettings {
    pub pixel_ids: Vec<String>,
    pub deduplication_window_hours: u64,
    pub max_event_age_days: u64,
    pub max_physical_store_event_age_days: u64,
    pub future_tolerance_seconds: u64,
    /// Events kept for `/_sim/capi/events`; the oldest go first.
    pub stored_event_capacity: usize,
    /// Meta documents de-duplication between browser (pixel) and server events by `event_id`, not of a
    /// server event sent twice: off (the strict reading), every repeat counts again, so a relay must be
    /// idempotent itself. On: repeats within `deduplication_window_hours` are received but de-duplicated.
    pub deduplicate_server_events: bool,
    /// Meta requires `client_user_agent` on website events sent through the Conversions API.
    pub website_events_require_client_user_agent: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InspectionSettings {
    pub request_log_capacity: usize,
}

/// `v25.0` → (25, 0).
pub fn parse_graph_version(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.strip_prefix('v')?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

impl GraphSettings {
    /// The minimums for `currency_code` (the per-currency table, else the flat minimum for every goal).
    pub fn minimum_daily_budgets(&self, currency_code: &str) -> MinimumDailyBudgets {
        self.minimum_daily_budgets
            .get(currency_code)
            .copied()
            .unwrap_or(MinimumDailyBudgets {
                impressions: self.minimum_daily_budget_major_units,
                high_frequency: self.minimum_daily_budget_major_units,
                low_frequency: self.minimum_daily_budget_major_units,
                video_views: self.minimum_daily_budget_major_units,
            })
    }
}

impl MetaSimSettings {
    pub fn load(environment: &EnvironmentVariables) -> Result<Self, ConfigError> {
        let settings: MetaSimSettings = load_settings(COMPILED_DEFAULTS, environment)?;
        settings.server.socket_address()?;
        if parse_graph_version(&settings.graph.minimum_version).is_none() {
            return Err(ConfigError::rule_violated(
                "graph.minimum_version",
                "must look like v25.0",
            ));
        }
        if settings.clock.mode == ClockMode::Accelerated
            && !(settings.clock.simulated_hours_per_second.is_finite()
                && settings.clock.simulated_hours_per_second > 0.0)
        {
            return Err(ConfigError::rule_violated(
                "clock.simulated_hours_per_second",
                "must be positive",
            ));
        }
        if !settings.start_date_is_today() && crate::dates::CivilDate::parse(&settings.world.start_date).is_none() {
            return Err(ConfigError::rule_violated(
                "world.start_date",
                "must be \"today\" or a date like 2026-11-02",
            ));
        }
        if let Err(rule) = settings.faults.validate() {
            return Err(ConfigError::rule_violated("faults", rule));
        }
        if settings
            .capi
            .pixel_ids
            .iter()
            .any(|pixel_id| pixel_id.is_empty() || !pixel_id.bytes().all(|byte| byte.is_ascii_digit()))
        {
            return Err(ConfigError::rule_violated(
                "capi.pixel_ids",
                "pixel ids are strings of digits",
            ));
        }
        Ok(settings)
    }

    pub fn start_date_is_today(&self) -> bool {
        self.world.start_date == "today"
    }
}
