//! Scenario files (TOML): the campaign structure, each ad's hidden truths or the distribution they are drawn
//! from, delivery and reporting behaviour. Every field is validated; errors name the field.

use std::collections::BTreeMap;

use adloop_money::{Currency, MinorUnits};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario is not valid TOML or has an unknown or mistyped field: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("scenario field `{field}`: {rule}")]
    Invalid { field: String, rule: String },
}

/// How large a scenario the simulator runs: beyond these a scenario is refused when it is read, naming the
/// field, rather than running for hours, running out of memory or overflowing its sums half-way.
pub mod limits {
    /// Ten years of days.
    pub const MAX_DAYS: u32 = 3_650;
    /// The allocator's most ads per request.
    pub const MAX_ADS: usize = 2_000;
    /// Budgets and prices, in minor units: the allocator's largest budget (10¹⁵).
    pub const MAX_AMOUNT_MINOR_UNITS: i64 = 1_000_000_000_000_000;
    /// Log-space spreads (a log-normal with sd 5 already puts one draw in a million 10¹⁰ times above its
    /// median).
    pub const MAX_LOG_SPREAD: f64 = 5.0;
    /// Conversions one ad could bring in a day with the whole budget: the simulator draws each one.
    pub const MAX_CONVERSIONS_PER_DAY: f64 = 1_000_000.0;
    /// Value one ad could bring over the whole run with the whole budget, in minor units: the run's sums
    /// are 64-bit integers (at most 9.2 × 10¹⁸).
    pub const MAX_RUN_VALUE_MINOR_UNITS: f64 = 1e18;
}

fn invalid(field: impl Into<String>, rule: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        rule: rule.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub currency: Currency,
    /// Simulated days; the CLI's `--days` overrides it.
    pub days: u32,
    /// Hours between two policy decisions; divides 24.
    #[serde(default = "default_decision_interval_hours")]
    pub decision_interval_hours: u32,
    /// The account's total daily budget across all ad sets, in minor units.
    pub total_daily_budget: MinorUnits,
    /// Day of week the simulation starts on, 0 = Monday.
    #[serde(default)]
    pub start_weekday: u32,
    /// The smallest daily budget Meta accepts for an ad set in this account's currency, in minor units; 0 for
    /// none. A positive budget below it is refused (the ad set keeps its budget), as the Graph API does.
    #[serde(default)]
    pub minimum_daily_budget: MinorUnits,
    #[serde(default)]
    pub delivery: DeliverySettings,
    #[serde(default)]
    pub conversion_delay: ConversionDelaySettings,
    /// How the advertiser's website reports conversions to Meta (used by `make run`'s website, not by the
    /// simulation itself).
    #[serde(default)]
    pub tracking: TrackingSettings,
    #[serde(default)]
    pub ads: Vec<AdSpec>,
    #[serde(default)]
    pub ad_groups: Vec<AdGroupSpec>,
}

fn default_decision_interval_hours() -> u32 {
    24
}

/// How Meta turns a budget into delivery.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// Spread (log-normal sd) of each day's spend around the budget; spend never exceeds the overspend cap.
    pub pacing_noise_sd: f64,
    /// Meta may spend up to this fraction over an ad set's daily budget on a given day (Meta: 75%).
    pub max_overspend_fraction: f64,
    /// Meta spends at most this many daily budgets on an ad set in a calendar week, Sunday to Saturday
    /// (Meta: 7). Read strictly: the budget in force when the spend happens, times this, less the week's spend.
    pub max_weekly_spend_in_daily_budgets: f64,
    /// How an ad set's spend buys impressions from a finite audience: the auction curve.
    pub auction: AuctionSettings,
    /// Fatigue wears off with rest: the exposure behind it halves every this many days. None: it never does.
    pub fatigue_recovery_half_life_days: Option<f64>,
    /// Day-to-day spread (log-normal sd) of each ad's CPM.
    pub cpm_noise_sd: f64,
    /// Day-to-day spread (log-normal sd) of each ad's CTR.
    pub ctr_noise_sd: f64,
    /// Relative delivery per hour of day (24 values, any scale).
    pub hour_of_day_weights: Vec<f64>,
    /// CTR and conversion-rate multipliers per day of week (7 values, Monday first).
    pub day_of_week_multipliers: Vec<f64>,
    /// Meta's learning phase: a large budget edit restarts it, and delivery costs more while it lasts.
    /// Off unless a scenario sets it.
    pub learning_phase: Option<LearningPhaseSettings>,
}

/// Delivery is not linear in budget: an ad set can buy at most `daily_impressions_per_person` impressions per
/// person of its audience a day (its capacity; a budget beyond it goes unspent), and the marginal CPM rises
/// linearly with the share of that capacity bought, to `1 + marginal_cpm_rise_at_capacity` times the base
/// CPM at capacity (a bigger share means outbidding more of the auction).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuctionSettings {
    pub daily_impressions_per_person: f64,
    pub marginal_cpm_rise_at_capacity: f64,
}

impl Default for AuctionSettings {
    /// At most two impressions of one ad set per person a day, and buying all of them costs four times the
    /// base CPM at the margin. With the default audience (2 million) an ad set spending 100 USD a day at a
    /// 10 USD CPM buys 0.25% of its capacity, so only small audiences or large budgets feel the curve.
    fn default() -> Self {
        AuctionSettings {
            daily_impressions_per_person: 2.0,
            marginal_cpm_rise_at_capacity: 3.0,
        }
    }
}

/// A budget edit of at least `budget_change_fraction` (up or down) puts the ad set back into learning for
/// `days`, during which its CPM is `cpm_multiplier` times higher (Meta: edits of roughly 20% or more restart
/// learning, and delivery is less stable and efficient until it ends).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearningPhaseSettings {
    pub budget_change_fraction: f64,
    pub days: f64,
    pub cpm_multiplier: f64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            pacing_noise_sd: 0.1,
            max_overspend_fraction: 0.75,
            max_weekly_spend_in_daily_budgets: 7.0,
            auction: AuctionSettings::default(),
            fatigue_recovery_half_life_days: None,
            cpm_noise_sd: 0.1,
            ctr_noise_sd: 0.05,
            // Quiet nights, a morning rise and an evening peak.
            hour_of_day_weights: vec![
                0.4, 0.3, 0.25, 0.2, 0.2, 0.3, 0.5, 0.8, 1.0, 1.1, 1.1, 1.2, 1.3, 1.2, 1.1, 1.1, 1.2, 1.3, 1.5, 1.7,
                1.8, 1.6, 1.2, 0.7,
            ],
            day_of_week_multipliers: vec![1.0, 1.0, 0.98, 0.97, 0.95, 1.05, 1.08],
            learning_phase: None,
        }
    }
}

/// The website's own reporting of its conversions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingSettings {
    /// The share of conversions the browser pixel never reports (ad blockers, browser privacy settings),
    /// 0..=1; server-side events through the relay report every one.
    pub browser_pixel_loss: f64,
}

/// Conversion reporting lag as a mixture of uniform intervals.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionDelaySettings {
    pub components: Vec<DelayComponent>,
}

impl ConversionDelaySettings {
    /// The world's reporting lag as the allocator's schedule type (what an allocator that knew it would use).
    pub fn as_reporting_delay(&self) -> adloop_allocator::ReportingDelay {
        adloop_allocator::ReportingDelay {
            components: self
                .components
                .iter()
                .map(|component| adloop_allocator::DelayComponent {
                    share: component.share,
                    min_hours: component.min_hours,
                    max_hours: component.max_hours,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayComponent {
    pub share: f64,
    pub min_hours: f64,
    pub max_hours: f64,
}

impl Default for ConversionDelaySettings {
    /// About 35% within an hour, 50% within a day, the rest up to 7 days.
    fn default() -> Self {
        ConversionDelaySettings {
            components: vec![
                DelayComponent {
                    share: 0.35,
                    min_hours: 0.0,
                    max_hours: 1.0,
                },
                DelayComponent {
                    share: 0.15,
                    min_hours: 1.0,
                    max_hours: 24.0,
                },
                DelayComponent {
                    share: 0.50,
                    min_hours: 24.0,
                    max_hours: 168.0,
                },
            ],
        }
    }
}

/// One ad with explicit truths.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdSpec {
    pub name: String,
    /// The ad account and campaign the ad belongs to (names; ids are assigned in order of appearance).
    #[serde(default = "default_account")]
    pub account: String,
    #[serde(default = "default_campaign")]
    pub campaign: String,
    pub ctr: f64,
    pub conversion_rate: f64,
    /// Mean value of one conversion, in minor units.
    pub value_per_conversion: MinorUnits,
    #[serde(default = "default_value_sd")]
    pub value_sd: f64,
    /// Cost per 1000 impressions, in minor units.
    pub cpm: MinorUnits,
    /// Order values follow a Lomax (Pareto II) law with this tail index (> 1; smaller is heavier) and the
    /// same mean, instead of the log-normal with `value_sd`.
    pub value_tail_index: Option<f64>,
    /// How fast CTR falls as frequency rises: CTR × exp(−fatigue_rate × (frequency − 1)).
    #[serde(default)]
    pub fatigue_rate: f64,
    /// The same for the conversion rate: the people who see an ad too often stop buying as well as clicking.
    #[serde(default)]
    pub conversion_fatigue_rate: f64,
    /// The ad's own weekly rhythm, on top of the account's day-of-week multipliers.
    pub weekly_seasonality: Option<WeeklySeasonalitySpec>,
    #[serde(default = "default_audience_size")]
    pub audience_size: f64,
    #[serde(default)]
    pub launch_day: f64,
    pub pause_day: Option<f64>,
    #[serde(default)]
    pub features: BTreeMap<String, f64>,
    pub drift: Option<DriftSpec>,
}

fn default_account() -> String {
    "main".to_owned()
}

fn default_campaign() -> String {
    "campaign-1".to_owned()
}

fn default_value_sd() -> f64 {
    0.3
}

fn default_audience_size() -> f64 {
    2_000_000.0
}

/// A change in an ad's truths: a step when `end_day == start_day`, otherwise linear between the two days.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSpec {
    pub start_day: f64,
    pub end_day: f64,
    #[serde(default = "one")]
    pub ctr_multiplier: f64,
    #[serde(default = "one")]
    pub conversion_rate_multiplier: f64,
}

fn one() -> f64 {
    1.0
}

/// CTR and conversion rate × exp(log_amplitude × cos(2π (weekday − peak_weekday) / 7)), weekday 0 = Monday:
/// an ad for a weekend product peaks on Saturday while the account's other ads do not.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklySeasonalitySpec {
    pub log_amplitude: f64,
    #[serde(default)]
    pub peak_weekday: f64,
}

/// A log-normal distribution given by its median and log-space standard deviation.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogNormalSpec {
    pub median: f64,
    #[serde(default)]
    pub log_sd: f64,
}

/// A creative feature of generated ads: present with `probability` (value 1.0, else 0.0), multiplying the
/// CTR and conversion rate by exp(effect) when present, so features predict performance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    pub name: String,
    pub probability: f64,
    #[serde(default)]
    pub ctr_log_effect: f64,
    #[serde(default)]
    pub conversion_rate_log_effect: f64,
}

/// Many ads whose truths are drawn from distributions (per seed), launched in waves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdGroupSpec {
    pub name_prefix: String,
    /// The ad account and campaign the ad belongs to (names; ids are assigned in order of appearance).
    #[serde(default = "default_account")]
    pub account: String,
    #[serde(default = "default_campaign")]
    pub campaign: String,
    pub count: u32,
    pub ctr: LogNormalSpec,
    pub conversion_rate: LogNormalSpec,
    pub value_per_conversion: LogNormalSpec,
    pub cpm: LogNormalSpec,
    #[serde(default = "default_value_sd")]
    pub value_sd: f64,
    /// As for [`AdSpec::value_tail_index`].
    pub value_tail_index: Option<f64>,
    #[serde(default)]
    pub fatigue_rate: f64,
    #[serde(default)]
    pub conversion_fatigue_rate: f64,
    /// Each ad gets its own weekly rhythm of this log amplitude, peaking on a weekday drawn per ad.
    #[serde(default)]
    pub weekly_seasonality_log_amplitude: f64,
    #[serde(default = "default_audience_size")]
    pub audience_size: f64,
    #[serde(default)]
    pub first_launch_day: f64,
    /// Days between launch waves; 0 launches the whole group on `first_launch_day`.
    #[serde(default)]
    pub launch_every_days: f64,
    /// Ads per wave (when `launch_every_days` > 0).
    #[serde(default = "default_ads_per_launch")]
    pub ads_per_launch: u32,
    #[serde(default)]
    pub features: Vec<FeatureSpec>,
    /// Ties each ad's conversion rate to its CTR: × (CTR / the group's median CTR)^(−exponent). 1 makes
    /// conversions per impression alike across the group (the ads that draw curious clicks sell to fewer of
    /// them), above 1 the low-CTR ads sell more per impression, below 0 good clickers are good buyers; 0
    /// (the default) leaves the two independent.
    #[serde(default)]
    pub conversion_rate_ctr_exponent: f64,
    /// Some of the group's ads change once during the run.
    pub changes: Option<GroupChangeSpec>,
}

/// Each ad of a group changes with probability `share_of_ads`: on a day drawn uniformly between
/// `earliest_day` and `latest_day` (never before its launch), its CTR and conversion rate are multiplied by
/// log-normal factors of median 1 and these log-space spreads — a collapse behind a long good history, a
/// creative that finds its audience late.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupChangeSpec {
    pub share_of_ads: f64,
    pub earliest_day: f64,
    pub latest_day: f64,
    #[serde(default)]
    pub ctr_log_sd: f64,
    #[serde(default)]
    pub conversion_rate_log_sd: f64,
}

/// The largest |exponent| of a group's CTR link: 3 already makes an ad with half the group's CTR sell to
/// eight times as many of its clickers.
const MAX_CONVERSION_RATE_CTR_EXPONENT: f64 = 3.0;

fn default_ads_per_launch() -> u32 {
    1
}

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text)?;
        scenario.validate()?;
        Ok(scenario)
    }

    pub fn ad_count(&self) -> usize {
        self.ads.len() + self.ad_groups.iter().map(|group| group.count as usize).sum::<usize>()
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if self.days == 0 || self.days > limits::MAX_DAYS {
            return Err(invalid(
                "days",
                format!("must be 1 to {} (ten years)", limits::MAX_DAYS),
            ));
        }
        if !(0.0..=1.0).contains(&self.tracking.browser_pixel_loss) {
            return Err(invalid("tracking.browser_pixel_loss", "must be between 0 and 1"));
        }
        if self.decision_interval_hours == 0 || 24 % self.decision_interval_hours != 0 {
            return Err(invalid(
                "decision_interval_hours",
                "must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24)",
            ));
        }
        if self.total_daily_budget.get() <= 0 {
            return Err(invalid("total_daily_budget", "must be positive (minor units)"));
        }
        if self.total_daily_budget.get() > limits::MAX_AMOUNT_MINOR_UNITS {
            return Err(invalid(
                "total_daily_budget",
                "must be at most 10^15 minor units (the allocator's largest budget)",
            ));
        }
        if self.minimum_daily_budget.get() < 0 {
            return Err(invalid("minimum_daily_budget", "must not be negative (minor units)"));
        }
        if self.minimum_daily_budget > self.total_daily_budget {
            return Err(invalid(
                "minimum_daily_budget",
                "must not be above total_daily_budget (no ad set could run)",
            ));
        }
        if self.start_weekday > 6 {
            return Err(invalid("start_weekday", "must be 0 (Monday) to 6 (Sunday)"));
        }
        if self.ad_count() == 0 {
            return Err(invalid("ads", "the scenario needs at least one ad or ad group"));
        }
        if self.ad_count() > limits::MAX_ADS {
            return Err(invalid(
                "ads",
                format!(
                    "at most {} ads in all (the allocator's most per request), got {}",
                    limits::MAX_ADS,
                    self.ad_count()
                ),
            ));
        }
        self.validate_delivery()?;
        self.validate_delay()?;
        for (index, ad) in self.ads.iter().enumerate() {
            let field = format!("ads[{index}]");
            validate_ad(&field, ad)?;
            if let Some(duplicate) = self.ads[..index].iter().position(|earlier| earlier.name == ad.name) {
                return Err(invalid(
                    format!("{field}.name"),
                    format!("`{}` is already the name of ads[{duplicate}]", ad.name),
                ));
            }
            self.check_scale(
                &field,
                ad.ctr,
                ad.conversion_rate,
                ad.value_per_conversion.get() as f64,
                ad.cpm.get() as f64,
            )?;
        }
        for (index, group) in self.ad_groups.iter().enumerate() {
            let field = format!("ad_groups[{index}]");
            validate_group(&field, group)?;
            // A group's likely best ad: two spreads above its medians (below, for the price).
            let above = |spec: LogNormalSpec| spec.median * (2.0 * spec.log_sd).exp();
            // The CTR link and changes widen the conversion rate's spread.
            let linked_conversion_rate_log_sd = group.conversion_rate.log_sd
                + group.conversion_rate_ctr_exponent.abs() * group.ctr.log_sd
                + group.changes.map_or(0.0, |changes| changes.conversion_rate_log_sd);
            let conversion_rate = LogNormalSpec {
                log_sd: linked_conversion_rate_log_sd,
                ..group.conversion_rate
            };
            self.check_scale(
                &field,
                above(group.ctr).min(1.0),
                above(conversion_rate).min(1.0),
                above(group.value_per_conversion),
                group.cpm.median * (-2.0 * group.cpm.log_sd).exp(),
            )?;
        }
        let launches_at_start = self.ads.iter().any(|ad| ad.launch_day <= 0.0)
            || self.ad_groups.iter().any(|group| group.first_launch_day <= 0.0);
        if !launches_at_start {
            return Err(invalid("ads", "at least one ad must launch on day 0"));
        }
        Ok(())
    }

    /// An ad with these rates and prices, given the whole daily budget, must stay within what the simulator
    /// draws one by one in a day and what its sums hold over the run.
    fn check_scale(
        &self,
        field: &str,
        ctr: f64,
        conversion_rate: f64,
        value_per_conversion: f64,
        cpm: f64,
    ) -> Result<(), ScenarioError> {
        let impressions_per_day = self.total_daily_budget.get() as f64 * 1000.0 / cpm;
        let conversions_per_day = impressions_per_day * ctr * conversion_rate;
        if conversions_per_day > limits::MAX_CONVERSIONS_PER_DAY {
            return Err(invalid(
                field,
                format!(
                    "would bring {conversions_per_day:.0} conversions a day with the whole total_daily_budget; the \
                     simulator draws each one and takes at most {:.0} (lower the budget or raise the cpm)",
                    limits::MAX_CONVERSIONS_PER_DAY
                ),
            ));
        }
        let value_over_the_run = conversions_per_day * value_per_conversion * f64::from(self.days);
        if value_over_the_run > limits::MAX_RUN_VALUE_MINOR_UNITS {
            return Err(invalid(
                field,
                "would bring more than 10^18 minor units of value over the run with the whole total_daily_budget \
                 (the run's sums are 64-bit): lower the budget, the days or the value_per_conversion",
            ));
        }
        Ok(())
    }

    fn validate_delivery(&self) -> Result<(), ScenarioError> {
        let delivery = &self.delivery;
        if delivery.hour_of_day_weights.len() != 24
            || delivery
                .hour_of_day_weights
                .iter()
                .any(|weight| !(weight.is_finite() && *weight >= 0.0))
            || delivery.hour_of_day_weights.iter().sum::<f64>() <= 0.0
        {
            return Err(invalid(
                "delivery.hour_of_day_weights",
                "needs 24 non-negative values, not all zero",
            ));
        }
        if delivery.day_of_week_multipliers.len() != 7
            || delivery
                .day_of_week_multipliers
                .iter()
                .any(|multiplier| !(multiplier.is_finite() && *multiplier > 0.0))
        {
            return Err(invalid(
                "delivery.day_of_week_multipliers",
                "needs 7 positive values, Monday first",
            ));
        }
        for (field, value) in [
            ("delivery.pacing_noise_sd", delivery.pacing_noise_sd),
            ("delivery.cpm_noise_sd", delivery.cpm_noise_sd),
            ("delivery.ctr_noise_sd", delivery.ctr_noise_sd),
            ("delivery.max_overspend_fraction", delivery.max_overspend_fraction),
        ] {
            if !(value.is_finite() && (0.0..=2.0).contains(&value)) {
                return Err(invalid(field, "must be between 0 and 2"));
            }
        }
        if !(delivery.max_weekly_spend_in_daily_budgets.is_finite()
            && (1.0..=14.0).contains(&delivery.max_weekly_spend_in_daily_budgets))
        {
            return Err(invalid(
                "delivery.max_weekly_spend_in_daily_budgets",
                "must be between 1 and 14 (Meta: 7)",
            ));
        }
        let auction = delivery.auction;
        if !(auction.daily_impressions_per_person.is_finite() && auction.daily_impressions_per_person > 0.0) {
            return Err(invalid(
                "delivery.auction.daily_impressions_per_person",
                "must be more than 0",
            ));
        }
        if !(auction.marginal_cpm_rise_at_capacity.is_finite()
            && (0.0..=20.0).contains(&auction.marginal_cpm_rise_at_capacity))
        {
            return Err(invalid(
                "delivery.auction.marginal_cpm_rise_at_capacity",
                "must be between 0 and 20",
            ));
        }
        if let Some(half_life) = delivery.fatigue_recovery_half_life_days
            && !(half_life.is_finite() && half_life > 0.0)
        {
            return Err(invalid(
                "delivery.fatigue_recovery_half_life_days",
                "must be more than 0 days",
            ));
        }
        if let Some(learning) = &delivery.learning_phase {
            if !(learning.budget_change_fraction.is_finite() && learning.budget_change_fraction > 0.0) {
                return Err(invalid(
                    "delivery.learning_phase.budget_change_fraction",
                    "must be more than 0 (0.2: a 20% edit restarts learning)",
                ));
            }
            if !(learning.days.is_finite() && (0.0..=30.0).contains(&learning.days)) {
                return Err(invalid("delivery.learning_phase.days", "must be between 0 and 30"));
            }
            if !(learning.cpm_multiplier.is_finite() && (1.0..=5.0).contains(&learning.cpm_multiplier)) {
                return Err(invalid(
                    "delivery.learning_phase.cpm_multiplier",
                    "must be between 1 and 5",
                ));
            }
        }
        Ok(())
    }

    fn validate_delay(&self) -> Result<(), ScenarioError> {
        let components = &self.conversion_delay.components;
        if components.is_empty() {
            return Err(invalid("conversion_delay.components", "needs at least one component"));
        }
        for (index, component) in components.iter().enumerate() {
            let field = format!("conversion_delay.components[{index}]");
            if !(component.share.is_finite() && component.share > 0.0) {
                return Err(invalid(format!("{field}.share"), "must be positive"));
            }
            if !(component.min_hours >= 0.0
                && component.max_hours >= component.min_hours
                && component.max_hours <= 24.0 * 62.0)
            {
                return Err(invalid(field, "needs 0 ≤ min_hours ≤ max_hours ≤ 1488 (62 days)"));
            }
        }
        Ok(())
    }
}

fn check_rate(field: String, rate: f64) -> Result<(), ScenarioError> {
    if rate.is_finite() && (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(invalid(field, "must be a rate between 0 and 1"))
    }
}

fn check_non_negative(field: String, value: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(field, "must be a non-negative number"))
    }
}

fn check_log_spread(field: String, log_sd: f64) -> Result<(), ScenarioError> {
    if (0.0..=limits::MAX_LOG_SPREAD).contains(&log_sd) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be a log-space spread from 0 to {}", limits::MAX_LOG_SPREAD),
        ))
    }
}

fn check_value_tail_index(field: String, tail_index: Option<f64>) -> Result<(), ScenarioError> {
    match tail_index {
        Some(index) if !(index.is_finite() && index > 1.0 && index <= 100.0) => {
            Err(invalid(field, "must be above 1 (the mean must exist) and at most 100"))
        }
        _ => Ok(()),
    }
}

fn check_seasonality_amplitude(field: String, log_amplitude: f64) -> Result<(), ScenarioError> {
    if log_amplitude.is_finite() && (0.0..=2.0).contains(&log_amplitude) {
        Ok(())
    } else {
        Err(invalid(field, "must be between 0 and 2"))
    }
}

fn validate_ad(field: &str, ad: &AdSpec) -> Result<(), ScenarioError> {
    if ad.name.trim().is_empty() {
        return Err(invalid(format!("{field}.name"), "must not be empty"));
    }
    check_rate(format!("{field}.ctr"), ad.ctr)?;
    check_rate(format!("{field}.conversion_rate"), ad.conversion_rate)?;
    if ad.value_per_conversion.get() < 0 {
        return Err(invalid(format!("{field}.value_per_conversion"), "must not be negative"));
    }
    if ad.cpm.get() <= 0 {
        return Err(invalid(
            format!("{field}.cpm"),
            "must be positive (minor units per 1000 impressions)",
        ));
    }
    if ad.cpm.get() > limits::MAX_AMOUNT_MINOR_UNITS {
        return Err(invalid(format!("{field}.cpm"), "must be at most 10^15 minor units"));
    }
    check_log_spread(format!("{field}.value_sd"), ad.value_sd)?;
    check_value_tail_index(format!("{field}.value_tail_index"), ad.value_tail_index)?;
    check_non_negative(format!("{field}.fatigue_rate"), ad.fatigue_rate)?;
    check_non_negative(format!("{field}.conversion_fatigue_rate"), ad.conversion_fatigue_rate)?;
    if let Some(seasonality) = ad.weekly_seasonality {
        check_seasonality_amplitude(
            format!("{field}.weekly_seasonality.log_amplitude"),
            seasonality.log_amplitude,
        )?;
        if !(seasonality.peak_weekday.is_finite() && (0.0..7.0).contains(&seasonality.peak_weekday)) {
            return Err(invalid(
                format!("{field}.weekly_seasonality.peak_weekday"),
                "must be from 0 (Monday) to below 7",
            ));
        }
    }
    check_non_negative(format!("{field}.launch_day"), ad.launch_day)?;
    if !(ad.audience_size.is_finite() && ad.audience_size >= 1.0) {
        return Err(invalid(format!("{field}.audience_size"), "must be at least 1"));
    }
    if let Some(pause_day) = ad.pause_day
        && !(pause_day.is_finite() && pause_day > ad.launch_day)
    {
        return Err(invalid(format!("{field}.pause_day"), "must be after launch_day"));
    }
    if let Some(drift) = &ad.drift {
        validate_drift(&format!("{field}.drift"), drift)?;
    }
    Ok(())
}

fn validate_drift(field: &str, drift: &DriftSpec) -> Result<(), ScenarioError> {
    if !(drift.start_day >= 0.0 && drift.end_day >= drift.start_day) {
        return Err(invalid(field, "needs 0 ≤ start_day ≤ end_day"));
    }
    check_non_negative(format!("{field}.ctr_multiplier"), drift.ctr_multiplier)?;
    check_non_negative(
        format!("{field}.conversion_rate_multiplier"),
        drift.conversion_rate_multiplier,
    )
}

fn validate_group(field: &str, group: &AdGroupSpec) -> Result<(), ScenarioError> {
    if group.count == 0 {
        return Err(invalid(format!("{field}.count"), "must be at least 1"));
    }
    for (name, spec) in [
        ("ctr", group.ctr),
        ("conversion_rate", group.conversion_rate),
        ("value_per_conversion", group.value_per_conversion),
        ("cpm", group.cpm),
    ] {
        if !(spec.median.is_finite() && spec.median > 0.0) {
            return Err(invalid(format!("{field}.{name}.median"), "must be positive"));
        }
        if spec.median > limits::MAX_AMOUNT_MINOR_UNITS as f64 {
            return Err(invalid(format!("{field}.{name}.median"), "must be at most 10^15"));
        }
        check_log_spread(format!("{field}.{name}.log_sd"), spec.log_sd)?;
    }
    check_log_spread(format!("{field}.value_sd"), group.value_sd)?;
    check_rate(format!("{field}.ctr.median"), group.ctr.median)?;
    check_rate(format!("{field}.conversion_rate.median"), group.conversion_rate.median)?;
    check_value_tail_index(format!("{field}.value_tail_index"), group.value_tail_index)?;
    check_non_negative(format!("{field}.fatigue_rate"), group.fatigue_rate)?;
    check_non_negative(
        format!("{field}.conversion_fatigue_rate"),
        group.conversion_fatigue_rate,
    )?;
    check_seasonality_amplitude(
        format!("{field}.weekly_seasonality_log_amplitude"),
        group.weekly_seasonality_log_amplitude,
    )?;
    if !(group.audience_size.is_finite() && group.audience_size >= 1.0) {
        return Err(invalid(format!("{field}.audience_size"), "must be at least 1"));
    }
    check_non_negative(format!("{field}.first_launch_day"), group.first_launch_day)?;
    check_non_negative(format!("{field}.launch_every_days"), group.launch_every_days)?;
    if group.launch_every_days > 0.0 && group.ads_per_launch == 0 {
        return Err(invalid(format!("{field}.ads_per_launch"), "must be at least 1"));
    }
    for (index, feature) in group.features.iter().enumerate() {
        check_rate(format!("{field}.features[{index}].probability"), feature.probability)?;
    }
    let exponent = group.conversion_rate_ctr_exponent;
    if !exponent.is_finite() || exponent.abs() > MAX_CONVERSION_RATE_CTR_EXPONENT {
        return Err(invalid(
            format!("{field}.conversion_rate_ctr_exponent"),
            format!("must be from -{MAX_CONVERSION_RATE_CTR_EXPONENT} to {MAX_CONVERSION_RATE_CTR_EXPONENT}"),
        ));
    }
    if let Some(changes) = &group.changes {
        validate_group_changes(&format!("{field}.changes"), changes)?;
    }
    Ok(())
}

fn validate_group_changes(field: &str, changes: &GroupChangeSpec) -> Result<(), ScenarioError> {
    check_rate(format!("{field}.share_of_ads"), changes.share_of_ads)?;
    check_non_negative(format!("{field}.earliest_day"), changes.earliest_day)?;
    if !(changes.latest_day.is_finite() && changes.latest_day >= changes.earliest_day) {
        return Err(invalid(
            format!("{field}.latest_day"),
            "must be a number of days no earlier than earliest_day",
        ));
    }
    check_log_spread(format!("{field}.ctr_log_sd"), changes.ctr_log_sd)?;
    check_log_spread(
        format!("{field}.conversion_rate_log_sd"),
        changes.conversion_rate_log_sd,
    )
}
