//! The month `make run` shows: meta-sim serves a month scenario on a manual clock; every ad account's
//! autopilot is turned on; each simulated day the run waits for every account's cycle and its changes, then
//! moves the clock a day. At the end it compares what the world truly earned with the same month under a
//! uniform split and under the original allocator (the same scenario and seed in campaign-sim, without the
//! services), and counts what the executor applied and which guardrails refused what.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;

use adloop_money::{Currency, MinorUnits};
use campaign_sim::policy::{Oracle, SeedV1, Uniform};
use campaign_sim::{AdStatus, HiddenTruths, Observation, Policy, PolicyError, Scenario, run_simulation};
use serde_json::Value;

use crate::autopilot_client::{DAY_SECONDS, GatewayTenant, advance_simulated_hours, meta_sim_get, refusing_guardrail};
use crate::learning_curve::{FeatureWeights, learned_feature_weights};
use crate::website::{DayOfPurchases, Website};

/// One simulated day of the month, as the run saw it.
#[derive(Debug, Clone, Default)]
pub struct DayRecord {
    pub day: u32,
    pub cycles_completed: usize,
    pub cycles_failed: usize,
    pub changes_planned: i64,
    pub changes_applied: usize,
    pub changes_refused: usize,
    /// The world's true totals at the end of the day (minor units).
    pub cumulative_value: i64,
    pub cumulative_spend: i64,
    /// Each account's ad-set budgets at the end of the day (minor units).
    pub budget_by_account: BTreeMap<String, i64>,
    /// Each active ad set's budget at the end of the day, by its name (minor units).
    pub budget_by_ad_set: BTreeMap<String, i64>,
    /// Per cycle: milliseconds to commit the learner's events, then to allocate with them.
    pub learned_in_ms: Vec<f64>,
    pub allocated_in_ms: Vec<f64>,
    /// Delivery events the day's cycles sent the learner.
    pub learning_events_sent: u64,
    /// The instant learner's creative-feature weights at the end of the day.
    pub learner_weights: BTreeMap<String, FeatureWeights>,
    /// The changes the executor applied that day, as the API shows them (replayed in batch and single mode).
    pub applied_changes: Vec<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct MonthResult {
    pub scenario: String,
    pub seed: u64,
    pub currency: String,
    pub accounts: Vec<String>,
    pub days: Vec<DayRecord>,
    pub refused_by_guardrail: BTreeMap<String, usize>,
    pub failed_otherwise: usize,
    /// meta-sim's counters at the end: Graph calls (a batch counts each operation) and batches.
    pub graph_calls: u64,
    pub graph_batches: u64,
    pub graph_http_requests: u64,
    /// ml-service's score cache over the month: lookups and hits (either tier).
    pub cache_lookups: u64,
    pub cache_hits: u64,
    /// The website's purchases and what reached Meta of them.
    pub attribution: Attribution,
    /// ml-service's instant learner before and after the month (`GET /v1/learner`).
    pub learner_before: Value,
    pub learner_after: Value,
    /// The executor's Graph API requests over the month (reads and writes, batched).
    pub executor_graph_requests: u64,
    /// Each account's reporting delays as its last cycle had learned them (the run summary's
    /// `reporting_delay`: shares reported within 1, 7 and 14 days).
    pub learned_reporting_delays: BTreeMap<String, Value>,
    /// The scenario's true reporting delays, the same three shares.
    pub true_reporting_shares: Option<[f64; 3]>,
    /// The scenario's creative features and their true effects (`learning_curve::scenario_feature_effects`).
    pub true_feature_effects: BTreeMap<String, FeatureWeights>,
    /// Each account's ads with a delivery curve (CPM rising with daily volume) at its last cycle, and the
    /// ads that cycle allocated.
    pub delivery_curves: BTreeMap<String, (u64, u64)>,
}

/// The ages the reports compare reporting delays at: a day, a week, two weeks.
pub const REPORTING_AGES_HOURS: [f64; 3] = [24.0, 168.0, 336.0];

/// The scenario's reporting delays as the shares reported within [`REPORTING_AGES_HOURS`].
pub fn scenario_reporting_shares(scenario_path: &str) -> Result<[f64; 3], String> {
    let text =
        std::fs::read_to_string(scenario_path).map_err(|error| format!("cannot read {scenario_path}: {error}"))?;
    let scenario = Scenario::from_toml(&text).map_err(|error| format!("{scenario_path}: {error}"))?;
    let schedule = scenario.conversion_delay.as_reporting_delay();
    Ok(REPORTING_AGES_HOURS.map(|age| schedule.reported_share_at(age)))
}

/// The executor's Graph requests so far (every purpose and mode) from the gateway's `/metrics`.
pub fn executor_graph_requests(metrics_text: &str) -> u64 {
    metrics_text
        .lines()
        .filter(|line| line.starts_with("adloop_gateway_executor_graph_requests_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|value| value as u64)
        .sum()
}

/// A service's `/metrics` page (Prometheus text).
pub(crate) async fn metrics_text(http: &reqwest::Client, base_url: &str) -> Result<String, String> {
    http.get(format!("{base_url}/metrics"))
        .send()
        .await
        .map_err(crate::request_failure)?
        .text()
        .await
        .map_err(crate::request_failure)
}

/// The median of `values` (0 for none).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Purchases the world made, what the browser's pixel and the relay sent of them, and what Meta counted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Attribution {
    pub purchases: u64,
    pub pixel_sent: u64,
    pub relay_accepted: u64,
    /// meta-sim's counts for the pixel: copies from each channel, and events counted once.
    pub received_from_browser: u64,
    pub received_from_server: u64,
    pub counted: u64,
    pub deduplicated: u64,
}

/// Score-cache lookups and hits so far, from ml-service's `/metrics` (a lookup tries L1, then L2).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CacheCounts {
    pub lookups: u64,
    pub hits: u64,
}

/// Reads the score cache's counters from Prometheus text.
pub fn cache_counts(metrics_text: &str) -> CacheCounts {
    let count = |tier: &str, outcome: &str| -> u64 {
        let series = format!("adloop_ml_score_cache_lookups_total{{tier=\"{tier}\",outcome=\"{outcome}\"}}");
        metrics_text
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map_or(0, |value| value as u64)
    };
    let l1_hits = count("l1", "hit");
    CacheCounts {
        lookups: l1_hits + count("l1", "miss"),
        hits: l1_hits + count("l2", "hit"),
    }
}

/// What a policy earned in campaign-sim on the same scenario and seed.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub policy: String,
    pub value: i64,
    pub spend: i64,
    /// The value so far at the end of each day (minor units).
    pub cumulative_value_by_day: Vec<i64>,
}

fn ad_accounts(state: &Value) -> Vec<String> {
    let mut accounts: Vec<String> = state["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|object| object["kind"] == "ad_account")
        .filter_map(|object| object["id"].as_str().map(str::to_owned))
        .collect();
    accounts.sort();
    accounts
}

/// The active ad sets in meta-sim's state.
fn active_ad_sets(state: &Value) -> impl Iterator<Item = &Value> {
    state["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|object| object["kind"] == "ad_set" && object["effective_status"] == "ACTIVE")
}

/// Each account's active ad sets' budgets summed.
fn budget_by_account(state: &Value) -> BTreeMap<String, i64> {
    let mut budgets = BTreeMap::new();
    for ad_set in active_ad_sets(state) {
        let account = ad_set["account_id"].as_str().unwrap_or_default().to_owned();
        *budgets.entry(account).or_insert(0) += ad_set["daily_budget"].as_i64().unwrap_or(0);
    }
    budgets
}

/// Each active ad set's budget, by name.
fn budget_by_ad_set(state: &Value) -> BTreeMap<String, i64> {
    active_ad_sets(state)
        .map(|ad_set| {
            let name = ad_set["name"].as_str().unwrap_or_default().trim_end_matches(" ad set");
            (name.to_owned(), ad_set["daily_budget"].as_i64().unwrap_or(0))
        })
        .collect()
}

/// An amount in minor units of the currency `currency_code` names, with as many decimals as it has and its
/// thousands grouped (`1,234,567.89` USD, `1,234,568` JPY); raw minor units for a code adloop does not know.
pub(crate) fn money(minor_units: i64, currency_code: &str) -> String {
    let Ok(currency) = Currency::parse(currency_code) else {
        return format!("{minor_units} minor units");
    };
    let decimals = usize::from(currency.minor_unit_exponent());
    let text = format!("{:.decimals$}", MinorUnits(minor_units).to_major(currency));
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(unsigned) => ("-", unsigned),
        None => ("", text.as_str()),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, format!(".{fraction}")),
        None => (unsigned, String::new()),
    };
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}{grouped}{fraction}")
}

fn ratio(value: i64, spend: i64) -> f64 {
    if spend == 0 { 0.0 } else { value as f64 / spend as f64 }
}

/// Runs the month: `days` simulated days on meta-sim's manual clock, every account on autopilot.
pub async fn run_month(
    http: &reqwest::Client,
    meta_sim_url: &str,
    ml_service_url: &str,
    tenant: &GatewayTenant<'_>,
    website: &Website<'_>,
    days: u32,
) -> Result<MonthResult, String> {
    let cache_before = cache_counts(&metrics_text(http, ml_service_url).await?);
    let learner_before = tenant.learner().await?;
    let executor_requests_before = executor_graph_requests(&metrics_text(http, tenant.gateway_url).await?);
    let state = meta_sim_get(http, meta_sim_url, "_sim/state").await?;
    if state["clock"]["mode"] != "manual" {
        return Err(format!(
            "meta-sim's clock is {}; the month steps a manual clock (scripts/run restarts meta-sim with one)",
            state["clock"]["mode"]
        ));
    }
    let accounts = ad_accounts(&state);
    let mut result = MonthResult {
        scenario: state["scenario"].as_str().unwrap_or("?").to_owned(),
        seed: state["seed"].as_u64().unwrap_or(1),
        currency: state["currency"].as_str().unwrap_or("?").to_owned(),
        accounts: accounts.clone(),
        ..MonthResult::default()
    };
    let first_slot = state["clock"]["now_unix"].as_i64().unwrap_or(0) / DAY_SECONDS;
    for account in &accounts {
        tenant.set_autopilot(account, true).await?;
    }
    for day in 0..days {
        let mut record = DayRecord {
            day: day + 1,
            ..DayRecord::default()
        };
        for account in &accounts {
            let run = tenant.wait_for_cycle(account, first_slot + i64::from(day)).await?;
            if run["state"] == "completed" {
                record.cycles_completed += 1;
            } else {
                record.cycles_failed += 1;
            }
            record.changes_planned += run["changes_planned"].as_i64().unwrap_or(0);
            record.learning_events_sent += run["summary"]["learning_events_sent"].as_u64().unwrap_or(0);
            if run["summary"]["reporting_delay"].is_object() {
                result
                    .learned_reporting_delays
                    .insert(account.clone(), run["summary"]["reporting_delay"].clone());
            }
            if let (Some(curved), Some(recommendations)) = (
                run["summary"]["ads_with_delivery_curves"].as_u64(),
                run["summary"]["recommendations"].as_array(),
            ) {
                result
                    .delivery_curves
                    .insert(account.clone(), (curved, recommendations.len() as u64));
            }
            if let (Some(learned), Some(allocated)) = (
                run["summary"]["learned_in_ms"].as_f64(),
                run["summary"]["allocated_in_ms"].as_f64(),
            ) {
                record.learned_in_ms.push(learned);
                record.allocated_in_ms.push(allocated);
            }
            for change in tenant.follow_changes(&run).await? {
                match change["state"].as_str() {
                    Some("completed") => {
                        record.changes_applied += 1;
                        record.applied_changes.push(change);
                    }
                    Some("discarded") => {
                        record.changes_refused += 1;
                        match refusing_guardrail(&change) {
                            Some(rule) => *result.refused_by_guardrail.entry(rule).or_insert(0) += 1,
                            None => result.failed_otherwise += 1,
                        }
                    }
                    _ => result.failed_otherwise += 1,
                }
            }
        }
        advance_simulated_hours(http, meta_sim_url, 24.0).await?;
        let state = meta_sim_get(http, meta_sim_url, "_sim/state").await?;
        record.cumulative_value = state["world_totals"]["conversion_value"].as_i64().unwrap_or(0);
        record.cumulative_spend = state["world_totals"]["spend"].as_i64().unwrap_or(0);
        let cumulative_purchases = state["world_totals"]["conversions"].as_u64().unwrap_or(0);
        let purchases = DayOfPurchases {
            day: day + 1,
            count: cumulative_purchases.saturating_sub(result.attribution.purchases),
            value: record.cumulative_value - result.days.last().map_or(0, |previous| previous.cumulative_value),
            day_start_unix: (first_slot + i64::from(day)) * DAY_SECONDS,
        };
        let sent = website.report_day(&purchases).await?;
        result.attribution.purchases += sent.purchases;
        result.attribution.pixel_sent += sent.pixel_sent;
        result.attribution.relay_accepted += sent.relay_accepted;
        record.budget_by_account = budget_by_account(&state);
        record.budget_by_ad_set = budget_by_ad_set(&state);
        record.learner_weights = learned_feature_weights(&tenant.learner().await?);
        result.graph_calls = state["counters"]["graph_calls"].as_u64().unwrap_or(0);
        result.graph_batches = state["counters"]["batches"].as_u64().unwrap_or(0);
        // meta-sim's Meta API requests apart from the Conversions API's.
        let counter = |name: &str| state["counters"][name].as_u64().unwrap_or(0);
        result.graph_http_requests = counter("requests").saturating_sub(counter("capi_requests"));
        print_progress(&record, days, &result.currency);
        result.days.push(record);
    }
    for account in &accounts {
        tenant.set_autopilot(account, false).await?;
    }
    let cache_after = cache_counts(&metrics_text(http, ml_service_url).await?);
    result.learner_before = learner_before;
    result.learner_after = tenant.learner().await?;
    result.executor_graph_requests = executor_graph_requests(&metrics_text(http, tenant.gateway_url).await?)
        .saturating_sub(executor_requests_before);
    wait_for_relay_delivery(http, meta_sim_url, website.pixel_id, &mut result.attribution).await?;
    result.cache_lookups = cache_after.lookups.saturating_sub(cache_before.lookups);
    result.cache_hits = cache_after.hits.saturating_sub(cache_before.hits);
    Ok(result)
}

/// Waits (up to a minute) until meta-sim has received the relay's copy of every purchase the relay
/// accepted, then reads what Meta counts for the pixel.
async fn wait_for_relay_delivery(
    http: &reqwest::Client,
    meta_sim_url: &str,
    pixel_id: &str,
    attribution: &mut Attribution,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    loop {
        let counts = meta_sim_get(
            http,
            meta_sim_url,
            &format!("_sim/capi/events?pixel_id={pixel_id}&counts_only=true"),
        )
        .await?["counts"]
            .clone();
        let count = |name: &str| counts[name].as_u64().unwrap_or(0);
        attribution.received_from_browser = count("browser");
        attribution.received_from_server = count("server");
        attribution.counted = count("unique");
        attribution.deduplicated = count("deduplicated");
        if attribution.received_from_server >= attribution.relay_accepted
            || started.elapsed() > std::time::Duration::from_secs(60)
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

fn print_progress(record: &DayRecord, days: u32, currency: &str) {
    let width = 30;
    let filled = (record.day as usize * width) / days.max(1) as usize;
    let bar: String = "#".repeat(filled) + &".".repeat(width - filled);
    eprintln!(
        "month [{bar}] day {:>2}/{days}: {} changes applied, {} refused; value {} {currency}, ROAS {:.2}",
        record.day,
        record.changes_applied,
        record.changes_refused,
        money(record.cumulative_value, currency),
        ratio(record.cumulative_value, record.cumulative_spend),
    );
    let _ = std::io::stderr().flush();
}

pub(crate) fn policy_label(policy: &str) -> &str {
    match policy {
        "uniform" => "uniform split (campaign-sim)",
        "seed-v1" => "the original allocator (campaign-sim)",
        "oracle" => "oracle, knows every truth (campaign-sim)",
        other => other,
    }
}

/// A policy that decides once a simulated day in a world stepped hour by hour, as meta-sim steps it and the
/// autopilot decides: between decisions every ad keeps its budget.
struct DailyDecisions {
    inner: Box<dyn Policy>,
}

impl Policy for DailyDecisions {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn decide(&mut self, observation: &Observation, hidden: &HiddenTruths<'_>) -> Result<Vec<MinorUnits>, PolicyError> {
        if observation.hour.is_multiple_of(24) {
            return self.inner.decide(observation, hidden);
        }
        Ok(observation
            .ads
            .iter()
            .map(|ad| match ad.status {
                AdStatus::Paused => MinorUnits::ZERO,
                _ => ad.current_daily_budget,
            })
            .collect())
    }
}

/// The same month without the services: the scenario and seed in campaign-sim, its world stepped hour by
/// hour as meta-sim steps it, under a uniform split, the original allocator, and the oracle that knows every
/// ad's truth, each deciding once a day.
pub fn baselines(scenario_path: &str, seed: u64, days: u32) -> Result<Vec<Baseline>, String> {
    let text =
        std::fs::read_to_string(scenario_path).map_err(|error| format!("cannot read {scenario_path}: {error}"))?;
    let mut scenario = Scenario::from_toml(&text).map_err(|error| format!("{scenario_path}: {error}"))?;
    scenario.decision_interval_hours = 1;
    let policies: Vec<Box<dyn Policy>> = vec![Box::new(Uniform), Box::new(SeedV1::new(seed)), Box::new(Oracle)];
    let mut baselines = Vec::new();
    for inner in policies {
        let mut policy = DailyDecisions { inner };
        let run = run_simulation(&scenario, &mut policy, seed, days).map_err(|error| error.to_string())?;
        let cumulative_value_by_day = run
            .cumulative_value_by_step
            .iter()
            .filter(|(hour, _)| hour % 24 == 0)
            .map(|(_, value)| value.get())
            .collect();
        baselines.push(Baseline {
            policy: run.policy.clone(),
            value: run.total_value.get(),
            spend: run.total_spend.get(),
            cumulative_value_by_day,
        });
    }
    Ok(baselines)
}

/// The learner's feature weights, both heads, as `; weights: name ctr/conversion, ...` (nothing without any).
fn learned_weights(learner: &Value) -> String {
    let weights = learned_feature_weights(learner);
    if weights.is_empty() {
        return String::new();
    }
    let entries: Vec<String> = weights
        .iter()
        .map(|(name, weights)| format!("{name} {:+.2}/{:+.2}", weights.ctr, weights.conversions_per_click))
        .collect();
    format!("; weights (CTR/conversions per click): {}", entries.join(", "))
}

/// How many of each account's ads the last cycle found a delivery curve for.
fn delivery_curves_line(result: &MonthResult) -> Option<String> {
    if result.delivery_curves.is_empty() {
        return None;
    }
    let accounts: Vec<String> = result
        .delivery_curves
        .iter()
        .map(|(account, (curved, ads))| format!("{account} {curved} of {ads} ads"))
        .collect();
    Some(format!(
        "  delivery curves (CPM rising with daily volume, funded by marginal return) at the last cycle: {}",
        accounts.join(", ")
    ))
}

/// What the autopilot learned of each account's reporting delays, beside the scenario's truth.
fn reporting_delays_line(result: &MonthResult) -> Option<String> {
    if result.learned_reporting_delays.is_empty() {
        return None;
    }
    let shares = |values: [f64; 3]| format!("{:.2} / {:.2} / {:.2}", values[0], values[1], values[2]);
    let learned: Vec<String> = result
        .learned_reporting_delays
        .iter()
        .map(|(account, delay)| {
            let share = |key: &str| delay[key].as_f64().unwrap_or(f64::NAN);
            format!(
                "{account} {}",
                shares([
                    share("reported_within_1_day"),
                    share("reported_within_7_days"),
                    share("reported_within_14_days"),
                ])
            )
        })
        .collect();
    let truth = result
        .true_reporting_shares
        .map_or(String::new(), |truth| format!("; the world's own {}", shares(truth)));
    Some(format!(
        "  reporting delays learned from each account's daily reports (share reported within 1 / 7 / 14 days): {}{truth}",
        learned.join(", ")
    ))
}

pub fn render_month_report(result: &MonthResult, baselines: &[Baseline]) -> String {
    let mut text = String::new();
    let last = result.days.last().cloned().unwrap_or_default();
    let currency = &result.currency;
    let _ = writeln!(
        text,
        "adloop month report: scenario {} (seed {}), {} days, {} ad accounts on autopilot",
        result.scenario,
        result.seed,
        result.days.len(),
        result.accounts.len()
    );
    let _ = writeln!(
        text,
        "  value and ROAS (every conversion counted when it happened, reported yet or not):"
    );
    let _ = writeln!(
        text,
        "    {:<38} {:>14} {currency}  spend {:>12} {currency}  ROAS {:.2}",
        "adloop (services, through meta-sim)",
        money(last.cumulative_value, currency),
        money(last.cumulative_spend, currency),
        ratio(last.cumulative_value, last.cumulative_spend)
    );
    for baseline in baselines {
        let label = policy_label(&baseline.policy);
        let _ = writeln!(
            text,
            "    {label:<38} {:>14} {currency}  spend {:>12} {currency}  ROAS {:.2}  (adloop {:+.1}%)",
            money(baseline.value, currency),
            money(baseline.spend, currency),
            ratio(baseline.value, baseline.spend),
            (last.cumulative_value as f64 / baseline.value.max(1) as f64 - 1.0) * 100.0
        );
    }
    let cycles: usize = result.days.iter().map(|day| day.cycles_completed).sum();
    let failed_cycles: usize = result.days.iter().map(|day| day.cycles_failed).sum();
    let planned: i64 = result.days.iter().map(|day| day.changes_planned).sum();
    let applied: usize = result.days.iter().map(|day| day.changes_applied).sum();
    let refused: usize = result.days.iter().map(|day| day.changes_refused).sum();
    let _ = writeln!(
        text,
        "  autopilot: {cycles} cycles completed, {failed_cycles} failed; {planned} changes planned, {applied} applied, {refused} refused"
    );
    let rules: Vec<String> = result
        .refused_by_guardrail
        .iter()
        .map(|(rule, count)| format!("{rule} {count}"))
        .collect();
    let _ = writeln!(
        text,
        "  refused by guardrail: {}{}",
        if rules.is_empty() {
            "none".to_owned()
        } else {
            rules.join(", ")
        },
        if result.failed_otherwise > 0 {
            format!("; {} failed or unfinished otherwise", result.failed_otherwise)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        text,
        "  Graph API: {} calls counted by Meta's rules in {} HTTP requests to meta-sim ({} batches); the executor's {} changes took {} requests in batch mode (reads and writes)",
        result.graph_calls, result.graph_http_requests, result.graph_batches, applied, result.executor_graph_requests
    );
    let attribution = &result.attribution;
    let share = |count: u64| 100.0 * count as f64 / attribution.purchases.max(1) as f64;
    let _ = writeln!(
        text,
        "  conversions reaching Meta: the world made {} purchases; the browser pixel alone reported {} ({:.1}%); with the relay's server copies Meta counts {} ({:.1}%), {:+.1}% over the pixel alone",
        attribution.purchases,
        attribution.pixel_sent,
        share(attribution.pixel_sent),
        attribution.counted,
        share(attribution.counted),
        (attribution.counted as f64 / attribution.pixel_sent.max(1) as f64 - 1.0) * 100.0
    );
    let _ = writeln!(
        text,
        "    relay: {} accepted, {} delivered to meta-sim; {} browser copies received, {} copies de-duplicated by event id",
        attribution.relay_accepted,
        attribution.received_from_server,
        attribution.received_from_browser,
        attribution.deduplicated
    );
    let events_applied = |learner: &Value| learner["events_applied"].as_i64().unwrap_or(0);
    let applied_during_month = events_applied(&result.learner_after) - events_applied(&result.learner_before);
    let sent: u64 = result.days.iter().map(|day| day.learning_events_sent).sum();
    // An event id the learner has already applied is acknowledged and skipped: say so when that hid the month.
    let already_applied = sent.saturating_sub(applied_during_month.max(0) as u64);
    let already_applied_clause = if already_applied > 0 {
        format!(" ({already_applied} of them already applied before, under the same event ids)")
    } else {
        String::new()
    };
    let bias = |learner: &Value, head: &str| learner[head]["bias"].as_f64().unwrap_or(0.0);
    let _ = writeln!(
        text,
        "  instant learner: the cycles sent {sent} delivery events{already_applied_clause}, {} events applied during the month; CTR bias {:+.3} → {:+.3}, conversions-per-click bias {:+.3} → {:+.3}{}",
        applied_during_month,
        bias(&result.learner_before, "ctr"),
        bias(&result.learner_after, "ctr"),
        bias(&result.learner_before, "conversions_per_click"),
        bias(&result.learner_after, "conversions_per_click"),
        learned_weights(&result.learner_after)
    );
    if let Some(line) = reporting_delays_line(result) {
        let _ = writeln!(text, "{line}");
    }
    if let Some(line) = delivery_curves_line(result) {
        let _ = writeln!(text, "{line}");
    }
    let learned: Vec<f64> = result
        .days
        .iter()
        .flat_map(|day| day.learned_in_ms.iter().copied())
        .collect();
    let allocated: Vec<f64> = result
        .days
        .iter()
        .flat_map(|day| day.allocated_in_ms.iter().copied())
        .collect();
    let _ = writeln!(
        text,
        "  learning latency per cycle (median): a conversion reaches the learner with the first daily cycle after Meta reports it (insights); \
         that cycle's delivery events were committed to the weights in {:.1} ms, and the allocation that used them answered {:.1} ms later",
        median(&learned),
        median(&allocated)
    );
    let _ = writeln!(
        text,
        "  ml-service's score cache: {} hits of {} lookups ({:.1}%); an ad's draws are reused only while its state, quantised, is unchanged",
        result.cache_hits,
        result.cache_lookups,
        100.0 * ratio(result.cache_hits as i64, result.cache_lookups as i64)
    );
    let _ = writeln!(text, "  budget by account (daily, {currency}), first day → last day:");
    let first = result.days.first().cloned().unwrap_or_default();
    for account in &result.accounts {
        let _ = writeln!(
            text,
            "    {account}: {} → {}",
            money(first.budget_by_account.get(account).copied().unwrap_or(0), currency),
            money(last.budget_by_account.get(account).copied().unwrap_or(0), currency)
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reports_weights_name_every_feature_of_either_head_with_both_weights() {
        let learner = serde_json::json!({
            "ctr": {"weights": {"fast_cuts": 0.2}},
            "conversions_per_click": {"weights": {"testimonial": 0.3}}
        });
        assert_eq!(
            learned_weights(&learner),
            "; weights (CTR/conversions per click): fast_cuts +0.20/+0.00, testimonial +0.00/+0.30"
        );
        assert_eq!(learned_weights(&serde_json::json!({})), "");
    }

    #[test]
    fn the_baselines_live_the_same_month_and_the_oracle_earns_most() {
        let scenario = format!("{}/../../scenarios/month.toml", env!("CARGO_MANIFEST_DIR"));
        let baselines = baselines(&scenario, 1, 30).unwrap();
        let names: Vec<&str> = baselines.iter().map(|baseline| baseline.policy.as_str()).collect();
        assert_eq!(names, ["uniform", "seed-v1", "oracle"]);
        assert!(
            baselines
                .iter()
                .all(|baseline| baseline.cumulative_value_by_day.len() == 30)
        );
        assert!(
            baselines
                .iter()
                .all(|baseline| baseline.cumulative_value_by_day.last() == Some(&baseline.value))
        );
        let value_of = |name: &str| baselines.iter().find(|baseline| baseline.policy == name).unwrap().value;
        assert!(value_of("oracle") > value_of("uniform") && value_of("oracle") > value_of("seed-v1"));
        // A uniform split spends the account's 3,000.00 a day, give or take Meta's pacing.
        let uniform_spend = baselines[0].spend as f64;
        assert!(
            (uniform_spend / (30.0 * 300_000.0) - 1.0).abs() < 0.05,
            "{uniform_spend}"
        );
    }

    #[test]
    fn cache_counts_add_both_tiers_hits_over_first_tier_lookups() {
        let text = "# HELP x\n\
            adloop_ml_score_cache_lookups_total{tier=\"l1\",outcome=\"hit\"} 30\n\
            adloop_ml_score_cache_lookups_total{tier=\"l1\",outcome=\"miss\"} 70\n\
            adloop_ml_score_cache_lookups_total{tier=\"l2\",outcome=\"hit\"} 20\n\
            adloop_ml_score_cache_lookups_total{tier=\"l2\",outcome=\"miss\"} 50\n";
        assert_eq!(cache_counts(text), CacheCounts { lookups: 100, hits: 50 });
        assert_eq!(cache_counts(""), CacheCounts::default());
    }

    #[test]
    fn the_executors_graph_requests_add_every_purpose_and_mode() {
        let text = "adloop_gateway_executor_graph_requests_total{purpose=\"read\",mode=\"batch\"} 12\n\
            adloop_gateway_executor_graph_requests_total{purpose=\"write\",mode=\"batch\"} 30\n\
            adloop_gateway_executor_changes_total{outcome=\"completed\"} 99\n";
        assert_eq!(executor_graph_requests(text), 42);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn money_is_grouped_with_two_decimals() {
        assert_eq!(money(0, "USD"), "0.00");
        assert_eq!(money(123_456_789, "USD"), "1,234,567.89");
        assert_eq!(money(-5_005, "USD"), "-50.05");
        assert_eq!(money(1_234_568, "JPY"), "1,234,568", "no minor unit");
        assert_eq!(money(123_456_789, "KWD"), "123,456.789");
        assert_eq!(money(42, "XYZ"), "42 minor units");
    }

    #[test]
    fn the_report_compares_the_month_with_each_baseline() {
        let result = MonthResult {
            scenario: "month".into(),
            seed: 1,
            currency: "USD".into(),
            accounts: vec!["act_1".into()],
            days: vec![DayRecord {
                day: 1,
                cycles_completed: 1,
                changes_applied: 3,
                cumulative_value: 30_000,
                cumulative_spend: 10_000,
                ..DayRecord::default()
            }],
            refused_by_guardrail: BTreeMap::from([("max_change_per_step".to_owned(), 2)]),
            learned_reporting_delays: BTreeMap::from([(
                "act_1".to_owned(),
                serde_json::json!({
                    "reported_within_1_day": 0.46,
                    "reported_within_7_days": 0.98,
                    "reported_within_14_days": 1.0,
                }),
            )]),
            true_reporting_shares: Some([0.47, 1.0, 1.0]),
            delivery_curves: BTreeMap::from([("act_1".to_owned(), (3, 10))]),
            ..MonthResult::default()
        };
        let report = render_month_report(
            &result,
            &[Baseline {
                policy: "uniform".into(),
                value: 20_000,
                spend: 10_000,
                cumulative_value_by_day: vec![20_000],
            }],
        );
        assert!(report.contains("ROAS 3.00"), "{report}");
        assert!(report.contains("uniform split (campaign-sim)"), "{report}");
        assert!(report.contains("(adloop +50.0%)"), "{report}");
        assert!(report.contains("max_change_per_step 2"), "{report}");
        assert!(
            report.contains("act_1 0.46 / 0.98 / 1.00; the world's own 0.47 / 1.00 / 1.00"),
            "{report}"
        );
        assert!(report.contains("at the last cycle: act_1 3 of 10 ads"), "{report}");
    }

    #[test]
    fn the_scenarios_reporting_delays_are_read_as_shares_within_a_day_a_week_and_two_weeks() {
        let scenario = format!("{}/../../scenarios/month.toml", env!("CARGO_MANIFEST_DIR"));
        let shares = scenario_reporting_shares(&scenario).unwrap();
        // month.toml: 30% within 6 hours, 40% between 6 and 48 hours, 30% between 2 and 7 days.
        let within_a_day = 0.30 + 0.40 * 18.0 / 42.0;
        assert!((shares[0] - within_a_day).abs() < 1e-9, "{shares:?}");
        assert_eq!(&shares[1..], &[1.0, 1.0]);
    }
}
