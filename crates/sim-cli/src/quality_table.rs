//! The README's decision-quality tables, as markdown: every scenario of a table under its policies on the same
//! seeds, regret against the oracle with 95% intervals, and paired differences (same seeds, so the same worlds
//! and the same oracle).
//!
//! - `allocator`: uniform, seed-v1, ts-basic, ts-basic held to adloop's change limit, adloop and the oracle
//!   held to the same limit, on every allocator scenario; adloop against both ts-basics, paired, and under the
//!   table against uniform, seed-v1 and the limited oracle, paired.
//! - `learners`: adloop with its learners against adloop with priors off, on the scenarios where creative
//!   features matter, mean nothing or flip between accounts; and two bounds: what a perfect learner of
//!   creative features would give (`adloop-feature-priors`), and a learner that knew each ad's true rates
//!   (`adloop-true-priors`). Both also relative to the cost of learning alone: priors-off's regret above the
//!   oracle held to the same change limit (`oracle-limited`), which no learner can buy back. And adloop whose
//!   learners first learned from five other worlds of the kind (`adloop-warm-learners`): a deployment that has
//!   served earlier advertisers, where the table's `adloop` is a deployment's first.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use campaign_sim::policy::PolicySettings;
use campaign_sim::{
    IntervalEstimate, PairedRegrets, PolicyFactory, PolicySummary, Scenario, compare_policies,
    geometric_mean_regret_ratio, paired_regret_difference,
};
use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QualityTable {
    Allocator,
    Learners,
}

const ALLOCATOR_SCENARIOS: &[&str] = &[
    "stationary-10",
    "fatigue",
    "delayed-conversions",
    "many-ads-200",
    "cold-start",
    "drift",
    "tiny-budget",
    "jpy-account",
    "late-reporting",
    "high-ctr-launches",
    "low-ctr-best-buyers",
    "conversion-collapse",
    "weekly-seasonality",
    "idr-account",
    "heavy-tailed-values",
    "learning-resets",
    "saturating-audiences",
    "binding-minimums",
    "own-rhythms-and-rest",
    "long-run-launches",
    "pareto-order-values",
];
const ALLOCATOR_POLICIES: &[&str] = &[
    "uniform",
    "seed-v1",
    "ts-basic",
    "ts-basic-limited",
    "adloop",
    "oracle-limited",
];

const LEARNER_SCENARIOS: &[&str] = &[
    "cold-start",
    "creative-signals",
    "creative-accounts",
    "creative-noise",
    "creative-reversed",
    "stationary-10",
];
const LEARNER_POLICIES: &[&str] = &[
    "adloop",
    "adloop-priors-off",
    "adloop-feature-priors",
    "adloop-true-priors",
    "oracle-limited",
    "adloop-warm-learners",
];

/// The table over seeds `first_seed..first_seed + seeds`, reading scenarios from `scenarios_dir`;
/// `on_scenario_done` hears each scenario's name as it finishes.
pub fn render_quality_table(
    table: QualityTable,
    scenarios_dir: &Path,
    first_seed: u64,
    seeds: u64,
    settings: &PolicySettings,
    on_scenario_done: &mut dyn FnMut(&str),
) -> anyhow::Result<String> {
    let (scenario_names, policy_names) = match table {
        QualityTable::Allocator => (ALLOCATOR_SCENARIOS, ALLOCATOR_POLICIES),
        QualityTable::Learners => (LEARNER_SCENARIOS, LEARNER_POLICIES),
    };
    let seed_list: Vec<u64> = (first_seed..first_seed + seeds).collect();
    let mut text = header(table);
    // Scenarios are independent: measured on every core, printed in the table's order.
    let measured = crate::parallel::map_in_order(
        scenario_names,
        |scenario_name| {
            let path = scenarios_dir.join(format!("{scenario_name}.toml"));
            let scenario_text =
                std::fs::read_to_string(&path).with_context(|| format!("cannot read scenario {}", path.display()))?;
            let scenario =
                Scenario::from_toml(&scenario_text).with_context(|| format!("scenario {}", path.display()))?;
            let summaries = summaries_of(&scenario, policy_names, &seed_list, settings)?;
            let (row, other_peers_row) = match table {
                QualityTable::Allocator => (
                    allocator_row(&scenario, &summaries),
                    allocator_other_peers_row(&scenario, &summaries),
                ),
                QualityTable::Learners => (learner_row(&scenario, &summaries), String::new()),
            };
            Ok((row, other_peers_row, summaries))
        },
        &mut |position| on_scenario_done(scenario_names[position]),
    )?;
    let mut summaries_by_scenario: Vec<(&str, Vec<PolicySummary>)> = Vec::new();
    let mut other_peers_rows = Vec::new();
    for (scenario_name, (row, other_peers_row, summaries)) in scenario_names.iter().zip(measured) {
        let _ = writeln!(text, "{row}");
        summaries_by_scenario.push((scenario_name, summaries));
        other_peers_rows.push(other_peers_row);
    }
    if table == QualityTable::Allocator {
        text.push_str(&allocator_geometric_means(&summaries_by_scenario));
        text.push_str(&allocator_other_peers_table(&other_peers_rows));
    }
    Ok(text)
}

/// Scenarios the geometric means leave out: a few single orders decide their regret, so its ratio swings
/// either way and can be negative.
const LEFT_OUT_OF_GEOMETRIC_MEANS: &[&str] = &["pareto-order-values"];

/// Under the allocator table: adloop's regret over each peer's as one geometric mean over the scenarios,
/// with a 95% interval from resampling the seeds.
fn allocator_geometric_means(summaries_by_scenario: &[(&str, Vec<PolicySummary>)]) -> String {
    let regrets_of = |summaries: &[PolicySummary], policy: &str| {
        summaries
            .iter()
            .find(|summary| summary.policy == policy)
            .map(|summary| summary.regret_by_seed.clone())
            .unwrap_or_default()
    };
    let included: Vec<&Vec<PolicySummary>> = summaries_by_scenario
        .iter()
        .filter(|(name, _)| !LEFT_OUT_OF_GEOMETRIC_MEANS.contains(name))
        .map(|(_, summaries)| summaries)
        .collect();
    let mut text = format!(
        "\nGeometric mean over the scenarios ({} left out) of adloop's regret over each peer's, with a 95% \
         interval from resampling the seeds:\n\n",
        LEFT_OUT_OF_GEOMETRIC_MEANS.join(", ")
    );
    for peer in ["uniform", "ts-basic", "ts-basic-limited"] {
        let paired: Vec<PairedRegrets> = included
            .iter()
            .map(|summaries| PairedRegrets {
                policy: regrets_of(summaries, "adloop"),
                baseline: regrets_of(summaries, peer),
            })
            .collect();
        let ratio = geometric_mean_regret_ratio(&paired).map_or_else(
            || "– (a scenario's regret is not positive)".to_owned(),
            |ratio| format!("{:.3} [{:.3}, {:.3}]", ratio.mean, ratio.lower_95, ratio.upper_95),
        );
        let _ = writeln!(text, "- over {peer}'s: {ratio}");
    }
    text
}

pub(crate) fn summaries_of(
    scenario: &Scenario,
    policy_names: &[&'static str],
    seeds: &[u64],
    settings: &PolicySettings,
) -> anyhow::Result<Vec<PolicySummary>> {
    let factories: Vec<(&str, Box<PolicyFactory<'static>>)> = policy_names
        .iter()
        .map(|&name| (name, crate::built_in_policy_factory(name, scenario, settings)))
        .collect();
    let factory_refs: Vec<(&str, &PolicyFactory<'_>)> = factories
        .iter()
        .map(|(name, factory)| (*name, factory.as_ref()))
        .collect();
    Ok(compare_policies(
        scenario,
        &factory_refs,
        seeds,
        scenario.days,
        &mut |_| {},
    )?)
}

fn header(table: QualityTable) -> String {
    let columns: &[&str] = match table {
        QualityTable::Allocator => &[
            "scenario",
            "uniform regret",
            "seed-v1 regret",
            "ts-basic regret",
            "ts-basic-limited regret",
            "adloop regret",
            "limited oracle regret",
            "adloop / uniform",
            "adloop / ts-basic",
            "adloop − ts-basic regret, paired",
            "adloop − ts-basic-limited regret, paired",
        ],
        QualityTable::Learners => &[
            "scenario",
            "adloop regret",
            "priors-off regret",
            "regret, adloop − priors-off [95%]",
            "relative",
            "losing-ad spend in first 72 h, adloop − priors-off [95%]",
            "relative",
            "total value, adloop / priors-off",
            "bound: feature-explained priors − priors-off (regret / losing-ad spend, 72 h)",
            "bound: true-rate priors − priors-off (regret / losing-ad spend, 72 h)",
            "limited oracle regret",
            "relative to the cost of learning (priors-off's regret above the limited oracle's): adloop / feature-explained bound",
            "learners warmed on five earlier worlds − priors-off, regret [95%] (relative / to the cost of learning)",
        ],
    };
    markdown_head(columns)
}

/// A markdown table's first two lines: the column names and the separator under them.
pub(crate) fn markdown_head(columns: &[&str]) -> String {
    format!("| {} |\n|{}\n", columns.join(" | "), "---|".repeat(columns.len()))
}

/// adloop's regret minus `peer`'s, paired by seed, with its 95% interval ("–" if their seeds differ).
fn paired_regret_cell(scenario: &Scenario, adloop: &PolicySummary, peer: &PolicySummary) -> String {
    paired_regret_difference(scenario, adloop, peer)
        .map_or_else(|| "–".to_owned(), |paired| interval(paired.regret_difference))
}

fn allocator_row(scenario: &Scenario, summaries: &[PolicySummary]) -> String {
    let [uniform, seed_v1, ts_basic, ts_basic_limited, adloop, limited_oracle] = summaries else {
        return String::new();
    };
    let paired_with = |peer: &PolicySummary| paired_regret_cell(scenario, adloop, peer);
    format!(
        "| {} ({}) | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {} | {} |",
        scenario.name,
        scenario.currency.code(),
        interval(uniform.regret),
        interval(seed_v1.regret),
        interval(ts_basic.regret),
        interval(ts_basic_limited.regret),
        interval(adloop.regret),
        interval(limited_oracle.regret),
        adloop.regret.mean / uniform.regret.mean,
        adloop.regret.mean / ts_basic.regret.mean,
        paired_with(ts_basic),
        paired_with(ts_basic_limited),
    )
}

/// Under the allocator table, adloop against the peers whose paired differences the main table leaves out (it
/// shows their regret, and adloop's over uniform's as a ratio): the same seeds, so an interval below zero says
/// adloop's regret is lower on these worlds, not by luck of the draw.
fn allocator_other_peers_table(rows: &[String]) -> String {
    let columns = [
        "scenario",
        "adloop − uniform regret, paired",
        "adloop − seed-v1 regret, paired",
        "adloop − limited oracle regret, paired",
    ];
    let mut text = format!(
        "\nadloop against the other peers, paired by seed (regret difference, 95% interval; negative: adloop's \
         regret is lower):\n\n{}",
        markdown_head(&columns)
    );
    for row in rows {
        let _ = writeln!(text, "{row}");
    }
    text
}

fn allocator_other_peers_row(scenario: &Scenario, summaries: &[PolicySummary]) -> String {
    let [uniform, seed_v1, _, _, adloop, limited_oracle] = summaries else {
        return String::new();
    };
    let paired_with = |peer: &PolicySummary| paired_regret_cell(scenario, adloop, peer);
    format!(
        "| {} ({}) | {} | {} | {} |",
        scenario.name,
        scenario.currency.code(),
        paired_with(uniform),
        paired_with(seed_v1),
        paired_with(limited_oracle),
    )
}

fn learner_row(scenario: &Scenario, summaries: &[PolicySummary]) -> String {
    let [adloop, priors_off, feature_priors, true_priors, limited_oracle, warm] = summaries else {
        return String::new();
    };
    let Some(paired) = paired_regret_difference(scenario, adloop, priors_off) else {
        return String::new();
    };
    // A bound's effect on regret and on young losing ads' spend, as the learners' own is measured.
    let bound_of = |bound: &PolicySummary| match paired_regret_difference(scenario, bound, priors_off) {
        Some(paired) => format!(
            "{:+.1}% / {:+.1}%",
            100.0 * finite_or_zero(paired.relative),
            100.0 * finite_or_zero(paired.young_losing_spend_relative)
        ),
        None => "–".to_owned(),
    };
    // The part of priors-off's regret that learning could buy back: what it loses beyond the oracle that
    // knows every ad's truth but keeps the same change limit.
    let cost_of_learning = priors_off.regret.mean - limited_oracle.regret.mean;
    let share_of_cost_of_learning = |policy: &PolicySummary| {
        100.0 * finite_or_zero((policy.regret.mean - priors_off.regret.mean) / cost_of_learning)
    };
    let warm_learners = match paired_regret_difference(scenario, warm, priors_off) {
        Some(paired) => format!(
            "{} ({:+.1}% / {:+.1}%)",
            interval(paired.regret_difference),
            100.0 * finite_or_zero(paired.relative),
            share_of_cost_of_learning(warm)
        ),
        None => "–".to_owned(),
    };
    format!(
        "| {} | {} | {} | {} | {:+.1}% | {} | {:+.1}% | {:.3} | {} | {} | {} | {:+.1}% / {:+.1}% | {} |",
        scenario.name,
        interval(adloop.regret),
        interval(priors_off.regret),
        interval(paired.regret_difference),
        100.0 * paired.relative,
        interval(paired.young_losing_spend_difference),
        100.0 * finite_or_zero(paired.young_losing_spend_relative),
        adloop.total_value.mean / priors_off.total_value.mean,
        bound_of(feature_priors),
        bound_of(true_priors),
        interval(limited_oracle.regret),
        share_of_cost_of_learning(adloop),
        share_of_cost_of_learning(feature_priors),
        warm_learners,
    )
}

/// A ratio over a baseline of zero (no losing ads, no regret) reads as no change.
fn finite_or_zero(value: f64) -> f64 {
    if value.is_finite() { value } else { 0.0 }
}

/// `mean [low, high]`, whole major units with thousands separators.
pub(crate) fn interval(estimate: IntervalEstimate) -> String {
    format!(
        "{} [{}, {}]",
        with_thousands(estimate.mean),
        with_thousands(estimate.lower_95),
        with_thousands(estimate.upper_95)
    )
}

fn with_thousands(value: f64) -> String {
    let rounded = value.round();
    let digits = format!("{:.0}", rounded.abs());
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if rounded < 0.0 { format!("-{grouped}") } else { grouped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_with_thousands_separators() {
        assert_eq!(with_thousands(44_768.4), "44,768");
        assert_eq!(with_thousands(-2_333.0), "-2,333");
        assert_eq!(with_thousands(999.6), "1,000");
        assert_eq!(with_thousands(-0.2), "0");
        assert_eq!(with_thousands(1_234_567.0), "1,234,567");
    }
}
