//! The reporting-delay schedule of one account, estimated from its own reports.
//!
//! Insights credit a conversion to the day of its click, but only once it has been reported, so each day's
//! count keeps growing for days after the day itself. Every report is a snapshot of every recent day's count;
//! successive snapshots show how a day's conversions mature. [`ReportingDelayEstimator`] keeps, for each day
//! (a *cohort*), how many of its conversions first appeared between successive reports, and
//! [`ReportingDelayEstimator::estimate`] fits the share of conversions reported in each age bin to those
//! counts: maximum likelihood for right-truncated delays (a day's conversions not yet reported are unknown,
//! not absent), by expectation–maximisation, with the configured schedule as a prior worth a few dozen
//! conversions. A young account keeps the configured schedule; an account with hundreds of conversions reads
//! its own, including reports later than the schedule allows (up to four weeks).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::delay::{DelayComponent, ReportingDelay, component_reported_share_integral};

/// One day's conversions as one report showed them (Meta's insights with one row per day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyConversionReport {
    /// Days since a fixed epoch (the simulation's start, or days since 1970 in the account's time zone).
    pub day: u32,
    /// The day's conversions reported so far.
    pub conversions: u64,
}

const HOURS_PER_DAY: f64 = 24.0;

/// The age bins the estimate has one share for, in hours after the conversion: an hour, the rest of the
/// first day, then bins that widen with the age, out to four weeks (the longest attribution window Meta has
/// offered). The first three edges are the default schedule's, so the default maps onto them exactly.
const ESTIMATE_BIN_EDGES_HOURS: [f64; 8] = [0.0, 1.0, 24.0, 48.0, 96.0, 168.0, 336.0, 672.0];

/// Reports are kept for days at most this old (the longest bin's end plus the day itself); older days have
/// matured and their counts stay in the estimate.
const MAX_TRACKED_AGE_HOURS: f64 = 672.0 + HOURS_PER_DAY;

/// Days kept at all: a fortnight beyond the tracked ages, so the longest delays keep some matured cohorts.
const MAX_KEPT_COHORTS: usize = 42;

/// Successive reports closer than this in a day's age are merged into one interval, so an account that
/// reports hourly keeps at most a few dozen intervals per day.
const MIN_INTERVAL_HOURS: f64 = 12.0;

/// Expectation–maximisation stops when no share moves by more than this, or after this many rounds.
const CONVERGENCE_TOLERANCE: f64 = 1e-7;
const MAX_ROUNDS: usize = 200;

/// Conversions of one day that first appeared between two of its ages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct ReportInterval {
    from_age_hours: f64,
    to_age_hours: f64,
    conversions: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct CohortHistory {
    intervals: Vec<ReportInterval>,
    /// The day's count at its latest report.
    reported: u64,
}

/// What one account's reports showed of how its days matured (bounded: [`MAX_KEPT_COHORTS`] days of at most
/// a few dozen intervals each). Serialisable, so a service can keep it between cycles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportingDelayEstimator {
    cohorts: BTreeMap<u32, CohortHistory>,
}

impl ReportingDelayEstimator {
    /// Takes one report, made `hour` hours after the epoch `day` counts from. Only days that have ended are
    /// read (a day still running has not had all its clicks). A count lower than an earlier report's (a
    /// revision) adds nothing until it passes the earlier count.
    pub fn record_report(&mut self, hour: f64, reports: &[DailyConversionReport]) {
        for report in reports {
            let day_start_hour = f64::from(report.day) * HOURS_PER_DAY;
            let age_hours = hour - day_start_hour;
            if !(HOURS_PER_DAY..=MAX_TRACKED_AGE_HOURS).contains(&age_hours) {
                continue;
            }
            let cohort = self.cohorts.entry(report.day).or_default();
            let from_age_hours = cohort.intervals.last().map_or(0.0, |last| last.to_age_hours);
            if age_hours <= from_age_hours {
                continue;
            }
            let newly_reported = report.conversions.saturating_sub(cohort.reported);
            cohort.reported = cohort.reported.max(report.conversions);
            match cohort.intervals.last_mut() {
                Some(last) if last.to_age_hours - last.from_age_hours < MIN_INTERVAL_HOURS => {
                    last.to_age_hours = age_hours;
                    last.conversions += newly_reported;
                }
                _ => cohort.intervals.push(ReportInterval {
                    from_age_hours,
                    to_age_hours: age_hours,
                    conversions: newly_reported,
                }),
            }
        }
        while self.cohorts.len() > MAX_KEPT_COHORTS {
            self.cohorts.pop_first();
        }
    }

    /// Conversions the reports have shown, over every kept day.
    pub fn conversions_seen(&self) -> u64 {
        self.cohorts.values().map(|cohort| cohort.reported).sum()
    }

    /// The schedule these reports support, with `prior` worth `prior_conversions` conversions: shares per age
    /// bin (uniform within a bin), each the prior's share of the bin plus what the reports say, the reports'
    /// days still unreported included by their expected number.
    pub fn estimate(&self, prior: &ReportingDelay, prior_conversions: f64) -> ReportingDelay {
        let bins = estimate_bins();
        let prior_shares: Vec<f64> = bins
            .iter()
            .map(|bin| prior.reported_share_at(bin.max_hours) - prior.reported_share_at(bin.min_hours))
            .collect();
        let prior_total: f64 = prior_shares.iter().sum();
        if prior_total <= 0.0 || self.conversions_seen() == 0 {
            return prior.clone();
        }
        let prior_pseudo_counts: Vec<f64> = prior_shares
            .iter()
            .map(|share| prior_conversions * share / prior_total)
            .collect();
        let cohorts = self.cohort_likelihood_terms(&bins);
        // Start from the prior with a little of every bin, so reports later than the prior allows can draw
        // shares to the bins the prior leaves empty.
        let bin_count = bins.len() as f64;
        let mut shares: Vec<f64> = prior_shares
            .iter()
            .map(|share| 0.9 * share / prior_total + 0.1 / bin_count)
            .collect();
        for _ in 0..MAX_ROUNDS {
            let expected_counts = expected_counts_per_bin(&cohorts, &shares);
            let updated_unnormalised: Vec<f64> = expected_counts
                .iter()
                .zip(&prior_pseudo_counts)
                .map(|(expected, pseudo)| expected + pseudo)
                .collect();
            let total: f64 = updated_unnormalised.iter().sum();
            if total <= 0.0 {
                return prior.clone();
            }
            let updated: Vec<f64> = updated_unnormalised.iter().map(|count| count / total).collect();
            let largest_move = updated
                .iter()
                .zip(&shares)
                .map(|(new, old)| (new - old).abs())
                .fold(0.0, f64::max);
            shares = updated;
            if largest_move < CONVERGENCE_TOLERANCE {
                break;
            }
        }
        ReportingDelay {
            components: bins
                .into_iter()
                .zip(shares)
                .filter(|(_, share)| *share > 0.0)
                .map(|(bin, share)| DelayComponent { share, ..bin })
                .collect(),
        }
    }

    /// For each day with conversions: each interval's count with every bin's probability of reporting in it,
    /// and every bin's probability of having reported by the day's latest report.
    fn cohort_likelihood_terms(&self, bins: &[DelayComponent]) -> Vec<CohortTerms> {
        self.cohorts
            .values()
            .filter(|cohort| cohort.reported > 0)
            .map(|cohort| {
                let latest_age = cohort.intervals.last().map_or(0.0, |last| last.to_age_hours);
                CohortTerms {
                    intervals: cohort
                        .intervals
                        .iter()
                        .filter(|interval| interval.conversions > 0)
                        .map(|interval| {
                            let per_bin = bins
                                .iter()
                                .map(|bin| {
                                    day_reported_share(bin, interval.to_age_hours)
                                        - day_reported_share(bin, interval.from_age_hours)
                                })
                                .collect();
                            (interval.conversions as f64, per_bin)
                        })
                        .collect(),
                    reported_by_latest: bins.iter().map(|bin| day_reported_share(bin, latest_age)).collect(),
                    conversions: cohort.reported as f64,
                }
            })
            .collect()
    }
}

struct CohortTerms {
    /// (conversions first seen in the interval, each bin's probability of reporting in it).
    intervals: Vec<(f64, Vec<f64>)>,
    reported_by_latest: Vec<f64>,
    conversions: f64,
}

/// The expectation step: each interval's conversions spread over the bins in proportion to how likely each
/// makes them, plus each day's conversions not yet reported (its count over the share reported by now, less
/// the count), spread over the bins in proportion to how much of each is still to come.
fn expected_counts_per_bin(cohorts: &[CohortTerms], shares: &[f64]) -> Vec<f64> {
    let mut expected = vec![0.0; shares.len()];
    for cohort in cohorts {
        for (conversions, per_bin) in &cohort.intervals {
            let likelihood: f64 = shares.iter().zip(per_bin).map(|(share, q)| share * q).sum();
            if likelihood <= 0.0 {
                continue;
            }
            for (bin, (share, q)) in shares.iter().zip(per_bin).enumerate() {
                expected[bin] += conversions * share * q / likelihood;
            }
        }
        let reported_share: f64 = shares
            .iter()
            .zip(&cohort.reported_by_latest)
            .map(|(share, reported)| share * reported)
            .sum();
        if reported_share <= 0.0 {
            continue;
        }
        let expected_total = cohort.conversions / reported_share;
        for (bin, (share, reported)) in shares.iter().zip(&cohort.reported_by_latest).enumerate() {
            expected[bin] += expected_total * share * (1.0 - reported);
        }
    }
    expected
}

fn estimate_bins() -> Vec<DelayComponent> {
    ESTIMATE_BIN_EDGES_HOURS
        .windows(2)
        .map(|edges| DelayComponent {
            share: 1.0,
            min_hours: edges[0],
            max_hours: edges[1],
        })
        .collect()
}

/// The share of a day's conversions (spread evenly over the day) one bin has reported `age_hours` after the
/// day began: the bin's reported share averaged over the day's 24 hours of conversions, whose ages run from
/// `age_hours − 24` to `age_hours` (an age below zero is a conversion still to come, nothing reported).
fn day_reported_share(bin: &DelayComponent, age_hours: f64) -> f64 {
    (component_reported_share_integral(bin, age_hours)
        - component_reported_share_integral(bin, age_hours - HOURS_PER_DAY))
        / HOURS_PER_DAY
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt as _, SeedableRng as _};
    use rand_pcg::Pcg64Mcg;

    /// A world whose conversions report on `truth`: `days` days of `per_day` conversions each, reported
    /// daily at the end of each day, the estimator reading every report.
    fn estimator_after_reports(truth: &ReportingDelay, days: u32, per_day: u32, seed: u64) -> ReportingDelayEstimator {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut arrival_hours_by_day: Vec<Vec<f64>> = Vec::new();
        for day in 0..days {
            let arrivals = (0..per_day)
                .map(|_| {
                    let event_hour = f64::from(day) * 24.0 + rng.random::<f64>() * 24.0;
                    event_hour + sample_delay_hours(truth, &mut rng)
                })
                .collect();
            arrival_hours_by_day.push(arrivals);
        }
        let mut estimator = ReportingDelayEstimator::default();
        for report_day in 1..=days {
            let hour = f64::from(report_day) * 24.0;
            let reports: Vec<DailyConversionReport> = (0..report_day)
                .map(|day| DailyConversionReport {
                    day,
                    conversions: arrival_hours_by_day[day as usize]
                        .iter()
                        .filter(|arrival| **arrival <= hour)
                        .count() as u64,
                })
                .collect();
            estimator.record_report(hour, &reports);
        }
        estimator
    }

    fn sample_delay_hours(delay: &ReportingDelay, rng: &mut Pcg64Mcg) -> f64 {
        let mut pick = rng.random::<f64>();
        for component in &delay.components {
            if pick < component.share {
                return component.min_hours + rng.random::<f64>() * (component.max_hours - component.min_hours);
            }
            pick -= component.share;
        }
        0.0
    }

    fn two_weeks_late() -> ReportingDelay {
        ReportingDelay {
            components: vec![
                DelayComponent {
                    share: 0.3,
                    min_hours: 0.0,
                    max_hours: 24.0,
                },
                DelayComponent {
                    share: 0.7,
                    min_hours: 168.0,
                    max_hours: 336.0,
                },
            ],
        }
    }

    #[test]
    fn without_reports_the_configured_schedule_stands() {
        let prior = ReportingDelay::default();
        assert_eq!(ReportingDelayEstimator::default().estimate(&prior, 30.0), prior);
    }

    #[test]
    fn an_account_whose_conversions_come_in_the_second_week_is_read_as_such() {
        let truth = two_weeks_late();
        let estimator = estimator_after_reports(&truth, 35, 40, 7);
        let estimate = estimator.estimate(&ReportingDelay::default(), 30.0);
        for age_hours in [24.0, 72.0, 168.0, 240.0, 336.0] {
            let estimated = estimate.reported_share_at(age_hours);
            let true_share = truth.reported_share_at(age_hours);
            assert!(
                (estimated - true_share).abs() < 0.06,
                "at {age_hours} h: estimated {estimated:.3}, true {true_share:.3}"
            );
        }
        // The default schedule says everything is in after a week; this account has reported 30% by then.
        assert!(ReportingDelay::default().reported_share_at(168.0) > 0.99);
    }

    #[test]
    fn the_default_schedule_is_recovered_when_it_is_the_truth() {
        let truth = ReportingDelay::default();
        let estimator = estimator_after_reports(&truth, 30, 40, 11);
        let estimate = estimator.estimate(&truth, 30.0);
        for age_hours in [24.0, 48.0, 96.0, 168.0, 336.0] {
            let estimated = estimate.reported_share_at(age_hours);
            assert!(
                (estimated - truth.reported_share_at(age_hours)).abs() < 0.05,
                "at {age_hours} h: {estimated:.3}"
            );
        }
    }

    #[test]
    fn a_few_conversions_barely_move_the_schedule() {
        let truth = two_weeks_late();
        let estimator = estimator_after_reports(&truth, 10, 1, 3);
        assert!(estimator.conversions_seen() <= 10);
        let prior = ReportingDelay::default();
        let estimate = estimator.estimate(&prior, 30.0);
        let at_a_day = estimate.reported_share_at(24.0);
        assert!(
            (at_a_day - prior.reported_share_at(24.0)).abs() < 0.2,
            "a handful of conversions moved the one-day share to {at_a_day:.3}"
        );
    }

    #[test]
    fn the_state_stays_bounded_however_often_and_long_an_account_reports() {
        let mut estimator = ReportingDelayEstimator::default();
        for hour in 0_u32..(24 * 120) {
            let today = hour / 24;
            let reports: Vec<DailyConversionReport> = (today.saturating_sub(28)..=today)
                .map(|day| DailyConversionReport {
                    day,
                    conversions: u64::from(hour - day * 24),
                })
                .collect();
            estimator.record_report(f64::from(hour), &reports);
        }
        assert!(estimator.cohorts.len() <= MAX_KEPT_COHORTS);
        let longest = estimator
            .cohorts
            .values()
            .map(|cohort| cohort.intervals.len())
            .max()
            .unwrap();
        assert!(
            longest <= (MAX_TRACKED_AGE_HOURS / MIN_INTERVAL_HOURS) as usize + 1,
            "{longest}"
        );
    }

    #[test]
    fn a_lowered_count_is_not_read_as_new_conversions() {
        let mut estimator = ReportingDelayEstimator::default();
        estimator.record_report(
            24.0,
            &[DailyConversionReport {
                day: 0,
                conversions: 10,
            }],
        );
        estimator.record_report(48.0, &[DailyConversionReport { day: 0, conversions: 8 }]);
        estimator.record_report(
            72.0,
            &[DailyConversionReport {
                day: 0,
                conversions: 11,
            }],
        );
        assert_eq!(estimator.conversions_seen(), 11);
    }
}
