//! Random worlds: scenarios drawn from wide ranges rather than written by hand, so a policy can be measured
//! on worlds nobody here chose — a held-out check on every constant tuned on the shipped scenarios.
//!
//! A world number decides everything: the account's currency and budget (and whether Meta's minimum ad-set
//! budget binds), the run's length, one to three ad groups (the first sometimes a hundred ads; later ones
//! launched in waves, some in accounts of their own) with their rates' medians and spreads, and
//! which of Meta's harder behaviours the world has — fatigue with frequency (and recovery with rest), each
//! ad's own weekly rhythm, a weekday pattern common to all ads, heavy-tailed order values, conversions
//! reported up to two weeks late, learning-phase resets after large budget edits, conversion rates tied to
//! CTR (curious clickers who do not buy), ads that change once in mid-run. The ranges below were set
//! before any policy was measured on a random world (minimum budgets, budgets from 20 a day and the
//! hundred-ad groups joined after the first table, the CTR link and mid-run changes after the second, to
//! cover more of the kinds), to span what real
//! accounts show (CTR 0.3–3%,
//! 0.5–8% of clicks converting, CPM 3–30 in US-dollar terms, a median return on spend of 0.7–5 setting the
//! orders' value) and are not tuned.
//!
//! The world is written as scenario TOML and read back through [`Scenario::from_toml`], so every random world
//! passes the same validation as a hand-written one and can be saved and replayed (`adloop-sim compare`).

use std::fmt::Write as _;

use rand::RngExt as _;

use crate::rng::{SimRng, StreamPurpose, stream};
use crate::scenario::{Scenario, ScenarioError};

/// One random world: its scenario, and the TOML it was read from (to save or replay it).
#[derive(Debug, Clone)]
pub struct RandomWorld {
    pub scenario: Scenario,
    pub toml: String,
    /// The harder behaviours this world has, for a one-line summary (`fatigue`, `late-reporting`, ...).
    pub traits: Vec<&'static str>,
}

/// Currencies a world may be in, with how many major units make one US dollar (round figures: a world's
/// prices are drawn anyway) and how often each is drawn.
const CURRENCIES: &[(&str, f64, f64)] = &[
    ("USD", 1.0, 0.55),
    ("EUR", 0.9, 0.15),
    ("JPY", 150.0, 0.15),
    ("IDR", 16_000.0, 0.15),
];

/// The world numbered `world`. Deterministic: the same number gives the same world on every machine.
pub fn random_world(world: u64) -> Result<RandomWorld, ScenarioError> {
    let mut rng = stream(world, StreamPurpose::RandomWorld, 0);
    let mut traits = Vec::new();
    let (currency, per_dollar) = pick_currency(&mut rng);
    let minor_per_major = adloop_money::Currency::parse(currency)
        .map(|currency| currency.minor_units_per_major() as f64)
        .unwrap_or(100.0);
    let dollars = |rng: &mut SimRng, low: f64, high: f64| log_uniform(rng, low, high) * per_dollar * minor_per_major;

    let days = rng.random_range(21..=60_u32);
    let mut text = String::new();
    let _ = writeln!(text, "name = \"random-world-{world}\"");
    let _ = writeln!(
        text,
        "description = \"A world drawn at random (adloop-sim random-worlds, world {world}).\""
    );
    let _ = writeln!(text, "currency = \"{currency}\"");
    let _ = writeln!(text, "days = {days}");
    let _ = writeln!(text, "start_weekday = {}", rng.random_range(0..7_u32));
    let _ = writeln!(
        text,
        "total_daily_budget = {:.0}",
        dollars(&mut rng, 20.0, 5_000.0).round()
    );
    // Meta refuses ad-set budgets below a minimum per currency (about a dollar a day); in a small account
    // spread over many ads it binds.
    if rng.random_bool(0.3) {
        traits.push("minimum-budgets");
        let _ = writeln!(
            text,
            "minimum_daily_budget = {:.0}",
            (per_dollar * minor_per_major).round().max(1.0)
        );
    }

    let fatigue = rng.random_bool(0.5);
    let own_rhythms = rng.random_bool(0.3);
    let heavy_tails = rng.random_bool(0.25);
    write_delivery(&mut text, &mut rng, fatigue, &mut traits);
    write_conversion_delay(&mut text, &mut rng, &mut traits);
    if fatigue {
        traits.push("fatigue");
    }
    if own_rhythms {
        traits.push("own-weekly-rhythms");
    }
    if heavy_tails {
        traits.push("heavy-tailed-orders");
    }

    // Behaviours added after the first tables draw from a stream of their own, so a world without them reads
    // exactly as it did before they existed.
    let mut later_rng = stream(world, StreamPurpose::RandomWorld, 1);
    let ctr_linked_buying = later_rng.random_bool(0.3);
    let changes = later_rng.random_bool(0.25);
    if ctr_linked_buying {
        traits.push("ctr-linked-buying");
    }
    if changes {
        traits.push("changes");
    }

    let group_count = 1 + usize::from(rng.random_bool(0.5)) + usize::from(rng.random_bool(0.25));
    let separate_accounts = group_count > 1 && rng.random_bool(0.3);
    if separate_accounts {
        traits.push("several-accounts");
    }
    for group in 0..group_count {
        // The first group starts the account; later ones may launch in waves.
        let in_waves = group > 0 && rng.random_bool(0.6);
        if in_waves && !traits.contains(&"launches") {
            traits.push("launches");
        }
        let _ = writeln!(text, "\n[[ad_groups]]");
        let _ = writeln!(text, "name_prefix = \"g{}\"", group + 1);
        if separate_accounts {
            let _ = writeln!(text, "account = \"account-{}\"", group + 1);
        }
        let many_ads = group == 0 && rng.random_bool(0.15);
        if many_ads {
            traits.push("many-ads");
        }
        let count = if many_ads {
            rng.random_range(40..=120_u32)
        } else if group == 0 {
            rng.random_range(3..=20_u32)
        } else {
            rng.random_range(2..=10_u32)
        };
        let _ = writeln!(text, "count = {count}");
        if in_waves {
            let every = rng.random_range(4.0..=14.0_f64);
            let _ = writeln!(text, "first_launch_day = {:.1}", rng.random_range(2.0..=every));
            let _ = writeln!(text, "launch_every_days = {every:.1}");
            let _ = writeln!(text, "ads_per_launch = {}", rng.random_range(1..=2_u32));
        }
        // Rates and prices first; the orders' value follows from a return on spend drawn where real
        // accounts sit (a world whose every ad returns 0.05 or 200 times its cost teaches nothing).
        let ctr = log_uniform(&mut rng, 0.003, 0.03);
        let conversion_rate = log_uniform(&mut rng, 0.005, 0.08);
        let cpm = dollars(&mut rng, 3.0, 30.0).round().max(1.0);
        let median_roas = log_uniform(&mut rng, 0.7, 5.0);
        let value_per_conversion = (median_roas * cpm / 1000.0 / (ctr * conversion_rate)).round().max(1.0);
        let ctr_spread = rng.random_range(0.1..=0.5_f64);
        write_log_normal(&mut text, "ctr", &format!("{ctr:.5}"), ctr_spread);
        let conversion_rate_spread = rng.random_range(0.1..=0.6_f64);
        write_log_normal(
            &mut text,
            "conversion_rate",
            &format!("{conversion_rate:.5}"),
            conversion_rate_spread,
        );
        let value_spread = rng.random_range(0.05..=0.5_f64);
        write_log_normal(
            &mut text,
            "value_per_conversion",
            &format!("{value_per_conversion:.0}"),
            value_spread,
        );
        let cpm_spread = rng.random_range(0.05..=0.3_f64);
        write_log_normal(&mut text, "cpm", &format!("{cpm:.0}"), cpm_spread);
        if heavy_tails {
            let _ = writeln!(text, "value_tail_index = {:.2}", rng.random_range(1.5..=3.0_f64));
        }
        if fatigue {
            let _ = writeln!(text, "fatigue_rate = {:.3}", rng.random_range(0.03..=0.3_f64));
            if rng.random_bool(0.5) {
                let _ = writeln!(text, "conversion_fatigue_rate = {:.3}", rng.random_range(0.0..=0.3_f64));
            }
            let _ = writeln!(
                text,
                "audience_size = {:.0}",
                log_uniform(&mut rng, 100_000.0, 3_000_000.0)
            );
        }
        if own_rhythms {
            let _ = writeln!(
                text,
                "weekly_seasonality_log_amplitude = {:.3}",
                rng.random_range(0.1..=0.4_f64)
            );
        }
        if ctr_linked_buying {
            write_ctr_link(&mut text, &mut later_rng);
        }
        if changes {
            write_changes(&mut text, &mut later_rng, days);
        }
    }
    let scenario = Scenario::from_toml(&text)?;
    Ok(RandomWorld {
        scenario,
        toml: text,
        traits,
    })
}

fn pick_currency(rng: &mut SimRng) -> (&'static str, f64) {
    let mut draw = rng.random_range(0.0..1.0_f64);
    for &(code, per_dollar, share) in CURRENCIES {
        if draw < share {
            return (code, per_dollar);
        }
        draw -= share;
    }
    ("USD", 1.0)
}

/// `[delivery]`: a weekday pattern common to all ads, rest that wears fatigue off, learning-phase resets.
fn write_delivery(text: &mut String, rng: &mut SimRng, fatigue: bool, traits: &mut Vec<&'static str>) {
    let weekday_pattern = rng.random_bool(0.3);
    let recovery = fatigue && rng.random_bool(0.5);
    let learning_phase = rng.random_bool(0.25);
    if !(weekday_pattern || recovery || learning_phase) {
        return;
    }
    let _ = writeln!(text, "\n[delivery]");
    if weekday_pattern {
        traits.push("weekday-pattern");
        let amplitude = rng.random_range(0.05..=0.3_f64);
        let peak = rng.random_range(0.0..7.0_f64);
        let multipliers: Vec<String> = (0..7)
            .map(|day| {
                let angle = 2.0 * std::f64::consts::PI * (f64::from(day) - peak) / 7.0;
                format!("{:.3}", 1.0 + amplitude * angle.cos())
            })
            .collect();
        let _ = writeln!(text, "day_of_week_multipliers = [{}]", multipliers.join(", "));
    }
    if recovery {
        let _ = writeln!(
            text,
            "fatigue_recovery_half_life_days = {:.1}",
            rng.random_range(3.0..=14.0_f64)
        );
    }
    if learning_phase {
        traits.push("learning-resets");
        let _ = writeln!(
            text,
            "learning_phase = {{ budget_change_fraction = 0.2, days = {:.1}, cpm_multiplier = {:.2} }}",
            rng.random_range(2.0..=7.0_f64),
            rng.random_range(1.1..=1.5_f64)
        );
    }
}

/// `[conversion_delay]`: half the worlds keep the default reporting; the rest split their conversions over
/// the first day, the first week and the second week.
fn write_conversion_delay(text: &mut String, rng: &mut SimRng, traits: &mut Vec<&'static str>) {
    if rng.random_bool(0.5) {
        return;
    }
    let second_week = rng.random_range(0.0..=0.5_f64);
    let first_day = rng.random_range(0.1..=0.9_f64) * (1.0 - second_week);
    let first_week = 1.0 - second_week - first_day;
    if second_week > 0.15 {
        traits.push("late-reporting");
    }
    let _ = writeln!(text, "\n[conversion_delay]");
    let _ = writeln!(text, "components = [");
    let _ = writeln!(
        text,
        "  {{ share = {first_day:.4}, min_hours = 0.0, max_hours = 24.0 }},"
    );
    let _ = writeln!(
        text,
        "  {{ share = {first_week:.4}, min_hours = 24.0, max_hours = 168.0 }},"
    );
    let _ = writeln!(
        text,
        "  {{ share = {second_week:.4}, min_hours = 168.0, max_hours = 336.0 }},"
    );
    let _ = writeln!(text, "]");
}

/// An ad group whose buying follows its clicking: most often the ads that draw the most clicks sell to the
/// fewest of their clickers (a positive exponent, up to low-CTR ads selling more per impression), sometimes
/// the good clickers are the good buyers.
fn write_ctr_link(text: &mut String, rng: &mut SimRng) {
    let strength = rng.random_range(0.5..=1.5_f64);
    let exponent = if rng.random_bool(0.7) { strength } else { -strength };
    let _ = writeln!(text, "conversion_rate_ctr_exponent = {exponent:.2}");
}

/// An ad group some of whose ads change once after their first week: mostly in who buys (a collapse behind
/// a good history, or a late find), less in who clicks.
fn write_changes(text: &mut String, rng: &mut SimRng, days: u32) {
    let _ = writeln!(
        text,
        "changes = {{ share_of_ads = {:.2}, earliest_day = 7.0, latest_day = {:.1}, ctr_log_sd = {:.2}, \
         conversion_rate_log_sd = {:.2} }}",
        rng.random_range(0.2..=0.6_f64),
        f64::from(days) - 3.0,
        rng.random_range(0.0..=0.5_f64),
        rng.random_range(0.3..=1.0_f64),
    );
}

/// `key = { median = …, log_sd = … }`: an ad group's spread of one rate or price across its ads.
fn write_log_normal(text: &mut String, key: &str, median: &str, log_sd: f64) {
    let _ = writeln!(text, "{key} = {{ median = {median}, log_sd = {log_sd:.3} }}");
}

fn log_uniform(rng: &mut SimRng, low: f64, high: f64) -> f64 {
    (rng.random_range(low.ln()..=high.ln())).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_world_of_the_first_two_hundred_is_a_valid_scenario_and_the_same_twice() {
        for world in 1..=200 {
            let first = random_world(world).unwrap_or_else(|error| panic!("world {world}: {error}"));
            let again = random_world(world).expect("the same world");
            assert_eq!(first.toml, again.toml, "world {world} is not deterministic");
            assert!((3..=140).contains(&first.scenario.ad_count()), "world {world}");
        }
    }

    #[test]
    fn worlds_differ_and_each_hard_behaviour_appears_in_some_of_them() {
        let worlds: Vec<RandomWorld> = (1..=100).map(|world| random_world(world).expect("valid")).collect();
        let distinct: std::collections::BTreeSet<&str> = worlds.iter().map(|world| world.toml.as_str()).collect();
        assert_eq!(distinct.len(), worlds.len());
        for behaviour in [
            "fatigue",
            "own-weekly-rhythms",
            "heavy-tailed-orders",
            "late-reporting",
            "launches",
            "several-accounts",
            "weekday-pattern",
            "learning-resets",
            "minimum-budgets",
            "many-ads",
            "ctr-linked-buying",
            "changes",
        ] {
            let with_it = worlds.iter().filter(|world| world.traits.contains(&behaviour)).count();
            assert!((5..=80).contains(&with_it), "{behaviour} in {with_it} of 100 worlds");
        }
        let currencies: std::collections::BTreeSet<&str> =
            worlds.iter().map(|world| world.scenario.currency.code()).collect();
        assert_eq!(currencies.len(), CURRENCIES.len());
    }
}
