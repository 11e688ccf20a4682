//! The month's report as a self-contained HTML page (inline SVG drawn with plotters, no scripts, no
//! network): the value earned day by day beside the baselines, each ad set's share of the budget, each
//! account's daily budget, the instant learner's feature weights day by day beside the true effects, and the
//! text report.

use std::fmt::Write as _;

use adloop_money::{Currency, MinorUnits};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::learning_curve::Head;
use crate::month::{Baseline, MonthResult, policy_label};

const CHART_WIDTH: u32 = 960;
const CHART_HEIGHT: u32 = 400;
/// Ad sets drawn apart in the budget-share chart (the rest are "others").
const LARGEST_AD_SETS_SHOWN: usize = 8;

#[derive(Debug, thiserror::Error)]
#[error("cannot draw the {chart} chart: {reason}")]
pub struct ChartError {
    chart: &'static str,
    reason: String,
}

fn colour(index: usize) -> RGBColor {
    const PALETTE: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(127, 127, 127),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    PALETTE[index % PALETTE.len()]
}

/// Lines over days 1..=N, one per (label, values in minor units), drawn in major units of `currency`.
fn line_chart_svg(
    chart_name: &'static str,
    caption: &str,
    y_description: &str,
    lines: &[(String, Vec<i64>)],
    currency: Currency,
) -> Result<String, ChartError> {
    let failed = |error: &dyn std::fmt::Display| ChartError {
        chart: chart_name,
        reason: error.to_string(),
    };
    let days = lines.iter().map(|(_, values)| values.len()).max().unwrap_or(1).max(1) as f64;
    let highest = lines
        .iter()
        .flat_map(|(_, values)| values.iter())
        .map(|value| MinorUnits(*value).to_major(currency))
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
                .map(|(day, value)| (day as f64 + 1.0, MinorUnits(*value).to_major(currency)));
            chart
                .draw_series(LineSeries::new(points, line_colour.stroke_width(3)))
                .map_err(|error| failed(&error))?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], line_colour.stroke_width(3)));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft).map_err(|error| failed(&error))?;
        root.present().map_err(|error| failed(&error))?;
    }
    Ok(svg)
}

/// The series' labels in a framed box at `position` in the chart.
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

/// Each ad set's share of the day's budget, stacked: the ad sets with the most budget over the month apart,
/// the rest together.
fn budget_share_chart_svg(result: &MonthResult) -> Result<String, ChartError> {
    let failed = |error: &dyn std::fmt::Display| ChartError {
        chart: "budget share",
        reason: error.to_string(),
    };
    let mut totals: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for day in &result.days {
        for (ad_set, budget) in &day.budget_by_ad_set {
            *totals.entry(ad_set).or_insert(0) += budget;
        }
    }
    let mut largest: Vec<(&str, i64)> = totals.into_iter().collect();
    largest.sort_by(|left, right| right.1.cmp(&left.1).then(left.0.cmp(right.0)));
    let shown: Vec<&str> = largest
        .iter()
        .take(LARGEST_AD_SETS_SHOWN)
        .map(|(name, _)| *name)
        .collect();
    // layers[k][day] = the share of the first k+1 shown ad sets; the last layer is everything (1.0).
    let mut layers: Vec<Vec<(f64, f64)>> = vec![Vec::new(); shown.len() + 1];
    for (index, day) in result.days.iter().enumerate() {
        let day_total = day.budget_by_ad_set.values().sum::<i64>().max(1) as f64;
        let mut cumulative = 0.0;
        for (layer, name) in shown.iter().enumerate() {
            cumulative += day.budget_by_ad_set.get(*name).copied().unwrap_or(0) as f64 / day_total;
            layers[layer].push((index as f64 + 1.0, cumulative));
        }
        layers[shown.len()].push((index as f64 + 1.0, 1.0));
    }
    let days = result.days.len().max(2) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|error| failed(&error))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Share of the daily budget per ad set", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..days, 0.0..1.0)
            .map_err(|error| failed(&error))?;
        chart
            .configure_mesh()
            .x_desc("day")
            .y_desc("share of the daily budget")
            .draw()
            .map_err(|error| failed(&error))?;
        // From the top layer down, so each lower layer paints over the one above it.
        for layer in (0..layers.len()).rev() {
            let (fill, label) = match shown.get(layer) {
                Some(name) => (colour(layer + 2), (*name).to_owned()),
                None => (RGBColor(210, 210, 210), "others".to_owned()),
            };
            chart
                .draw_series(AreaSeries::new(layers[layer].iter().copied(), 0.0, fill.filled()))
                .map_err(|error| failed(&error))?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], fill.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight).map_err(|error| failed(&error))?;
        root.present().map_err(|error| failed(&error))?;
    }
    Ok(svg)
}

/// One head's weight for each of the scenario's creative features at the end of each day (solid lines), and
/// the feature's true effect (dashed, the same colour). `None` when the scenario's creatives carry no
/// features with one truth.
fn feature_weights_chart_svg(result: &MonthResult, head: Head) -> Result<Option<String>, ChartError> {
    if result.true_feature_effects.is_empty() {
        return Ok(None);
    }
    let failed = |error: &dyn std::fmt::Display| ChartError {
        chart: "feature weights",
        reason: error.to_string(),
    };
    let learned_by_day = |name: &str| -> Vec<(f64, f64)> {
        result
            .days
            .iter()
            .enumerate()
            .map(|(index, day)| {
                let weight = day.learner_weights.get(name).map_or(0.0, |weights| head.of(weights));
                (index as f64 + 1.0, weight)
            })
            .collect()
    };
    let every_value = result.true_feature_effects.iter().flat_map(|(name, truth)| {
        learned_by_day(name)
            .into_iter()
            .map(|(_, weight)| weight)
            .chain(std::iter::once(head.of(truth)))
    });
    let (lowest, highest) = every_value.fold((0.0_f64, 0.0_f64), |(low, high), value| {
        (low.min(value), high.max(value))
    });
    let margin = ((highest - lowest) * 0.1).max(0.05);
    let days = result.days.len().max(2) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|error| failed(&error))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "The instant learner's weights on {}, by day (dashed: the scenario's true effects)",
                    head.description()
                ),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..days, (lowest - margin)..(highest + margin))
            .map_err(|error| failed(&error))?;
        chart
            .configure_mesh()
            .x_desc("day")
            .y_desc("effect on the log rate")
            .draw()
            .map_err(|error| failed(&error))?;
        for (index, (name, truth)) in result.true_feature_effects.iter().enumerate() {
            let line_colour = colour(index + 2);
            chart
                .draw_series(LineSeries::new(learned_by_day(name), line_colour.stroke_width(3)))
                .map_err(|error| failed(&error))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], line_colour.stroke_width(3)));
            let truth_line = [(1.0, head.of(truth)), (days, head.of(truth))];
            chart
                .draw_series(DashedLineSeries::new(truth_line, 8, 6, line_colour.stroke_width(2)))
                .map_err(|error| failed(&error))?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft).map_err(|error| failed(&error))?;
        root.present().map_err(|error| failed(&error))?;
    }
    Ok(Some(svg))
}

/// `text` safe inside HTML (a `<pre>`, an attribute-free element).
pub fn escape_html(text: &str) -> String {
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
    let currency = Currency::parse(&result.currency).map_err(|error| ChartError {
        chart: "value",
        reason: error.to_string(),
    })?;
    let value_chart = line_chart_svg(
        "value",
        &format!("Value earned so far, {currency} (every conversion when it happened)"),
        &format!("value ({currency})"),
        &value_lines,
        currency,
    )?;
    let budget_chart = line_chart_svg(
        "budget",
        &format!("Each account's daily budget, {currency}"),
        &format!("daily budget ({currency})"),
        &budget_lines,
        currency,
    )?;
    let share_chart = budget_share_chart_svg(result)?;
    let learning_charts: Vec<String> = [Head::Ctr, Head::ConversionsPerClick]
        .into_iter()
        .map(|head| feature_weights_chart_svg(result, head))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let learning_section = if learning_charts.is_empty() {
        String::new()
    } else {
        format!("<h2>Learning</h2>\n{}\n", learning_charts.join("\n"))
    };
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>adloop month: {scenario}</title>\
         <style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         pre{{font-size:12px;white-space:pre-wrap}}svg{{display:block;margin:1em 0}}</style></head><body>\n\
         <h1>adloop month: {scenario} (seed {seed})</h1>\n<h2>Value</h2>\n{value_chart}\n<h2>Budgets</h2>\n\
         {share_chart}\n{budget_chart}\n{learning_section}<h2>Report</h2>\n<pre>{report}</pre>\n</body></html>\n",
        scenario = escape_html(&result.scenario),
        seed = result.seed,
        report = escape_html(text_report),
    );
    Ok(html)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::learning_curve::FeatureWeights;
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
                    budget_by_ad_set: [("north-01".to_owned(), 30_000), ("north-02".to_owned(), 20_000)].into(),
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
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(html.contains("uniform split (campaign-sim)"));
        assert!(html.contains("a &lt;report&gt; &amp; more"));
        assert!(html.matches("<polyline").count() >= 3, "three lines drawn");
        assert!(!html.contains("Learning"), "no learning charts without features");
    }

    #[test]
    fn the_learning_charts_draw_each_features_weights_by_day_beside_its_truth() {
        let weights_on = |day: u32| -> BTreeMap<String, FeatureWeights> {
            [(
                "testimonial".to_owned(),
                FeatureWeights {
                    ctr: 0.0,
                    conversions_per_click: 0.1 * f64::from(day),
                },
            )]
            .into()
        };
        let result = MonthResult {
            scenario: "month".into(),
            currency: "USD".into(),
            days: (1..=3)
                .map(|day| DayRecord {
                    day,
                    learner_weights: weights_on(day),
                    ..DayRecord::default()
                })
                .collect(),
            true_feature_effects: [(
                "testimonial".to_owned(),
                FeatureWeights {
                    ctr: 0.0,
                    conversions_per_click: 0.35,
                },
            )]
            .into(),
            ..MonthResult::default()
        };
        let html = render_month_html(&result, &[], "report").unwrap();
        assert!(html.contains("<h2>Learning</h2>"));
        assert!(html.contains("weights on conversions per click"));
        assert!(html.contains("weights on CTR"));
        assert_eq!(
            html.matches("testimonial").count(),
            2,
            "the feature is named in each chart's legend"
        );
        assert_eq!(
            html.matches("<svg").count(),
            5,
            "value, share, budget and one chart per head"
        );
    }
}
