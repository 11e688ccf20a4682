//! One number for a whole table: the geometric mean over scenarios of one policy's mean regret over
//! another's, with an interval from resampling seeds. Per scenario the paired intervals say whether the two
//! policies differ; this says how far a change moved the whole table, and whether that is more than the
//! seeds' luck (which alone moves it by several hundredths from one set of seeds to another).

use rand::RngExt as _;

use crate::rng::SimRng;
use crate::summary::IntervalEstimate;

/// Bootstrap resamples behind the interval.
const RESAMPLES: usize = 2_000;
/// The resampling stream is fixed, so a table prints the same interval every time.
const RESAMPLING_SEED: u64 = 0x05ee_d0f7_ab1e;

/// One scenario's regrets seed by seed, of the policy and of its baseline on the same seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedRegrets {
    pub policy: Vec<f64>,
    pub baseline: Vec<f64>,
}

/// The geometric mean over `scenarios` of the policy's mean regret over the baseline's, with a 95%
/// percentile-bootstrap interval: each resample draws seed positions with replacement, the same positions in
/// every scenario (the table's scenarios share their seeds). `None` when a scenario has no seeds, its
/// seeds differ in number between the two policies, or either mean regret is not positive on the seeds as
/// they are (a ratio of regrets means nothing there; the README leaves such scenarios out by name). A
/// resample in which a ratio is not positive is drawn again.
pub fn geometric_mean_regret_ratio(scenarios: &[PairedRegrets]) -> Option<IntervalEstimate> {
    let seed_count = scenarios.first()?.policy.len();
    let well_formed = scenarios
        .iter()
        .all(|paired| paired.policy.len() == seed_count && paired.baseline.len() == seed_count);
    if seed_count == 0 || !well_formed {
        return None;
    }
    let all_positions: Vec<usize> = (0..seed_count).collect();
    let estimate = log_ratio_mean(scenarios, &all_positions)?;
    let mut random = SimRng::new(u128::from(RESAMPLING_SEED));
    let mut resampled: Vec<f64> = Vec::with_capacity(RESAMPLES);
    let mut positions = vec![0; seed_count];
    // Bounded, so a table whose ratios are rarely positive cannot loop for ever.
    for _ in 0..RESAMPLES * 10 {
        if resampled.len() == RESAMPLES {
            break;
        }
        for position in &mut positions {
            *position = random.random_range(0..seed_count);
        }
        if let Some(log_ratio) = log_ratio_mean(scenarios, &positions) {
            resampled.push(log_ratio);
        }
    }
    if resampled.len() < RESAMPLES {
        return None;
    }
    Some(geometric_interval(estimate, resampled))
}

/// The ratio `exp(log_estimate)` with the 2.5% and 97.5% quantiles of the resampled log ratios, exponentiated.
fn geometric_interval(log_estimate: f64, mut resampled: Vec<f64>) -> IntervalEstimate {
    resampled.sort_by(f64::total_cmp);
    let last = resampled.len().saturating_sub(1);
    let quantile = |share: f64| resampled[((share * resampled.len() as f64) as usize).min(last)];
    IntervalEstimate {
        mean: log_estimate.exp(),
        lower_95: quantile(0.025).exp(),
        upper_95: quantile(0.975).exp(),
    }
}

/// The geometric mean of positive `ratios` (one per world, say), with a 95% percentile-bootstrap interval
/// from resampling the ratios themselves: for a set of worlds drawn at random, what another draw of as many
/// worlds would read. `None` when there are fewer than two ratios or one is not positive.
pub fn geometric_mean_ratio(ratios: &[f64]) -> Option<IntervalEstimate> {
    if ratios.len() < 2 || ratios.iter().any(|ratio| !(*ratio > 0.0 && ratio.is_finite())) {
        return None;
    }
    let logs: Vec<f64> = ratios.iter().map(|ratio| ratio.ln()).collect();
    let mean_of = |positions: &mut dyn Iterator<Item = usize>| {
        positions.map(|position| logs[position]).sum::<f64>() / logs.len() as f64
    };
    let estimate = mean_of(&mut (0..logs.len()));
    let mut random = SimRng::new(u128::from(RESAMPLING_SEED));
    let resampled: Vec<f64> = (0..RESAMPLES)
        .map(|_| mean_of(&mut (0..logs.len()).map(|_| random.random_range(0..logs.len()))))
        .collect();
    Some(geometric_interval(estimate, resampled))
}

/// The mean over scenarios of ln(policy's mean regret / baseline's) over the seeds at `positions`.
fn log_ratio_mean(scenarios: &[PairedRegrets], positions: &[usize]) -> Option<f64> {
    let mut log_sum = 0.0;
    for paired in scenarios {
        // Sums over the same positions: their ratio is the ratio of the means.
        let sum_of = |regrets: &[f64]| positions.iter().map(|&position| regrets[position]).sum::<f64>();
        let (policy, baseline) = (sum_of(&paired.policy), sum_of(&paired.baseline));
        if policy <= 0.0 || baseline <= 0.0 {
            return None;
        }
        log_sum += (policy / baseline).ln();
    }
    Some(log_sum / scenarios.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paired(policy: &[f64], baseline: &[f64]) -> PairedRegrets {
        PairedRegrets {
            policy: policy.to_vec(),
            baseline: baseline.to_vec(),
        }
    }

    #[test]
    fn a_geometric_mean_of_ratios_brackets_its_estimate_and_refuses_a_ratio_that_is_not_positive() {
        let ratio = geometric_mean_ratio(&[0.5, 2.0, 1.0, 1.0]).unwrap();
        assert!((ratio.mean - 1.0).abs() < 1e-12, "{ratio:?}");
        assert!(ratio.lower_95 < 1.0 && ratio.upper_95 > 1.0, "{ratio:?}");
        let alike = geometric_mean_ratio(&[0.8, 0.8, 0.8]).unwrap();
        assert!((alike.lower_95 - 0.8).abs() < 1e-12 && (alike.upper_95 - 0.8).abs() < 1e-12);
        assert!(geometric_mean_ratio(&[0.5, 0.0]).is_none());
        assert!(geometric_mean_ratio(&[0.5]).is_none());
    }

    #[test]
    fn the_estimate_is_the_geometric_mean_of_the_scenarios_ratios() {
        // Ratios 0.5 and 2 (means 10/20 and 40/20): geometric mean 1, whatever the seeds' spread.
        let scenarios = [
            paired(&[8.0, 12.0], &[18.0, 22.0]),
            paired(&[35.0, 45.0], &[15.0, 25.0]),
        ];
        let ratio = geometric_mean_regret_ratio(&scenarios).unwrap();
        assert!((ratio.mean - 1.0).abs() < 1e-12, "{ratio:?}");
        assert!(
            ratio.lower_95 <= ratio.mean && ratio.mean <= ratio.upper_95,
            "{ratio:?}"
        );
    }

    #[test]
    fn noisy_seeds_widen_the_interval_and_a_clear_difference_excludes_one() {
        let steady = [paired(
            &[9.0, 10.0, 11.0, 10.0, 9.5, 10.5],
            &[19.0, 20.0, 21.0, 20.0, 19.5, 20.5],
        )];
        let noisy = [paired(
            &[2.0, 25.0, 3.0, 20.0, 1.0, 9.0],
            &[5.0, 40.0, 30.0, 2.0, 18.0, 25.0],
        )];
        let steady_ratio = geometric_mean_regret_ratio(&steady).unwrap();
        let noisy_ratio = geometric_mean_regret_ratio(&noisy).unwrap();
        assert!(steady_ratio.upper_95 < 1.0, "{steady_ratio:?}");
        assert!(
            noisy_ratio.upper_95 / noisy_ratio.lower_95 > 2.0 * steady_ratio.upper_95 / steady_ratio.lower_95,
            "steady {steady_ratio:?}, noisy {noisy_ratio:?}"
        );
    }

    #[test]
    fn a_ratio_of_regrets_that_are_not_positive_is_not_given() {
        assert_eq!(
            geometric_mean_regret_ratio(&[paired(&[-5.0, -1.0], &[10.0, 12.0])]),
            None
        );
        assert_eq!(geometric_mean_regret_ratio(&[paired(&[5.0], &[10.0, 12.0])]), None);
        assert_eq!(geometric_mean_regret_ratio(&[]), None);
    }
}
