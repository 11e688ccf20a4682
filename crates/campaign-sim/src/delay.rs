//! Conversion reporting lag: a mixture of uniform intervals, e.g. about 35% within an hour, 50% within a day
//! and a tail up to 7 days.

use rand::RngExt as _;

use crate::rng::SimRng;
use crate::scenario::ConversionDelaySettings;

#[derive(Debug, Clone)]
pub struct ConversionDelay {
    /// (cumulative share up to and including this component, min seconds, max seconds)
    components: Vec<(f64, f64, f64)>,
}

impl ConversionDelay {
    pub fn new(settings: &ConversionDelaySettings) -> Self {
        let total_share: f64 = settings.components.iter().map(|component| component.share).sum();
        let mut cumulative_share = 0.0;
        let components = settings
            .components
            .iter()
            .map(|component| {
                cumulative_share += component.share / total_share;
                (
                    cumulative_share,
                    component.min_hours * 3600.0,
                    component.max_hours * 3600.0,
                )
            })
            .collect();
        ConversionDelay { components }
    }

    pub fn sample_seconds(&self, rng: &mut SimRng) -> u64 {
        let pick: f64 = rng.random();
        let (_, min_seconds, max_seconds) = self
            .components
            .iter()
            .find(|(cumulative_share, _, _)| pick < *cumulative_share)
            .or(self.components.last())
            .copied()
            .unwrap_or((1.0, 0.0, 0.0));
        let within: f64 = rng.random();
        (min_seconds + within * (max_seconds - min_seconds)).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{StreamPurpose, stream};

    #[test]
    fn default_mixture_reports_about_35_percent_within_an_hour_and_half_within_a_day() {
        let delay = ConversionDelay::new(&ConversionDelaySettings::default());
        let mut rng = stream(7, StreamPurpose::AdDelivery, 0);
        let samples: Vec<u64> = (0..100_000).map(|_| delay.sample_seconds(&mut rng)).collect();
        let share_within = |seconds: u64| samples.iter().filter(|sample| **sample <= seconds).count() as f64 / 1e5;
        assert!((share_within(3600) - 0.35).abs() < 0.01, "{}", share_within(3600));
        assert!((share_within(86_400) - 0.50).abs() < 0.01, "{}", share_within(86_400));
        assert_eq!(share_within(7 * 86_400), 1.0);
    }
}
