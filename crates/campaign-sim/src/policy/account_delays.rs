//! Each account's reporting-delay schedule, estimated from how its days' conversions mature from one
//! observation to the next (the allocator library's `ReportingDelayEstimator`), as a client of ml-service
//! would estimate it from successive insights reports.

use std::collections::BTreeMap;

use adloop_allocator::{AllocatorConfig, DailyConversionReport, ReportingDelay, ReportingDelayEstimator};

use crate::observation::Observation;

#[derive(Debug, Clone, Default)]
pub struct AccountDelayEstimates {
    by_account: BTreeMap<String, ReportingDelayEstimator>,
}

impl AccountDelayEstimates {
    /// Reads one observation: every account's conversions per day, summed over its ads.
    pub fn record(&mut self, observation: &Observation) {
        let mut conversions_by_account_day: BTreeMap<&str, BTreeMap<u32, u64>> = BTreeMap::new();
        for ad in &observation.ads {
            let by_day = conversions_by_account_day
                .entry(ad.identity.account_id.as_str())
                .or_default();
            for day in &ad.daily {
                *by_day.entry(day.day).or_default() += day.conversions;
            }
        }
        for (account_id, by_day) in conversions_by_account_day {
            let reports: Vec<DailyConversionReport> = by_day
                .into_iter()
                .map(|(day, conversions)| DailyConversionReport { day, conversions })
                .collect();
            self.by_account
                .entry(account_id.to_owned())
                .or_default()
                .record_report(f64::from(observation.hour), &reports);
        }
    }

    /// Every account's schedule now, the configured one as the prior.
    pub fn schedules(&self, config: &AllocatorConfig) -> BTreeMap<String, ReportingDelay> {
        self.by_account
            .iter()
            .map(|(account_id, estimator)| {
                let schedule = estimator.estimate(
                    &config.reporting_delay,
                    config.reporting_delay_estimate_prior_conversions,
                );
                (account_id.clone(), schedule)
            })
            .collect()
    }
}
