//! adloop-sim as a user runs it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_adloop-sim");

fn project_path(relative: &str) -> String {
    format!("{}/../../{relative}", env!("CARGO_MANIFEST_DIR"))
}

fn adloop_sim(arguments: &[&str]) -> Output {
    Command::new(BINARY).args(arguments).output().unwrap()
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "adloop-sim failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn compare_prints_a_row_per_policy_and_writes_json_and_an_html_report() {
    let directory = tempfile::tempdir().unwrap();
    let json_path = directory.path().join("results.json");
    let report_path = directory.path().join("report.html");
    let output = adloop_sim(&[
        "compare",
        "--scenario",
        &project_path("scenarios/fatigue.toml"),
        "--policies",
        "uniform,seed-v1,oracle",
        "--seeds",
        "3",
        "--json",
        json_path.to_str().unwrap(),
        "--report",
        report_path.to_str().unwrap(),
    ]);
    let table = stdout_of(&output);
    for policy in ["uniform", "seed-v1", "oracle"] {
        assert!(
            table.lines().any(|line| line.trim_start().starts_with(policy)),
            "{policy} row missing:\n{table}"
        );
    }
    let progress = String::from_utf8_lossy(&output.stderr);
    assert!(progress.contains("run 9/9"), "progress lines on stderr: {progress}");

    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(results["scenario"], "fatigue");
    assert_eq!(results["policies"].as_array().unwrap().len(), 3);
    assert_eq!(results["policies"][2]["regret"]["mean"], 0.0);
    assert_eq!(results["policies"][0]["runs"].as_array().unwrap().len(), 3);
    // Each run's decisions, every ad's budget in each: uniform splits the total evenly (to the minor unit).
    let first_decision = &results["policies"][0]["runs"][0]["decisions"][0];
    let budgets: Vec<i64> = first_decision["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|budget| budget["daily_budget_minor_units"].as_i64().unwrap())
        .collect();
    assert!(budgets.len() >= 2, "{first_decision}");
    assert!(
        budgets.iter().max().unwrap() - budgets.iter().min().unwrap() <= 1,
        "{first_decision}"
    );
    assert_eq!(first_decision["budgets"][0]["ad"], "ad-01");
    // Each run's value step by step, ending at its total: the oracle's is never behind uniform's by the end.
    let run_of = |policy: usize| &results["policies"][policy]["runs"][0];
    let steps = run_of(0)["value_by_step"].as_array().unwrap();
    assert_eq!(steps.len() as u64, results["days"].as_u64().unwrap());
    assert_eq!(steps[0]["hour"], 24);
    assert_eq!(
        steps.last().unwrap()["cumulative_value_minor_units"],
        run_of(0)["total_value_minor_units"]
    );
    let final_value = |policy: usize| {
        run_of(policy)["value_by_step"].as_array().unwrap().last().unwrap()["cumulative_value_minor_units"]
            .as_i64()
            .unwrap()
    };
    assert!(final_value(2) >= final_value(0));

    let report = std::fs::read_to_string(&report_path).unwrap();
    assert!(report.starts_with("<!DOCTYPE html>"));
    assert!(
        report.matches("<svg").count() >= 4,
        "a regret chart and one budget chart per policy"
    );
    assert!(!report.contains("<script"), "the report is static and self-contained");
    // The results are a table whose cells wrap (not preformatted text clipped at the page edge).
    assert!(report.contains("<th>policy</th>"), "{report}");
    for policy in ["uniform", "seed-v1", "oracle"] {
        assert!(report.contains(&format!("<td>{policy}</td>")), "a row for {policy}");
    }
}

#[test]
fn the_json_tells_what_adloop_believed_about_each_ad_at_each_decision() {
    let directory = tempfile::tempdir().unwrap();
    let json_path = directory.path().join("results.json");
    let scenario = project_path("scenarios/stationary-10.toml");
    stdout_of(&adloop_sim(&[
        "compare",
        "--scenario",
        &scenario,
        "--policies",
        "adloop,uniform",
        "--seeds",
        "1",
        "--days",
        "5",
        "--quiet",
        "--json",
        json_path.to_str().unwrap(),
    ]));
    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let decisions = |policy: usize| {
        results["policies"][policy]["runs"][0]["decisions"]
            .as_array()
            .unwrap()
            .clone()
    };
    for decision in decisions(0) {
        let budgets = decision["budgets"].as_array().unwrap();
        let probability_best: f64 = budgets
            .iter()
            .map(|budget| budget["belief"]["probability_best"].as_f64().unwrap())
            .sum();
        assert!((probability_best - 1.0).abs() < 1e-6, "{decision}");
        for budget in budgets {
            let belief = &budget["belief"];
            let (lower, mean, upper) = (
                belief["roas_lower_95"].as_f64().unwrap(),
                belief["roas_mean"].as_f64().unwrap(),
                belief["roas_upper_95"].as_f64().unwrap(),
            );
            assert!(lower <= mean && mean <= upper, "{belief}");
            assert_eq!(belief["prior_source"], "population");
        }
        // The ad adloop rated likeliest best got at least as much as any other.
        let likeliest = budgets
            .iter()
            .max_by(|a, b| {
                a["belief"]["probability_best"]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&b["belief"]["probability_best"].as_f64().unwrap())
            })
            .unwrap();
        let largest = budgets
            .iter()
            .map(|budget| budget["daily_budget_minor_units"].as_i64().unwrap())
            .max()
            .unwrap();
        assert!(
            likeliest["daily_budget_minor_units"].as_i64().unwrap() * 2 >= largest,
            "{decision}"
        );
    }
    assert!(
        decisions(1)
            .iter()
            .all(|decision| decision["budgets"][0].get("belief").is_none())
    );
}

#[test]
fn an_external_policy_speaks_json_lines_and_is_compared_on_the_same_seeds() {
    let directory = tempfile::tempdir().unwrap();
    let json_path = directory.path().join("results.json");
    let command = format!(
        "python3 {}",
        project_path("examples/external-policy/proportional_to_roas.py")
    );
    let output = adloop_sim(&[
        "compare",
        "--scenario",
        &project_path("scenarios/stationary-10.toml"),
        "--policies",
        "uniform,external",
        "--policy-cmd",
        &command,
        "--seeds",
        "2",
        "--days",
        "10",
        "--quiet",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    let table = stdout_of(&output);
    assert!(
        table.lines().any(|line| line.trim_start().starts_with("external")),
        "{table}"
    );
    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let runs_of = |index: usize| results["policies"][index]["runs"].as_array().unwrap().clone();
    let (uniform_runs, external_runs) = (runs_of(0), runs_of(1));
    let seeds = |runs: &[serde_json::Value]| runs.iter().map(|run| run["seed"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(seeds(&uniform_runs), vec![1, 2]);
    assert_eq!(seeds(&external_runs), vec![1, 2], "both policies ran on the same seeds");
    // Its answers were applied: funding the ads with the best reported ROAS earns more than an even split
    // on every seed of a stationary world whose true ROAS runs from 0.60 to 2.84.
    for (uniform, external) in uniform_runs.iter().zip(&external_runs) {
        let value = |run: &serde_json::Value| run["total_value_minor_units"].as_i64().unwrap();
        assert!(
            value(external) > value(uniform),
            "seed {}: external {} vs uniform {}",
            external["seed"],
            value(external),
            value(uniform)
        );
    }
}

#[test]
fn an_external_policy_that_answers_nonsense_fails_with_a_clear_error() {
    let output = adloop_sim(&[
        "run",
        "--scenario",
        &project_path("scenarios/stationary-10.toml"),
        "--policy",
        "external",
        "--policy-cmd",
        "while read line; do echo not-json; done",
        "--seeds",
        "1",
        "--quiet",
    ]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("budgets"), "{error}");
}

#[test]
fn unknown_policies_and_missing_policy_commands_are_named() {
    let scenario = project_path("scenarios/stationary-10.toml");
    let output = adloop_sim(&["run", "--scenario", &scenario, "--policy", "greedy"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown policy `greedy`"));

    let output = adloop_sim(&["run", "--scenario", &scenario, "--policy", "external"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--policy-cmd"));
}

#[test]
fn a_broken_scenario_file_is_reported_with_its_path_and_field() {
    let directory = tempfile::tempdir().unwrap();
    let scenario_path = directory.path().join("broken.toml");
    std::fs::write(
        &scenario_path,
        "name = \"x\"\ncurrency = \"USD\"\ndays = 0\ntotal_daily_budget = 100\n",
    )
    .unwrap();
    let output = adloop_sim(&[
        "run",
        "--scenario",
        scenario_path.to_str().unwrap(),
        "--policy",
        "uniform",
    ]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("broken.toml") && error.contains("days"), "{error}");
}

/// Runs `policy_command` as an external policy on a short stationary run (two days unless `extra` says);
/// returns what adloop-sim said.
fn run_external(policy_command: &str, extra: &[&str]) -> (bool, String) {
    let scenario = project_path("scenarios/stationary-10.toml");
    let mut arguments = vec![
        "run",
        "--scenario",
        &scenario,
        "--policy",
        "external",
        "--policy-cmd",
        policy_command,
        "--seeds",
        "1",
        "--quiet",
    ];
    if !extra.contains(&"--days") {
        arguments.extend_from_slice(&["--days", "2"]);
    }
    arguments.extend_from_slice(extra);
    let output = adloop_sim(&arguments);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_policy_that_never_answers_times_out_naming_the_hour() {
    let started = std::time::Instant::now();
    // Reads its messages and never answers.
    let (succeeded, error) = run_external("cat > /dev/null", &["--policy-timeout-seconds", "0.5"]);
    assert!(!succeeded);
    assert!(
        error.contains("no answer to the decision at hour 24 within 0.5 s"),
        "the first decision is at the end of day one: {error}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "it did not hang"
    );
}

#[test]
fn a_policy_that_prints_something_else_and_exits_is_reported_with_what_it_printed() {
    let (succeeded, error) = run_external("echo 'Traceback: ModuleNotFoundError: numpy'", &[]);
    assert!(!succeeded);
    assert!(error.contains("ModuleNotFoundError: numpy"), "{error}");
    assert!(!error.contains("Broken pipe"), "{error}");
}

#[test]
fn an_answer_that_names_another_hour_stops_the_run_before_answers_go_to_the_wrong_decision() {
    // Each decision is answered twice, naming its hour: the second answer is read for the next decision.
    let (succeeded, error) = run_external(
        r#"while read -r message; do case "$message" in *decide*) hour=$(echo "$message" | sed 's/.*"hour":\([0-9]*\).*/\1/'); echo "{\"budgets\":{},\"hour\":$hour}"; echo "{\"budgets\":{},\"hour\":$hour}";; esac; done"#,
        &["--days", "4"],
    );
    assert!(!succeeded);
    assert!(
        error.contains("its answer to the decision at hour 48 is for hour 24"),
        "{error}"
    );
}

#[test]
fn an_answer_too_long_to_be_one_is_refused_without_being_read_whole() {
    let (succeeded, error) = run_external(
        r#"while read -r message; do case "$message" in *decide*) head -c 17000000 /dev/zero | tr '\0' x; echo;; esac; done"#,
        &[],
    );
    assert!(!succeeded);
    assert!(error.contains("longer than 16 MiB"), "{error}");
}

#[test]
fn a_policy_that_keeps_printing_after_the_run_does_not_hang_it() {
    let started = std::time::Instant::now();
    // Answers every decision, then prints far more than a pipe holds once its input ends.
    let (succeeded, error) = run_external(
        r#"while read -r message; do case "$message" in *decide*) echo '{"budgets":{}}';; esac; done; yes 'a summary line' | head -n 2000000"#,
        &[],
    );
    assert!(succeeded, "{error}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "it did not hang"
    );
}

/// The README's learners table: one row per scenario, the same columns in each; on a scenario without creative
/// features the learners cannot change a single budget, warmed on other worlds or not, so adloop and priors-off
/// tie seed by seed, in regret and in the share of the cost of learning.
#[test]
fn the_learners_quality_table_has_a_row_per_scenario_and_ties_where_there_are_no_features() {
    let output = adloop_sim(&[
        "quality-table",
        "--table",
        "learners",
        "--seeds",
        "2",
        "--scenarios-dir",
        &project_path("scenarios"),
        "--quiet",
    ]);
    let table = stdout_of(&output);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 2 + 6, "{table}");
    let column_count = rows[0].matches('|').count();
    assert!(
        rows.iter().all(|row| row.matches('|').count() == column_count),
        "{table}"
    );
    let featureless = rows.iter().find(|row| row.starts_with("| stationary-10 ")).unwrap();
    assert!(featureless.contains("| 0 [0, 0] | +0.0% |"), "{featureless}");
    // Relative to the cost of learning alone (above the limited oracle) as well, and learners warmed on other
    // worlds have no features to know either.
    let columns: Vec<&str> = featureless.trim_end_matches('|').rsplit('|').map(str::trim).collect();
    assert_eq!(columns[0], "0 [0, 0] (+0.0% / +0.0%)", "{featureless}");
    assert!(columns[1].starts_with("+0.0% / "), "{featureless}");
}

/// The allocator table: a row per scenario, the geometric means under it, and adloop against the peers the
/// main table does not pair (uniform, seed-v1, the limited oracle), paired by seed, a row per scenario too.
#[test]
fn the_allocator_quality_table_pairs_adloop_with_every_peer() {
    let output = adloop_sim(&[
        "quality-table",
        "--table",
        "allocator",
        "--first-seed",
        "1",
        "--seeds",
        "2",
        "--scenarios-dir",
        &project_path("scenarios"),
        "--quiet",
    ]);
    let table = stdout_of(&output);
    let (main, other_peers) = table
        .split_once("adloop against the other peers, paired by seed")
        .expect(&table);
    let scenario_rows = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.starts_with("| ") && !line.starts_with("| scenario"))
            .map(str::to_owned)
            .collect()
    };
    let (main_rows, paired_rows) = (scenario_rows(main), scenario_rows(other_peers));
    assert_eq!(main_rows.len(), 21, "{table}");
    assert_eq!(paired_rows.len(), main_rows.len(), "{table}");
    assert!(main.contains("- over ts-basic-limited's: "), "{table}");
    let stationary = paired_rows
        .iter()
        .find(|row| row.starts_with("| stationary-10 (USD) |"))
        .expect(&table);
    let cells: Vec<&str> = stationary.trim_matches('|').split('|').map(str::trim).collect();
    assert_eq!(cells.len(), 4, "{stationary}");
    let upper_of = |cell: &str| -> f64 {
        let upper = cell.rsplit(", ").next().unwrap().trim_end_matches(']');
        upper.replace(',', "").parse().unwrap()
    };
    assert!(
        upper_of(cells[1]) < 0.0 && upper_of(cells[2]) < 0.0,
        "ten ads of different worth: adloop's regret is clearly below an even split's on two seeds: {stationary}"
    );
}

/// Random worlds: a row per world, a summary per peer, and every world saved as a scenario that `compare`
/// replays to the very same adloop regret the table printed (so a world that looks wrong can be studied).
#[test]
fn random_worlds_print_a_row_per_world_and_save_worlds_that_replay_to_the_same_regret() {
    let directory = tempfile::tempdir().unwrap();
    let output = adloop_sim(&[
        "random-worlds",
        "--first-world",
        "6",
        "--worlds",
        "2",
        "--seeds-per-world",
        "2",
        "--scenarios-out",
        directory.path().to_str().unwrap(),
        "--quiet",
    ]);
    let table = stdout_of(&output);
    let rows: Vec<&str> = table.lines().filter(|line| line.starts_with("| ")).collect();
    assert_eq!(rows.len(), 1 + 2, "{table}");
    for peer in ["uniform", "ts-basic", "ts-basic-limited"] {
        assert!(table.contains(&format!("- over {peer}'s: value ")), "{table}");
    }
    let world = directory.path().join("random-world-6.toml");
    let (_, results) = compare_whole_run(directory.path(), world.to_str().unwrap(), "adloop", 2, "world-6");
    let regret = results["policies"][0]["regret"]["mean"].as_f64().unwrap();
    let adloop_column = 7;
    let row = rows.iter().find(|row| row.starts_with("| 6 |")).unwrap();
    let printed = row.split('|').nth(adloop_column).unwrap().trim();
    let printed_mean: f64 = printed.split(' ').next().unwrap().replace(',', "").parse().unwrap();
    assert!(
        (printed_mean - regret.round()).abs() <= 1.0,
        "table {printed}, replay {regret}"
    );
    let one_world = stdout_of(&adloop_sim(&["random-world", "--world", "6"]));
    assert_eq!(
        one_world,
        std::fs::read_to_string(&world).unwrap(),
        "`random-world` prints the very scenario `--scenarios-out` saved"
    );

    // `paired-worlds` reads the table as printed: a table against itself changed nothing in either world.
    let saved_table = directory.path().join("worlds.md");
    std::fs::write(&saved_table, &table).unwrap();
    let saved = saved_table.to_str().unwrap();
    let paired = stdout_of(&adloop_sim(&["paired-worlds", "--before", saved, "--after", saved]));
    assert!(
        paired.contains("on the same 2 worlds") && paired.contains("): 1.000 [1.000, 1.000]"),
        "{paired}"
    );
    assert!(paired.contains("the same within the tables' rounding: 2"), "{paired}");
}

/// `compare` of `policy` on a saved scenario over its own length, seeds 1..=`seeds`: the printed table and
/// the `--json` results.
fn compare_whole_run(
    directory: &std::path::Path,
    scenario: &str,
    policy: &str,
    seeds: u32,
    name: &str,
) -> (String, serde_json::Value) {
    let json_path = directory.join(format!("{name}.json"));
    let seeds = seeds.to_string();
    let table = stdout_of(&adloop_sim(&[
        "compare",
        "--scenario",
        scenario,
        "--policies",
        policy,
        "--seeds",
        &seeds,
        "--quiet",
        "--json",
        json_path.to_str().unwrap(),
    ]));
    let results = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    (table, results)
}

/// `compare` of `policies` on `scenario` over `seeds` seeds of ten days, with `extra` arguments: the printed
/// table and the `--json` results (written under `directory` as `name`.json).
fn compare_ten_days(
    directory: &std::path::Path,
    scenario: &str,
    policies: &str,
    seeds: u32,
    extra: &[&str],
    name: &str,
) -> (String, serde_json::Value) {
    let json_path = directory.join(format!("{name}.json"));
    let seeds = seeds.to_string();
    let mut arguments = vec![
        "compare",
        "--scenario",
        scenario,
        "--policies",
        policies,
        "--seeds",
        &seeds,
        "--days",
        "10",
        "--quiet",
        "--json",
        json_path.to_str().unwrap(),
    ];
    arguments.extend_from_slice(extra);
    let table = stdout_of(&adloop_sim(&arguments));
    let results = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    (table, results)
}

/// What `run` of adloop on `scenario` says on stderr when `option` names a file holding `config` (which must
/// be refused).
fn refusal_of(directory: &std::path::Path, scenario: &str, option: &str, config: &str) -> String {
    let config_path = directory.join("refused.toml");
    std::fs::write(&config_path, config).unwrap();
    let output = adloop_sim(&[
        "run",
        "--scenario",
        scenario,
        "--policy",
        "adloop",
        option,
        config_path.to_str().unwrap(),
    ]);
    assert!(!output.status.success(), "{config} was accepted");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The regret mean of `policy` in `compare --json` output.
fn regret_of(results: &serde_json::Value, policy: &str) -> f64 {
    results["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|summary| summary["policy"] == policy)
        .unwrap()["regret"]["mean"]
        .as_f64()
        .unwrap()
}

#[test]
fn adloop_runs_under_the_allocator_constants_and_change_limit_it_is_given() {
    let directory = tempfile::tempdir().unwrap();
    let scenario = project_path("scenarios/stationary-10.toml");
    let run = |extra: &[&str], name: &str| {
        compare_ten_days(directory.path(), &scenario, "adloop,oracle-limited", 2, extra, name)
    };
    let (shipped_table, shipped) = run(&[], "shipped");
    assert!(!shipped_table.contains("settings:"), "{shipped_table}");

    // A wider limit lets the limited oracle (and adloop) move faster: the oracle's regret falls.
    let (wide_table, wide) = run(&["--max-change-fraction", "1.0"], "wide");
    assert!(
        wide_table.contains("settings: adloop and oracle-limited keep ±100% a decision"),
        "{wide_table}"
    );
    assert!(
        regret_of(&wide, "oracle-limited") < regret_of(&shipped, "oracle-limited"),
        "±100%: {} against ±50%: {}",
        regret_of(&wide, "oracle-limited"),
        regret_of(&shipped, "oracle-limited")
    );

    // Allocator constants from a file change adloop's decisions (here: a strong population prior and few
    // draws), and are named in the output.
    let config_path = directory.path().join("allocator.toml");
    std::fs::write(
        &config_path,
        "population_ctr_prior_impressions = 100000.0\ndraws_per_ad = 64\n",
    )
    .unwrap();
    let (configured_table, configured) = run(&["--allocator-config", config_path.to_str().unwrap()], "configured");
    assert!(
        configured_table.contains("allocator constants from"),
        "{configured_table}"
    );
    assert_ne!(regret_of(&configured, "adloop"), regret_of(&shipped, "adloop"));
    assert_eq!(
        regret_of(&configured, "oracle-limited"),
        regret_of(&shipped, "oracle-limited"),
        "the oracle reads no allocator constant"
    );
}

#[test]
fn a_misspelt_or_out_of_range_allocator_constant_is_refused_by_name() {
    let directory = tempfile::tempdir().unwrap();
    let scenario = project_path("scenarios/stationary-10.toml");
    let refusal = |config: &str| refusal_of(directory.path(), &scenario, "--allocator-config", config);
    let misspelt = refusal("kill_roas_bellow = 0.2\n");
    assert!(misspelt.contains("kill_roas_bellow"), "{misspelt}");
    let out_of_range = refusal("evidence_test_significance = 1.5\n");
    assert!(out_of_range.contains("evidence_test_significance"), "{out_of_range}");

    let output = adloop_sim(&[
        "run",
        "--scenario",
        &scenario,
        "--policy",
        "adloop",
        "--max-change-fraction",
        "0",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--max-change-fraction"));
}

#[test]
fn adloop_learns_under_the_learner_constants_it_is_given_and_refuses_a_misspelt_one() {
    let directory = tempfile::tempdir().unwrap();
    let scenario = project_path("scenarios/creative-signals.toml");
    let run = |extra: &[&str], name: &str| {
        compare_ten_days(directory.path(), &scenario, "adloop,adloop-priors-off", 1, extra, name)
    };
    let (_, shipped) = run(&[], "shipped");

    // A learner that learns ten times as fast gives other priors, so adloop decides otherwise; the policy
    // without priors runs no learner and does not move.
    let config_path = directory.path().join("learner.toml");
    std::fs::write(&config_path, "[ctr]\nalpha = 1.0\n\n[conversion]\nalpha = 1.0\n").unwrap();
    let (configured_table, configured) = run(&["--learner-config", config_path.to_str().unwrap()], "configured");
    assert!(
        configured_table.contains("learner constants from"),
        "{configured_table}"
    );
    assert_ne!(regret_of(&configured, "adloop"), regret_of(&shipped, "adloop"));
    assert_eq!(
        regret_of(&configured, "adloop-priors-off"),
        regret_of(&shipped, "adloop-priors-off")
    );

    let refusal = |config: &str| refusal_of(directory.path(), &scenario, "--learner-config", config);
    let misspelt = refusal("[conversion]\nalpah = 0.2\n");
    assert!(misspelt.contains("alpah"), "{misspelt}");
    let out_of_range = refusal("[conversion]\nalpha = -1.0\n");
    assert!(out_of_range.contains("conversion.alpha"), "{out_of_range}");
}

/// The root-mean-square errors (learner's, offline fit's) of one head at one day of a `learner-weights` table.
fn weight_errors(table: &str, day: u32, head: &str) -> (f64, f64) {
    let row = table
        .lines()
        .find(|row| row.starts_with(&format!("| {day} | {head} |")))
        .unwrap_or_else(|| panic!("no row for day {day}, {head}: {table}"));
    let cells: Vec<f64> = row.split('|').filter_map(|cell| cell.trim().parse().ok()).collect();
    (cells[1], cells[2])
}

#[test]
fn learner_weights_shows_the_learner_closing_on_the_true_effects_beside_an_offline_fit() {
    let output = adloop_sim(&[
        "learner-weights",
        "--scenario",
        &project_path("scenarios/creative-signals.toml"),
        "--first-seed",
        "1",
        "--seeds",
        "3",
        "--days",
        "3,21",
    ]);
    let table = stdout_of(&output);
    let (early, early_offline) = weight_errors(&table, 3, "CTR");
    let (late, late_offline) = weight_errors(&table, 21, "CTR");
    assert!(late < early * 0.8, "the CTR weights approach the truth: {table}");
    assert!(late_offline < early_offline, "{table}");
    assert!(table.contains("| 21 | conversions per click |"), "{table}");

    let refused = adloop_sim(&[
        "learner-weights",
        "--scenario",
        &project_path("scenarios/creative-signals.toml"),
        "--days",
        "30",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--days: day 30"));
    let one_penalty = adloop_sim(&[
        "learner-weights",
        "--scenario",
        &project_path("scenarios/creative-signals.toml"),
        "--offline-l2",
        "10",
    ]);
    assert!(String::from_utf8_lossy(&one_penalty.stderr).contains("--offline-l2 takes two numbers"));
    let featureless = adloop_sim(&[
        "learner-weights",
        "--scenario",
        &project_path("scenarios/stationary-10.toml"),
    ]);
    assert!(String::from_utf8_lossy(&featureless.stderr).contains("no creative feature"));
}
