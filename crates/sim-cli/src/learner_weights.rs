//! `adloop-sim learner-weights`: how close the `adloop` policy's instant learner comes to what a scenario's
//! creative features are truly worth, at chosen days of a run, beside the best the same events support —
//! the same model (bias, feature weights, account offsets, the head's L2) fitted offline on every event the
//! learner was shown (`adloop_learner::fit_offline`). A learner far behind the offline fit lags its data; one
//! level with it is as good as its data, and only more data (or a world whose features say more) helps.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use adloop_learner::{FtrlHead, HeadKind, InstantLearner, LearningUpdate, fit_offline, rows_by_ad};
use adloop_money::MinorUnits;
use campaign_sim::policy::{Adloop, PolicySettings};
use campaign_sim::{HiddenTruths, Observation, Policy, PolicyError, Scenario, run_simulation};

/// The true effect of each feature on one head's log rate, for features whose effect is the same in every
/// ad group that has it (the only ones one weight can be right about), and the names of those whose effect
/// differs between groups.
#[derive(Debug, Default, PartialEq)]
pub struct TrueEffects {
    pub effects: BTreeMap<String, f64>,
    pub differing: Vec<String>,
}

pub fn true_effects(scenario: &Scenario, head: HeadKind) -> TrueEffects {
    let mut seen: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for group in &scenario.ad_groups {
        for feature in &group.features {
            let effect = match head {
                HeadKind::Ctr => feature.ctr_log_effect,
                HeadKind::Conversion => feature.conversion_rate_log_effect,
            };
            seen.entry(feature.name.clone()).or_default().push(effect);
        }
    }
    let mut truths = TrueEffects::default();
    for (name, effects) in seen {
        if effects.iter().all(|effect| (effect - effects[0]).abs() < 1e-12) {
            truths.effects.insert(name, effects[0]);
        } else {
            truths.differing.push(name);
        }
    }
    truths
}

/// Squared errors of the online and offline weights against the truth, summed over features and seeds.
#[derive(Debug, Default, Clone, Copy)]
struct SquaredErrors {
    online: f64,
    offline: f64,
    count: f64,
}

impl SquaredErrors {
    fn add(&mut self, head: &FtrlHead, updates: &[LearningUpdate], kind: HeadKind, truths: &TrueEffects, l2: f64) {
        let online: BTreeMap<&str, f64> = head.weights().collect();
        let offline = fit_offline(&rows_by_ad(updates, kind), l2);
        for (name, truth) in &truths.effects {
            let online_weight = online.get(name.as_str()).copied().unwrap_or(0.0);
            let offline_weight = offline.weights.get(name).copied().unwrap_or(0.0);
            self.online += (online_weight - truth).powi(2);
            self.offline += (offline_weight - truth).powi(2);
            self.count += 1.0;
        }
    }

    fn root_mean_squares(&self) -> (f64, f64) {
        let count = self.count.max(1.0);
        ((self.online / count).sqrt(), (self.offline / count).sqrt())
    }
}

const HEADS: [HeadKind; 2] = [HeadKind::Ctr, HeadKind::Conversion];

fn head_of(learner: &InstantLearner, kind: HeadKind) -> &FtrlHead {
    match kind {
        HeadKind::Ctr => learner.ctr_head(),
        HeadKind::Conversion => learner.conversion_head(),
    }
}

/// The `adloop` policy, measured after its decision at each checkpoint hour.
struct MeasuredAdloop<'a> {
    policy: Adloop,
    checkpoint_hours: &'a [u32],
    truths: &'a [TrueEffects; 2],
    /// The offline fit's L2 per head (CTR, conversions).
    offline_l2: [f64; 2],
    /// Per checkpoint, per head.
    errors: &'a mut [[SquaredErrors; 2]],
}

impl Policy for MeasuredAdloop<'_> {
    fn name(&self) -> &str {
        self.policy.name()
    }

    fn decide(&mut self, observation: &Observation, hidden: &HiddenTruths<'_>) -> Result<Vec<MinorUnits>, PolicyError> {
        let budgets = self.policy.decide(observation, hidden)?;
        let Some(checkpoint) = self.checkpoint_hours.iter().position(|hour| *hour == observation.hour) else {
            return Ok(budgets);
        };
        if let (Some(learner), Some(updates)) = (self.policy.learner(), self.policy.recorded_learning_updates()) {
            for (index, kind) in HEADS.into_iter().enumerate() {
                let head = head_of(learner, kind);
                self.errors[checkpoint][index].add(head, updates, kind, &self.truths[index], self.offline_l2[index]);
            }
        }
        Ok(budgets)
    }
}

/// The markdown table: per checkpoint day and head, the root-mean-square error of the learner's weights and
/// of the offline fit's against the true effects, over `seeds` seeds from `first_seed`. The offline fit's L2 is
/// each head's own (`settings.learner`) unless `offline_l2` gives one per head (CTR, conversions).
pub fn render_learner_weights(
    scenario: &Scenario,
    first_seed: u64,
    seeds: u64,
    checkpoint_days: &[u32],
    settings: &PolicySettings,
    offline_l2: Option<[f64; 2]>,
) -> anyhow::Result<String> {
    anyhow::ensure!(seeds >= 1, "--seeds must be at least 1");
    let offline_l2 = offline_l2.unwrap_or([settings.learner.ctr.l2, settings.learner.conversion.l2]);
    anyhow::ensure!(
        offline_l2.iter().all(|l2| l2.is_finite() && *l2 >= 0.0),
        "--offline-l2 must be two numbers of at least 0 (CTR, conversions)"
    );
    anyhow::ensure!(!checkpoint_days.is_empty(), "--days needs at least one day");
    for day in checkpoint_days {
        // A run of D days decides at the end of days 1 … D − 1 (its last day has no decision after it).
        anyhow::ensure!(
            (1..scenario.days).contains(day),
            "--days: day {day} is outside 1–{} (the last decision of the scenario's {} days)",
            scenario.days.saturating_sub(1),
            scenario.days
        );
        anyhow::ensure!(
            (day * 24) % scenario.decision_interval_hours == 0,
            "--days: day {day} does not end at a decision (every {} hours)",
            scenario.decision_interval_hours
        );
    }
    let truths = HEADS.map(|kind| true_effects(scenario, kind));
    anyhow::ensure!(
        truths.iter().any(|truth| !truth.effects.is_empty()),
        "scenario {} has no creative feature with one effect in every ad group",
        scenario.name
    );
    let checkpoint_hours: Vec<u32> = checkpoint_days.iter().map(|day| day * 24).collect();
    let mut errors = vec![[SquaredErrors::default(); 2]; checkpoint_days.len()];
    let run_days = checkpoint_days.iter().copied().max().unwrap_or(1) + 1;
    for seed in first_seed..first_seed + seeds {
        let mut measured = MeasuredAdloop {
            policy: Adloop::new(seed).configured(settings).recording_learning_updates(),
            checkpoint_hours: &checkpoint_hours,
            truths: &truths,
            offline_l2,
            errors: &mut errors,
        };
        run_simulation(scenario, &mut measured, seed, run_days)?;
    }
    let mut table = String::new();
    writeln!(
        table,
        "| day | head | learner's weights, RMS error | offline fit of the same events, RMS error | features |"
    )?;
    writeln!(table, "|---|---|---|---|---|")?;
    for (day, errors_by_head) in checkpoint_days.iter().zip(&errors) {
        for ((kind, head_errors), truth) in HEADS.iter().zip(errors_by_head).zip(&truths) {
            if truth.effects.is_empty() {
                continue;
            }
            let (online, offline) = head_errors.root_mean_squares();
            let head_name = match kind {
                HeadKind::Ctr => "CTR",
                HeadKind::Conversion => "conversions per click",
            };
            writeln!(
                table,
                "| {day} | {head_name} | {online:.3} | {offline:.3} | {} |",
                truth.effects.len()
            )?;
        }
    }
    let differing: BTreeSet<&str> = truths
        .iter()
        .flat_map(|truth| &truth.differing)
        .map(String::as_str)
        .collect();
    if !differing.is_empty() {
        let names: Vec<&str> = differing.into_iter().collect();
        writeln!(
            table,
            "\nleft out (their effect differs between ad groups, so no one weight is right): {}",
            names.join(", ")
        )?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feature_whose_effect_differs_between_groups_has_no_true_weight() {
        let group = |prefix: &str, face_effect: f64| {
            format!(
                r#"
[[ad_groups]]
name_prefix = "{prefix}"
count = 2
ctr = {{ median = 0.01, log_sd = 0.1 }}
conversion_rate = {{ median = 0.02, log_sd = 0.1 }}
value_per_conversion = {{ median = 5000, log_sd = 0.1 }}
cpm = {{ median = 1000, log_sd = 0.1 }}
features = [
  {{ name = "has_face", probability = 0.5, conversion_rate_log_effect = {face_effect} }},
  {{ name = "bold_hook", probability = 0.5, ctr_log_effect = 0.4 }},
]
"#
            )
        };
        let text = format!(
            "name = \"two\"\ncurrency = \"USD\"\ndays = 10\ndecision_interval_hours = 24\ntotal_daily_budget = 100000\n{}{}",
            group("north", 0.5),
            group("south", -0.5)
        );
        let scenario = Scenario::from_toml(&text).expect("valid scenario");
        let conversion = true_effects(&scenario, HeadKind::Conversion);
        assert_eq!(conversion.differing, vec!["has_face".to_owned()]);
        assert_eq!(conversion.effects, BTreeMap::from([("bold_hook".to_owned(), 0.0)]));
        let ctr = true_effects(&scenario, HeadKind::Ctr);
        assert!(ctr.differing.is_empty());
        assert_eq!(ctr.effects["bold_hook"], 0.4);
        assert_eq!(ctr.effects["has_face"], 0.0);
    }
}
