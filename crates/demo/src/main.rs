use adloop_demo::autopilot_client::GatewayTenant;
use adloop_demo::month::{baselines, render_month_report, run_month, scenario_reporting_shares};
use adloop_demo::month_html::{escape_html, render_month_html};
use adloop_demo::month_replay::{ReplayFigures, render_batching_section, replay_month_changes};
use adloop_demo::report::render_report;
use adloop_demo::steps::{ServiceEndpoints, run_all_steps};
use adloop_demo::website::Website;
use anyhow::Context as _;

fn required_variable(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .with_context(|| format!("{name} is not set: source .data/dev.env (scripts/services up writes it)"))
}

/// `adloop-demo`: each part against the running services in turn. `adloop-demo month <scenario> <days>
/// <report path>`: the month on meta-sim's manual clock, for the tenant of `ADLOOP_MONTH_API_KEY` (it also
/// writes the changes it applied, by day, to `month-changes.json` beside the report). `adloop-demo
/// replay-changes <month-changes.json> <mode> <figures.json>`: those changes again on a fresh world, for the
/// tenant of `ADLOOP_MONTH_API_KEY`, with the gateway in `mode`. `adloop-demo batching-report <report.txt>
/// <batch.json> <single.json>`: the two replays compared, added to the report.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.first().map(String::as_str) == Some("month") {
        let [_, scenario_path, days, report_path] = arguments.as_slice() else {
            anyhow::bail!("usage: adloop-demo month <scenario.toml> <days> <report path>");
        };
        let days: u32 = days.parse().context("days must be a whole number")?;
        return run_the_month(scenario_path, days, report_path).await;
    }
    if arguments.first().map(String::as_str) == Some("replay-changes") {
        let [_, changes_path, mode, figures_path] = arguments.as_slice() else {
            anyhow::bail!("usage: adloop-demo replay-changes <month-changes.json> <batch|single> <figures.json>");
        };
        return replay_the_months_changes(changes_path, mode, figures_path).await;
    }
    if arguments.first().map(String::as_str) == Some("batching-report") {
        let [_, report_path, batch_path, single_path] = arguments.as_slice() else {
            anyhow::bail!("usage: adloop-demo batching-report <report.txt> <batch.json> <single.json>");
        };
        return add_the_batching_section(report_path, batch_path, single_path);
    }
    let endpoints = ServiceEndpoints {
        gateway_url: required_variable("ADLOOP_GATEWAY_URL")?,
        ml_service_url: format!("http://{}", required_variable("ADLOOP_ML_GRPC_ADDR")?),
        relay_url: required_variable("ADLOOP_RELAY_URL")?,
        meta_sim_url: required_variable("ADLOOP_META_SIM_URL")?,
        meta_sim_token: required_variable("ADLOOP_META_SIM_TOKEN")?,
        api_key: required_variable("ADLOOP_DEV_API_KEY")?,
        dev_pixel_id: required_variable("ADLOOP_DEV_PIXEL_ID")?,
        dev_ingest_token: required_variable("ADLOOP_DEV_INGEST_TOKEN")?,
    };
    let outcomes = run_all_steps(&endpoints).await;
    print!("{}", render_report(&outcomes));
    if outcomes.iter().any(|outcome| !outcome.passed) {
        anyhow::bail!("the run failed");
    }
    Ok(())
}

async fn run_the_month(scenario_path: &str, days: u32, report_path: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let gateway_url = required_variable("ADLOOP_GATEWAY_URL")?;
    let api_key = required_variable("ADLOOP_MONTH_API_KEY")?;
    let meta_sim_url = required_variable("ADLOOP_META_SIM_URL")?;
    let ml_service_url = format!("http://{}", required_variable("ADLOOP_ML_GRPC_ADDR")?);
    let tenant = GatewayTenant {
        http: &http,
        gateway_url: &gateway_url,
        api_key: &api_key,
    };
    let relay_url = required_variable("ADLOOP_RELAY_URL")?;
    let pixel_id = required_variable("ADLOOP_DEV_PIXEL_ID")?;
    let ingest_token = required_variable("ADLOOP_DEV_INGEST_TOKEN")?;
    let scenario_text =
        std::fs::read_to_string(scenario_path).with_context(|| format!("cannot read {scenario_path}"))?;
    let scenario = campaign_sim::Scenario::from_toml(&scenario_text)
        .map_err(|error| anyhow::anyhow!("{scenario_path}: {error}"))?;
    // The scenario's tracking.browser_pixel_loss, unless ADLOOP_MONTH_PIXEL_LOSS_PERCENT says otherwise.
    let pixel_loss_percent: u64 = match std::env::var("ADLOOP_MONTH_PIXEL_LOSS_PERCENT") {
        Ok(percent) => percent
            .parse()
            .context("ADLOOP_MONTH_PIXEL_LOSS_PERCENT must be a whole number from 0 to 100")?,
        Err(_) => (scenario.tracking.browser_pixel_loss * 100.0).round() as u64,
    };
    let run_tag = format!(
        "month-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    );
    let state = adloop_demo::autopilot_client::meta_sim_get(&http, &meta_sim_url, "_sim/state")
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    let currency_code = state["currency"].as_str().unwrap_or_default();
    let currency = adloop_money::Currency::parse(currency_code)
        .with_context(|| format!("meta-sim's world is in a currency adloop does not know: `{currency_code}`"))?;
    let website = Website {
        http: &http,
        meta_sim_url: &meta_sim_url,
        relay_url: &relay_url,
        pixel_id: &pixel_id,
        ingest_token: &ingest_token,
        currency,
        pixel_loss_percent: pixel_loss_percent.min(100),
        run_tag: &run_tag,
    };
    let mut result = run_month(&http, &meta_sim_url, &ml_service_url, &tenant, &website, days)
        .await
        .map_err(|error| anyhow::anyhow!("the month failed: {error}"))?;
    result.true_reporting_shares =
        Some(scenario_reporting_shares(scenario_path).map_err(|error| anyhow::anyhow!(error))?);
    result.true_feature_effects = adloop_demo::learning_curve::scenario_feature_effects(&scenario);
    let baselines = baselines(scenario_path, result.seed, days).map_err(|error| anyhow::anyhow!(error))?;
    let report = render_month_report(&result, &baselines);
    print!("{report}");
    std::fs::write(report_path, &report).with_context(|| format!("cannot write {report_path}"))?;
    let html_path = std::path::Path::new(report_path).with_extension("html");
    let html = render_month_html(&result, &baselines, &report).map_err(|error| anyhow::anyhow!(error))?;
    std::fs::write(&html_path, html).with_context(|| format!("cannot write {}", html_path.display()))?;
    println!(
        "  report written to {report_path} and, with charts, {}",
        html_path.display()
    );
    let changes_path = std::path::Path::new(report_path).with_file_name("month-changes.json");
    let applied_by_day: Vec<&Vec<serde_json::Value>> = result.days.iter().map(|day| &day.applied_changes).collect();
    std::fs::write(&changes_path, serde_json::to_vec(&applied_by_day)?)
        .with_context(|| format!("cannot write {}", changes_path.display()))?;
    let failed_cycles: usize = result.days.iter().map(|day| day.cycles_failed).sum();
    if failed_cycles > 0 {
        anyhow::bail!("{failed_cycles} autopilot cycles failed");
    }
    Ok(())
}

async fn replay_the_months_changes(changes_path: &str, mode: &str, figures_path: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let gateway_url = required_variable("ADLOOP_GATEWAY_URL")?;
    let api_key = required_variable("ADLOOP_MONTH_API_KEY")?;
    let meta_sim_url = required_variable("ADLOOP_META_SIM_URL")?;
    let tenant = GatewayTenant {
        http: &http,
        gateway_url: &gateway_url,
        api_key: &api_key,
    };
    let text = std::fs::read_to_string(changes_path).with_context(|| format!("cannot read {changes_path}"))?;
    let days: Vec<Vec<serde_json::Value>> =
        serde_json::from_str(&text).with_context(|| format!("{changes_path} is not the month's changes by day"))?;
    let figures = replay_month_changes(&tenant, &meta_sim_url, &days, mode)
        .await
        .map_err(|error| anyhow::anyhow!("the {mode} replay failed: {error}"))?;
    println!(
        "  {mode} mode: {} of {} changes completed, {} Graph requests, {:.1} s applying",
        figures.completed, figures.changes, figures.executor_graph_requests, figures.seconds_applying
    );
    std::fs::write(figures_path, serde_json::to_vec(&figures)?)
        .with_context(|| format!("cannot write {figures_path}"))?;
    Ok(())
}

fn add_the_batching_section(report_path: &str, batch_path: &str, single_path: &str) -> anyhow::Result<()> {
    let read = |path: &str| -> anyhow::Result<ReplayFigures> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
        serde_json::from_str(&text).with_context(|| format!("{path} is not a replay's figures"))
    };
    let section = render_batching_section(&read(batch_path)?, &read(single_path)?);
    print!("{section}");
    let mut report = std::fs::read_to_string(report_path).with_context(|| format!("cannot read {report_path}"))?;
    report.push_str(&section);
    std::fs::write(report_path, report).with_context(|| format!("cannot write {report_path}"))?;
    let html_path = std::path::Path::new(report_path).with_extension("html");
    if let Ok(html) = std::fs::read_to_string(&html_path) {
        let html = html.replacen("</body>", &format!("<pre>{}</pre>\n</body>", escape_html(&section)), 1);
        std::fs::write(&html_path, html).with_context(|| format!("cannot write {}", html_path.display()))?;
    }
    Ok(())
}
