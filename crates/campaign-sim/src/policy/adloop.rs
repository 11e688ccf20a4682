//! adloop's own allocator (the library ml-service serves) as a simulator policy, with the instant learner
//! trained from the observations' deltas and features, the cross-learner's pattern store fed by every account
//! (each opts in), and both learners' priors added to every request, as ml-service does (`adloop-priors-off`
//! runs the allocator alone).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use adloop_allocator::{
    AdIds, AdInput, AdStatus as AllocatorAdStatus, AllocationConstraints, AllocationRequest, AllocatorConfig,
    DailyDelivery, DeliveryHistory, Prior, RecentWindow, ReportingDelay, allocate, estimate_delivery_curves,
    estimate_weekday_ctr_multipliers,
};
use adloop_cross_learner::{
    PatternQuerySettings, PatternStore, StoreConfig, add_cross_learner_priors, record_shared_event,
};
use adloop_learner::{
    DEFAULT_CTR_LEARNING_MAX_AD_AGE_HOURS, DeliveryFeed, DeliveryTotals, InstantLearner, LearnerConfig,
    add_instant_learner_priors, encode_features,
};
use adloop_money::MinorUnits;

use super::{AccountDelayEstimates, AdBelief, HiddenTruths, Policy, PolicyError};
use crate::observation::{AdObservation, AdStatus, Observation};

/// Hours covered by the observation's recent windows: a young ad's trend is read on the last 72 hours, an
/// ad with more than a week of history on the last week (as the gateway's autopilot reads them, its
/// `recent_window_days` and `settled_window_days`).
const RECENT_WINDOW_HOURS: f64 = 72.0;
const SETTLED_WINDOW_HOURS: f64 = 168.0;

/// The windows an ad's recent delivery is read on: once the ad has more than a week of history, the last week
/// (a weekly rhythm then averages out inside it instead of reading as a change) with the last 72 hours inside
/// it (so a change in them is still seen soon); before, the last 72 hours alone.
fn trend_windows(ad: &crate::observation::AdObservation) -> (RecentWindow, Option<RecentWindow>) {
    let last_72_hours = window_of(RECENT_WINDOW_HOURS, &ad.last_72_hours);
    if ad.age_hours > SETTLED_WINDOW_HOURS {
        (window_of(SETTLED_WINDOW_HOURS, &ad.last_7_days), Some(last_72_hours))
    } else {
        (last_72_hours, None)
    }
}

fn window_of(hours: f64, stats: &crate::observation::WindowStats) -> RecentWindow {
    RecentWindow {
        hours,
        impressions: stats.impressions,
        clicks: stats.clicks,
        spend: stats.spend,
        conversions: stats.conversions,
        conversion_value: stats.conversion_value,
    }
}

pub struct Adloop {
    name: &'static str,
    config: AllocatorConfig,
    seed: u64,
    /// Largest change per ad per decision, as a fraction of its current budget.
    max_change_fraction: f64,
    /// The instant learner and what it was last shown; `None` runs the allocator without learned priors.
    learning: Option<PolicyLearning>,
    /// Give every ad a prior from its hidden truths instead (the bounds, not policies).
    priors_from_truth: Option<TruthPriors>,
    /// Each account's reporting delays, as its own observations show them.
    account_delays: AccountDelayEstimates,
    /// The beliefs behind the last decision, kept only when asked (`PolicySettings::explain_decisions`).
    last_beliefs: Option<Vec<AdBelief>>,
}

/// Which hidden rates the bounds give as priors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TruthPriors {
    /// Each ad's true rates (`adloop-true-priors`): the most any learner could give.
    WholeRates,
    /// The part of them its creative features explain (`adloop-feature-priors`): the most a learner that
    /// predicts from creative features alone could give.
    FeatureExplainedRates,
}

/// The source name of the priors the bounds give.
const TRUE_RATES_SOURCE: &str = "true_rates";
/// Strength of a true-rate prior: far beyond the allocator's caps, so the caps decide.
const TRUE_PRIOR_STRENGTH: f64 = 1e6;

struct PolicyLearning {
    learner: InstantLearner,
    feed: DeliveryFeed,
    /// The cross-learner's store, fed by every account's events (in the simulator every account shares).
    patterns: PatternStore,
    sharing_accounts: BTreeSet<String>,
    pattern_settings: PatternQuerySettings,
    /// Every update applied, in order, when asked to keep them (`Adloop::recording_learning_updates`).
    recorded_updates: Option<Vec<adloop_learner::LearningUpdate>>,
}

impl Adloop {
    /// adloop as shipped: the allocator with the instant learner's priors.
    pub fn new(seed: u64) -> Adloop {
        Adloop::with_config(seed, AllocatorConfig::default())
    }

    /// The allocator alone, without learned priors.
    pub fn without_priors(seed: u64) -> Adloop {
        Adloop {
            name: "adloop-priors-off",
            learning: None,
            ..Adloop::new(seed)
        }
    }

    /// The allocator given priors at the ads' hidden true rates, as certain as its caps allow: how much the
    /// best possible learner could lower adloop's regret (a bound for the learners, like `oracle-limited`
    /// for the allocator).
    pub fn with_true_priors(seed: u64) -> Adloop {
        Adloop {
            name: "adloop-true-priors",
            priors_from_truth: Some(TruthPriors::WholeRates),
            ..Adloop::without_priors(seed)
        }
    }

    /// The allocator given priors at the part of the ads' true rates their creative features explain, as
    /// certain as its caps allow: how much a perfect learner of creative features could lower adloop's
    /// regret (between priors-off and `adloop-true-priors`, which also knows each ad's own luck).
    pub fn with_feature_priors(seed: u64) -> Adloop {
        Adloop {
            name: "adloop-feature-priors",
            priors_from_truth: Some(TruthPriors::FeatureExplainedRates),
            ..Adloop::without_priors(seed)
        }
    }

    pub fn with_config(seed: u64, config: AllocatorConfig) -> Adloop {
        Adloop {
            name: "adloop",
            config,
            seed,
            max_change_fraction: super::DEFAULT_MAX_CHANGE_FRACTION,
            priors_from_truth: None,
            account_delays: AccountDelayEstimates::default(),
            last_beliefs: None,
            learning: Some(PolicyLearning {
                learner: InstantLearner::new(LearnerConfig::default()),
                feed: DeliveryFeed::default(),
                patterns: PatternStore::new(StoreConfig::default()),
                sharing_accounts: BTreeSet::new(),
                pattern_settings: PatternQuerySettings::default(),
                recorded_updates: None,
            }),
        }
    }

    /// The same policy, before its first decision, with `settings`' allocator and learner constants and
    /// change limit.
    pub fn configured(self, settings: &super::PolicySettings) -> Adloop {
        let learning = self.learning.map(|learning| PolicyLearning {
            learner: InstantLearner::new(settings.learner.clone()),
            ..learning
        });
        Adloop {
            config: settings.allocator.clone(),
            max_change_fraction: settings.max_change_fraction,
            learning,
            last_beliefs: settings.explain_decisions.then(Vec::new),
            ..self
        }
    }

    /// The same policy, keeping every update its learner applies (for fitting the same events offline).
    pub fn recording_learning_updates(mut self) -> Adloop {
        if let Some(learning) = &mut self.learning {
            learning.recorded_updates = Some(Vec::new());
        }
        self
    }

    /// The updates the learner applied so far, in order, if asked to keep them.
    pub fn recorded_learning_updates(&self) -> Option<&[adloop_learner::LearningUpdate]> {
        self.learning.as_ref()?.recorded_updates.as_deref()
    }

    /// The instant learner as it stands (for parity checks against ml-service).
    pub fn learner(&self) -> Option<&InstantLearner> {
        self.learning.as_ref().map(|learning| &learning.learner)
    }

    /// The allocation request for `observation` with the priors both learners give now and the reporting
    /// delays estimated so far, without teaching them or the estimates anything (what the next decision would allocate from, for tests and parity checks).
    pub fn request_with_priors(&self, observation: &Observation) -> AllocationRequest {
        let mut request = allocation_request(observation, self.seed, self.max_change_fraction);
        add_daily_estimates(&mut request, observation, &self.config);
        request.reporting_delays = self.account_delays.schedules(&self.config);
        if let Some(learning) = &self.learning {
            learning.add_priors(&mut request);
        }
        request
    }
}

/// The name of adloop with learners warmed on other worlds first (`Adloop::with_warm_learners`).
pub const WARM_LEARNERS_POLICY: &str = "adloop-warm-learners";

/// How many earlier worlds `adloop-warm-learners` learns from before its own: five advertisers' months of the
/// same kind. Chosen before measuring; twenty read the same on the learners' tuning seeds.
pub const WARM_WORLDS: u64 = 5;

/// The seeds of the worlds `adloop-warm-learners` learns from before the world of `seed`: far above every seed
/// a table reports, and different for every evaluated seed.
pub fn warm_seeds_before(seed: u64) -> Vec<u64> {
    (0..WARM_WORLDS).map(|world| 1_000_000 + seed * 64 + world).collect()
}

impl Adloop {
    /// adloop as `settings` configure it, named `adloop-warm-learners`, its learners warmed on the worlds of
    /// `warm_seeds_before(seed)` of `scenario` first (`Adloop::warmed_on`).
    pub fn with_warm_learners(
        seed: u64,
        settings: &super::PolicySettings,
        scenario: &crate::Scenario,
    ) -> Result<Adloop, crate::SimulationError> {
        Adloop {
            name: WARM_LEARNERS_POLICY,
            ..Adloop::new(seed).configured(settings)
        }
        .warmed_on(scenario, &warm_seeds_before(seed))
    }

    /// The same policy, its learners warmed first on whole runs of other worlds (`warm_seeds`, one run each, in
    /// order) of `scenario`'s kind, under other account and ad names: a deployment whose instant learner and
    /// pattern store have already learned from earlier advertisers when this world's accounts arrive. Only
    /// the learners carry over; the reporting-delay estimates and the ads' delivery are this world's own.
    pub fn warmed_on(
        mut self,
        scenario: &crate::Scenario,
        warm_seeds: &[u64],
    ) -> Result<Adloop, crate::SimulationError> {
        for (position, &warm_seed) in warm_seeds.iter().enumerate() {
            let Some(mut learning) = self.learning.take() else {
                return Ok(self);
            };
            learning.feed = DeliveryFeed::default();
            let mut warm_policy = Adloop {
                name: self.name,
                seed: warm_seed,
                config: self.config.clone(),
                max_change_fraction: self.max_change_fraction,
                account_delays: AccountDelayEstimates::default(),
                last_beliefs: None,
                learning: Some(learning),
                ..Adloop::without_priors(warm_seed)
            };
            let mut renamed = UnderOtherNames {
                policy: &mut warm_policy,
                prefix: format!("warm-{position}-"),
            };
            crate::run_simulation(scenario, &mut renamed, warm_seed, scenario.days)?;
            self.learning = warm_policy.learning;
        }
        if let Some(learning) = &mut self.learning {
            learning.feed = DeliveryFeed::default();
        }
        Ok(self)
    }
}

/// A policy shown its world's accounts, campaigns, ad sets and ads under prefixed ids, so that a run of another
/// world teaches the learners about other advertisers, not about the evaluated world's own accounts (which
/// share their ids with every world of the same scenario).
struct UnderOtherNames<'a> {
    policy: &'a mut Adloop,
    prefix: String,
}

impl Policy for UnderOtherNames<'_> {
    fn name(&self) -> &str {
        self.policy.name()
    }

    fn decide(&mut self, observation: &Observation, hidden: &HiddenTruths<'_>) -> Result<Vec<MinorUnits>, PolicyError> {
        let mut renamed = observation.clone();
        for ad in &mut renamed.ads {
            let identity = &mut ad.identity;
            for id in [
                &mut identity.account_id,
                &mut identity.campaign_id,
                &mut identity.ad_set_id,
                &mut identity.ad_id,
            ] {
                id.insert_str(0, &self.prefix);
            }
        }
        self.policy.decide(&renamed, hidden)
    }
}

/// Every ad's lifetime totals with its encoded features, in launch order (ads whose features the learner
/// refuses are left out).
pub fn delivery_totals(observation: &Observation, max_features: usize) -> Vec<DeliveryTotals> {
    observation
        .ads
        .iter()
        .filter_map(|ad| {
            let raw = ad.features.iter().map(|(name, value)| (name.as_str(), *value));
            let features = encode_features(raw, max_features).ok()?;
            Some(DeliveryTotals {
                ad_id: ad.identity.ad_id.clone(),
                account_id: ad.identity.account_id.clone(),
                features,
                impressions: ad.impressions,
                clicks: ad.clicks,
                conversions: ad.conversions,
                age_hours: Some(ad.age_hours),
            })
        })
        .collect()
}

/// The learner's updates since the last observation `feed` saw, as the `adloop` policy applies them (and as
/// a client of ml-service would send them): clicks mature on their account's schedule in
/// `account_schedules`, or on `default_schedule`.
pub fn learning_updates(
    feed: &mut DeliveryFeed,
    observation: &Observation,
    account_schedules: &BTreeMap<String, ReportingDelay>,
    default_schedule: &ReportingDelay,
    max_features: usize,
) -> Vec<adloop_learner::LearningUpdate> {
    feed.updates(
        delivery_totals(observation, max_features),
        f64::from(observation.hour),
        DEFAULT_CTR_LEARNING_MAX_AD_AGE_HOURS,
        |account_id, age_hours| {
            account_schedules
                .get(account_id)
                .unwrap_or(default_schedule)
                .reported_share_at(age_hours)
        },
    )
}

impl PolicyLearning {
    /// Teaches both learners what changed since the last decision, ad by ad in launch order.
    fn learn_from(
        &mut self,
        observation: &Observation,
        account_schedules: &BTreeMap<String, ReportingDelay>,
        default_schedule: &ReportingDelay,
    ) {
        let max_features = self.learner.config().max_features_per_event;
        let account_of: HashMap<&str, &str> = observation
            .ads
            .iter()
            .map(|ad| (ad.identity.ad_id.as_str(), ad.identity.account_id.as_str()))
            .collect();
        self.sharing_accounts
            .extend(account_of.values().map(|account| (*account).to_owned()));
        for update in learning_updates(
            &mut self.feed,
            observation,
            account_schedules,
            default_schedule,
            max_features,
        ) {
            self.learner.apply(&update);
            if let Some(recorded) = &mut self.recorded_updates {
                recorded.push(update.clone());
            }
            let Some(account_id) = account_of.get(update.ad_id.as_str()) else {
                continue;
            };
            // A store at its capacity keeps the patterns it has; the simulator's worlds stay far below it.
            let _ = record_shared_event(
                &mut self.patterns,
                account_id,
                &update,
                self.pattern_settings.feature_dimensions,
            );
        }
    }

    /// Both learners' priors for every ad with creative features, in ml-service's order.
    fn add_priors(&self, request: &mut AllocationRequest) {
        add_instant_learner_priors(&self.learner, request);
        add_cross_learner_priors(
            &self.patterns,
            &self.sharing_accounts,
            request,
            &self.pattern_settings,
            self.learner.config().max_features_per_event,
        );
    }
}

/// Each ad's delivery curve and own weekday rhythm, as its account's daily insights show them (today, still
/// under way, left out); `request` was built from `observation`, ad for ad.
fn add_daily_estimates(request: &mut AllocationRequest, observation: &Observation, config: &AllocatorConfig) {
    let today = observation.hour / 24;
    let now_day = f64::from(observation.hour) / 24.0;
    let mut by_account: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, ad) in observation.ads.iter().enumerate() {
        by_account
            .entry(ad.identity.account_id.as_str())
            .or_default()
            .push(index);
    }
    for indices in by_account.values() {
        let histories: Vec<DeliveryHistory> = indices
            .iter()
            .map(|&index| delivery_history(&observation.ads[index], today, config.delivery_curve.days))
            .collect();
        let curves = estimate_delivery_curves(&histories, &config.delivery_curve);
        let weekday_multipliers = estimate_weekday_ctr_multipliers(&histories, now_day, &config.weekday_rhythm);
        for ((&index, curve), weekday_multiplier) in indices.iter().zip(curves).zip(weekday_multipliers) {
            request.ads[index].delivery_curve = curve;
            request.ads[index].weekday_ctr_multiplier = weekday_multiplier;
        }
    }
}

/// The ad's last `days` finished days, lifetime impressions and frequency.
fn delivery_history(ad: &AdObservation, today: u32, days: u32) -> DeliveryHistory {
    DeliveryHistory {
        days: ad
            .daily
            .iter()
            .filter(|day| day.day < today && day.day + days >= today)
            .map(|day| DailyDelivery {
                day: day.day,
                spend: day.spend,
                impressions: day.impressions,
                clicks: day.clicks,
            })
            .collect(),
        lifetime_impressions: ad.impressions,
        frequency: ad.frequency,
    }
}

/// What the simulator observed, in the allocator's terms.
pub fn allocation_request(observation: &Observation, seed: u64, max_change_fraction: f64) -> AllocationRequest {
    let ads = observation
        .ads
        .iter()
        .map(|ad| {
            let (recent, latest) = trend_windows(ad);
            AdInput {
                ids: AdIds {
                    account_id: ad.identity.account_id.clone(),
                    campaign_id: ad.identity.campaign_id.clone(),
                    ad_set_id: ad.identity.ad_set_id.clone(),
                    ad_id: ad.identity.ad_id.clone(),
                },
                impressions: ad.impressions,
                clicks: ad.clicks,
                conversions: ad.conversions,
                spend: ad.spend,
                conversion_value: ad.conversion_value,
                age_hours: ad.age_hours,
                current_daily_budget: ad.current_daily_budget,
                status: match ad.status {
                    AdStatus::Active => AllocatorAdStatus::Active,
                    AdStatus::Paused => AllocatorAdStatus::Paused,
                },
                creative_features: ad.features.clone(),
                creative_dna_score: None,
                priors: Vec::new(),
                recent: Some(recent),
                latest,
                frequency: Some(ad.frequency),
                delivery_curve: None,
                weekday_ctr_multiplier: None,
            }
        })
        .collect();
    AllocationRequest {
        ads,
        total_daily_budget: observation.total_daily_budget,
        currency: observation.currency,
        constraints: AllocationConstraints {
            // Meta refuses a positive budget below the account's minimum: the allocator funds the likeliest
            // best at it and gives the weakest nothing.
            per_ad_floor: observation.minimum_daily_budget,
            per_ad_cap: MinorUnits::ZERO,
            max_change_fraction,
        },
        seed: seed
            .wrapping_mul(1_000_003)
            .wrapping_add(u64::from(observation.hour))
            .max(1),
        reporting_delays: Default::default(),
    }
}

/// Every ad's prior at its true rates, whole or as far as its features explain them (the bounds).
fn add_true_rate_priors(request: &mut AllocationRequest, true_rates: &[crate::policy::TrueRates], which: TruthPriors) {
    for (ad, rates) in request.ads.iter_mut().zip(true_rates) {
        let (ctr, conversions_per_click) = match which {
            TruthPriors::WholeRates => (rates.ctr, rates.conversions_per_click),
            TruthPriors::FeatureExplainedRates => (rates.ctr_from_features, rates.conversions_per_click_from_features),
        };
        ad.priors.push(Prior {
            source: TRUE_RATES_SOURCE.to_owned(),
            expected_ctr: ctr,
            ctr_strength_impressions: TRUE_PRIOR_STRENGTH,
            expected_conversions_per_click: conversions_per_click,
            conversion_strength_conversions: TRUE_PRIOR_STRENGTH,
            rates_are_lifts: false,
        });
    }
}

impl Policy for Adloop {
    fn name(&self) -> &str {
        self.name
    }

    fn decide(&mut self, observation: &Observation, hidden: &HiddenTruths<'_>) -> Result<Vec<MinorUnits>, PolicyError> {
        let mut request = allocation_request(observation, self.seed, self.max_change_fraction);
        add_daily_estimates(&mut request, observation, &self.config);
        if let Some(which) = self.priors_from_truth {
            add_true_rate_priors(&mut request, hidden.true_rates, which);
        }
        self.account_delays.record(observation);
        request.reporting_delays = self.account_delays.schedules(&self.config);
        if let Some(learning) = &mut self.learning {
            learning.learn_from(observation, &request.reporting_delays, &self.config.reporting_delay);
            learning.add_priors(&mut request);
        }
        let allocation = allocate(&request, &self.config).map_err(|error| PolicyError::Failed {
            policy: "adloop".into(),
            reason: error.to_string(),
        })?;
        if let Some(beliefs) = &mut self.last_beliefs {
            *beliefs = allocation
                .recommendations
                .iter()
                .map(|recommendation| AdBelief {
                    probability_best: recommendation.probability_best,
                    roas_mean: recommendation.roas.mean,
                    roas_lower_95: recommendation.roas.lower_95,
                    roas_upper_95: recommendation.roas.upper_95,
                    fatigue_factor: recommendation.fatigue_factor,
                    prior_source: recommendation.prior_source.clone(),
                })
                .collect();
        }
        Ok(allocation
            .recommendations
            .iter()
            .map(|recommendation| recommendation.recommended_daily_budget)
            .collect())
    }

    fn last_beliefs(&self) -> Option<&[AdBelief]> {
        self.last_beliefs.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::WindowStats;
    use crate::policy::observed_ad_for_tests;

    #[test]
    fn an_ad_with_more_than_a_week_of_history_is_read_on_the_last_week_a_younger_one_on_72_hours() {
        let window = |impressions| WindowStats {
            impressions,
            ..WindowStats::default()
        };
        let ad = |age_hours| crate::observation::AdObservation {
            age_hours,
            last_72_hours: window(3_000),
            last_7_days: window(7_000),
            ..observed_ad_for_tests("ad", 10_000)
        };
        let (settled, latest) = trend_windows(&ad(240.0));
        assert_eq!((settled.hours, settled.impressions), (168.0, 7_000));
        let latest = latest.expect("a settled ad carries its last 72 hours too");
        assert_eq!((latest.hours, latest.impressions), (72.0, 3_000));
        for young_age in [100.0, 168.0] {
            let (young, latest) = trend_windows(&ad(young_age));
            assert_eq!((young.hours, young.impressions), (72.0, 3_000), "at {young_age} h");
            assert!(latest.is_none(), "at {young_age} h");
        }
    }

    /// A deployment that served earlier advertisers starts a new account knowing what the features are worth,
    /// and nothing about the new account itself: its events came under other account names.
    #[test]
    fn warmed_learners_know_the_features_before_the_world_starts_and_nothing_of_its_own_accounts() {
        let mut scenario =
            crate::Scenario::from_toml(include_str!("../../../../scenarios/cold-start.toml")).expect("scenario");
        scenario.days = 12;
        assert_eq!(Adloop::new(7).learner().expect("learner").updates_applied(), 0);

        let warm = Adloop::with_warm_learners(7, &super::super::PolicySettings::default(), &scenario).expect("warmed");

        let learner = warm.learner().expect("learner");
        assert!(learner.updates_applied() > 0);
        let ctr_weights: BTreeMap<&str, f64> = learner.ctr_head().weights().collect();
        // cold-start's question hooks lift CTR by 0.4 in log terms, long videos lower it by 0.3.
        assert!(ctr_weights["hook_question"] > 0.1, "{ctr_weights:?}");
        assert!(ctr_weights["long_video"] < -0.1, "{ctr_weights:?}");
        let features = encode_features([("hook_question", 1.0)], 16).expect("features");
        let head = learner.ctr_head();
        assert_eq!(
            head.predict(&features, "act_100000001"),
            head.predict(&features, ""),
            "the evaluated world's account has no offset of its own yet"
        );
    }
}
