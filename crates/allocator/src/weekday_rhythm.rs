//! Each ad's own weekday rhythm. Buyers of one product shop on Sundays, of another on weekdays; an ad whose
//! clicks peak on its own day is worth more on that day than its week's average says, and less on the others.
//! The effects are read from the account's daily reports: each day's clicks against what the week centred on
//! it predicts, gathered by weekday. A rhythm every ad of the account shares (a weekday pattern of the market)
//! changes no ad's standing and is left out: each ad's effect is taken beyond the median of the other ads' on
//! the same weekday. The effects are shrunk towards none by how much the account's ads really differ by weekday
//! beyond their noise (empirical Bayes, as the population prior is): where no ad keeps a rhythm of its own,
//! every multiplier is 1. Callers that read the reports run it only where `enabled` (off by default).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::delivery_curve::{DailyDelivery, DeliveryHistory};

/// What the estimate needs of an ad's days (`AllocatorConfig::weekday_rhythm`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeekdayRhythmSettings {
    /// Whether the callers that read the daily reports (the autopilot, the simulator's policy) estimate the
    /// rhythms at all. Off: measured on held-out worlds and seeds it moved nothing beyond its noise (the
    /// allocator's notebook, `allocator-18`), and a setting that does not measurably help stays off, as the
    /// original's CTR→ROAS blend does.
    pub enabled: bool,
    /// Fewest finished days with their whole week around them (three days either side) before an ad's rhythm
    /// is read: two weeks' worth, so every weekday is seen twice and one unusual day is not a rhythm. Chosen
    /// before any measurement.
    pub min_days: usize,
}

impl Default for WeekdayRhythmSettings {
    fn default() -> Self {
        WeekdayRhythmSettings {
            enabled: false,
            min_days: 14,
        }
    }
}

const WEEKDAYS: usize = 7;
const HALF_WEEK: u32 = 3;

/// The largest weekday effect read, as a factor either way: a day worth more than twice or less than half the
/// ad's week is more likely a change than a rhythm, and the change tests speak for those.
const LARGEST_WEEKDAY_FACTOR: f64 = 2.0;

/// Fewest ads with readable days before the others' weekday pattern is taken out of an ad's own: with two,
/// one ad's rhythm would be the other's common one (as `AllocatorConfig::account_estimate_min_ads`).
const FEWEST_ADS_FOR_A_COMMON_PATTERN: usize = 3;

/// One finished day as the estimate reads it: its weekday, the log of its clicks over what the week around it
/// predicts, and that log's sampling variance from the clicks alone (Poisson).
#[derive(Debug, Clone, Copy)]
struct DayReading {
    weekday: usize,
    log_ratio: f64,
    click_variance: f64,
}

/// An ad's days as readings: each day's clicks against the clicks the week around it predicts (its impressions
/// at the CTR of the seven days centred on it, which hold every weekday once, so the week's rhythm cancels and
/// only the trend is left): a CTR tiring or recovering over the weeks read is not a rhythm. Only days with
/// their whole week around them count; `None` with fewer than `min_days` such days or a weekday never seen.
fn day_readings(days: &[DailyDelivery], settings: &WeekdayRhythmSettings) -> Option<Vec<DayReading>> {
    let by_day: BTreeMap<u32, (f64, f64)> = days
        .iter()
        .filter(|day| day.impressions > 0)
        .map(|day| (day.day, (day.impressions as f64, day.clicks as f64)))
        .collect();
    let mut readings = Vec::new();
    for (&day, &(impressions, clicks)) in &by_day {
        let first = day.saturating_sub(HALF_WEEK);
        let week: Vec<(f64, f64)> = (first..=day + HALF_WEEK)
            .filter_map(|around| by_day.get(&around).copied())
            .collect();
        // A day without its whole week around it (the first and last three, or one beside a day without
        // delivery) would compare it with a part of the week that does not hold every weekday.
        if week.len() < WEEKDAYS {
            continue;
        }
        let week_impressions: f64 = week.iter().map(|(impressions, _)| impressions).sum();
        let week_clicks: f64 = week.iter().map(|(_, clicks)| clicks).sum();
        if week_clicks <= 0.0 {
            continue;
        }
        let expected_clicks = impressions * week_clicks / week_impressions;
        readings.push(DayReading {
            weekday: day as usize % WEEKDAYS,
            log_ratio: log_ratio(clicks, expected_clicks),
            click_variance: 1.0 / (expected_clicks + 0.5),
        });
    }
    let every_weekday_seen = (0..WEEKDAYS).all(|weekday| readings.iter().any(|reading| reading.weekday == weekday));
    (readings.len() >= settings.min_days.max(WEEKDAYS) && every_weekday_seen).then_some(readings)
}

/// How much a day's CTR wanders beyond its clicks' noise, the same for every day of the account (an auction's
/// day, a news day): the scatter of each ad's days around their weekday's mean, less what the clicks explain
/// (method of moments over the account's ads). Without it a day-level wobble larger than the clicks' noise
/// reads as a rhythm.
fn day_level_variance(ads: &[Option<Vec<DayReading>>]) -> f64 {
    let (mut scatter, mut explained, mut degrees_of_freedom) = (0.0, 0.0, 0.0);
    for readings in ads.iter().flatten() {
        for weekday in 0..WEEKDAYS {
            let days: Vec<&DayReading> = readings.iter().filter(|reading| reading.weekday == weekday).collect();
            let count = days.len() as f64;
            if count < 2.0 {
                continue;
            }
            let mean = days.iter().map(|day| day.log_ratio).sum::<f64>() / count;
            scatter += days.iter().map(|day| (day.log_ratio - mean).powi(2)).sum::<f64>();
            explained += days.iter().map(|day| day.click_variance).sum::<f64>() * (1.0 - 1.0 / count);
            degrees_of_freedom += count - 1.0;
        }
    }
    if degrees_of_freedom <= 0.0 {
        return 0.0;
    }
    ((scatter - explained) / degrees_of_freedom).max(0.0)
}

/// An ad's effect on each weekday and its variance: the mean of that weekday's readings, each weighted by the
/// inverse of its whole variance (its clicks' and the account's day-level one).
fn weekday_effects(readings: &[DayReading], day_variance: f64) -> [(f64, f64); WEEKDAYS] {
    std::array::from_fn(|weekday| {
        let (weighted_sum, total_weight) =
            readings
                .iter()
                .filter(|reading| reading.weekday == weekday)
                .fold((0.0, 0.0), |(sum, weights), reading| {
                    let weight = 1.0 / (reading.click_variance + day_variance);
                    (sum + weight * reading.log_ratio, weights + weight)
                });
        (weighted_sum / total_weight, 1.0 / total_weight)
    })
}

/// Each ad's CTR multiplier over the coming day from its own weekday rhythm, for the ads of one account
/// (their finished days in `histories`); the coming day is the 24 hours from `now_day` (the account's
/// calendar, in days since 1970-01-01 with the fraction of the day gone: one weekday, or two). `None` for every
/// ad while `settings.enabled` is off, and for an ad with too few days; 1 for every ad when the account's ads
/// show no rhythms of their own beyond their noise.
pub fn estimate_weekday_ctr_multipliers(
    histories: &[DeliveryHistory],
    now_day: f64,
    settings: &WeekdayRhythmSettings,
) -> Vec<Option<f64>> {
    if !settings.enabled {
        return vec![None; histories.len()];
    }
    let coming_weekday_shares = coming_weekday_shares(now_day);
    let readings: Vec<Option<Vec<DayReading>>> = histories
        .iter()
        .map(|history| day_readings(&history.days, settings))
        .collect();
    let day_variance = day_level_variance(&readings);
    // Each readable ad's log effect by weekday and its variance. The effects are taken against their own mean
    // over the seven weekdays: the week around a day weighs its days by their impressions, so an ad whose
    // budget already follows its rhythm has a week that leans to its busy days, and every weekday would read
    // low against it.
    let effects: Vec<Option<[(f64, f64); WEEKDAYS]>> = readings
        .iter()
        .map(|ad| {
            let raw = weekday_effects(ad.as_ref()?, day_variance);
            let week_mean = raw.iter().map(|(effect, _)| effect).sum::<f64>() / WEEKDAYS as f64;
            Some(raw.map(|(effect, variance)| (effect - week_mean, variance)))
        })
        .collect();
    let own_effects = effects_beyond_the_others_median(&effects);
    // How much the own effects vary beyond their noise (method of moments over every ad and weekday).
    let (excess, count) = own_effects
        .iter()
        .flatten()
        .flat_map(|effects| effects.iter())
        .fold((0.0, 0usize), |(sum, count), (effect, variance)| {
            (sum + effect * effect - variance, count + 1)
        });
    let between_variance = if count > 0 {
        (excess / count as f64).max(0.0)
    } else {
        0.0
    };
    own_effects
        .iter()
        .map(|effects| {
            let effects = effects.as_ref()?;
            let coming_effect: f64 = effects
                .iter()
                .zip(coming_weekday_shares)
                .map(|((effect, variance), share)| {
                    let kept = between_variance / (between_variance + variance);
                    share * kept * effect
                })
                .sum();
            let largest = LARGEST_WEEKDAY_FACTOR.ln();
            Some(coming_effect.clamp(-largest, largest).exp())
        })
        .collect()
}

/// Whether a weekday multiplier moves its ad enough to be said (in its reason, in the autopilot's summary).
pub fn weekday_multiplier_is_worth_saying(multiplier: f64) -> bool {
    (multiplier - 1.0).abs() >= 0.01
}

/// Each readable ad's weekday effects beyond the other ads' common one: the median of the other readable ads'
/// effects on that weekday, so that a few ads with rhythms of their own do not lend one to the rest. With
/// fewer than `FEWEST_ADS_FOR_A_COMMON_PATTERN` readable ads the effects are kept as they are.
fn effects_beyond_the_others_median(effects: &[Option<[(f64, f64); WEEKDAYS]>]) -> Vec<Option<[(f64, f64); WEEKDAYS]>> {
    let readable: Vec<&[(f64, f64); WEEKDAYS]> = effects.iter().flatten().collect();
    if readable.len() < FEWEST_ADS_FOR_A_COMMON_PATTERN {
        return effects.to_vec();
    }
    let other_count = (readable.len() - 1) as f64;
    // Per weekday: each readable ad's common effect (in the order of `readable`) and its variance.
    let common_by_weekday: [Vec<(f64, f64)>; WEEKDAYS] = std::array::from_fn(|weekday| {
        let weekday_effects: Vec<f64> = readable.iter().map(|ad| ad[weekday].0).collect();
        let total_variance: f64 = readable.iter().map(|ad| ad[weekday].1).sum();
        medians_leaving_each_out(&weekday_effects)
            .into_iter()
            .zip(readable.iter())
            .map(|(common, ad)| {
                let mean_other_variance = (total_variance - ad[weekday].1) / other_count;
                // A median's variance is about π/2 times a mean's.
                (common, std::f64::consts::FRAC_PI_2 * mean_other_variance / other_count)
            })
            .collect()
    });
    let mut readable_position = 0;
    effects
        .iter()
        .map(|ad_effects| {
            let ad_effects = ad_effects.as_ref()?;
            let position = readable_position;
            readable_position += 1;
            Some(std::array::from_fn(|weekday| {
                let (effect, variance) = ad_effects[weekday];
                let (common, common_variance) = common_by_weekday[weekday][position];
                (effect - common, variance + common_variance)
            }))
        })
        .collect()
}

/// For each of `values` (at least two), the median of all the others (the mean of the middle two for an even
/// count): one sort, then each value's leave-one-out median read off the sorted order.
fn medians_leaving_each_out(values: &[f64]) -> Vec<f64> {
    debug_assert!(values.len() >= 2);
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&left, &right| values[left].total_cmp(&values[right]));
    let sorted: Vec<f64> = order.iter().map(|&index| values[index]).collect();
    let remaining = values.len() - 1;
    let middle = remaining / 2;
    let mut medians = vec![0.0; values.len()];
    for (left_out, &index) in order.iter().enumerate() {
        // The k-th smallest of the others: the sorted values with position `left_out` taken away.
        let kth_of_others = |k: usize| if k < left_out { sorted[k] } else { sorted[k + 1] };
        medians[index] = if remaining.is_multiple_of(2) {
            (kth_of_others(middle - 1) + kth_of_others(middle)) / 2.0
        } else {
            kth_of_others(middle)
        };
    }
    medians
}

/// The share of the 24 hours from `now_day` that falls on each weekday (the day number modulo 7).
fn coming_weekday_shares(now_day: f64) -> [f64; WEEKDAYS] {
    let mut shares = [0.0; WEEKDAYS];
    if !now_day.is_finite() || now_day < 0.0 {
        return shares;
    }
    let first_day = now_day.floor();
    let first_share = 1.0 - (now_day - first_day);
    let weekday_of = |day: f64| (day as u64 % WEEKDAYS as u64) as usize;
    shares[weekday_of(first_day)] += first_share;
    shares[weekday_of(first_day + 1.0)] += 1.0 - first_share;
    shares
}

/// ln(observed / expected), both kept off zero by half a click.
fn log_ratio(observed: f64, expected: f64) -> f64 {
    ((observed + 0.5) / (expected + 0.5)).ln()
}

#[cfg(test)]
mod tests {
    use adloop_money::MinorUnits;

    use super::*;

    /// An ad's 28 finished days (days 0..28) of 20,000 impressions, its CTR on day `d` given by `ctr_on(d)`;
    /// clicks are rounded, so the days carry no noise beyond that.
    fn history(ctr_on: impl Fn(u32) -> f64) -> DeliveryHistory {
        let days = (0..28)
            .map(|day| DailyDelivery {
                day,
                spend: MinorUnits(20_000),
                impressions: 20_000,
                clicks: (20_000.0 * ctr_on(day)).round() as u64,
            })
            .collect();
        DeliveryHistory {
            days,
            lifetime_impressions: 560_000,
            frequency: 1.5,
        }
    }

    fn rhythm(peak_day: u32, log_amplitude: f64) -> impl Fn(u32) -> f64 {
        move |day| {
            let phase = std::f64::consts::TAU * (f64::from(day) - f64::from(peak_day)) / 7.0;
            0.01 * (log_amplitude * phase.cos()).exp()
        }
    }

    /// The median of every value but one, the slow way.
    fn median_without(values: &[f64], left_out: usize) -> f64 {
        let mut others: Vec<f64> = values
            .iter()
            .enumerate()
            .filter(|&(index, _)| index != left_out)
            .map(|(_, value)| *value)
            .collect();
        others.sort_by(f64::total_cmp);
        let middle = others.len() / 2;
        if others.len().is_multiple_of(2) {
            (others[middle - 1] + others[middle]) / 2.0
        } else {
            others[middle]
        }
    }

    proptest::proptest! {
        #[test]
        fn each_leave_one_out_median_is_the_median_of_the_others(
            values in proptest::collection::vec(-3_i32..3, 2..12)
        ) {
            // Small integers, so ties are common.
            let values: Vec<f64> = values.into_iter().map(f64::from).collect();
            let medians = medians_leaving_each_out(&values);
            for (left_out, median) in medians.iter().enumerate() {
                proptest::prop_assert_eq!(*median, median_without(&values, left_out));
            }
        }
    }

    fn switched_on() -> WeekdayRhythmSettings {
        WeekdayRhythmSettings {
            enabled: true,
            ..WeekdayRhythmSettings::default()
        }
    }

    fn multipliers(histories: &[DeliveryHistory], now_day: f64) -> Vec<f64> {
        estimate_weekday_ctr_multipliers(histories, now_day, &switched_on())
            .into_iter()
            .map(|multiplier| multiplier.expect("28 days are enough"))
            .collect()
    }

    #[test]
    fn an_ad_with_a_weekday_peak_of_its_own_is_worth_more_on_that_day_and_less_on_its_trough() {
        // The fifth ad peaks on weekdays ≡ 2 (mod 7), by up to e^0.3; the others are flat.
        let mut histories: Vec<DeliveryHistory> = (0..4).map(|_| history(|_| 0.01)).collect();
        histories.push(history(rhythm(2, 0.3)));
        let peak = multipliers(&histories, 30.0);
        assert!(peak[4] > 1.2, "{peak:?}");
        assert!(
            peak[..4].iter().all(|multiplier| (multiplier - 1.0).abs() < 0.02),
            "{peak:?}"
        );
        // Three and a half days later is its trough; half a day into the coming day the next one counts half.
        let trough = multipliers(&histories, 33.5);
        assert!(trough[4] < 0.82, "{trough:?}");
    }

    #[test]
    fn a_rhythm_every_ad_shares_moves_no_ad() {
        let histories: Vec<DeliveryHistory> = (0..5).map(|_| history(rhythm(2, 0.3))).collect();
        for multiplier in multipliers(&histories, 30.0) {
            assert!((multiplier - 1.0).abs() < 0.01, "{multiplier}");
        }
    }

    #[test]
    fn a_steady_fall_is_not_a_rhythm() {
        // One ad tiring by 3% a day over the four weeks, the others flat: whichever weekday comes next, the
        // tired ad is not read as being on a weekly low.
        let mut histories: Vec<DeliveryHistory> = (0..4).map(|_| history(|_| 0.01)).collect();
        histories.push(history(|day| 0.02 * 0.97_f64.powi(day as i32)));
        for now_day in 28..35 {
            let tired = multipliers(&histories, f64::from(now_day))[4];
            assert!((tired - 1.0).abs() < 0.02, "day {now_day}: {tired}");
        }
    }

    #[test]
    fn day_to_day_noise_beyond_the_clicks_is_not_a_rhythm() {
        // Five flat ads whose CTR wanders from day to day (an auction's day, not a weekday) with a spread of
        // about 20%, where 200 clicks a day say 7%: without the day-level term the multipliers read up to ×1.11.
        let wobble = |ad: u32| {
            move |day: u32| {
                let pseudo_random = ((day * 7_919 + ad * 104_729) % 1_000) as f64 / 1_000.0;
                0.01 * (0.68 * (pseudo_random - 0.5)).exp()
            }
        };
        let histories: Vec<DeliveryHistory> = (0..5).map(|ad| history(wobble(ad))).collect();
        for now_day in 28..35 {
            for multiplier in multipliers(&histories, f64::from(now_day)) {
                assert!((multiplier - 1.0).abs() < 0.02, "day {now_day}: {multiplier}");
            }
        }
    }

    #[test]
    fn an_ad_with_less_than_two_weeks_around_its_days_has_no_rhythm_to_read() {
        let mut short = history(rhythm(2, 0.3));
        short.days.truncate(15);
        let flat = history(|_| 0.01);
        let estimated =
            estimate_weekday_ctr_multipliers(&[short, flat.clone(), flat.clone(), flat], 16.0, &switched_on());
        assert_eq!(estimated[0], None);
        assert!(estimated[1].is_some());
    }

    #[test]
    fn the_coming_day_is_split_between_the_weekdays_it_spans() {
        let shares = coming_weekday_shares(9.25);
        assert!(
            (shares[2] - 0.75).abs() < 1e-12 && (shares[3] - 0.25).abs() < 1e-12,
            "{shares:?}"
        );
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
