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

use crate::quality_table::{interval, markdown_head, summaries_of};

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

/// One world's row of the table, what it has, and adloop's comparison with each peer (in [`PEERS`] order).
struct MeasuredWorld {
    row: String,
    traits: Vec<String>,
    comparisons: Vec<PeerComparison>,
}

/// The peer the by-kind summary compares adloop with: the textbook sampler, the peer issue 12 names.
const BY_KIND_PEER: usize = 1;

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
    let mut traits = Vec::with_capacity(measured.len());
    for world in measured {
        text.push_str(&world.row);
        comparisons.push(world.comparisons);
        traits.push(world.traits);
    }
    text.push_str(&summary(&comparisons));
    text.push_str(&by_kind(&traits, &comparisons));
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
    let traits: Vec<String> = if world.traits.is_empty() {
        vec!["plain".to_owned()]
    } else {
        world.traits.iter().map(|name| name.to_string()).collect()
    };
    let traits_text = traits.join(", ");
    let row = format!(
        "| {world_number} | {} ads, {} days, {} | {traits_text} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {} |\n",
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
    Ok(MeasuredWorld {
        row,
        traits,
        comparisons,
    })
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
    markdown_head(&columns)
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

/// Under the summary, per kind of world (each trait a world generator gave some worlds, most valuable first):
/// over the worlds that have it, the geometric mean of adloop's total value over ts-basic's with an interval
/// from resampling those worlds, and in how many adloop's regret was clearly lower / tied / clearly higher.
/// A world has several traits, so it counts once under each.
fn by_kind(traits: &[Vec<String>], comparisons: &[Vec<PeerComparison>]) -> String {
    debug_assert_eq!(traits.len(), comparisons.len());
    let mut worlds_by_kind: std::collections::BTreeMap<&str, Vec<usize>> = std::collections::BTreeMap::new();
    for (position, world_traits) in traits.iter().enumerate() {
        for name in world_traits {
            worlds_by_kind.entry(name.as_str()).or_default().push(position);
        }
    }
    let mut kinds: Vec<(&str, Vec<f64>, [usize; 3])> = worlds_by_kind
        .into_iter()
        .map(|(kind, positions)| {
            let ratios: Vec<f64> = positions
                .iter()
                .map(|&position| comparisons[position][BY_KIND_PEER].value_ratio)
                .collect();
            let mut verdicts = [0; 3];
            for &position in &positions {
                let verdict = comparisons[position][BY_KIND_PEER].verdict();
                verdicts[usize::try_from(verdict + 1).unwrap_or(1)] += 1;
            }
            (kind, ratios, verdicts)
        })
        .collect();
    let log_mean = |ratios: &[f64]| ratios.iter().map(|ratio| ratio.ln()).sum::<f64>() / ratios.len() as f64;
    kinds.sort_by(|left, right| {
        log_mean(&right.1)
            .total_cmp(&log_mean(&left.1))
            .then(left.0.cmp(right.0))
    });
    let mut text = format!(
        "\nBy kind, adloop's total value over {}'s (geometric mean over the worlds that have it, 95% interval \
         from resampling them) and the worlds where adloop's regret was clearly lower / tied / clearly higher:\n\n",
        PEERS[BY_KIND_PEER]
    );
    for (kind, ratios, [lower, tied, higher]) in kinds {
        let value = geometric_mean_ratio(&ratios).map_or_else(
            || format!("{:.3}", log_mean(&ratios).exp()),
            |ratio| format!("{:.3} [{:.3}, {:.3}]", ratio.mean, ratio.lower_95, ratio.upper_95),
        );
        let worlds = match ratios.len() {
            1 => "1 world".to_owned(),
            count => format!("{count} worlds"),
        };
        let _ = writeln!(text, "- {kind} ({worlds}): {value}; {lower} / {tied} / {higher}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn against_ts_basic(value_ratio: f64, regret_difference: (f64, f64)) -> Vec<PeerComparison> {
        let peer = |value_ratio: f64, (lower_95, upper_95): (f64, f64)| PeerComparison {
            value_ratio,
            regret_difference: Some(IntervalEstimate {
                mean: (lower_95 + upper_95) / 2.0,
                lower_95,
                upper_95,
            }),
        };
        vec![
            peer(2.0, (-1.0, -0.5)),
            peer(value_ratio, regret_difference),
            peer(1.0, (-1.0, 1.0)),
        ]
    }

    #[test]
    fn each_kind_reads_its_own_worlds_against_ts_basic_most_valuable_first() {
        let traits = vec![
            vec!["fatigue".to_owned(), "launches".to_owned()],
            vec!["fatigue".to_owned()],
            vec!["launches".to_owned()],
        ];
        let comparisons = vec![
            against_ts_basic(1.2, (-3.0, -1.0)),
            against_ts_basic(0.8, (1.0, 2.0)),
            against_ts_basic(1.5, (-1.0, 1.0)),
        ];
        let text = by_kind(&traits, &comparisons);
        let launches = text.find("- launches (2 worlds): 1.342").expect(&text);
        let fatigue = text.find("- fatigue (2 worlds): 0.980").expect(&text);
        assert!(launches < fatigue, "most valuable first: {text}");
        assert!(
            text.contains("(2 worlds): 1.342 [") && text.contains("; 1 / 1 / 0"),
            "{text}"
        );
        assert!(
            text.contains("; 1 / 0 / 1"),
            "fatigue: one clearly lower, one clearly higher: {text}"
        );
    }
}
