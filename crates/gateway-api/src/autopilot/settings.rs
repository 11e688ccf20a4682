//! The autopilot's deployment settings (`[autopilot]`); each account's own schedule and mode are stored
//! per account (`account_settings`); the clock the schedules run on is the gateway's (`[clock]`).

use adloop_allocator::{DeliveryCurveSettings, ReportingDelay, WeekdayRhythmSettings};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutopilotSettings {
    /// Run the autopilot's scheduler in this gateway (it also needs the Graph token).
    pub enabled: bool,
    /// How often the scheduler looks for accounts whose next cycle is due (wall-clock milliseconds).
    pub tick_milliseconds: u64,
    /// Cycles this gateway runs at once.
    pub max_concurrent_cycles: usize,
    /// A cycle not finished in this long is taken over by another runner (it crashed).
    pub run_lease_seconds: u64,
    /// A failed cycle is tried again after this long, at most `max_attempts` times in its slot.
    pub failed_run_retry_seconds: u64,
    pub max_attempts: i32,
    /// Accounts with more ads than this are refused (one allocation request carries them all).
    pub max_ads_per_account: usize,
    /// The allocator's lookback for recent performance (its fatigue and trend window): this many whole days
    /// before today and today so far, in the account's time zone.
    pub recent_window_days: u32,
    /// An ad with more than this many days of history is read on its last this-many days instead (0: never),
    /// today so far included, with the recent window inside it: a weekly rhythm of its own then averages out
    /// inside the window instead of reading as a change.
    pub settled_window_days: u32,
    /// Each cycle sends ml-service's instant learner what every ad delivered since the previous cycle.
    pub learn_from_delivery: bool,
    /// With that delivery, the conversions insights report. Off where capi-relay forwards conversions that
    /// name their ad to the learner (its `learning.enabled`): each conversion would be learned twice.
    pub conversions_from_delivery: bool,
    /// Each cycle reads the account's conversions by day and learns its reporting delays from how they
    /// grow between cycles; the allocator and the learner's matured clicks then use the account's own
    /// schedule instead of the configured one.
    pub estimate_reporting_delays: bool,
    /// The schedule each account's estimate starts from, and how many conversions it is worth: the
    /// allocator's defaults. Where ml-service's `allocator.reporting_delay` was changed, set the same here.
    pub reporting_delay_prior: ReportingDelay,
    pub reporting_delay_prior_conversions: f64,
    /// Each cycle reads every ad's spend and impressions by day and estimates how the account's CPMs rise
    /// with daily volume (`adloop_allocator::estimate_delivery_curves`); the allocator then funds an ad whose
    /// CPM rises to where its next unit of spend returns what the other ads' do.
    pub estimate_delivery_curves: bool,
    /// How the days are read for it: the allocator's defaults (`allocator.delivery_curve` in ml-service's
    /// settings documents them).
    pub delivery_curve: DeliveryCurveSettings,
    /// With `enabled`, each cycle reads every ad's clicks by day (the same days) and estimates each ad's own
    /// weekday rhythm (`adloop_allocator::estimate_weekday_ctr_multipliers`); the allocator then weighs an ad
    /// by its CTR on the coming day rather than its week's. Off by default, as the allocator's.
    pub weekday_rhythm: WeekdayRhythmSettings,
}

impl AutopilotSettings {
    /// The failing key and its rule.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.tick_milliseconds == 0 {
            return Err(("tick_milliseconds", "must be at least 1"));
        }
        if !(1..=16).contains(&self.max_concurrent_cycles) {
            return Err(("max_concurrent_cycles", "must be between 1 and 16"));
        }
        if self.run_lease_seconds < 10 {
            return Err(("run_lease_seconds", "must be at least 10"));
        }
        if self.max_attempts < 1 {
            return Err(("max_attempts", "must be at least 1"));
        }
        if !(1..=2000).contains(&self.max_ads_per_account) {
            return Err((
                "max_ads_per_account",
                "must be between 1 and 2000 (the allocation request's bound)",
            ));
        }
        if let Err((_, rule)) = self.reporting_delay_prior.validate() {
            return Err(("reporting_delay_prior", rule));
        }
        if !(self.reporting_delay_prior_conversions.is_finite() && self.reporting_delay_prior_conversions >= 0.0) {
            return Err(("reporting_delay_prior_conversions", "must be a non-negative number"));
        }
        let curve = &self.delivery_curve;
        if !(1..=90).contains(&curve.days) {
            return Err(("delivery_curve.days", "must be between 1 and 90"));
        }
        if curve.min_days < 3 {
            return Err(("delivery_curve.min_days", "must be at least 3"));
        }
        if !(curve.rise_standard_errors.is_finite() && curve.rise_standard_errors >= 0.0) {
            return Err(("delivery_curve.rise_standard_errors", "must be a non-negative number"));
        }
        if self.weekday_rhythm.min_days < 7 {
            return Err(("weekday_rhythm.min_days", "must be at least 7"));
        }
        if !(1..=28).contains(&self.recent_window_days) {
            return Err(("recent_window_days", "must be between 1 and 28"));
        }
        if self.settled_window_days != 0
            && !(self.recent_window_days < self.settled_window_days && self.settled_window_days <= 90)
        {
            return Err((
                "settled_window_days",
                "must be 0 (off) or more than recent_window_days and at most 90",
            ));
        }
        Ok(())
    }
}
