//! The month's report as a self-contained HTML page (inline SVG drawn with plotters, no scripts, no
//! network): the value earned day by day beside the baselines, each account's daily budget, and the text
//! report.

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::month::{Baseline, MonthResult, policy_label};

const CHART_WIDTH: u32 = 960;
const CHART_HEIGHT: u32 = 400;

#[derive(Debug, thiserror::Error)]
#[error("cannot draw the {chart} chart: {reason}")]
pub struct ChartError {
    chart: &'static str,
    reason: String,
}

fn colour(index: usize) -> RGBColor {
    const PALETTE: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(127, 127, 127),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
    ];
    PALETTE[index % PALETTE.len()]
}

/// Lines over days 1..=N, one per (label, values in minor units), in major units of `currency`.
fn line_chart_svg(
    chart_name: &'static str,
    caption: &str,
    y_description: &str,
    lines: &[(String, Vec<i64>)],
) -> Result<String, ChartError> {
    let failed = |error: &dyn std::fmt::Display| ChartError {
        chart: chart_name,
        reason: error.to_string(),
    };
    let days = lines.iter().map(|(_, values)| values.len()).max().unwrap_or(1).max(1) as f64;
    let highest = lines
        .iter()
        .flat_map(|(_, values)| values.iter())
        .map(|value| *value as f64 / 100.0)
        .fold(1.0_f64, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|error| failed(&error))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(1.0..days.max(2.0), 0.0..highest * 1.05)
            .map_err(|error| failed(&error))?;
        chart
            .configure_mesh()
            .x_desc("day")
            .y_desc(y_description)
            .draw()
            .map_err(|error| failed(&error))?;
        for (index, (label, values)) in lines.iter().enumerate() {
            let line_colour = colour(index);
            let points = values
                .iter()
                .enumerate()
                .map(|(day, value)| (day as f64 + 1.0, *value as f64 / 100.0));
            chart
                .draw_series(LineSeries::new(points, line_colour.stroke_width(3)))
                .map_err(|error| failed(&error))?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], line_colour.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|error| failed(&error))?;
        root.present().map_err(|error| failed(&error))?;
    }
    Ok(svg)
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The whole page: the two charts and `text_report` (what the run printed).
pub fn render_month_html(
    result: &MonthResult,
    baselines: &[Baseline],
    text_report: &str,
) -> Result<String, ChartError> {
    let mut value_lines = vec![(
        "adloop (services, through meta-sim)".to_owned(),
        result.days.iter().map(|day| day.cumulative_value).collect::<Vec<_>>(),
    )];
    value_lines.extend(baselines.iter().map(|baseline| {
        (
            policy_label(&baseline.policy).to_owned(),
            baseline.cumulative_value_by_day.clone(),
        )
    }));
    let budget_lines: Vec<(String, Vec<i64>)> = result
        .accounts
        .iter()
        .map(|account| {
            let budgets = result
                .days
                .iter()
                .map(|day| day.budget_by_account.get(account).copied().unwrap_or(0))
                .collect();
            (account.clone(), budgets)
        })
        .collect();
    let currency = &result.currency;
    let value_chart = line_chart_svg(
        "value",
        &format!("Value earned so far, {currency} (every conversion when it happened)"),
        &format!("value ({currency})"),
        &value_lines,
    )?;
    let budget_chart = line_chart_svg(
        "budget",
        &format!("Each account's daily budget, {currency}"),
        &format!("daily budget ({currency})"),
        &budget_lines,
    )?;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>adloop month: {scenario}</title>\
         <style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         pre{{font-size:12px;white-space:pre-wrap}}svg{{display:block;margin:1em 0}}</style></head><body>\n\
         <h1>adloop month: {scenario} (seed {seed})</h1>\n<h2>Value</h2>\n{value_chart}\n<h2>Budgets</h2>\n\
         {budget_chart}\n<h2>Report</h2>\n<pre>{report}</pre>\n</body></html>\n",
        scenario = escape_html(&result.scenario),
        seed = result.seed,
        report = escape_html(text_report),
    );
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::month::DayRecord;

    #[test]
    fn the_page_draws_a_line_for_the_month_and_each_baseline_and_escapes_the_report() {
        let result = MonthResult {
            scenario: "month".into(),
            currency: "USD".into(),
            accounts: vec!["act_1".into()],
            days: (1..=3)
                .map(|day| DayRecord {
                    day,
                    cumulative_value: i64::from(day) * 10_000,
                    budget_by_account: [("act_1".to_owned(), 50_000)].into(),
                    ..DayRecord::default()
                })
                .collect(),
            ..MonthResult::default()
        };
        let baselines = [Baseline {
            policy: "uniform".into(),
            value: 20_000,
            spend: 10_000,
            cumulative_value_by_day: vec![5_000, 12_000, 20_000],
        }];
        let html = render_month_html(&result, &baselines, "a <report> & more").unwrap();
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(html.contains("uniform split (campaign-sim)"));
        assert!(html.contains("a &lt;report&gt; &amp; more"));
        assert!(html.matches("<polyline").count() >= 3, "three lines drawn");
    }
}
