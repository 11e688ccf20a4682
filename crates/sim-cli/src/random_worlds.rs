//! `adloop-sim random-worlds`: adloop and its peers on worlds drawn at random
//! ([`campaign_sim::random_world`]), one markdown row per world and, under the table, how adloop fares over
//! all of them. No constant of adloop was chosen on worlds 1001 and up, so their figures are held out (the
//! seed numbers do not matter: each world draws its own ads from them).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use campaign_sim::policy::PolicySettings;
use campaign_sim::random_world::random_world;
use campaign_sim::{IntervalEstimate, PolicySummary, geometric_mean_ratio, paired_regret_difference};

use crate::quality_table::{interval, summaries_of};

const POLICIES: &[&str] = &["uniform", "ts-basic", "ts-basic-limited", "adloop", "oracle-limited"];
const PEERS: &[&str] = &["uniform", "ts-basic", "ts-basic-limited"];
/// Bounds on one table's work (a hundred worlds of ten seeds take a minute and a half on two cores).
const MAX_WORLDS: u64 = 100_000;
const MAX_SEEDS_PER_WORLD: u64 = 1_000;

/// What to run: worlds `first_world..first_world + worlds`, each on seeds `1..=seeds_per_world`.
pub struct RandomWorldsRun<'a> {
    pub first_world: u64,
    pub worlds: u64,
    pub seeds_per_world: u64,
    pub settings: &'a PolicySettings,
    /// Where to save each world's scenario (`random-world-N.toml`), to replay one with `compare`.
    pub scenarios_out: Option<&'a Path>,
}

/// How adloop compared with one peer on one world.
struct PeerComparison {
    /// adloop's mean total value over the peer's.
    value_ratio: f64,
    /// adloop's regret minus the peer's, paired by seed (`None` if their seeds differ).
    regret_difference: Option<IntervalEstimate>,
}

impl PeerComparison {
    /// −1 adloop's regret clearly lower (paired interval below zero), 1 clearly higher, 0 a tie.
    fn verdict(&self) -> i8 {
        match self.regret_difference {
            Some(difference) if difference.upper_95 < 0.0 => -1,
            Some(difference) if difference.lower_95 > 0.0 => 1,
            _ => 0,
        }
    }
}

/// One world's row of the table and adloop's comparison with each peer (in [`PEERS`] order).
struct MeasuredWorld {
    row: String,
    comparisons: Vec<PeerComparison>,
}

/// The table over `run`'s worlds, measured on as many threads as the machine has cores (each world is
/// independent); `on_world_done` hears each world's number as it finishes, in any order.
pub fn render_random_worlds(run: &RandomWorldsRun<'_>, on_world_done: &mut dyn FnMut(u64)) -> anyhow::Result<String> {
    anyhow::ensure!(
        run.worlds >= 2,
        "--worlds must be at least 2 (the interval resamples worlds)"
    );
    anyhow::ensure!(
        run.seeds_per_world >= 2,
        "--seeds-per-world must be at least 2 (paired intervals need two)"
    );
    anyhow::ensure!(
        run.worlds <= MAX_WORLDS && run.seeds_per_world <= MAX_SEEDS_PER_WORLD,
        "--worlds must be at most {MAX_WORLDS} and --seeds-per-world at most {MAX_SEEDS_PER_WORLD}"
    );
    anyhow::ensure!(
        run.first_world.checked_add(run.worlds).is_some(),
        "--first-world plus --worlds must stay below 2^64"
    );
    let world_numbers: Vec<u64> = (run.first_world..run.first_world + run.worlds).collect();
    let measured = crate::parallel::map_in_order(
        &world_numbers,
        |&world_number| measure_world(world_number, run),
        &mut |position| on_world_done(world_numbers[position]),
    )?;
    let mut text = header();
    let mut comparisons = Vec::with_capacity(measured.len());
    for world in measured {
        text.push_str(&world.row);
        comparisons.push(world.comparisons);
    }
    text.push_str(&summary(&comparisons));
    Ok(text)
}

fn measure_world(world_number: u64, run: &RandomWorldsRun<'_>) -> anyhow::Result<MeasuredWorld> {
    let seeds: Vec<u64> = (1..=run.seeds_per_world).collect();
    let world = random_world(world_number).with_context(|| format!("random world {world_number}"))?;
    if let Some(directory) = run.scenarios_out {
        let path = directory.join(format!("random-world-{world_number}.toml"));
        std::fs::write(&path, &world.toml).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let summaries = summaries_of(&world.scenario, POLICIES, &seeds, run.settings)?;
    let [uniform, ts_basic, ts_basic_limited, adloop, limited_oracle] = summaries.as_slice() else {
        anyhow::bail!("world {world_number}: expected one summary per policy");
    };
    let comparisons: Vec<PeerComparison> = [uniform, ts_basic, ts_basic_limited]
        .iter()
        .map(|peer| compare(&world.scenario, adloop, peer))
        .collect();
    let paired_with_limited = comparisons[2]
        .regret_difference
        .map_or_else(|| "–".to_owned(), interval);
    let traits = if world.traits.is_empty() {
        "plain".to_owned()
    } else {
        world.traits.join(", ")
    };
    let row = format!(
        "| {world_number} | {} ads, {} days, {} | {traits} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {} |\n",
        world.scenario.ad_count(),
        world.scenario.days,
        world.scenario.currency.code(),
        interval(uniform.regret),
        interval(ts_basic.regret),
        interval(ts_basic_limited.regret),
        interval(adloop.regret),
        interval(limited_oracle.regret),
        comparisons[1].value_ratio,
        comparisons[2].value_ratio,
        paired_with_limited,
    );
    Ok(MeasuredWorld { row, comparisons })
}

fn compare(scenario: &campaign_sim::Scenario, adloop: &PolicySummary, peer: &PolicySummary) -> PeerComparison {
    PeerComparison {
        value_ratio: adloop.total_value.mean / peer.total_value.mean,
        regret_difference: paired_regret_difference(scenario, adloop, peer).map(|paired| paired.regret_difference),
    }
}

fn header() -> String {
    let columns = [
        "world",
        "size",
        "what it has",
        "uniform regret",
        "ts-basic regret",
        "ts-basic-limited regret",
        "adloop regret",
        "limited oracle regret",
        "adloop value / ts-basic's",
        "adloop value / ts-basic-limited's",
        "adloop − ts-basic-limited regret, paired",
    ];
    format!("| {} |\n|{}\n", columns.join(" | "), "---|".repeat(columns.len()))
}

/// Under the table, per peer: the geometric mean over worlds of adloop's total value over the peer's, with
/// an interval from resampling the worlds, and in how many worlds adloop's regret was clearly lower, tied or
/// clearly higher (paired intervals).
fn summary(comparisons: &[Vec<PeerComparison>]) -> String {
    let mut text = format!(
        "\nOver the {} worlds, adloop's total value over each peer's (geometric mean, 95% interval from \
         resampling the worlds) and the worlds where adloop's regret was clearly lower / tied / clearly higher \
         (paired 95% interval):\n\n",
        comparisons.len()
    );
    for (position, peer) in PEERS.iter().enumerate() {
        let ratios: Vec<f64> = comparisons.iter().map(|world| world[position].value_ratio).collect();
        let count = |verdict: i8| {
            comparisons
                .iter()
                .filter(|world| world[position].verdict() == verdict)
                .count()
        };
        let value = geometric_mean_ratio(&ratios).map_or_else(
            || "–".to_owned(),
            |ratio| format!("{:.3} [{:.3}, {:.3}]", ratio.mean, ratio.lower_95, ratio.upper_95),
        );
        let _ = writeln!(
            text,
            "- over {peer}'s: value {value}; regret lower in {}, tied in {}, higher in {}",
            count(-1),
            count(0),
            count(1)
        );
    }
    text
}
