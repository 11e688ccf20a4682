//! The plain-text results table printed by `run` and `compare`.

use std::fmt::Write as _;

use campaign_sim::{IntervalEstimate, PolicySummary, Scenario};

fn estimate(value: IntervalEstimate, decimals: usize) -> String {
    format!(
        "{:.decimals$} [{:.decimals$}, {:.decimals$}]",
        value.mean, value.lower_95, value.upper_95
    )
}

fn hours_to_shift(summary: &PolicySummary) -> String {
    match summary.median_hours_to_shift_80_percent_to_best {
        Some(hours) => format!(
            "{:.0} h ({}/{})",
            hours, summary.seeds_that_shifted_80_percent, summary.seeds
        ),
        None => format!("never ({}/{})", summary.seeds_that_shifted_80_percent, summary.seeds),
    }
}

/// The results as cells: a header row, then one row per policy (money in major units of the scenario's
/// currency; intervals are 95% over seeds). The text table and the HTML report both show these.
pub fn results_rows(summaries: &[PolicySummary]) -> Vec<Vec<String>> {
    let header = [
        "policy",
        "total value",
        "spend",
        "ROAS",
        "regret vs oracle",
        "regret %",
        "spend on losing ads",
        "… in their first 72 h",
        "80% to best ad",
        "decision mean/p99",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|cell| (*cell).to_owned()).collect()];
    for summary in summaries {
        let mut regret_percent = summary.regret_fraction;
        regret_percent.mean *= 100.0;
        regret_percent.lower_95 *= 100.0;
        regret_percent.upper_95 *= 100.0;
        rows.push(vec![
            summary.policy.clone(),
            estimate(summary.total_value, 0),
            estimate(summary.total_spend, 0),
            estimate(summary.roas, 2),
            estimate(summary.regret, 0),
            estimate(regret_percent, 1),
            estimate(summary.spend_on_losing_ads, 0),
            estimate(summary.spend_on_losing_ads_while_young, 0),
            hours_to_shift(summary),
            format!(
                "{:.0} µs / {:.0} µs",
                summary.decision_latency_mean_micros, summary.decision_latency_p99_micros
            ),
        ]);
    }
    rows
}

/// The line above the table: scenario, currency, days and seeds.
pub fn results_caption(scenario: &Scenario, days: u32, summaries: &[PolicySummary]) -> String {
    let seeds = summaries.first().map(|summary| summary.seeds).unwrap_or(0);
    format!(
        "scenario {} ({}), {days} days, {seeds} seeds; mean [95% interval] across seeds, money in {}",
        scenario.name, scenario.currency, scenario.currency
    )
}

/// Policies whose budgets exceeded the account total (scaled down by the account limit), if any.
pub fn over_total_note(summaries: &[PolicySummary]) -> Option<String> {
    note_of_policies(
        summaries,
        |summary| summary.decisions_over_total,
        "decisions",
        "budgets above the account total, scaled down by the account limit",
    )
}

/// Policies some of whose budgets the world refused as below the account's minimum (the ad sets kept their
/// budgets), if any.
pub fn below_minimum_note(summaries: &[PolicySummary]) -> Option<String> {
    note_of_policies(
        summaries,
        |summary| summary.budgets_refused_below_minimum,
        "budgets",
        "budgets below the account's minimum, refused (the ad sets kept their budgets)",
    )
}

/// "`what`: policy (n `unit`), ..." over the policies whose `count` is not zero; `None` when none.
fn note_of_policies(
    summaries: &[PolicySummary],
    count: impl Fn(&PolicySummary) -> u32,
    unit: &str,
    what: &str,
) -> Option<String> {
    let counted: Vec<String> = summaries
        .iter()
        .filter(|summary| count(summary) > 0)
        .map(|summary| format!("{} ({} {unit})", summary.policy, count(summary)))
        .collect();
    (!counted.is_empty()).then(|| format!("{what}: {}", counted.join(", ")))
}

/// One row per policy; money in major units of the scenario's currency; intervals are 95% over seeds.
pub fn render_results_table(scenario: &Scenario, days: u32, summaries: &[PolicySummary]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "{}", results_caption(scenario, days, summaries));
    let rows = results_rows(summaries);
    let column_count = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..column_count)
        .map(|column| rows.iter().map(|row| row[column].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(text, "  {}", cells.join("  ").trim_end());
    }
    for note in [over_total_note(summaries), below_minimum_note(summaries)]
        .into_iter()
        .flatten()
    {
        let _ = writeln!(text, "  {note}");
    }
    if let Some((first, others)) = summaries.split_first() {
        for other in others {
            let Some(paired) = campaign_sim::paired_regret_difference(scenario, first, other) else {
                continue;
            };
            let lines = [
                ("regret", paired.regret_difference, paired.relative, "'s regret"),
                (
                    "spend on losing ads in their first 72 h",
                    paired.young_losing_spend_difference,
                    paired.young_losing_spend_relative,
                    "'s",
                ),
            ];
            for (measure, difference, relative, of_whose) in lines {
                // Relative to nothing (the other policy had none of it) there is no percentage to give.
                let relative = if relative.is_finite() {
                    format!("{:+.1}% of {}{of_whose}", 100.0 * relative, other.policy)
                } else {
                    format!("{} had none", other.policy)
                };
                let _ = writeln!(
                    text,
                    "  paired by seed, {} − {} {measure}: {:.0} [{:.0}, {:.0}] ({relative})",
                    first.policy, other.policy, difference.mean, difference.lower_95, difference.upper_95,
                );
            }
        }
    }
    text
}
