//! The yardstick for the online heads: the same logistic regression (bias, feature weights, account
//! offsets, L2 on all but the bias) fitted offline by Newton's method on every event at once. The online
//! heads see each event once and never revisit it; this fit is what the same events support at best, so
//! it tells a learner that lags its data from data that cannot say more.

use std::collections::{BTreeMap, HashMap};

use crate::features::EncodedFeatures;
use crate::ftrl::sigmoid;
use crate::learner::LearningUpdate;

const NEWTON_ITERATIONS: usize = 100;
const CONVERGED_STEP: f64 = 1e-10;
/// Every account's offset beside a bias leaves one direction free: a negligible penalty fixes it.
const SMALLEST_PENALTY: f64 = 1e-9;

/// Which head's trials and successes to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// Impressions and clicks.
    Ctr,
    /// Matured clicks and conversions.
    Conversion,
}

/// The counts of one ad (or of one event that names no ad): trials and successes with the ad's features.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineFitRow {
    pub features: EncodedFeatures,
    /// Empty: no account offset.
    pub account_id: String,
    pub trials: f64,
    pub successes: f64,
}

/// Every update's counts for `head`, summed per ad (an ad's features are its last event's); updates that
/// name no ad stay rows of their own.
pub fn rows_by_ad(updates: &[LearningUpdate], head: HeadKind) -> Vec<OfflineFitRow> {
    let mut rows: Vec<OfflineFitRow> = Vec::new();
    let mut row_of_ad: HashMap<&str, usize> = HashMap::new();
    for update in updates {
        let (trials, successes) = match head {
            HeadKind::Ctr => (update.impressions, update.clicks),
            HeadKind::Conversion => (update.matured_clicks, update.conversions),
        };
        let existing = (!update.ad_id.is_empty())
            .then(|| row_of_ad.get(update.ad_id.as_str()).copied())
            .flatten();
        match existing {
            Some(index) => {
                let row = &mut rows[index];
                row.trials += trials;
                row.successes += successes;
                row.features = update.features.clone();
            }
            None => {
                if !update.ad_id.is_empty() {
                    row_of_ad.insert(&update.ad_id, rows.len());
                }
                rows.push(OfflineFitRow {
                    features: update.features.clone(),
                    account_id: update.account_id.clone(),
                    trials,
                    successes,
                });
            }
        }
    }
    rows
}

/// One row of the fit: its non-zero coordinates (index, value), the bias first.
struct DesignRow {
    active: Vec<(usize, f64)>,
    trials: f64,
    successes: f64,
}

/// A fitted model on the logit scale.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineFit {
    pub bias: f64,
    pub weights: BTreeMap<String, f64>,
    pub account_offsets: BTreeMap<String, f64>,
}

impl OfflineFit {
    /// The predicted rate for `features` in `account` (empty, or an account not fitted: no offset).
    pub fn predict(&self, features: &EncodedFeatures, account: &str) -> f64 {
        let offset = self.account_offsets.get(account).copied().unwrap_or(0.0);
        let logit = self.bias
            + offset
            + features
                .iter()
                .map(|(name, value)| self.weights.get(name).copied().unwrap_or(0.0) * value)
                .sum::<f64>();
        sigmoid(logit)
    }
}

/// The penalised maximum-likelihood fit of `rows`: binomial log-likelihood less `l2`/2 times the squares of
/// the feature weights and account offsets (0 for the plain maximum likelihood, which needs rows that do
/// not separate perfectly; it is at least `SMALLEST_PENALTY`, so account offsets beside the bias stay
/// identified). Rows with successes beyond their trials count their trials as all successes.
pub fn fit_offline(rows: &[OfflineFitRow], l2: f64) -> OfflineFit {
    let l2 = l2.max(SMALLEST_PENALTY);
    let mut coordinate_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut account_coordinate_of: BTreeMap<String, usize> = BTreeMap::new();
    for row in rows {
        for (name, _) in row.features.iter() {
            let next = 1 + coordinate_of.len();
            coordinate_of.entry(name.to_owned()).or_insert(next);
        }
    }
    for row in rows.iter().filter(|row| !row.account_id.is_empty()) {
        let next = 1 + coordinate_of.len() + account_coordinate_of.len();
        account_coordinate_of.entry(row.account_id.clone()).or_insert(next);
    }
    let dimension = 1 + coordinate_of.len() + account_coordinate_of.len();
    let design: Vec<DesignRow> = rows
        .iter()
        .filter(|row| row.trials > 0.0)
        .map(|row| {
            let mut active = vec![(0, 1.0)];
            active.extend(row.features.iter().map(|(name, value)| (coordinate_of[name], value)));
            if let Some(&account) = account_coordinate_of.get(&row.account_id) {
                active.push((account, 1.0));
            }
            DesignRow {
                active,
                trials: row.trials,
                successes: row.successes.min(row.trials),
            }
        })
        .collect();
    let trials: f64 = design.iter().map(|row| row.trials).sum();
    let successes: f64 = design.iter().map(|row| row.successes).sum();
    let mut coefficients = vec![0.0; dimension];
    coefficients[0] = ((successes + 0.5) / (trials - successes + 0.5)).ln();
    for _ in 0..NEWTON_ITERATIONS {
        let mut gradient: Vec<f64> = coefficients.iter().map(|coefficient| l2 * coefficient).collect();
        gradient[0] = 0.0;
        let mut hessian = vec![vec![0.0; dimension]; dimension];
        for (index, row) in hessian.iter_mut().enumerate().skip(1) {
            row[index] = l2;
        }
        for row in &design {
            let logit: f64 = row
                .active
                .iter()
                .map(|(index, value)| coefficients[*index] * value)
                .sum();
            let probability = sigmoid(logit);
            let curvature = row.trials * probability * (1.0 - probability);
            for (row_index, row_value) in &row.active {
                gradient[*row_index] += (row.trials * probability - row.successes) * row_value;
                for (column_index, column_value) in &row.active {
                    hessian[*row_index][*column_index] += curvature * row_value * column_value;
                }
            }
        }
        let Some(step) = solve(hessian, gradient) else {
            break;
        };
        for (coefficient, delta) in coefficients.iter_mut().zip(&step) {
            *coefficient -= delta;
        }
        if step.iter().all(|delta| delta.abs() < CONVERGED_STEP) {
            break;
        }
    }
    OfflineFit {
        bias: coefficients[0],
        weights: coordinate_of
            .into_iter()
            .map(|(name, index)| (name, coefficients[index]))
            .collect(),
        account_offsets: account_coordinate_of
            .into_iter()
            .map(|(account, index)| (account, coefficients[index]))
            .collect(),
    }
}

/// `matrix · x = vector` by Gaussian elimination with partial pivoting; `None` when singular.
fn solve(mut matrix: Vec<Vec<f64>>, mut vector: Vec<f64>) -> Option<Vec<f64>> {
    let dimension = vector.len();
    for pivot in 0..dimension {
        let best = (pivot..dimension).max_by(|a, b| matrix[*a][pivot].abs().total_cmp(&matrix[*b][pivot].abs()))?;
        if matrix[best][pivot].abs() < 1e-300 {
            return None;
        }
        matrix.swap(pivot, best);
        vector.swap(pivot, best);
        let pivot_row = matrix[pivot].clone();
        for row in pivot + 1..dimension {
            let factor = matrix[row][pivot] / pivot_row[pivot];
            for (entry, pivot_entry) in matrix[row].iter_mut().zip(&pivot_row).skip(pivot) {
                *entry -= factor * pivot_entry;
            }
            vector[row] -= factor * vector[pivot];
        }
    }
    let mut solution = vec![0.0; dimension];
    for row in (0..dimension).rev() {
        let tail: f64 = (row + 1..dimension)
            .map(|column| matrix[row][column] * solution[column])
            .sum();
        solution[row] = (vector[row] - tail) / matrix[row][row];
    }
    Some(solution)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::encode_features;

    fn update(ad_id: &str, account_id: &str, features: &[&str], impressions: f64, clicks: f64) -> LearningUpdate {
        LearningUpdate {
            ad_id: ad_id.into(),
            account_id: account_id.into(),
            features: encode_features(features.iter().map(|name| (*name, 1.0)), 64).expect("valid features"),
            impressions,
            clicks,
            ..LearningUpdate::default()
        }
    }

    #[test]
    fn an_ads_events_sum_into_one_row() {
        let updates = [
            update("a", "act_1", &["has_face"], 1_000.0, 10.0),
            update("b", "act_1", &[], 500.0, 2.0),
            update("a", "act_1", &["has_face"], 1_000.0, 14.0),
        ];
        let rows = rows_by_ad(&updates, HeadKind::Ctr);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].trials, rows[0].successes), (2_000.0, 24.0));
        assert_eq!((rows[1].trials, rows[1].successes), (500.0, 2.0));
    }

    #[test]
    fn without_a_penalty_the_fit_reproduces_the_rates_it_can_express() {
        // Two accounts, one feature that adds 0.7 to the logit in both: four cells the model expresses
        // exactly.
        let cells = [
            ("a", "act_1", false, -4.0),
            ("b", "act_1", true, -4.0 + 0.7),
            ("c", "act_2", false, -4.0 + 0.3),
            ("d", "act_2", true, -4.0 + 0.3 + 0.7),
        ];
        let updates: Vec<LearningUpdate> = cells
            .iter()
            .map(|(ad, account, face, logit)| {
                let features: &[&str] = if *face { &["has_face"] } else { &[] };
                update(ad, account, features, 1e6, 1e6 * sigmoid(*logit))
            })
            .collect();
        let fit = fit_offline(&rows_by_ad(&updates, HeadKind::Ctr), 0.0);
        assert!((fit.weights["has_face"] - 0.7).abs() < 1e-6, "{fit:?}");
        let offset_difference = fit.account_offsets["act_2"] - fit.account_offsets["act_1"];
        assert!((offset_difference - 0.3).abs() < 1e-6, "{fit:?}");
        let predicted = fit.predict(&updates[3].features, "act_2");
        assert!((predicted - sigmoid(-3.0)).abs() < 1e-9);
    }

    #[test]
    fn a_penalty_pulls_a_weakly_supported_weight_towards_zero() {
        let updates = [
            update("a", "", &[], 10_000.0, 100.0),
            update("b", "", &["has_face"], 50.0, 2.0),
        ];
        let rows = rows_by_ad(&updates, HeadKind::Ctr);
        let plain = fit_offline(&rows, 0.0).weights["has_face"];
        let penalised = fit_offline(&rows, 1.0).weights["has_face"];
        assert!(plain > 1.0, "two clicks in fifty against one in a hundred: {plain}");
        assert!(
            penalised > 0.0 && penalised < plain * 0.8,
            "{penalised} against {plain}"
        );
    }
}
