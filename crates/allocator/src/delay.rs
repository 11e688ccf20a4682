//! Conversions are reported late: spend from the last hours has not yet reported most of its conversions.
//! Counting that spend at full weight would make every young or fast-growing ad look worse than it is, so
//! conversion rates are measured against spend weighted by how much of its conversions should have arrived.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelayComponent {
    pub share: f64,
    pub min_hours: f64,
    pub max_hours: f64,
}

/// The reporting lag as a mixture of uniform intervals; by default about 35% within an hour, 50% within a
/// day and the rest within 7 days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

const INTEGRATION_STEPS: usize = 48;

impl ReportingDelay {
    /// Share of a conversion's probability that has been reported `age_hours` after the spend.
    pub fn reported_share_at(&self, age_hours: f64) -> f64 {
        let total_share: f64 = self.components.iter().map(|component| component.share).sum();
        if total_share <= 0.0 {
            return 1.0;
        }
        let reported: f64 = self
            .components
            .iter()
            .map(|component| {
                let width = component.max_hours - component.min_hours;
                let fraction = if width <= 0.0 {
                    if age_hours >= component.max_hours { 1.0 } else { 0.0 }
                } else {
                    ((age_hours - component.min_hours) / width).clamp(0.0, 1.0)
                };
                component.share * fraction
            })
            .sum();
        reported / total_share
    }

    /// Average reported share of spend spread evenly over ages `from_hours..to_hours`.
    pub fn average_reported_share(&self, from_hours: f64, to_hours: f64) -> f64 {
        if to_hours <= from_hours {
            return self.reported_share_at(from_hours);
        }
        let step = (to_hours - from_hours) / INTEGRATION_STEPS as f64;
        let sum: f64 = (0..INTEGRATION_STEPS)
            .map(|index| self.reported_share_at(from_hours + (index as f64 + 0.5) * step))
            .sum();
        sum / INTEGRATION_STEPS as f64
    }
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
    }
}
