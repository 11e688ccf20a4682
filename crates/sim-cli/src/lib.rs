//! `adloop-sim`: evaluate budget allocation policies on simulated campaigns.
//!
//! - `adloop-sim run --scenario scenarios/fatigue.toml --policy seed-v1 --seeds 20 --days 30`
//! - `adloop-sim compare --scenario scenarios/fatigue.toml --policies uniform,seed-v1,oracle`
//! - `--policy external --policy-cmd "python3 my_policy.py"` runs your own allocator over JSON lines
//!   (see [`external_policy`]); `--json out.json` and `--report report.html` save the results.
//! - `adloop-sim quality-table --table allocator --first-seed 21` prints a README table ([`quality_table`]).
//! - `adloop-sim random-worlds --first-world 1001 --worlds 40` measures adloop and its peers on worlds drawn
//!   at random ([`random_worlds`]).
//! - `adloop-sim paired-worlds --before shipped.md --after changed.md` pairs two `random-worlds` tables world
//!   by world: how adloop's value changed ([`paired_worlds`]).
//! - `adloop-sim learner-weights --scenario scenarios/creative-signals.toml` measures the instant learner's
//!   weights against the scenario's true feature effects and an offline fit ([`learner_weights`]).

pub mod adloop_options;
pub mod external_policy;
pub mod html_report;
pub mod learner_weights;
pub mod paired_worlds;
pub mod parallel;
pub mod quality_table;
pub mod random_worlds;
pub mod table;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use campaign_sim::policy::{BUILT_IN_POLICY_NAMES, PolicySettings, SCENARIO_POLICY_NAMES, built_in_policy_on};
use campaign_sim::{Policy, PolicyError, PolicyFactory, PolicySummary, Scenario, compare_policies};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::adloop_options::AdloopOptions;
use crate::external_policy::ExternalPolicy;

#[derive(Debug, Parser)]
#[command(
    name = "adloop-sim",
    version,
    about = "Evaluate budget allocation policies on simulated campaigns"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one policy on a scenario over many seeds and report it against the oracle.
    Run {
        #[command(flatten)]
        common: CommonOptions,
        /// uniform, seed-v1, ts-basic, ts-basic-limited, adloop, oracle, or external (with --policy-cmd).
        #[arg(long)]
        policy: String,
    },
    /// Run several policies side by side on identical random streams.
    Compare {
        #[command(flatten)]
        common: CommonOptions,
        /// Comma-separated policy names, e.g. uniform,seed-v1,ts-basic,adloop,oracle.
        #[arg(long, value_delimiter = ',', required = true)]
        policies: Vec<String>,
    },
    /// Print one of the README's decision-quality tables (markdown): every scenario of the table, its
    /// policies on the same seeds, regret against the oracle and paired differences.
    QualityTable {
        /// allocator (uniform, seed-v1, ts-basic, ts-basic-limited, adloop, the limited oracle) or learners (adloop against
        /// adloop-priors-off, and the true-rate bound).
        #[arg(long, value_enum)]
        table: quality_table::QualityTable,
        /// The first seed (the constants were tuned on 1–20: 21 gives held-out figures).
        #[arg(long, default_value_t = 21)]
        first_seed: u64,
        #[arg(long, default_value_t = 20)]
        seeds: u64,
        /// Where the scenario files are.
        #[arg(long, default_value = "scenarios")]
        scenarios_dir: PathBuf,
        /// Print no progress lines on stderr.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        adloop: AdloopOptions,
    },
    /// adloop, uniform, ts-basic, ts-basic-limited and the limited oracle on worlds drawn at random (markdown):
    /// one row per world, and over all worlds adloop's value over each peer's and where it won, tied or lost.
    RandomWorlds {
        /// The first world's number. Worlds 1–100 are for looking at while developing; report 1001 and up.
        #[arg(long, default_value_t = 1001)]
        first_world: u64,
        #[arg(long, default_value_t = 100)]
        worlds: u64,
        /// Seeds per world (each seed draws the world's ads anew from its groups).
        #[arg(long, default_value_t = 10)]
        seeds_per_world: u64,
        /// Save each world as a scenario file in this folder (random-world-N.toml), to replay with `compare`.
        #[arg(long)]
        scenarios_out: Option<PathBuf>,
        /// Print no progress lines on stderr.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        adloop: AdloopOptions,
    },
    /// One world of `random-worlds` as a scenario file (TOML) on stdout, to study with `run` or `compare`
    /// (e.g. `adloop-sim random-world --world 2037 > world.toml`): the same file `--scenarios-out` saves.
    RandomWorld {
        #[arg(long)]
        world: u64,
    },
    /// adloop's change between two `random-worlds` tables of the same worlds (one with adloop as shipped, one
    /// with a change, e.g. `--allocator-config`), paired world by world: the geometric mean of adloop's value
    /// after over before with a 95% interval from resampling the worlds, and the worlds that moved most.
    PairedWorlds {
        /// The table before the change (`adloop-sim random-worlds --first-world 1 --worlds 100 > before.md`).
        #[arg(long)]
        before: PathBuf,
        /// The table after it, of the same worlds and seeds per world.
        #[arg(long)]
        after: PathBuf,
    },
    /// How close the adloop policy's instant learner comes to the scenario's true feature effects at chosen
    /// days, beside the same model fitted offline on the same events (markdown).
    LearnerWeights {
        /// Scenario file (TOML) with creative features, e.g. scenarios/creative-signals.toml.
        #[arg(long)]
        scenario: PathBuf,
        /// The first seed (the learner's constants were tuned on 1–20: 21 gives held-out figures).
        #[arg(long, default_value_t = 21)]
        first_seed: u64,
        #[arg(long, default_value_t = 20)]
        seeds: u64,
        /// Days at whose end to measure (after that day's decision), comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [3, 7, 14, 28])]
        days: Vec<u32>,
        /// The offline fit's L2 for the CTR and the conversion head, e.g. 1,10 (default: each head's own, from
        /// the learner's constants).
        #[arg(long, value_delimiter = ',')]
        offline_l2: Option<Vec<f64>>,
        #[command(flatten)]
        adloop: AdloopOptions,
    },
}

#[derive(Debug, Args)]
pub struct CommonOptions {
    /// Scenario file (TOML), e.g. scenarios/fatigue.toml.
    #[arg(long)]
    pub scenario: PathBuf,
    /// Number of seeds; runs use seeds first-seed..first-seed+N.
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    /// The first seed (e.g. 21 to check on seeds a policy was not tuned on).
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// Simulated days (default: the scenario's).
    #[arg(long)]
    pub days: Option<u32>,
    /// Command line of an external policy (for the policy name `external`), run with `sh -c`.
    #[arg(long)]
    pub policy_cmd: Option<String>,
    /// How long an external policy may take to answer one decision before it is stopped.
    #[arg(long, default_value_t = 30.0)]
    pub policy_timeout_seconds: f64,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with charts to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print no progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub adloop: AdloopOptions,
}

/// The JSON written by `--json`: per policy, the summary and each seed's headline numbers and decisions.
#[derive(Serialize)]
struct JsonResults<'a> {
    scenario: &'a str,
    currency: &'a str,
    days: u32,
    seeds: u64,
    policies: Vec<JsonPolicy<'a>>,
}

#[derive(Serialize)]
struct JsonPolicy<'a> {
    #[serde(flatten)]
    summary: JsonSummary<'a>,
    runs: Vec<JsonRun<'a>>,
}

#[derive(Serialize)]
struct JsonSummary<'a> {
    policy: &'a str,
    total_value: campaign_sim::IntervalEstimate,
    total_spend: campaign_sim::IntervalEstimate,
    roas: campaign_sim::IntervalEstimate,
    regret: campaign_sim::IntervalEstimate,
    regret_fraction: campaign_sim::IntervalEstimate,
    spend_on_losing_ads: campaign_sim::IntervalEstimate,
    spend_on_losing_ads_in_first_72_hours: campaign_sim::IntervalEstimate,
    median_hours_to_shift_80_percent_to_best: Option<f64>,
    decision_latency_mean_micros: f64,
    decision_latency_p99_micros: f64,
    decisions_over_total: u32,
    budgets_refused_below_minimum: u32,
}

#[derive(Serialize)]
struct JsonRun<'a> {
    seed: u64,
    total_value_minor_units: i64,
    total_spend_minor_units: i64,
    conversions: u64,
    hours_to_shift_80_percent_to_best: Option<u32>,
    /// The true value delivered so far after each step: paired with another policy's (or the oracle's) run
    /// of the same seed, where one gained or lost against the other.
    value_by_step: Vec<JsonStepValue>,
    /// What the policy did: every decision's budgets, to follow one ad through a run.
    decisions: Vec<JsonDecision<'a>>,
}

#[derive(Serialize)]
struct JsonStepValue {
    /// The hour the step ended.
    hour: u32,
    cumulative_value_minor_units: i64,
}

#[derive(Serialize)]
struct JsonDecision<'a> {
    hour: u32,
    /// Share of the total given to the ad with the best true ROAS at that moment.
    best_ad_share: f64,
    budgets: Vec<JsonBudget<'a>>,
}

#[derive(Serialize)]
struct JsonBudget<'a> {
    ad: String,
    daily_budget_minor_units: i64,
    /// What the policy believed about the ad when it set this budget (the adloop policies).
    #[serde(skip_serializing_if = "Option::is_none")]
    belief: Option<&'a campaign_sim::policy::AdBelief>,
}

fn load_scenario(path: &Path) -> anyhow::Result<Scenario> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read scenario {}", path.display()))?;
    Scenario::from_toml(&text).with_context(|| format!("scenario {}", path.display()))
}

fn check_policy_names(policy_names: &[String], policy_command: Option<&str>) -> anyhow::Result<()> {
    for name in policy_names {
        let known = BUILT_IN_POLICY_NAMES.contains(&name.as_str())
            || SCENARIO_POLICY_NAMES.contains(&name.as_str())
            || name == "external";
        anyhow::ensure!(
            known,
            "unknown policy `{name}`: choose from {}, {}, external",
            BUILT_IN_POLICY_NAMES.join(", "),
            SCENARIO_POLICY_NAMES.join(", ")
        );
        if name == "external" {
            anyhow::ensure!(
                policy_command.is_some(),
                "policy `external` needs --policy-cmd \"<command>\""
            );
        }
    }
    Ok(())
}

/// Runs the command and returns what to print on stdout.
pub fn execute(cli: Cli) -> anyhow::Result<String> {
    let (common, policy_names) = match cli.command {
        Command::Run { common, policy } => (common, vec![policy]),
        Command::Compare { common, policies } => (common, policies),
        Command::QualityTable {
            table,
            first_seed,
            seeds,
            scenarios_dir,
            quiet,
            adloop,
        } => {
            anyhow::ensure!(seeds >= 2, "--seeds must be at least 2 (intervals need two)");
            let settings = adloop.policy_settings()?;
            let table = quality_table::render_quality_table(
                table,
                &scenarios_dir,
                first_seed,
                seeds,
                &settings,
                &mut |scenario| {
                    if !quiet {
                        eprintln!("adloop-sim: {scenario} done");
                    }
                },
            )?;
            return Ok(format!("{}{table}", adloop.note().unwrap_or_default()));
        }
        Command::RandomWorlds {
            first_world,
            worlds,
            seeds_per_world,
            scenarios_out,
            quiet,
            adloop,
        } => {
            let settings = adloop.policy_settings()?;
            if let Some(directory) = &scenarios_out {
                std::fs::create_dir_all(directory).with_context(|| format!("cannot create {}", directory.display()))?;
            }
            let run = random_worlds::RandomWorldsRun {
                first_world,
                worlds,
                seeds_per_world,
                settings: &settings,
                scenarios_out: scenarios_out.as_deref(),
            };
            let table = random_worlds::render_random_worlds(&run, &mut |world| {
                if !quiet {
                    eprintln!("adloop-sim: world {world} done");
                }
            })?;
            return Ok(format!("{}{table}", adloop.note().unwrap_or_default()));
        }
        Command::RandomWorld { world } => {
            let drawn =
                campaign_sim::random_world::random_world(world).with_context(|| format!("random world {world}"))?;
            return Ok(drawn.toml);
        }
        Command::PairedWorlds { before, after } => {
            let read =
                |path: &Path| std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()));
            return Ok(paired_worlds::render_paired_worlds(&read(&before)?, &read(&after)?)?);
        }
        Command::LearnerWeights {
            scenario,
            first_seed,
            seeds,
            days,
            offline_l2,
            adloop,
        } => {
            let settings = adloop.policy_settings()?;
            let loaded = load_scenario(&scenario)?;
            let offline_l2 = match offline_l2.as_deref() {
                None => None,
                Some(&[ctr, conversion]) => Some([ctr, conversion]),
                Some(_) => anyhow::bail!("--offline-l2 takes two numbers: CTR, conversions (e.g. 1,10)"),
            };
            let table =
                learner_weights::render_learner_weights(&loaded, first_seed, seeds, &days, &settings, offline_l2)?;
            return Ok(format!("{}{table}", adloop.note().unwrap_or_default()));
        }
    };
    anyhow::ensure!(common.seeds >= 1, "--seeds must be at least 1");
    anyhow::ensure!(
        common.policy_timeout_seconds > 0.0 && common.policy_timeout_seconds <= 86_400.0,
        "--policy-timeout-seconds must be more than 0 and at most 86400"
    );
    let policy_timeout = std::time::Duration::from_secs_f64(common.policy_timeout_seconds);
    check_policy_names(&policy_names, common.policy_cmd.as_deref())?;
    let settings = PolicySettings {
        // `--json` tells what the adloop policies believed at each decision.
        explain_decisions: common.json.is_some(),
        ..common.adloop.policy_settings()?
    };
    let scenario = load_scenario(&common.scenario)?;
    let days = common.days.unwrap_or(scenario.days);
    anyhow::ensure!(days >= 1, "--days must be at least 1");
    let seeds: Vec<u64> = (common.first_seed..common.first_seed + common.seeds).collect();

    let policy_command = common.policy_cmd.clone().unwrap_or_default();
    let factories: Vec<(String, Box<PolicyFactory<'static>>)> = policy_names
        .iter()
        .map(|name| {
            (
                name.clone(),
                policy_factory(name, &scenario, &policy_command, policy_timeout, &settings),
            )
        })
        .collect();
    let factory_refs: Vec<(&str, &PolicyFactory<'_>)> = factories
        .iter()
        .map(|(name, factory)| (name.as_str(), factory.as_ref()))
        .collect();

    let distinct_runs = policy_names.iter().filter(|name| name.as_str() != "oracle").count() + 1;
    let total_runs = distinct_runs * seeds.len();
    let mut finished_runs = 0;
    let quiet = common.quiet;
    let summaries = compare_policies(&scenario, &factory_refs, &seeds, days, &mut |run| {
        finished_runs += 1;
        if !quiet {
            eprintln!(
                "adloop-sim: run {finished_runs}/{total_runs} done ({} seed {})",
                run.policy, run.seed
            );
        }
    })?;

    let results_table = table::render_results_table(&scenario, days, &summaries);
    if let Some(json_path) = &common.json {
        write_json(json_path, &scenario, days, common.seeds, &summaries)?;
    }
    if let Some(report_path) = &common.report {
        let html = html_report::render_html_report(&scenario, days, &summaries)?;
        std::fs::write(report_path, html).with_context(|| format!("cannot write {}", report_path.display()))?;
    }
    Ok(format!("{}{results_table}", common.adloop.note().unwrap_or_default()))
}

/// Makes a fresh policy per run: an external process per seed, or a built-in policy.
fn policy_factory(
    name: &str,
    scenario: &Scenario,
    external_command: &str,
    decision_timeout: std::time::Duration,
    settings: &PolicySettings,
) -> Box<PolicyFactory<'static>> {
    if name == "external" {
        let scenario = scenario.clone();
        let command = external_command.to_owned();
        return Box::new(move |seed| {
            let policy: Box<dyn Policy> = Box::new(ExternalPolicy::start(&command, &scenario, seed, decision_timeout)?);
            Ok(policy)
        });
    }
    built_in_policy_factory(name, scenario, settings)
}

/// Makes a fresh built-in policy per run on `scenario`.
pub(crate) fn built_in_policy_factory(
    name: &str,
    scenario: &Scenario,
    settings: &PolicySettings,
) -> Box<PolicyFactory<'static>> {
    let built_in_name = name.to_owned();
    let settings = settings.clone();
    let scenario = scenario.clone();
    Box::new(move |seed| {
        built_in_policy_on(&built_in_name, seed, &settings, &scenario)?.ok_or_else(|| PolicyError::Failed {
            policy: built_in_name.clone(),
            reason: "unknown policy".into(),
        })
    })
}

fn write_json(
    path: &Path,
    scenario: &Scenario,
    days: u32,
    seeds: u64,
    summaries: &[PolicySummary],
) -> anyhow::Result<()> {
    let results = JsonResults {
        scenario: &scenario.name,
        currency: scenario.currency.code(),
        days,
        seeds,
        policies: summaries
            .iter()
            .map(|summary| JsonPolicy {
                summary: JsonSummary {
                    policy: &summary.policy,
                    total_value: summary.total_value,
                    total_spend: summary.total_spend,
                    roas: summary.roas,
                    regret: summary.regret,
                    regret_fraction: summary.regret_fraction,
                    spend_on_losing_ads: summary.spend_on_losing_ads,
                    spend_on_losing_ads_in_first_72_hours: summary.spend_on_losing_ads_while_young,
                    median_hours_to_shift_80_percent_to_best: summary.median_hours_to_shift_80_percent_to_best,
                    decision_latency_mean_micros: summary.decision_latency_mean_micros,
                    decision_latency_p99_micros: summary.decision_latency_p99_micros,
                    decisions_over_total: summary.decisions_over_total,
                    budgets_refused_below_minimum: summary.budgets_refused_below_minimum,
                },
                runs: summary
                    .runs
                    .iter()
                    .map(|run| JsonRun {
                        seed: run.seed,
                        total_value_minor_units: run.total_value.get(),
                        total_spend_minor_units: run.total_spend.get(),
                        conversions: run.conversions,
                        hours_to_shift_80_percent_to_best: run.hours_to_shift_80_percent_to_best,
                        value_by_step: run
                            .cumulative_value_by_step
                            .iter()
                            .map(|(hour, value)| JsonStepValue {
                                hour: *hour,
                                cumulative_value_minor_units: value.get(),
                            })
                            .collect(),
                        decisions: run
                            .decisions
                            .iter()
                            .map(|decision| JsonDecision {
                                hour: decision.hour,
                                best_ad_share: decision.best_ad_share,
                                budgets: decision
                                    .budgets
                                    .iter()
                                    .enumerate()
                                    .map(|(position, (ad, budget))| JsonBudget {
                                        ad: ad.clone(),
                                        daily_budget_minor_units: budget.get(),
                                        belief: decision.beliefs.as_ref().and_then(|beliefs| beliefs.get(position)),
                                    })
                                    .collect(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&results)?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
