//! The world: delivers budgets, draws impressions → clicks → conversions, reports conversions after their lag.

use std::collections::{HashMap, VecDeque};

use adloop_money::{MinorUnits, split_proportionally};
use rand::RngExt as _;
use rand_distr::{Binomial, Distribution as _, Poisson, StandardNormal};

use crate::auction::AuctionCurve;
use crate::delay::ConversionDelay;
use crate::observation::{
    AdIdentity, AdObservation, AdStatus, DAILY_INSIGHTS_DAYS, DailyInsights, Observation, WindowStats,
};
use crate::policy::TrueRates;
use crate::rng::{SimRng, StreamPurpose, stream};
use crate::scenario::{AuctionSettings, DeliverySettings, Scenario};
use crate::truth::{AdTruth, resolve_truths};

const RECENT_WINDOW_HOURS: u32 = 72;
const WEEK_WINDOW_HOURS: u32 = 168;
const SECONDS_PER_HOUR: u64 = 3600;

#[derive(Debug, Clone, Copy)]
struct PendingConversion {
    arrival_second: u64,
    /// The day the conversion happened; insights credit it there once it is reported.
    event_day: u32,
    /// The decision step whose delivery it came from: the trailing window credits it there, as Meta's
    /// insights for a date range count the conversions of that range's impressions and clicks.
    event_step: u32,
    value: i64,
}

/// One ad's delivery on one day, as insights report it: conversions are credited to the day they happened,
/// but only once they have been reported.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DailyAdStats {
    pub impressions: u64,
    pub clicks: u64,
    pub spend: MinorUnits,
    pub conversions: u64,
    pub conversion_value: MinorUnits,
    /// Cumulative impressions at the end of the day, for frequency.
    pub cumulative_impressions: u64,
}

/// Everything the world tracks about one ad, true and reported.
#[derive(Debug)]
struct AdState {
    launched: bool,
    /// Launched but not yet given its launch budget.
    awaiting_launch_budget: bool,
    paused: bool,
    daily_budget: MinorUnits,
    impressions: u64,
    clicks: u64,
    spend: MinorUnits,
    reported_conversions: u64,
    reported_value: MinorUnits,
    pending_conversions: Vec<PendingConversion>,
    /// Per-step counters for the trailing window (step number, counters), newest last.
    recent_steps: VecDeque<(u32, WindowStats)>,
    /// Insights per simulated day since the start (index = day).
    daily_stats: Vec<DailyAdStats>,
    spent_today: i64,
    /// Spend since the start of the calendar week (Sunday), for Meta's weekly cap.
    spent_this_week: i64,
    /// The daily budgets in force over the week's hours so far, prorated by hour (Meta prorates the weekly cap
    /// for budgets changed mid-week and for ad sets that start mid-week).
    week_budget_so_far: f64,
    /// Impressions that still tire the audience: the lifetime impressions, less what rest has worn off.
    fatigue_exposure: f64,
    /// In Meta's learning phase until this hour (a large budget edit restarts it).
    learning_until_hour: u32,
    today_pacing_multiplier: f64,
    today_cpm_multiplier: f64,
    today_ctr_multiplier: f64,
    noise_rng: SimRng,
}

/// What one step of delivery produced, for the runner's metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepOutcome {
    pub spend: MinorUnits,
    /// The true value of every conversion that happened in the step, reported yet or not.
    pub conversion_value: MinorUnits,
    pub conversions: u64,
    /// Spend on ads whose true ROAS was below half the best active ad's.
    pub spend_on_losing_ads: MinorUnits,
    /// The part of `spend_on_losing_ads` spent while the ad was younger than
    /// [`YOUNG_AD_HOURS`]: what judging a new creative before its own data arrives can save.
    pub spend_on_losing_ads_while_young: MinorUnits,
}

/// An ad counts as young, for [`StepOutcome::spend_on_losing_ads_while_young`], for its first 72 hours.
pub const YOUNG_AD_HOURS: u32 = 72;

/// How the world applied a policy's budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetApplication {
    /// The budgets asked for more than the account's total and were scaled down to it.
    pub scaled_down_to_total: bool,
    /// Budgets refused because they were positive but below the account's minimum daily budget (those ad sets
    /// kept their budget, as after a refused Graph API edit).
    pub refused_below_minimum: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("expected {expected} budgets (one per observed ad), got {actual}")]
    WrongCount { expected: usize, actual: usize },
    #[error("budget for ad {ad_id} is negative ({amount} minor units)")]
    Negative { ad_id: String, amount: i64 },
}

pub struct World {
    /// The run's seed: every random stream derives from it.
    seed: u64,
    truths: Vec<AdTruth>,
    /// Each truth's Graph ids, assigned once (accounts and campaigns numbered in order of appearance).
    identities: Vec<AdIdentity>,
    ads: Vec<AdState>,
    delivery: DeliverySettings,
    delay: ConversionDelay,
    decision_interval_hours: u32,
    start_weekday: u32,
    total_daily_budget: MinorUnits,
    minimum_daily_budget: MinorUnits,
    hour: u32,
    account_spent_today: i64,
    highest_daily_spend: i64,
    /// Truth index of each observed ad, in observation order.
    observed_truth_indices: Vec<usize>,
    observation: Observation,
}

impl World {
    pub fn new(scenario: &Scenario, seed: u64) -> World {
        let mut world_rng = stream(seed, StreamPurpose::WorldTruths, 0);
        let truths = resolve_truths(scenario, &mut world_rng);
        let ads = (0..truths.len())
            .map(|index| AdState {
                launched: false,
                awaiting_launch_budget: false,
                paused: false,
                daily_budget: MinorUnits::ZERO,
                impressions: 0,
                clicks: 0,
                spend: MinorUnits::ZERO,
                reported_conversions: 0,
                reported_value: MinorUnits::ZERO,
                pending_conversions: Vec::new(),
                recent_steps: VecDeque::new(),
                learning_until_hour: 0,
                daily_stats: Vec::new(),
                spent_today: 0,
                spent_this_week: 0,
                week_budget_so_far: 0.0,
                fatigue_exposure: 0.0,
                today_pacing_multiplier: 1.0,
                today_cpm_multiplier: 1.0,
                today_ctr_multiplier: 1.0,
                noise_rng: stream(seed, StreamPurpose::AdDailyNoise, index as u64),
            })
            .collect();
        let identities = ad_identities(&truths);
        let mut world = World {
            seed,
            truths,
            identities,
            ads,
            delivery: scenario.delivery.clone(),
            delay: ConversionDelay::new(&scenario.conversion_delay),
            decision_interval_hours: scenario.decision_interval_hours,
            start_weekday: scenario.start_weekday,
            total_daily_budget: scenario.total_daily_budget,
            minimum_daily_budget: scenario.minimum_daily_budget,
            hour: 0,
            account_spent_today: 0,
            highest_daily_spend: 0,
            observed_truth_indices: Vec::new(),
            observation: Observation {
                hour: 0,
                currency: scenario.currency,
                total_daily_budget: scenario.total_daily_budget,
                minimum_daily_budget: scenario.minimum_daily_budget,
                ads: Vec::new(),
            },
        };
        world.launch_and_pause_due_ads();
        world.draw_daily_noise();
        world.refresh_observation();
        world
    }

    pub fn hour(&self) -> u32 {
        self.hour
    }

    pub fn decision_interval_hours(&self) -> u32 {
        self.decision_interval_hours
    }

    pub fn observation(&self) -> &Observation {
        &self.observation
    }

    pub fn truths(&self) -> &[AdTruth] {
        &self.truths
    }

    /// The truth behind each observed ad, in observation order.
    pub fn observed_truth_indices(&self) -> &[usize] {
        &self.observed_truth_indices
    }

    /// True ROAS now of each observed ad, in observation order (0 for paused ads).
    pub fn true_roas_of_observed_ads(&self) -> Vec<f64> {
        let hour = f64::from(self.hour);
        self.observed_truth_indices
            .iter()
            .map(|&index| {
                if self.ads[index].paused {
                    0.0
                } else {
                    self.truths[index].expected_roas_at(hour, self.ads[index].fatigue_exposure)
                }
            })
            .collect()
    }

    /// Each observed ad's true expected CTR and conversions per click now, whole and as far as its creative
    /// features explain them (zero for paused ads).
    pub fn true_rates_of_observed_ads(&self) -> Vec<TrueRates> {
        let hour = f64::from(self.hour);
        self.observed_truth_indices
            .iter()
            .map(|&index| {
                if self.ads[index].paused {
                    return TrueRates {
                        ctr: 0.0,
                        conversions_per_click: 0.0,
                        ctr_from_features: 0.0,
                        conversions_per_click_from_features: 0.0,
                    };
                }
                let truth = &self.truths[index];
                let exposure = self.ads[index].fatigue_exposure;
                let ctr = truth.expected_ctr_at(hour, exposure);
                let conversions_per_click = truth.expected_conversion_rate_at(hour, exposure);
                TrueRates {
                    ctr,
                    conversions_per_click,
                    ctr_from_features: ctr / truth.ctr_unexplained_factor,
                    conversions_per_click_from_features: conversions_per_click
                        / truth.conversion_rate_unexplained_factor,
                }
            })
            .collect()
    }

    /// Each observed ad's auction curve over a whole day at its base CPM (no daily noise or learning phase),
    /// in observation order: what an oracle needs to split a budget where delivery is not linear.
    pub fn daily_auction_curves_of_observed_ads(&self) -> Vec<AuctionCurve> {
        self.observed_truth_indices
            .iter()
            .map(|&index| auction_curve(self.delivery.auction, &self.truths[index], self.truths[index].cpm, 1.0))
            .collect()
    }

    /// The most any single day's spend has been, across the whole account.
    pub fn highest_daily_spend(&self) -> MinorUnits {
        MinorUnits(self.highest_daily_spend.max(self.account_spent_today))
    }

    /// Sets each observed ad's daily budget (one per observed ad, in order). Paused ads get nothing; if the
    /// budgets add up to more than the account's total they are scaled down to it, as an account spending
    /// limit would.
    pub fn apply_budgets(&mut self, budgets: &[MinorUnits]) -> Result<BudgetApplication, BudgetError> {
        if budgets.len() != self.observed_truth_indices.len() {
            return Err(BudgetError::WrongCount {
                expected: self.observed_truth_indices.len(),
                actual: budgets.len(),
            });
        }
        let mut allowed: Vec<MinorUnits> = Vec::with_capacity(budgets.len());
        let mut refused_below_minimum = 0;
        for (position, budget) in budgets.iter().enumerate() {
            let truth_index = self.observed_truth_indices[position];
            if budget.get() < 0 {
                return Err(BudgetError::Negative {
                    ad_id: self.observation.ads[position].identity.ad_id.clone(),
                    amount: budget.get(),
                });
            }
            let ad = &self.ads[truth_index];
            allowed.push(if ad.paused {
                MinorUnits::ZERO
            } else if budget.get() > 0 && *budget < self.minimum_daily_budget {
                refused_below_minimum += 1;
                ad.daily_budget
            } else {
                *budget
            });
        }
        let requested_total: MinorUnits = allowed.iter().copied().sum();
        let scaled_down_to_total = requested_total > self.total_daily_budget;
        if scaled_down_to_total {
            let weights: Vec<f64> = allowed.iter().map(|budget| budget.get() as f64).collect();
            allowed = split_proportionally(self.total_daily_budget, &weights);
        }
        for (position, budget) in allowed.iter().enumerate() {
            let truth_index = self.observed_truth_indices[position];
            self.note_budget_edit(truth_index, *budget);
            self.ads[truth_index].daily_budget = *budget;
            self.observation.ads[position].current_daily_budget = *budget;
        }
        Ok(BudgetApplication {
            scaled_down_to_total,
            refused_below_minimum,
        })
    }

    /// Delivers one decision interval, then moves the clock, launches and pauses ads that are due and
    /// reports the conversions whose lag has passed.
    pub fn advance(&mut self) -> StepOutcome {
        let step_hours = self.decision_interval_hours;
        let step_share = self.share_of_day_delivered(self.hour % 24, step_hours);
        let day_of_week_multiplier =
            self.delivery.day_of_week_multipliers[((self.hour / 24 + self.start_weekday) % 7) as usize];
        let true_roas = self.true_roas_of_observed_ads();
        let best_true_roas = true_roas.iter().copied().fold(0.0_f64, f64::max);

        let mut outcome = StepOutcome::default();
        for (position, &truth_index) in self.observed_truth_indices.clone().iter().enumerate() {
            let delivered = self.deliver_step(truth_index, step_share, day_of_week_multiplier);
            outcome.spend += delivered.spend;
            outcome.conversion_value += delivered.conversion_value;
            outcome.conversions += delivered.conversions;
            if true_roas[position] < 0.5 * best_true_roas {
                outcome.spend_on_losing_ads += delivered.spend;
                let age_hours = self.hour.saturating_sub(self.truths[truth_index].launch_hour);
                if age_hours < YOUNG_AD_HOURS {
                    outcome.spend_on_losing_ads_while_young += delivered.spend;
                }
            }
        }

        for ad in &mut self.ads {
            if !ad.paused {
                ad.week_budget_so_far += ad.daily_budget.get() as f64 * f64::from(step_hours) / 24.0;
            }
        }
        let previous_day = self.hour / 24;
        self.hour += step_hours;
        self.let_fatigue_wear_off(step_hours);
        if self.hour / 24 != previous_day {
            self.highest_daily_spend = self.highest_daily_spend.max(self.account_spent_today);
            self.account_spent_today = 0;
            let week_starts = days_since_sunday(self.hour, self.start_weekday) == 0;
            for ad in &mut self.ads {
                ad.spent_today = 0;
                if week_starts {
                    ad.spent_this_week = 0;
                    ad.week_budget_so_far = 0.0;
                }
            }
            self.draw_daily_noise();
        }
        self.launch_and_pause_due_ads();
        self.refresh_observation();
        outcome
    }

    /// Rest lets fatigue wear off: every ad's exposure decays with the scenario's half-life, whether it
    /// delivered in the step or not.
    fn let_fatigue_wear_off(&mut self, hours: u32) {
        let Some(half_life_days) = self.delivery.fatigue_recovery_half_life_days else {
            return;
        };
        let remaining_share = 0.5_f64.powf(f64::from(hours) / (24.0 * half_life_days));
        for ad in &mut self.ads {
            ad.fatigue_exposure *= remaining_share;
        }
    }

    /// The account's daily budget: the configured total, or the sum of the ad sets' budgets when an
    /// operator (through meta-sim's Graph API) has set them higher.
    fn account_daily_budget(&self) -> MinorUnits {
        let ad_set_budgets: MinorUnits = self.ads.iter().map(|ad| ad.daily_budget).sum();
        self.total_daily_budget.max(ad_set_budgets)
    }

    /// Sets one ad set's daily budget directly, as a Graph API budget update does (no account-total scaling).
    pub fn set_ad_set_daily_budget(&mut self, truth_index: usize, budget: MinorUnits) {
        if truth_index < self.ads.len() {
            self.note_budget_edit(truth_index, budget);
        }
        if let Some(ad) = self.ads.get_mut(truth_index) {
            ad.daily_budget = MinorUnits(budget.get().max(0));
            ad.awaiting_launch_budget = false;
        }
        self.refresh_observed_settings(truth_index);
    }

    /// A budget edit large enough (`delivery.learning_phase`) restarts the ad set's learning phase. The
    /// launch budget and edits of a budget of zero do not count: learning starts with delivery anyway.
    fn note_budget_edit(&mut self, truth_index: usize, new_budget: MinorUnits) {
        let Some(learning) = &self.delivery.learning_phase else {
            return;
        };
        let ad = &mut self.ads[truth_index];
        let old = ad.daily_budget.get();
        if old <= 0 || ad.awaiting_launch_budget {
            return;
        }
        let change = (new_budget.get() - old).abs() as f64 / old as f64;
        if change >= learning.budget_change_fraction {
            ad.learning_until_hour = self.hour + (learning.days * 24.0).round() as u32;
        }
    }

    /// Pauses or resumes an ad's delivery, as a Graph API status update does.
    pub fn set_ad_paused(&mut self, truth_index: usize, paused: bool) {
        if let Some(ad) = self.ads.get_mut(truth_index) {
            ad.paused = paused;
        }
        self.refresh_observed_settings(truth_index);
    }

    /// Copies one ad's budget and status into the observation. Within an hour nothing else of the
    /// observation moves (arrivals and delivery happen when the world advances), so a setting changed
    /// through the Graph API touches only its own ad, not a refresh of every ad.
    fn refresh_observed_settings(&mut self, truth_index: usize) {
        let Some(position) = self
            .observed_truth_indices
            .iter()
            .position(|&index| index == truth_index)
        else {
            return;
        };
        let ad = &self.ads[truth_index];
        let observed = &mut self.observation.ads[position];
        observed.status = if ad.paused { AdStatus::Paused } else { AdStatus::Active };
        observed.current_daily_budget = ad.daily_budget;
    }

    /// The ad set's daily budget now.
    pub fn ad_set_daily_budget(&self, truth_index: usize) -> MinorUnits {
        self.ads
            .get(truth_index)
            .map(|ad| ad.daily_budget)
            .unwrap_or(MinorUnits::ZERO)
    }

    pub fn is_ad_launched(&self, truth_index: usize) -> bool {
        self.ads.get(truth_index).is_some_and(|ad| ad.launched)
    }

    pub fn is_ad_paused(&self, truth_index: usize) -> bool {
        self.ads.get(truth_index).is_some_and(|ad| ad.paused)
    }

    /// One ad's insights per day since the start (index = day); days without delivery may be missing at the end.
    pub fn daily_stats(&self, truth_index: usize) -> &[DailyAdStats] {
        self.ads
            .get(truth_index)
            .map(|ad| ad.daily_stats.as_slice())
            .unwrap_or(&[])
    }

    fn share_of_day_delivered(&self, first_hour: u32, hours: u32) -> f64 {
        let weights = &self.delivery.hour_of_day_weights;
        let step_weight: f64 = (first_hour..first_hour + hours)
            .map(|hour| weights[hour as usize % 24])
            .sum();
        step_weight / weights.iter().sum::<f64>()
    }

    /// One ad's delivery in the current step.
    fn deliver_step(&mut self, truth_index: usize, step_share: f64, day_of_week_multiplier: f64) -> StepOutcome {
        let overspend_cap_multiplier = 1.0 + self.delivery.max_overspend_fraction;
        let account_cap_left =
            (self.account_daily_budget().get() as f64 * overspend_cap_multiplier) as i64 - self.account_spent_today;
        let truth = &self.truths[truth_index];
        let ad = &mut self.ads[truth_index];
        let step_number = self.hour / self.decision_interval_hours;
        // A fresh stream per ad and step (common random numbers): how many draws one step took under one
        // policy never shifts the next step's draws, so policies compared on a seed see the same luck.
        let mut delivery_rng = stream(
            self.seed,
            StreamPurpose::AdDelivery,
            ((truth_index as u64) << 32) | u64::from(step_number),
        );
        if ad.paused || ad.daily_budget.get() == 0 {
            ad.recent_steps.push_back((step_number, WindowStats::default()));
            return StepOutcome::default();
        }
        let budget = ad.daily_budget.get() as f64;
        let ad_day_cap_left = (budget * overspend_cap_multiplier) as i64 - ad.spent_today;
        // The week's cap: the budgets in force so far this week, and today's for the rest of it.
        let weekly_multiple_per_day = self.delivery.max_weekly_spend_in_daily_budgets / 7.0;
        let hours_left_in_week =
            f64::from(24 * (7 - days_since_sunday(self.hour, self.start_weekday)) - self.hour % 24);
        let ad_week_cap_left = (weekly_multiple_per_day * (ad.week_budget_so_far + budget * hours_left_in_week / 24.0))
            as i64
            - ad.spent_this_week;
        let spend_cap = ad_day_cap_left.min(ad_week_cap_left).min(account_cap_left).max(0);

        let planned_spend = (budget * ad.today_pacing_multiplier * step_share).min(spend_cap as f64);
        let learning_cpm_multiplier = match &self.delivery.learning_phase {
            Some(learning) if self.hour < ad.learning_until_hour => learning.cpm_multiplier,
            _ => 1.0,
        };
        let cpm = truth.cpm * ad.today_cpm_multiplier * learning_cpm_multiplier;
        let curve = auction_curve(self.delivery.auction, truth, cpm, step_share);
        let expected_impressions = curve.impressions_for_spend(planned_spend);
        let mut impressions =
            draw_poisson(expected_impressions, &mut delivery_rng).min(curve.capacity_impressions.floor() as u64);
        let mut spend = curve.cost_of_impressions(impressions as f64).round() as i64;
        if spend > spend_cap {
            impressions = curve.impressions_for_spend(spend_cap as f64).floor() as u64;
            spend = (curve.cost_of_impressions(impressions as f64).round() as i64).min(spend_cap);
        }

        let step_middle_hour = f64::from(self.hour) + f64::from(self.decision_interval_hours) / 2.0;
        let ctr = (truth.expected_ctr_at(step_middle_hour, ad.fatigue_exposure)
            * day_of_week_multiplier
            * ad.today_ctr_multiplier)
            .clamp(0.0, 1.0);
        let clicks = draw_binomial(impressions, ctr, &mut delivery_rng);
        let conversion_rate = (truth.expected_conversion_rate_at(step_middle_hour, ad.fatigue_exposure)
            * day_of_week_multiplier)
            .clamp(0.0, 1.0);
        let conversions = draw_binomial(clicks, conversion_rate, &mut delivery_rng);

        let step_start_second = u64::from(self.hour) * SECONDS_PER_HOUR;
        let step_seconds = u64::from(self.decision_interval_hours) * SECONDS_PER_HOUR;
        let mut conversion_value = 0_i64;
        for _ in 0..conversions {
            let event_second = step_start_second + delivery_rng.random_range(0..step_seconds);
            let value = draw_conversion_value(truth, &mut delivery_rng);
            conversion_value += value;
            let arrival_second = event_second + self.delay.sample_seconds(&mut delivery_rng);
            ad.pending_conversions.push(PendingConversion {
                arrival_second,
                event_day: (event_second / (24 * SECONDS_PER_HOUR)) as u32,
                event_step: step_number,
                value,
            });
        }

        ad.impressions += impressions;
        ad.fatigue_exposure += impressions as f64;
        ad.clicks += clicks;
        ad.spend += MinorUnits(spend);
        let today = daily_stats_entry(&mut ad.daily_stats, self.hour / 24);
        today.impressions += impressions;
        today.clicks += clicks;
        today.spend += MinorUnits(spend);
        today.cumulative_impressions = ad.impressions;
        ad.spent_today += spend;
        ad.spent_this_week += spend;
        self.account_spent_today += spend;
        ad.recent_steps.push_back((
            step_number,
            WindowStats {
                impressions,
                clicks,
                spend: MinorUnits(spend),
                conversions: 0,
                conversion_value: MinorUnits::ZERO,
            },
        ));
        StepOutcome {
            spend: MinorUnits(spend),
            conversion_value: MinorUnits(conversion_value),
            conversions,
            spend_on_losing_ads: MinorUnits::ZERO,
            spend_on_losing_ads_while_young: MinorUnits::ZERO,
        }
    }

    /// Each launched ad's noise for the new day, drawn whether or not it spends, so every policy run on a
    /// seed sees the same noise.
    fn draw_daily_noise(&mut self) {
        let delivery = &self.delivery;
        let max_pacing = 1.0 + delivery.max_overspend_fraction;
        for ad in &mut self.ads {
            let pacing: f64 = StandardNormal.sample(&mut ad.noise_rng);
            let cpm: f64 = StandardNormal.sample(&mut ad.noise_rng);
            let ctr: f64 = StandardNormal.sample(&mut ad.noise_rng);
            ad.today_pacing_multiplier = (delivery.pacing_noise_sd * pacing).exp().min(max_pacing);
            ad.today_cpm_multiplier = (delivery.cpm_noise_sd * cpm).exp();
            ad.today_ctr_multiplier = (delivery.ctr_noise_sd * ctr).exp();
        }
    }

    /// Launches ads whose launch hour has come (with an even share of the total, others making room) and
    /// pauses ads whose pause hour has come.
    fn launch_and_pause_due_ads(&mut self) {
        let mut launched_any = false;
        for (truth_index, truth) in self.truths.iter().enumerate() {
            let ad = &mut self.ads[truth_index];
            if !ad.launched && truth.launch_hour <= self.hour {
                ad.launched = true;
                ad.awaiting_launch_budget = true;
                launched_any = true;
                self.observed_truth_indices.push(truth_index);
                self.observation.ads.push(AdObservation {
                    identity: self.identities[truth_index].clone(),
                    status: AdStatus::Active,
                    age_hours: 0.0,
                    current_daily_budget: MinorUnits::ZERO,
                    impressions: 0,
                    clicks: 0,
                    spend: MinorUnits::ZERO,
                    conversions: 0,
                    conversion_value: MinorUnits::ZERO,
                    last_72_hours: WindowStats::default(),
                    last_7_days: WindowStats::default(),
                    daily: Vec::new(),
                    frequency: 1.0,
                    features: truth.features.clone(),
                });
            }
            if ad.launched && !ad.paused && truth.pause_hour.is_some_and(|pause_hour| pause_hour <= self.hour) {
                ad.paused = true;
                ad.daily_budget = MinorUnits::ZERO;
            }
        }
        if launched_any {
            self.make_room_for_launched_ads();
        }
    }

    /// New ads start with an even share of the total (at least the account's minimum); ads already running
    /// shrink proportionally to fit.
    fn make_room_for_launched_ads(&mut self) {
        let active_count = self
            .observed_truth_indices
            .iter()
            .filter(|&&index| !self.ads[index].paused)
            .count();
        if active_count == 0 {
            return;
        }
        // An even share, but never below what the account accepts.
        let launch_budget =
            (self.total_daily_budget.get() as f64 / active_count as f64).max(self.minimum_daily_budget.get() as f64);
        let weights: Vec<f64> = self
            .observed_truth_indices
            .iter()
            .map(|&index| {
                let ad = &self.ads[index];
                if ad.paused {
                    0.0
                } else if ad.awaiting_launch_budget {
                    launch_budget
                } else {
                    ad.daily_budget.get() as f64
                }
            })
            .collect();
        let current_total: f64 = weights.iter().sum();
        let total_after_launch = MinorUnits(self.total_daily_budget.get().min(current_total.round() as i64));
        let budgets = split_proportionally(total_after_launch, &weights);
        for (position, budget) in budgets.into_iter().enumerate() {
            let ad = &mut self.ads[self.observed_truth_indices[position]];
            ad.daily_budget = budget;
            ad.awaiting_launch_budget = false;
        }
    }

    /// Moves arrived conversions into the reported counters and rebuilds the policy's view.
    fn refresh_observation(&mut self) {
        let now_second = u64::from(self.hour) * SECONDS_PER_HOUR;
        let window_steps = (RECENT_WINDOW_HOURS / self.decision_interval_hours).max(1) as usize;
        let week_steps = (WEEK_WINDOW_HOURS / self.decision_interval_hours).max(1) as usize;
        for (position, &truth_index) in self.observed_truth_indices.iter().enumerate() {
            let ad = &mut self.ads[truth_index];
            while ad.recent_steps.len() > week_steps.max(window_steps) {
                ad.recent_steps.pop_front();
            }
            let mut arrived_conversions = 0_u64;
            let mut arrived_value = 0_i64;
            let daily_stats = &mut ad.daily_stats;
            let recent_steps = &mut ad.recent_steps;
            ad.pending_conversions.retain(|pending| {
                let arrived = pending.arrival_second <= now_second;
                if arrived {
                    arrived_conversions += 1;
                    arrived_value += pending.value;
                    let event_day = daily_stats_entry(daily_stats, pending.event_day);
                    event_day.conversions += 1;
                    event_day.conversion_value += MinorUnits(pending.value);
                    // Credited to the step of its click, if that step is still in the window.
                    if let Some((_, step)) = recent_steps
                        .iter_mut()
                        .find(|(number, _)| *number == pending.event_step)
                    {
                        step.conversions += 1;
                        step.conversion_value += MinorUnits(pending.value);
                    }
                }
                !arrived
            });
            ad.reported_conversions += arrived_conversions;
            ad.reported_value += MinorUnits(arrived_value);
            let mut last_72_hours = WindowStats::default();
            let mut last_7_days = WindowStats::default();
            let steps_kept = ad.recent_steps.len();
            for (position, (_, step)) in ad.recent_steps.iter().enumerate() {
                let steps_before_now = steps_kept - position;
                if steps_before_now <= window_steps {
                    last_72_hours.add(step);
                }
                if steps_before_now <= week_steps {
                    last_7_days.add(step);
                }
            }

            let truth = &self.truths[truth_index];
            let observed = &mut self.observation.ads[position];
            observed.status = if ad.paused { AdStatus::Paused } else { AdStatus::Active };
            observed.age_hours = f64::from(self.hour - truth.launch_hour);
            observed.current_daily_budget = ad.daily_budget;
            observed.impressions = ad.impressions;
            observed.clicks = ad.clicks;
            observed.spend = ad.spend;
            observed.conversions = ad.reported_conversions;
            observed.conversion_value = ad.reported_value;
            observed.last_72_hours = last_72_hours;
            observed.last_7_days = last_7_days;
            observed.daily = recent_daily_insights(&ad.daily_stats, truth.launch_hour / 24, self.hour / 24);
            observed.frequency = truth.frequency(ad.impressions as f64);
        }
        self.observation.hour = self.hour;
    }
}

/// The days from launch (at most [`DAILY_INSIGHTS_DAYS`] back from `today`) that the world has insights for.
fn recent_daily_insights(daily_stats: &[DailyAdStats], launch_day: u32, today: u32) -> Vec<DailyInsights> {
    let first_day = launch_day.max((today + 1).saturating_sub(DAILY_INSIGHTS_DAYS));
    (first_day..=today)
        .filter_map(|day| {
            let stats = daily_stats.get(day as usize)?;
            Some(DailyInsights {
                day,
                impressions: stats.impressions,
                clicks: stats.clicks,
                spend: stats.spend,
                conversions: stats.conversions,
                conversion_value: stats.conversion_value,
            })
        })
        .collect()
}

fn daily_stats_entry(daily_stats: &mut Vec<DailyAdStats>, day: u32) -> &mut DailyAdStats {
    let index = day as usize;
    if daily_stats.len() <= index {
        let cumulative_impressions = daily_stats.last().map(|last| last.cumulative_impressions).unwrap_or(0);
        daily_stats.resize(
            index + 1,
            DailyAdStats {
                cumulative_impressions,
                ..DailyAdStats::default()
            },
        );
    }
    &mut daily_stats[index]
}

/// Meta-style ids: accounts and campaigns numbered in order of first appearance, one ad set per ad.
/// Every truth's ids: accounts and campaigns numbered in order of first appearance, ads by position.
fn ad_identities(truths: &[AdTruth]) -> Vec<AdIdentity> {
    let mut account_numbers: HashMap<&str, u64> = HashMap::new();
    let mut campaign_numbers: HashMap<(&str, &str), u64> = HashMap::new();
    truths
        .iter()
        .enumerate()
        .map(|(truth_index, truth)| {
            let next_account_number = account_numbers.len() as u64 + 1;
            let account_number = *account_numbers.entry(&truth.account).or_insert(next_account_number);
            let next_campaign_number = campaign_numbers.len() as u64 + 1;
            let campaign_number = *campaign_numbers
                .entry((&truth.account, &truth.campaign))
                .or_insert(next_campaign_number);
            let ad_number = truth_index as u64 + 1;
            AdIdentity {
                account_id: format!("act_{}", 100_000_000 + account_number),
                campaign_id: format!("{}", 23_850_000_000_000_u64 + campaign_number),
                ad_set_id: format!("{}", 23_851_000_000_000_u64 + ad_number),
                ad_id: format!("{}", 23_852_000_000_000_u64 + ad_number),
                name: truth.name.clone(),
            }
        })
        .collect()
}

/// Whole days since the calendar week (Sunday to Saturday) began, for a run that started on `start_weekday`
/// (0 = Monday).
fn days_since_sunday(hour: u32, start_weekday: u32) -> u32 {
    (hour / 24 + start_weekday + 1) % 7
}

/// An ad set's auction curve over `share_of_day` of a day at `cpm`.
fn auction_curve(auction: AuctionSettings, truth: &AdTruth, cpm: f64, share_of_day: f64) -> AuctionCurve {
    AuctionCurve {
        base_cpm: cpm,
        capacity_impressions: truth.audience_size * auction.daily_impressions_per_person * share_of_day,
        marginal_cpm_rise_at_capacity: auction.marginal_cpm_rise_at_capacity,
    }
}

/// One conversion's value: log-normal around the ad's mean with its `value_sd`, or Lomax (Pareto II) with its
/// tail index and the same mean when it has one.
fn draw_conversion_value(truth: &AdTruth, rng: &mut SimRng) -> i64 {
    let value = match truth.value_tail_index {
        Some(tail_index) => {
            let uniform: f64 = rng.random();
            let scale = truth.value_per_conversion * (tail_index - 1.0);
            scale * ((1.0 - uniform).powf(-1.0 / tail_index) - 1.0)
        }
        None => {
            let standard_normal: f64 = StandardNormal.sample(rng);
            truth.value_per_conversion
                * (truth.value_sd * standard_normal - truth.value_sd * truth.value_sd / 2.0).exp()
        }
    };
    // One order is never worth more than the largest amount a scenario may state (a far tail draw of a
    // heavy-tailed law could otherwise overflow the run's sums).
    value
        .round()
        .clamp(0.0, crate::scenario::limits::MAX_AMOUNT_MINOR_UNITS as f64) as i64
}

fn draw_poisson(mean: f64, rng: &mut SimRng) -> u64 {
    if !(mean.is_finite() && mean > 0.0) {
        return 0;
    }
    match Poisson::new(mean) {
        Ok(poisson) => poisson.sample(rng) as u64,
        Err(_) => 0,
    }
}

fn draw_binomial(trials: u64, probability: f64, rng: &mut SimRng) -> u64 {
    if trials == 0 || probability <= 0.0 {
        return 0;
    }
    match Binomial::new(trials, probability.min(1.0)) {
        Ok(binomial) => binomial.sample(rng),
        Err(_) => 0,
    }
}
