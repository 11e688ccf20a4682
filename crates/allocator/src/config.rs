//! The allocator's tunable constants, with defaults. Every constant of the model is here — the ones the
//! original system hard-coded and the thresholds by which the account's own data decide — named, with how
//! its default was chosen, and can be changed without touching code (ml-service's `[allocator]` settings).
//! What stays in the modules is numerical: grid sizes, the point where a Beta is drawn as a normal, cache
//! quantisation.

use serde::{Deserialize, Serialize};

use crate::blend::CtrWeightSchedule;
use crate::delay::ReportingDelay;
use crate::delivery_curve::DeliveryCurveSettings;
use crate::weekday_rhythm::WeekdayRhythmSettings;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AllocatorConfig {
    pub ctr_weight_schedule: CtrWeightSchedule,
    pub reporting_delay: ReportingDelay,
    /// How many conversions of the account's own evidence the reporting-delay schedule is worth when the
    /// allocator checks it against the account (`delay::recent_maturity_factor`): ten, chosen before any
    /// measurement as "a handful of days of a small account", so the schedule decides for a young account
    /// and the account's own conversions once it has a few dozen. 0 trusts the account alone.
    pub reporting_delay_calibration_prior_conversions: f64,
    /// How many conversions `reporting_delay` is worth as the prior of an account's own estimated schedule
    /// (`ReportingDelayEstimator::estimate`): thirty, chosen before any measurement as "about a week of a
    /// small account", so a young account keeps the configured schedule and one with a few hundred
    /// conversions reads its own.
    pub reporting_delay_estimate_prior_conversions: f64,
    /// Evidence halves in weight every this many hours while a change of the ad is in doubt (`forgetting`:
    /// steady rates keep all their evidence, a change beyond doubt drops the older evidence of the rate that
    /// changed). The request carries an ad's lifetime and its recent window: the window counts fully, and the
    /// older part (spread evenly over the ad's life before the window) at its mean age relative to the
    /// window's. 336 h, a fortnight, chosen before any measurement: longer than the weekly cycle, so a week's
    /// rhythm is averaged rather than chased, and short enough that what an ad did a month ago weighs a
    /// quarter.
    pub evidence_half_life_hours: f64,
    /// Strength of the population prior on CTR, in pseudo-impressions: a hundred, the original's floor
    /// (it read every ad as having at least 100 impressions), kept before any measurement: at the 1–2% CTRs of
    /// most accounts one or two clicks, so an ad's own clicks speak after its first few hundred impressions.
    pub population_ctr_prior_impressions: f64,
    /// The most the population prior on conversions per click may weigh, in pseudo-conversions; the prior
    /// weighs less when the account's ads differ more (estimated from their spread, `population`). Six shrank
    /// noisy early conversion rates enough to find winners among 200 ads sooner in `adloop-sim`.
    pub population_conversion_prior_conversions: f64,
    /// The most a learned prior (instant learner, cross-learner) weighs against the population prior, as a
    /// multiple of the population prior's strength: 4 lets a certain learner decide up to 80% of an ad's
    /// prior mean, and the account's own average always keeps a fifth.
    pub max_learned_prior_weight_of_population: f64,
    /// The strongest a conversion prior whose mean learned priors moved may be, in pseudo-conversions: its
    /// strength comes from how closely the ads follow those means (empirical Bayes, like the population's),
    /// up to eight times the population prior's most. Chosen on the tuning seeds (1–20) of the learners
    /// table: four times held the estimate back wherever the learned means fitted the ads well; eight to forty
    /// times gave the same regret within a point (eight, the least of them, kept).
    pub max_learned_conversion_prior_conversions: f64,
    /// The most a learned CTR prior may weigh, as a multiple of `population_ctr_prior_impressions`. Its
    /// weight is the share of the ads' CTR spread the learned means explain (the spread around the account's
    /// CTR over the spread around the learned CTRs, `learned_prior`): a learner that explains nothing keeps
    /// the population's strength. Ten, a thousand pseudo-impressions, set with that rule before it was
    /// measured: a learner that explains the spread well still yields to an ad's own first few thousand
    /// impressions.
    pub max_learned_ctr_prior_weight_of_population: f64,
    /// The largest |β| of the link between an ad's CTR and its prior conversions per click (`ctr_link`):
    /// 1 lets the prior go as far as equal conversions per *impression* across the account's ads. The
    /// prior's centre follows the link only where the account's own ads show it (a likelihood-ratio test at
    /// 5%); its width follows how uncertain the link still is (a uniform prior over ±this, updated by the
    /// ads' conversions); 0 switches both off.
    pub max_conversion_ctr_link: f64,
    /// The largest γ by which an account's own ads may stretch a learner's conversion lifts
    /// (`learned_link`): the prior's centre follows `lift^γ` where the account's ads reject the learner's own
    /// weight (a likelihood-ratio test at `evidence_test_significance`), with γ read on a grid from −1 (the
    /// lifts reversed) to this. 2, chosen before any measurement: twice what the learner says is as far as
    /// one account's ads may take it; 0 switches the link off.
    pub max_learned_conversion_link: f64,
    /// The significance of the tests by which the account's own data decide something: whether an ad's
    /// recent rates changed (`forgetting`, split over its two rates) and whether its ads' CTR and conversions
    /// per click are linked (`ctr_link`). The conventional 5%, chosen before any measurement.
    pub evidence_test_significance: f64,
    /// Fewest ads with clicks before the account's ads decide something about all of them (the spread of
    /// their conversions per click, which sets the population prior's strength; the spread of their CTRs;
    /// the CTR link). Three, chosen before any measurement: with two, one ad's luck is half the account.
    pub account_estimate_min_ads: usize,
    /// Fewest conversions among those ads before their conversions per click are compared (the prior's
    /// strength, the CTR link): ten, chosen before any measurement, so that one lucky conversion moves the
    /// comparison by at most a tenth.
    pub account_estimate_min_conversions: f64,
    /// Fewest clicks among those ads before the spread of their CTRs is measured (`learned_prior`): thirty,
    /// ten an ad at the fewest ads, chosen before any measurement.
    pub ctr_spread_min_clicks: f64,
    /// The weakest the population prior on conversions per click gets however much the ads differ, in
    /// pseudo-conversions: one, chosen before any measurement, so an ad's first conversion never decides its
    /// rate alone.
    pub weakest_population_conversion_prior_conversions: f64,
    /// The range of the reporting-delay check's factor (`delay::recent_maturity_factor`): the recent window
    /// never counts as less than a tenth, nor as more than twice, as mature as the schedule says. Chosen
    /// before any measurement, wider than any reporting a real account shows, so only a broken feed hits it.
    pub min_recent_maturity_factor: f64,
    pub max_recent_maturity_factor: f64,
    /// The range of the measured spread of order values (`value_dispersion`, log-space sd): never identical
    /// orders (0.1), never more spread than 3 (a 1-in-1000 order worth ~10,000 times the median). Chosen
    /// before any measurement.
    pub min_conversion_value_log_sd: f64,
    pub max_conversion_value_log_sd: f64,
    /// Strength of the population prior on value per conversion, in pseudo-conversions: two orders, set with
    /// the first allocator before any measurement, so one large order does not make an ad's value. Re-checked
    /// on the tuning seeds 1–20 since: weaker shrinkage cost more than it gained (geometric mean of adloop's
    /// regret over ts-basic-limited's 0.874 → 0.90), a strength estimated from how much the ads' mean values
    /// differ gained nothing (0.849 → 0.855), and one scaled by the measured spread of single orders lost too
    /// (0.804 → 0.832; `docs/allocator-notebook.md`).
    pub value_prior_conversions: f64,
    /// Strength of the population prior on an ad's CPM, in pseudo-impressions: one thousand, a single CPM's
    /// worth, so an ad's own price replaces the account's after its first few thousand impressions.
    pub cpm_prior_impressions: f64,
    /// Spread (log-space sd) of single conversion values, for the uncertainty of the mean value: the prior
    /// of the account's own estimate (`value_dispersion`). 0.6, set before any measurement: two orders in
    /// three between about half and about twice the typical one, a shop with a range of prices; an account's
    /// own ads outweigh it within a few days (`value_dispersion_prior_ads`).
    pub conversion_value_log_sd: f64,
    /// How many ads' worth of evidence `conversion_value_log_sd` counts as against the spread measured on the
    /// account's own ads: three, chosen before any measurement, so a handful of ads with conversions in both
    /// windows already outweigh it.
    pub value_dispersion_prior_ads: f64,
    /// Largest boost a creative-DNA score of 1.0 gives the prior (0.2 = +20%, as in the original).
    pub creative_dna_max_boost: f64,
    /// The most ads one request may carry: bounds the memory and time of one allocation (its P(best) sweep
    /// holds about 12 KiB per ad).
    pub max_ads_per_request: usize,
    /// Posterior draws per ad for the probability of being best. 512: with the Sobol-paired draws P(best) is
    /// within 0.002 of a million-draw reference on four 100-ad accounts (target ±0.01), at half the work and
    /// cache memory of 1,024 (`BENCHMARKS.md`, P(best) accuracy).
    pub draws_per_ad: usize,
    /// Fewer draws per ad for very large requests keep the work bounded: at most this many draws in all. A
    /// bound, not a model constant: 256,000 keeps the full 512 draws up to 500 ads and about 1 MB per
    /// posterior component.
    pub max_total_draws: usize,
    /// Ads younger than this keep an exploration floor. 72 hours, the original's cold-start window (its blend
    /// and its confidence both ramp over 72 h), kept without tuning; a statistical review noted that it matches
    /// the simulator's cold-start rhythm, so the held-out tables include worlds with other launch rhythms
    /// (`long-run-launches`, the random worlds' launches).
    pub young_ad_hours: f64,
    /// A young ad's floor as a fraction of an even share of the total: a quarter, set before any measurement,
    /// enough for a young ad to be seen every day, little enough that launching every ad at once keeps at most
    /// a quarter of the total from the ads' posteriors.
    pub young_ad_floor_of_even_share: f64,
    /// How far ahead the fatigue trend is projected (hours), against the recent window it is measured on.
    /// 72 h ahead (a full recent window of a young ad) tracked fatiguing ads best in `adloop-sim` (the trend
    /// is measured between the middles of the older and recent windows, so it lags); it was chosen when every
    /// ad was read on 72 hours and re-checked once ads older than a week came to be read on their last week
    /// (tuning seeds 1–20, geometric mean of adloop's regret over ts-basic-limited's: 48 h 0.846, 72 h 0.838,
    /// 120 h 0.851, 168 h 0.868).
    pub fatigue_projection_hours: f64,
    /// Impressions needed in both the recent and the older window before a CTR trend counts as fatigue: two
    /// thousand, set before any measurement, some twenty clicks in each window at a 1% CTR, so one or two
    /// clicks of luck are not read as a trend.
    pub fatigue_min_impressions: f64,
    /// Kill an ad whose ROAS is confidently below this after enough spend (original: 0.5).
    pub kill_roas_below: f64,
    /// Scale an ad whose ROAS is confidently above this after enough spend (original: 3.0).
    pub scale_roas_above: f64,
    /// Spend before kill or scale decisions, in even daily shares of the account (its total daily budget over
    /// its active ads): relative to the account, so it means as much evidence in JPY as in USD and in a small
    /// account as in a large one (the original judged after 200 major units in every currency: 200 yen).
    /// Seven, a week of an even share, was chosen as "a fair week's chance"; on the tuning seeds 1–20 it
    /// left every scenario within ±0.01 of the fixed rule except tiny-budget (0.76 → 0.75 of uniform's
    /// regret), where two shares judged too early (0.81).
    pub min_spend_for_decision_even_daily_shares: f64,
    /// The span over which an account's budget must tell its ads apart (`learning_capacity`): the conversions
    /// the total buys in this many days, at the account's cost per conversion, over
    /// `conversions_to_tell_an_ad_apart`, is how many ads it can learn on; the settled ads least likely to be
    /// best beyond that wait. Seven days, a week: the window a settled ad is read on, long enough for a weekly
    /// rhythm to average out. 0 turns the rule off.
    pub learning_horizon_days: f64,
    /// Conversions an ad needs before the budget can tell it apart: three, since none where three were expected
    /// happens 5% of the time (Poisson), the level of the intervals the decisions read. Both constants were set
    /// from these reasons, not fitted; measured on the tuning seeds and development worlds, reported on held-out
    /// ones (README).
    pub conversions_to_tell_an_ad_apart: f64,
    /// How an account's daily reports are read for its ads' delivery curves (`estimate_delivery_curves`, run
    /// where the reports are read: the gateway's autopilot, the simulator's policy): the last four weeks'
    /// finished days. A day needs a thousand impressions and the account a week of such days, chosen before
    /// any measurement; the rise is kept only as far as it stands out by more than one standard error, chosen
    /// on the tuning seeds 1–20 and the development worlds 1–100 between none, one and two
    /// (`docs/allocator-notebook.md`, delivery curves).
    pub delivery_curve: DeliveryCurveSettings,
    /// How an account's daily reports are read for each ad's own weekday rhythm
    /// (`estimate_weekday_ctr_multipliers`, run where the reports are read, as for the delivery curves).
    pub weekday_rhythm: WeekdayRhythmSettings,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        AllocatorConfig {
            ctr_weight_schedule: CtrWeightSchedule::default(),
            reporting_delay: ReportingDelay::default(),
            reporting_delay_calibration_prior_conversions: 10.0,
            reporting_delay_estimate_prior_conversions: 30.0,
            evidence_half_life_hours: 336.0,
            population_ctr_prior_impressions: 100.0,
            population_conversion_prior_conversions: 6.0,
            max_learned_prior_weight_of_population: 4.0,
            max_learned_conversion_prior_conversions: 48.0,
            max_learned_ctr_prior_weight_of_population: 10.0,
            max_conversion_ctr_link: 1.0,
            max_learned_conversion_link: 2.0,
            evidence_test_significance: 0.05,
            account_estimate_min_ads: 3,
            account_estimate_min_conversions: 10.0,
            ctr_spread_min_clicks: 30.0,
            weakest_population_conversion_prior_conversions: 1.0,
            min_recent_maturity_factor: 0.1,
            max_recent_maturity_factor: 2.0,
            min_conversion_value_log_sd: 0.1,
            max_conversion_value_log_sd: 3.0,
            value_prior_conversions: 2.0,
            cpm_prior_impressions: 1000.0,
            conversion_value_log_sd: 0.6,
            value_dispersion_prior_ads: 3.0,
            creative_dna_max_boost: 0.2,
            max_ads_per_request: 2000,
            draws_per_ad: 512,
            max_total_draws: 256_000,
            young_ad_hours: 72.0,
            young_ad_floor_of_even_share: 0.25,
            fatigue_projection_hours: 72.0,
            fatigue_min_impressions: 2000.0,
            kill_roas_below: 0.5,
            scale_roas_above: 3.0,
            min_spend_for_decision_even_daily_shares: 7.0,
            learning_horizon_days: 7.0,
            conversions_to_tell_an_ad_apart: 3.0,
            delivery_curve: DeliveryCurveSettings::default(),
            weekday_rhythm: WeekdayRhythmSettings::default(),
        }
    }
}

impl AllocatorConfig {
    /// Whether an account's ads — `ads_with_matured_clicks` of them, with `conversions` among them — have
    /// evidence enough to decide something about all of them (`account_estimate_min_ads`,
    /// `account_estimate_min_conversions`): their conversion prior's strength, their CTR link, their own
    /// population prior.
    pub(crate) fn enough_for_account_estimate(&self, ads_with_matured_clicks: usize, conversions: f64) -> bool {
        ads_with_matured_clicks >= self.account_estimate_min_ads && conversions >= self.account_estimate_min_conversions
    }

    pub fn validate(&self) -> Result<(), String> {
        self.ctr_weight_schedule.validate()?;
        self.reporting_delay
            .validate()
            .map_err(|(field, rule)| format!("allocator.reporting_delay.{field}: {rule}"))?;
        let checks = [
            ("delivery_curve.min_days", self.delivery_curve.min_days >= 3),
            ("weekday_rhythm.min_days", self.weekday_rhythm.min_days >= 7),
            ("delivery_curve.days", (1..=90).contains(&self.delivery_curve.days)),
            (
                "delivery_curve.rise_standard_errors",
                self.delivery_curve.rise_standard_errors.is_finite() && self.delivery_curve.rise_standard_errors >= 0.0,
            ),
            (
                "evidence_half_life_hours",
                self.evidence_half_life_hours.is_finite() && self.evidence_half_life_hours > 0.0,
            ),
            (
                "value_dispersion_prior_ads",
                self.value_dispersion_prior_ads.is_finite() && self.value_dispersion_prior_ads >= 0.0,
            ),
            (
                "reporting_delay_calibration_prior_conversions",
                self.reporting_delay_calibration_prior_conversions.is_finite()
                    && self.reporting_delay_calibration_prior_conversions >= 0.0,
            ),
            (
                "reporting_delay_estimate_prior_conversions",
                self.reporting_delay_estimate_prior_conversions.is_finite()
                    && self.reporting_delay_estimate_prior_conversions >= 0.0,
            ),
            (
                "population_ctr_prior_impressions",
                self.population_ctr_prior_impressions > 0.0,
            ),
            (
                "population_conversion_prior_conversions",
                self.population_conversion_prior_conversions > 0.0,
            ),
            ("value_prior_conversions", self.value_prior_conversions > 0.0),
            (
                "evidence_test_significance",
                self.evidence_test_significance > 0.0 && self.evidence_test_significance < 1.0,
            ),
            ("account_estimate_min_ads", self.account_estimate_min_ads >= 2),
            (
                "account_estimate_min_conversions",
                self.account_estimate_min_conversions.is_finite() && self.account_estimate_min_conversions >= 0.0,
            ),
            (
                "ctr_spread_min_clicks",
                self.ctr_spread_min_clicks.is_finite() && self.ctr_spread_min_clicks >= 0.0,
            ),
            (
                "weakest_population_conversion_prior_conversions",
                self.weakest_population_conversion_prior_conversions > 0.0
                    && self.weakest_population_conversion_prior_conversions
                        <= self.population_conversion_prior_conversions,
            ),
            (
                "min_recent_maturity_factor",
                self.min_recent_maturity_factor > 0.0 && self.min_recent_maturity_factor <= 1.0,
            ),
            (
                "max_recent_maturity_factor",
                self.max_recent_maturity_factor.is_finite() && self.max_recent_maturity_factor >= 1.0,
            ),
            ("min_conversion_value_log_sd", self.min_conversion_value_log_sd > 0.0),
            (
                "max_conversion_value_log_sd",
                self.max_conversion_value_log_sd.is_finite()
                    && self.max_conversion_value_log_sd > self.min_conversion_value_log_sd,
            ),
            (
                "max_conversion_ctr_link",
                (0.0..=2.0).contains(&self.max_conversion_ctr_link),
            ),
            (
                "max_learned_conversion_link",
                (0.0..=4.0).contains(&self.max_learned_conversion_link),
            ),
            (
                "max_learned_prior_weight_of_population",
                self.max_learned_prior_weight_of_population >= 0.0,
            ),
            (
                "max_learned_conversion_prior_conversions",
                self.max_learned_conversion_prior_conversions > 0.0,
            ),
            (
                "max_learned_ctr_prior_weight_of_population",
                self.max_learned_ctr_prior_weight_of_population.is_finite()
                    && self.max_learned_ctr_prior_weight_of_population >= 1.0,
            ),
            ("conversion_value_log_sd", self.conversion_value_log_sd >= 0.0),
            (
                "creative_dna_max_boost",
                (0.0..=1.0).contains(&self.creative_dna_max_boost),
            ),
            ("max_ads_per_request", self.max_ads_per_request >= 1),
            ("draws_per_ad", self.draws_per_ad >= 16),
            ("max_total_draws", self.max_total_draws >= 1024),
            (
                "young_ad_floor_of_even_share",
                (0.0..=1.0).contains(&self.young_ad_floor_of_even_share),
            ),
            ("kill_roas_below", self.kill_roas_below >= 0.0),
            (
                "cpm_prior_impressions",
                self.cpm_prior_impressions.is_finite() && self.cpm_prior_impressions > 0.0,
            ),
            (
                "min_spend_for_decision_even_daily_shares",
                self.min_spend_for_decision_even_daily_shares.is_finite()
                    && self.min_spend_for_decision_even_daily_shares >= 0.0,
            ),
            (
                "learning_horizon_days",
                self.learning_horizon_days.is_finite() && self.learning_horizon_days >= 0.0,
            ),
            (
                "conversions_to_tell_an_ad_apart",
                self.conversions_to_tell_an_ad_apart.is_finite() && self.conversions_to_tell_an_ad_apart > 0.0,
            ),
            ("scale_roas_above", self.scale_roas_above > self.kill_roas_below),
        ];
        for (field, valid) in checks {
            if !valid {
                return Err(format!("allocator.{field} is out of range"));
            }
        }
        Ok(())
    }
}
