//! A self-contained HTML report (inline SVG charts drawn with plotters, no scripts, no network): cumulative
//! regret per policy with its 95% band, and each policy's budget share per ad over time on the first seed.

use std::fmt::Write as _;

use campaign_sim::{PolicySummary, RunResult, Scenario};
use plotters::prelude::*;

const CHART_WIDTH: u32 = 960;
const CHART_HEIGHT: u32 = 420;
const LARGEST_ADS_SHOWN: usize = 8;

#[derive(Debug, thiserror::Error)]
#[error("cannot draw the {chart} chart: {reason}")]
pub struct ReportError {
    chart: &'static str,
    reason: String,
}

fn chart_error(chart: &'static str) -> impl Fn(Box<dyn std::error::Error + '_>) -> ReportError {
    move |error| ReportError {
        chart,
        reason: error.to_string(),
    }
}

fn policy_colour(index: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    PALETTE[index % PALETTE.len()]
}

fn regret_chart_svg(scenario: &Scenario, summaries: &[PolicySummary]) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|error| chart_error("regret")(Box::new(error)))?;
        let last_day = summaries
            .iter()
            .flat_map(|summary| summary.cumulative_regret_by_step.last())
            .map(|(hour, _)| f64::from(*hour) / 24.0)
            .fold(1.0_f64, f64::max);
        let (lowest, highest) = summaries
            .iter()
            .flat_map(|summary| summary.cumulative_regret_by_step.iter())
            .fold((0.0_f64, 1.0_f64), |(low, high), (_, estimate)| {
                (low.min(estimate.lower_95), high.max(estimate.upper_95))
            });
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Cumulative regret vs oracle ({}), mean and 95% band", scenario.currency),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..last_day, lowest..highest * 1.05)
            .map_err(|error| chart_error("regret")(Box::new(error)))?;
        chart
            .configure_mesh()
            .x_labels(day_tick_count(last_day))
            .x_label_formatter(&whole_day_label)
            .x_desc("day")
            .y_desc(format!("regret ({})", scenario.currency))
            .draw()
            .map_err(|error| chart_error("regret")(Box::new(error)))?;
        for (index, summary) in summaries.iter().enumerate() {
            let colour = policy_colour(index);
            let points = &summary.cumulative_regret_by_step;
            let band: Vec<(f64, f64)> = points
                .iter()
                .map(|(hour, estimate)| (f64::from(*hour) / 24.0, estimate.upper_95))
                .chain(
                    points
                        .iter()
                        .rev()
                        .map(|(hour, estimate)| (f64::from(*hour) / 24.0, estimate.lower_95)),
                )
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(band, colour.mix(0.18).filled())))
                .map_err(|error| chart_error("regret")(Box::new(error)))?;
            chart
                .draw_series(LineSeries::new(
                    points
                        .iter()
                        .map(|(hour, estimate)| (f64::from(*hour) / 24.0, estimate.mean)),
                    colour.stroke_width(2),
                ))
                .map_err(|error| chart_error("regret")(Box::new(error)))?
                .label(summary.policy.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|error| chart_error("regret")(Box::new(error)))?;
        root.present().map_err(|error| chart_error("regret")(Box::new(error)))?;
    }
    Ok(svg)
}

/// Budget share per ad over time: the largest ads by total budget, the rest as "others", stacked.
fn budget_share_chart_svg(run: &RunResult) -> Result<String, ReportError> {
    let Some(last_decision) = run.decisions.last() else {
        return Ok(String::new());
    };
    let ad_names: Vec<&str> = last_decision.budgets.iter().map(|(name, _)| name.as_str()).collect();
    let mut total_by_ad = vec![0_i64; ad_names.len()];
    for decision in &run.decisions {
        for (position, (_, budget)) in decision.budgets.iter().enumerate() {
            total_by_ad[position] += budget.get();
        }
    }
    let mut ads_by_total: Vec<usize> = (0..ad_names.len()).collect();
    ads_by_total.sort_by_key(|&position| std::cmp::Reverse(total_by_ad[position]));
    let shown: Vec<usize> = ads_by_total.iter().copied().take(LARGEST_ADS_SHOWN).collect();

    // layers[k][step] = cumulative share of the first k+1 shown ads (the last layer includes "others").
    let mut layers: Vec<Vec<(f64, f64)>> = vec![Vec::new(); shown.len() + 1];
    for decision in &run.decisions {
        let day = f64::from(decision.hour) / 24.0;
        let decision_total: i64 = decision
            .budgets
            .iter()
            .map(|(_, budget)| budget.get())
            .sum::<i64>()
            .max(1);
        let share_of = |position: usize| {
            decision
                .budgets
                .get(position)
                .map(|(_, budget)| budget.get())
                .unwrap_or(0) as f64
                / decision_total as f64
        };
        let mut cumulative = 0.0;
        for (layer, &position) in shown.iter().enumerate() {
            cumulative += share_of(position);
            layers[layer].push((day, cumulative));
        }
        layers[shown.len()].push((day, 1.0));
    }

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|error| chart_error("budget share")(Box::new(error)))?;
        let last_day = f64::from(last_decision.hour) / 24.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Budget share per ad, {} (seed {})", run.policy, run.seed),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..last_day.max(1.0), 0.0..1.0)
            .map_err(|error| chart_error("budget share")(Box::new(error)))?;
        chart
            .configure_mesh()
            .x_labels(day_tick_count(last_day))
            .x_label_formatter(&whole_day_label)
            .x_desc("day")
            .y_desc("share of daily budget")
            .draw()
            .map_err(|error| chart_error("budget share")(Box::new(error)))?;
        // Draw from the top layer down so each lower layer paints over the one above it.
        for layer in (0..layers.len()).rev() {
            let (colour, label) = if layer == shown.len() {
                (RGBColor(210, 210, 210), "others".to_owned())
            } else {
                // Colour by the ad's launch position, so an ad keeps its colour across policies.
                (policy_colour(shown[layer]), ad_names[shown[layer]].to_owned())
            };
            chart
                .draw_series(AreaSeries::new(layers[layer].iter().copied(), 0.0, colour.filled()))
                .map_err(|error| chart_error("budget share")(Box::new(error)))?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|error| chart_error("budget share")(Box::new(error)))?;
        root.present()
            .map_err(|error| chart_error("budget share")(Box::new(error)))?;
    }
    Ok(svg)
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The results as an HTML table: cells wrap, so the table fits the page instead of being clipped.
fn results_table_html(scenario: &Scenario, days: u32, summaries: &[PolicySummary]) -> String {
    let rows = crate::table::results_rows(summaries);
    let mut html = format!(
        "<table><caption>{}</caption>\n",
        escape_html(&crate::table::results_caption(scenario, days, summaries))
    );
    for (index, row) in rows.iter().enumerate() {
        let cell_tag = if index == 0 { "th" } else { "td" };
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<{cell_tag}>{}</{cell_tag}>", escape_html(cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    let notes = [
        crate::table::over_total_note(summaries),
        crate::table::below_minimum_note(summaries),
    ];
    for note in notes.into_iter().flatten() {
        let _ = writeln!(html, "<p>{}</p>", escape_html(&note));
    }
    html
}

/// Tick labels on a day axis: whole days only (a fractional tick gets no label).
fn whole_day_label(day: &f64) -> String {
    if (day - day.round()).abs() < 1e-6 {
        format!("{day:.0}")
    } else {
        String::new()
    }
}

/// How many ticks a day axis up to `last_day` asks for: one a day for short runs, fewer (whole) for long.
fn day_tick_count(last_day: f64) -> usize {
    (last_day.ceil() as usize + 1).clamp(2, 16)
}

/// The whole report as one HTML document.
pub fn render_html_report(scenario: &Scenario, days: u32, summaries: &[PolicySummary]) -> Result<String, ReportError> {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>adloop-sim: {name}</title>\
         <style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:12px;width:100%}}caption{{text-align:left;padding:0.3em 0}}\
         th,td{{border:1px solid #ddd;padding:3px 5px;text-align:left;vertical-align:top}}th{{background:#f6f6f6}}\
         svg{{display:block;margin:1em 0}}</style>\
         </head><body>\n<h1>adloop-sim: {name}</h1>\n<p>{description}</p>\n<p>{days} simulated days, {seeds} seeds, \
         every policy on the same seeds (common random numbers).</p>\n<h2>Results</h2>\n{table}",
        name = escape_html(&scenario.name),
        description = escape_html(&scenario.description),
        seeds = summaries.first().map(|summary| summary.seeds).unwrap_or(0),
        table = results_table_html(scenario, days, summaries),
    );
    let _ = write!(html, "<h2>Regret</h2>\n{}\n", regret_chart_svg(scenario, summaries)?);
    let _ = writeln!(html, "<h2>Budget share per ad</h2>");
    for summary in summaries {
        if let Some(first_run) = summary.runs.first() {
            html.push_str(&budget_share_chart_svg(first_run)?);
            html.push('\n');
        }
    }
    html.push_str("</body></html>\n");
    Ok(html)
}
