//! What a policy sees at a decision: exactly what a real allocator could read from Meta's insights and the
//! account's settings: nothing hidden, and conversions only once they have been reported.

use std::collections::BTreeMap;

use adloop_money::{Currency, MinorUnits};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdStatus {
    Active,
    /// Paused by the advertiser: the policy cannot give it budget.
    Paused,
}

/// Meta-style ids of an ad and the objects above it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdIdentity {
    pub account_id: String,
    pub campaign_id: String,
    pub ad_set_id: String,
    pub ad_id: String,
    pub name: String,
}

/// Counters over a trailing window (the last 72 hours).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub impressions: u64,
    pub clicks: u64,
    pub spend: MinorUnits,
    pub conversions: u64,
    pub conversion_value: MinorUnits,
}

impl WindowStats {
    pub fn add(&mut self, other: &WindowStats) {
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.spend += other.spend;
        self.conversions += other.conversions;
        self.conversion_value += other.conversion_value;
    }
}

/// One day of an ad's insights (Meta's insights with one row per day): the day's delivery, and the conversions
/// of that day's clicks reported so far, which keep growing for days after the day itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DailyInsights {
    /// Days since the simulation started.
    pub day: u32,
    pub impressions: u64,
    pub clicks: u64,
    pub spend: MinorUnits,
    pub conversions: u64,
    pub conversion_value: MinorUnits,
}

/// Days of insights each observation carries per ad, today included: four weeks, Meta's longest window.
pub const DAILY_INSIGHTS_DAYS: u32 = 28;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdObservation {
    #[serde(flatten)]
    pub identity: AdIdentity,
    pub status: AdStatus,
    pub age_hours: f64,
    /// The ad set's real current daily budget.
    pub current_daily_budget: MinorUnits,
    /// Lifetime delivery.
    pub impressions: u64,
    pub clicks: u64,
    pub spend: MinorUnits,
    /// Conversions and their value reported so far; late conversions are still missing.
    pub conversions: u64,
    pub conversion_value: MinorUnits,
    /// The same counters over the last 72 hours: delivery in that window, and the conversions of that
    /// delivery reported so far (credited to the click's time, as Meta's insights credit them).
    pub last_72_hours: WindowStats,
    /// The same over the last 7 days (168 hours), credited the same way.
    #[serde(default)]
    pub last_7_days: WindowStats,
    /// The last [`DAILY_INSIGHTS_DAYS`] days since launch, oldest first: how each day's conversions mature
    /// from one observation to the next is how a policy can learn the account's reporting delays.
    #[serde(default)]
    pub daily: Vec<DailyInsights>,
    pub frequency: f64,
    pub features: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Hours since the simulation started.
    pub hour: u32,
    pub currency: Currency,
    pub total_daily_budget: MinorUnits,
    /// The smallest positive daily budget the account accepts for an ad set (0: none). The world refuses a
    /// positive budget below it and the ad set keeps its budget.
    #[serde(default)]
    pub minimum_daily_budget: MinorUnits,
    /// Every launched ad, in launch order. A decision returns one budget per entry, in this order.
    pub ads: Vec<AdObservation>,
}
