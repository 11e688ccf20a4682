//! `adloop-sim paired-worlds`: how adloop's value changed between two `random-worlds` tables of the same
//! worlds — one with adloop as shipped, one with a change (`--allocator-config`, or a build of a branch) —
//! paired world by world. Both tables run every policy on the same seeds, so ts-basic's value is the same in
//! both, and adloop's value over ts-basic's after the change, over the same before it, is adloop's own change
//! on that world. Over the worlds: the geometric mean of those changes with a 95% interval from resampling
//! the worlds (the allocator notebook's "paired" readings), how many worlds moved each way, and the worlds that
//! moved most (to trace on a development set, never on a held-out one).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use campaign_sim::geometric_mean_ratio;

/// The column of a `random-worlds` table this reads.
const VALUE_COLUMN: &str = "adloop value / ts-basic's";
/// The table prints ratios to three decimals: a world whose ratio moved less than that rounding is unchanged.
const UNCHANGED_WITHIN: f64 = 0.0015;
/// A world where adloop made less than this share of ts-basic's value counts as one it is behind in.
const BEHIND_TS_BASIC_BELOW: f64 = 0.95;
/// How many of the worlds that moved most, each way, the report names.
const WORLDS_NAMED: usize = 5;

/// What a `random-worlds` table said of one world.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldReading {
    /// The table's "what it has" column (`fatigue, launches`, ...).
    pub what_it_has: String,
    /// adloop's total value over ts-basic's.
    pub value_over_ts_basic: f64,
}

/// Why a table could not be read; `table` is "before" or "after".
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PairedWorldsError {
    #[error(
        "the {table} table has no `| world |` header with a column `{VALUE_COLUMN}`: is it `adloop-sim random-worlds` output?"
    )]
    NoHeader { table: &'static str },
    #[error("the {table} table's row for world {world} has no number in `{VALUE_COLUMN}`: {cell:?}")]
    BadValue {
        table: &'static str,
        world: u64,
        cell: String,
    },
    #[error("the {table} table names world {world} twice")]
    RepeatedWorld { table: &'static str, world: u64 },
    #[error("world {world} is in the {present} table only: both tables must cover the same worlds")]
    UnpairedWorld { world: u64, present: &'static str },
    #[error("the tables pair {worlds} worlds; the interval needs at least 2")]
    TooFewWorlds { worlds: usize },
}

/// The worlds of one `random-worlds` table (markdown, as the command prints it, notes above it allowed),
/// by world number.
pub fn read_random_worlds_table(
    text: &str,
    table: &'static str,
) -> Result<BTreeMap<u64, WorldReading>, PairedWorldsError> {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().to_owned())
            .collect()
    };
    let mut lines = text.lines();
    let header = lines
        .by_ref()
        .map(cells)
        .find(|header| header.first().is_some_and(|first| first == "world"))
        .ok_or(PairedWorldsError::NoHeader { table })?;
    let value_column = header
        .iter()
        .position(|name| name == VALUE_COLUMN)
        .ok_or(PairedWorldsError::NoHeader { table })?;
    let what_it_has_column = header.iter().position(|name| name == "what it has");
    let mut worlds = BTreeMap::new();
    for row in lines.filter(|line| line.trim_start().starts_with('|')).map(cells) {
        let Some(Ok(world)) = row.first().map(|first| first.parse::<u64>()) else {
            continue; // the separator line
        };
        let cell = row.get(value_column).cloned().unwrap_or_default();
        let value_over_ts_basic = cell
            .parse::<f64>()
            .ok()
            .filter(|value| value.is_finite() && *value > 0.0)
            .ok_or_else(|| PairedWorldsError::BadValue {
                table,
                world,
                cell: cell.clone(),
            })?;
        let what_it_has = what_it_has_column
            .and_then(|column| row.get(column))
            .cloned()
            .unwrap_or_default();
        let reading = WorldReading {
            what_it_has,
            value_over_ts_basic,
        };
        if worlds.insert(world, reading).is_some() {
            return Err(PairedWorldsError::RepeatedWorld { table, world });
        }
    }
    Ok(worlds)
}

/// The report on adloop's change from the `before` table to the `after` table (both `random-worlds` output).
pub fn render_paired_worlds(before: &str, after: &str) -> Result<String, PairedWorldsError> {
    let before = read_random_worlds_table(before, "before")?;
    let after = read_random_worlds_table(after, "after")?;
    if let Some(world) = before.keys().find(|world| !after.contains_key(world)) {
        return Err(PairedWorldsError::UnpairedWorld {
            world: *world,
            present: "before",
        });
    }
    if let Some(world) = after.keys().find(|world| !before.contains_key(world)) {
        return Err(PairedWorldsError::UnpairedWorld {
            world: *world,
            present: "after",
        });
    }
    // (world, adloop's value after over before, what the world has), in world order.
    let changes: Vec<(u64, f64, &str)> = before
        .iter()
        .map(|(world, was)| {
            let now = &after[world];
            (
                *world,
                now.value_over_ts_basic / was.value_over_ts_basic,
                was.what_it_has.as_str(),
            )
        })
        .collect();
    let ratios: Vec<f64> = changes.iter().map(|(_, ratio, _)| *ratio).collect();
    let overall = geometric_mean_ratio(&ratios).ok_or(PairedWorldsError::TooFewWorlds { worlds: ratios.len() })?;
    let gained = ratios.iter().filter(|ratio| ratio.ln() > UNCHANGED_WITHIN).count();
    let lost = ratios.iter().filter(|ratio| ratio.ln() < -UNCHANGED_WITHIN).count();
    let behind = |readings: &BTreeMap<u64, WorldReading>| {
        readings
            .values()
            .filter(|reading| reading.value_over_ts_basic < BEHIND_TS_BASIC_BELOW)
            .count()
    };
    let mut text = format!(
        "adloop's value after over before on the same {} worlds (each world's adloop value over ts-basic's, after \
         over before; geometric mean, 95% interval from resampling the worlds): {:.3} [{:.3}, {:.3}]\n\n",
        ratios.len(),
        overall.mean,
        overall.lower_95,
        overall.upper_95
    );
    let _ = writeln!(
        text,
        "- worlds with more value: {gained}, with less: {lost}, the same within the tables' rounding: {}",
        ratios.len() - gained - lost
    );
    let _ = writeln!(
        text,
        "- worlds where adloop made less than {BEHIND_TS_BASIC_BELOW} of ts-basic's value: {} before, {} after",
        behind(&before),
        behind(&after)
    );
    let mut by_change = changes.clone();
    by_change.sort_by(|left, right| left.1.total_cmp(&right.1).then(left.0.cmp(&right.0)));
    let name = |(world, ratio, what_it_has): &(u64, f64, &str)| format!("{world} ×{ratio:.3} ({what_it_has})");
    let falls: Vec<String> = by_change
        .iter()
        .take(WORLDS_NAMED)
        .filter(|change| change.1.ln() < -UNCHANGED_WITHIN)
        .map(name)
        .collect();
    let gains: Vec<String> = by_change
        .iter()
        .rev()
        .take(WORLDS_NAMED)
        .filter(|change| change.1.ln() > UNCHANGED_WITHIN)
        .map(name)
        .collect();
    let listed = |names: Vec<String>| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let _ = writeln!(text, "- the largest falls: {}", listed(falls));
    let _ = writeln!(text, "- the largest gains: {}", listed(gains));
    text.push_str(&change_by_kind(&changes));
    Ok(text)
}

/// Per kind of world (each name in the tables' "what it has" column), the geometric mean of adloop's change
/// over the worlds that have it, with their count; the kinds that lost most first. A world has several kinds,
/// so it counts under each.
fn change_by_kind(changes: &[(u64, f64, &str)]) -> String {
    let mut by_kind: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (_, ratio, what_it_has) in changes {
        for kind in what_it_has.split(',').map(str::trim).filter(|kind| !kind.is_empty()) {
            by_kind.entry(kind).or_default().push(*ratio);
        }
    }
    let mut kinds: Vec<(&str, f64, usize)> = by_kind
        .into_iter()
        .map(|(kind, ratios)| {
            let log_mean = ratios.iter().map(|ratio| ratio.ln()).sum::<f64>() / ratios.len() as f64;
            (kind, log_mean.exp(), ratios.len())
        })
        .collect();
    kinds.sort_by(|left, right| left.1.total_cmp(&right.1).then(left.0.cmp(right.0)));
    let listed: Vec<String> = kinds
        .iter()
        .map(|(kind, change, worlds)| format!("{kind} ×{change:.3} ({worlds})"))
        .collect();
    format!(
        "- by kind (geometric mean over the worlds that have it, how many): {}\n",
        listed.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `random-worlds` table of `(world, what it has, adloop value over ts-basic's)` rows, with the
    /// command's other columns filled in and a note above it, as `--allocator-config` prints one.
    fn table(rows: &[(u64, &str, &str)]) -> String {
        let mut text = "adloop's constants from exp.toml\n\
            | world | size | what it has | uniform regret | ts-basic regret | ts-basic-limited regret | adloop regret \
            | limited oracle regret | adloop value / ts-basic's | adloop value / ts-basic-limited's \
            | adloop − ts-basic-limited regret, paired |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
            .to_owned();
        for (world, what_it_has, value) in rows {
            let _ = writeln!(
                text,
                "| {world} | 5 ads, 30 days, USD | {what_it_has} | 1 [0, 2] | 1 [0, 2] | 1 [0, 2] | 1 [0, 2] \
                 | 1 [0, 2] | {value} | 1.000 | -1 [-2, 0] |"
            );
        }
        text.push_str("\nOver the 3 worlds, adloop's total value over each peer's ...\n");
        text
    }

    #[test]
    fn each_world_is_paired_with_itself_and_the_movers_are_named() {
        let before = table(&[(1, "fatigue", "1.000"), (2, "plain", "0.900"), (3, "launches", "1.200")]);
        let after = table(&[(1, "fatigue", "1.100"), (2, "plain", "0.900"), (3, "launches", "0.960")]);
        let report = render_paired_worlds(&before, &after).unwrap();
        // (1.1 × 1.0 × 0.8)^(1/3) = 0.958.
        assert!(report.contains("on the same 3 worlds"), "{report}");
        assert!(report.contains("): 0.958 ["), "{report}");
        assert!(
            report.contains("more value: 1, with less: 1, the same within the tables' rounding: 1"),
            "{report}"
        );
        assert!(report.contains("ts-basic's value: 1 before, 1 after"), "{report}");
        assert!(report.contains("the largest falls: 3 ×0.800 (launches)"), "{report}");
        assert!(report.contains("the largest gains: 1 ×1.100 (fatigue)"), "{report}");
        assert!(
            report.contains("how many): launches ×0.800 (1), plain ×1.000 (1), fatigue ×1.100 (1)"),
            "{report}"
        );
    }

    #[test]
    fn tables_of_different_worlds_or_without_values_are_refused_by_name() {
        let before = table(&[(1, "plain", "1.000"), (2, "plain", "1.000")]);
        let other_worlds = table(&[(1, "plain", "1.000"), (3, "plain", "1.000")]);
        assert_eq!(
            render_paired_worlds(&before, &other_worlds),
            Err(PairedWorldsError::UnpairedWorld {
                world: 2,
                present: "before"
            })
        );
        let no_value = table(&[(1, "plain", "1.000"), (2, "plain", "–")]);
        assert_eq!(
            render_paired_worlds(&before, &no_value),
            Err(PairedWorldsError::BadValue {
                table: "after",
                world: 2,
                cell: "–".to_owned()
            })
        );
        assert_eq!(
            render_paired_worlds("| scenario | adloop regret |\n", &before),
            Err(PairedWorldsError::NoHeader { table: "before" })
        );
        let one = table(&[(1, "plain", "1.000")]);
        assert_eq!(
            render_paired_worlds(&one, &one),
            Err(PairedWorldsError::TooFewWorlds { worlds: 1 })
        );
    }
}
