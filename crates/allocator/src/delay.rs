//! Conversions are reported late: spend from the last hours has not yet reported most of its conversions.
//! Counting that spend at full weight would make every young or fast-growing ad look worse than it is, so
//! conversion rates are measured against spend weighted by how much of its conversions should have arrived.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::AllocatorConfig;
use crate::input::AdInput;

/// The longest reporting delay a schedule may describe: 90 days.
const MAX_SCHEDULE_HOURS: f64 = 90.0 * 24.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayComponent {
    pub share: f64,
    pub min_hours: f64,
    pub max_hours: f64,
}

/// The reporting lag as a mixture of uniform intervals; by default about 35% within an hour, 50% within a
/// day and the rest within 7 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingDelay {
    pub components: Vec<DelayComponent>,
}

impl Default for ReportingDelay {
    fn default() -> Self {
        ReportingDelay {
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

impl ReportingDelay {
    /// Checks the schedule: at least one component, shares non-negative with a positive sum, each interval
    /// within 0..=90 days with its start not after its end. The error names the component's field.
    pub fn validate(&self) -> Result<(), (String, &'static str)> {
        if self.components.is_empty() {
            return Err(("components".into(), "at least one component is required"));
        }
        for (index, component) in self.components.iter().enumerate() {
            let field = |name: &str| format!("components[{index}].{name}");
            if !(component.share.is_finite() && component.share >= 0.0) {
                return Err((field("share"), "must be a non-negative number"));
            }
            if !(component.min_hours.is_finite() && (0.0..=MAX_SCHEDULE_HOURS).contains(&component.min_hours)) {
                return Err((field("min_hours"), "must be between 0 and 2160 hours (90 days)"));
            }
            if !(component.max_hours.is_finite() && (0.0..=MAX_SCHEDULE_HOURS).contains(&component.max_hours)) {
                return Err((field("max_hours"), "must be between 0 and 2160 hours (90 days)"));
            }
            if component.max_hours < component.min_hours {
                return Err((field("max_hours"), "must not be below min_hours"));
            }
        }
        if self.components.iter().map(|component| component.share).sum::<f64>() <= 0.0 {
            return Err(("components".into(), "the shares must add up to more than zero"));
        }
        Ok(())
    }

    /// Share of a conversion's probability that has been reported `age_hours` after the spend.
    pub fn reported_share_at(&self, age_hours: f64) -> f64 {
        self.share_weighted(|component| {
            let width = component.max_hours - component.min_hours;
            if width <= 0.0 {
                if age_hours >= component.max_hours { 1.0 } else { 0.0 }
            } else {
                ((age_hours - component.min_hours) / width).clamp(0.0, 1.0)
            }
        })
    }

    /// Average reported share of spend spread evenly over ages `from_hours..to_hours`: exact, as each
    /// component's reported share is piecewise linear in the age.
    pub fn average_reported_share(&self, from_hours: f64, to_hours: f64) -> f64 {
        if to_hours <= from_hours {
            return self.reported_share_at(from_hours);
        }
        let width = to_hours - from_hours;
        self.share_weighted(|component| {
            (component_reported_share_integral(component, to_hours)
                - component_reported_share_integral(component, from_hours))
                / width
        })
    }

    /// `per_component` averaged over the components by their shares (1 for a schedule without shares:
    /// everything counts as reported).
    fn share_weighted(&self, per_component: impl Fn(&DelayComponent) -> f64) -> f64 {
        let total_share: f64 = self.components.iter().map(|component| component.share).sum();
        if total_share <= 0.0 {
            return 1.0;
        }
        let weighted: f64 = self
            .components
            .iter()
            .map(|component| component.share * per_component(component))
            .sum();
        weighted / total_share
    }
}

/// ∫₀ᵗ of one component's reported share (0 before `min_hours`, rising linearly to 1 at `max_hours`).
pub(crate) fn component_reported_share_integral(component: &DelayComponent, age_hours: f64) -> f64 {
    let width = component.max_hours - component.min_hours;
    if age_hours <= component.min_hours {
        return 0.0;
    }
    if width <= 0.0 {
        return age_hours - component.max_hours;
    }
    if age_hours < component.max_hours {
        let into = age_hours - component.min_hours;
        return into * into / (2.0 * width);
    }
    width / 2.0 + (age_hours - component.max_hours)
}

/// The schedule an ad's conversions report on: the request's estimate for its account
/// ([`crate::ReportingDelayEstimator`]), or the configured schedule for accounts without one.
pub(crate) fn schedule_for<'a>(
    ad: &AdInput,
    account_schedules: &'a BTreeMap<String, ReportingDelay>,
    config: &'a AllocatorConfig,
) -> &'a ReportingDelay {
    account_schedules
        .get(&ad.ids.account_id)
        .unwrap_or(&config.reporting_delay)
}

/// How much more (or less) of the recent window's conversions have really been reported than the schedule
/// says, measured on the account's own ads: each ad's older conversion rate predicts its recent conversions
/// at the schedule's maturity, and the account's recent conversions over those predictions is the factor
/// (1: the schedule is right; 0.5: only half of what it expects has arrived, as when conversions come in the
/// second week). The schedule is the prior, worth `reporting_delay_calibration_prior_conversions`
/// conversions, so a young or small account keeps it. The factor moves every ad alike, so what it changes is
/// how an ad whose spend moved recently compares with one whose spend did not.
///
/// Each ad's own factor leaves the ad out ([`MaturityFactors::for_ad`]): a collapse of the ad that spends
/// most would otherwise read as slow reporting across the account and excuse itself (traced on
/// `conversion-collapse`: the best ad's conversions fell to a fifth, the account's factor with it, and the ad
/// kept 90% of the budget for three days).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MaturityFactors {
    /// The factor on every ad of the request (the population's).
    pub account: f64,
    /// Each ad's factor on the other ads, in request order.
    pub leaving_out_each_ad: Vec<f64>,
}

impl MaturityFactors {
    pub(crate) fn for_ad(&self, index: usize) -> f64 {
        self.leaving_out_each_ad.get(index).copied().unwrap_or(self.account)
    }
}

/// The reporting-delay check (see [`MaturityFactors`]) for the request's ads.
pub(crate) fn recent_maturity_factors(
    ads: &[AdInput],
    account_schedules: &BTreeMap<String, ReportingDelay>,
    config: &AllocatorConfig,
) -> MaturityFactors {
    // Each ad's (recent conversions, recent conversions its older rate predicts at the schedule's maturity).
    let per_ad: Vec<(f64, f64)> = ads
        .iter()
        .map(|ad| recent_and_predicted_conversions(ad, schedule_for(ad, account_schedules, config)))
        .collect();
    let recent_total: f64 = per_ad.iter().map(|(recent, _)| recent).sum();
    let predicted_total: f64 = per_ad.iter().map(|(_, predicted)| predicted).sum();
    let factor = |recent: f64, predicted: f64| {
        let prior = config.reporting_delay_calibration_prior_conversions;
        if prior <= 0.0 && predicted <= 0.0 {
            return 1.0;
        }
        ((recent + prior) / (predicted + prior))
            .clamp(config.min_recent_maturity_factor, config.max_recent_maturity_factor)
    };
    MaturityFactors {
        account: factor(recent_total, predicted_total),
        leaving_out_each_ad: per_ad
            .iter()
            .map(|(recent, predicted)| factor((recent_total - recent).max(0.0), (predicted_total - predicted).max(0.0)))
            .collect(),
    }
}

/// An ad's recent conversions and those its older conversion rate predicts for the recent window at the
/// schedule's maturity; (0, 0) for an ad without both windows.
fn recent_and_predicted_conversions(ad: &AdInput, delay: &ReportingDelay) -> (f64, f64) {
    let Some(recent) = ad.recent else {
        return (0.0, 0.0);
    };
    let age_hours = ad.age_hours.floor();
    let recent_hours = recent.hours.min(age_hours);
    let older_clicks = ad.clicks.saturating_sub(recent.clicks) as f64;
    if recent_hours < 1.0 || age_hours <= recent_hours || older_clicks <= 0.0 {
        return (0.0, 0.0);
    }
    let older_conversions = ad.conversions.saturating_sub(recent.conversions) as f64;
    let recent_maturity = delay.average_reported_share(0.0, recent_hours);
    let older_maturity = delay.average_reported_share(recent_hours, age_hours);
    if older_maturity <= 0.0 {
        return (0.0, 0.0);
    }
    (
        recent.conversions as f64,
        recent.clicks as f64 * older_conversions / older_clicks * recent_maturity / older_maturity,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_delay_reports_35_percent_in_an_hour_half_in_a_day_all_in_a_week() {
        let delay = ReportingDelay::default();
        assert!((delay.reported_share_at(1.0) - 0.35).abs() < 1e-9);
        assert!((delay.reported_share_at(24.0) - 0.50).abs() < 1e-9);
        assert!((delay.reported_share_at(168.0) - 1.0).abs() < 1e-9);
        let last_day = delay.average_reported_share(0.0, 24.0);
        assert!(last_day > 0.35 && last_day < 0.5, "{last_day}");
        // Spend over the last day: 35% within its first hour (0.35 × 23.5 / 24 on average) and the 1–24 h part
        // rising linearly (0.15 × 23² / (2 × 23) / 24).
        let exact = (0.35 * 23.5 + 0.15 * 23.0 / 2.0) / 24.0;
        assert!((last_day - exact).abs() < 1e-12, "{last_day} vs {exact}");
    }
}
