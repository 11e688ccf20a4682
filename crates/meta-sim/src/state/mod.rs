//! Everything meta-sim knows, behind one lock: the world, the clock, the Graph objects, received CAPI
//! events, rate-limit usage, faults and the request log. Graph calls (single or inside a batch) and CAPI
//! requests are executed here, so both paths obey the same rules. This module owns the state and keeps the
//! world in step with its clock; each concern has a file of its own: `access` (tokens), `graph_calls`
//! (dispatch, reads and insights), `object_updates` (budgets, statuses, names) and `capi_intake`.

use std::collections::{BTreeMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use adloop_money::Currency;
use campaign_sim::{Scenario, World};
use serde::Serialize;

use crate::capi::CapiStore;
use crate::clock::SimClock;
use crate::dates::{CivilDate, civil_from_days};
use crate::faults::{FaultInjector, FaultSettings};
use crate::objects::{ChangeRecord, LaunchedAd, ObjectKind, ObjectRegistry, ObjectStatus};
use crate::rate_limits::{RateLimiter, UsageReport};
use crate::report_runs::ReportRuns;
use crate::settings::MetaSimSettings;

mod access;
mod capi_intake;
mod graph_calls;
mod object_updates;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the scenario (world.scenario_path = {path}): {source}")]
    ScenarioUnreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid scenario (world.scenario_path = {path}): {source}")]
    ScenarioInvalid {
        path: String,
        #[source]
        source: campaign_sim::ScenarioError,
    },
}

/// One entry of `/_sim/requests`. Tokens never appear here.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub sequence: u64,
    pub received_at_unix_millis: u128,
    pub simulated_hour: f64,
    pub method: String,
    pub path: String,
    /// Query and body parameter names (values are left out: they may carry tokens or user data).
    pub parameter_names: Vec<String>,
    pub status: u16,
    pub error_code: Option<u32>,
    /// Graph calls the request counted as (a batch counts one per operation).
    pub graph_calls: usize,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    pub requests: u64,
    pub graph_calls: u64,
    pub graph_errors: u64,
    pub batches: u64,
    pub capi_requests: u64,
    pub capi_events_received: u64,
    /// Browser pixel events (`GET /tr`).
    pub pixel_events_received: u64,
    pub faults_injected: u64,
}

/// What the world truly delivered so far, every conversion counted when it happened (reported yet or not):
/// what a run is judged on, beside what insights have reported.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WorldTotals {
    pub spend: i64,
    pub conversion_value: i64,
    pub conversions: u64,
    /// Spend on ads whose true ROAS was below half the best active ad's.
    pub spend_on_losing_ads: i64,
}

/// A Graph API call: an HTTP method on an object (optionally an edge), with its parameters.
#[derive(Debug, Clone)]
pub struct GraphCall {
    pub method: String,
    pub object_id: String,
    pub edge: Option<String>,
    pub params: BTreeMap<String, String>,
    /// `http://host/v25.0`: where paging links point.
    pub link_base: String,
}

pub struct SimState {
    pub settings: MetaSimSettings,
    scenario: Scenario,
    seed: u64,
    world: World,
    start_date: CivilDate,
    pub clock: SimClock,
    objects: ObjectRegistry,
    capi: CapiStore,
    report_runs: ReportRuns,
    rate_limiter: RateLimiter,
    pub faults: FaultInjector,
    requests: VecDeque<RequestRecord>,
    next_request_sequence: u64,
    pub counters: Counters,
    pub world_totals: WorldTotals,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

fn load_scenario(path: &str) -> Result<Scenario, StateError> {
    let text = std::fs::read_to_string(path).map_err(|source| StateError::ScenarioUnreadable {
        path: path.to_owned(),
        source,
    })?;
    let mut scenario = Scenario::from_toml(&text).map_err(|source| StateError::ScenarioInvalid {
        path: path.to_owned(),
        source,
    })?;
    // meta-sim delivers hour by hour whatever the scenario's decision interval.
    scenario.decision_interval_hours = 1;
    Ok(scenario)
}

impl SimState {
    pub fn new(settings: MetaSimSettings) -> Result<SimState, StateError> {
        let scenario = load_scenario(&settings.world.scenario_path)?;
        let now_unix = unix_now();
        let today = civil_from_days(now_unix.div_euclid(86_400));
        let start_date = CivilDate::parse(&settings.world.start_date).unwrap_or(today);
        let mut clock = SimClock::new(settings.clock.mode, settings.clock.simulated_hours_per_second);
        if settings.clock.mode == crate::clock::ClockMode::Real {
            // Real time: simulated "now" is the wall clock, counted from the start date's midnight.
            let seconds_since_start = now_unix - crate::dates::days_from_civil(start_date) * 86_400;
            clock.advance_hours(seconds_since_start.max(0) as f64 / 3600.0);
        }
        let seed = settings.world.seed;
        let faults = FaultInjector::new(settings.faults.clone());
        let mut state = SimState {
            world: World::new(&scenario, seed),
            scenario,
            seed,
            start_date,
            clock,
            objects: ObjectRegistry::default(),
            capi: CapiStore::new(settings.capi.stored_event_capacity),
            report_runs: ReportRuns::new(
                settings.graph.async_report_runs_kept,
                settings.graph.async_report_polls_before_completion,
            ),
            rate_limiter: RateLimiter::default(),
            faults,
            requests: VecDeque::new(),
            next_request_sequence: 1,
            counters: Counters::default(),
            world_totals: WorldTotals::default(),
            settings,
        };
        state.register_launched_ads();
        state.catch_up();
        Ok(state)
    }

    /// Back to the start: a fresh world (same scenario and seed), no objects' history, events, usage,
    /// faults or request log. The clock keeps its mode; manual and accelerated clocks restart at hour 0.
    /// A fresh world from the settings (the scenario file is read again), keeping the clock's mode. On an
    /// error nothing changes.
    pub fn reset(&mut self) -> Result<(), StateError> {
        let settings = self.settings.clone();
        let mode = self.clock.mode();
        let speed = self.clock.simulated_hours_per_second();
        let mut fresh = SimState::new(settings)?;
        fresh.clock.set_mode(mode, speed);
        *self = fresh;
        Ok(())
    }

    pub fn currency(&self) -> Currency {
        self.scenario.currency
    }

    pub fn start_date(&self) -> CivilDate {
        self.start_date
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn objects(&self) -> &ObjectRegistry {
        &self.objects
    }

    pub fn capi_store(&self) -> &CapiStore {
        &self.capi
    }

    pub fn requests(&self) -> impl Iterator<Item = &RequestRecord> {
        self.requests.iter()
    }

    pub fn replace_faults(&mut self, faults: FaultSettings) {
        self.faults = FaultInjector::new(faults);
    }

    pub fn simulated_hour(&self) -> f64 {
        self.clock.now_seconds() / 3600.0
    }

    /// Unix seconds of the simulated "now".
    pub fn now_unix(&self) -> i64 {
        crate::dates::days_from_civil(self.start_date) * 86_400 + self.clock.now_seconds() as i64
    }

    /// Runs the world forward to the clock's current hour, registering launches and scenario pauses.
    pub fn catch_up(&mut self) {
        self.catch_up_at_most(u32::MAX);
    }

    /// Simulated hours the world is behind its clock.
    pub fn hours_behind(&self) -> u32 {
        self.clock_hour().saturating_sub(self.world.hour())
    }

    /// Runs the world forward by at most `hours` towards the clock; returns whether it is caught up.
    pub fn catch_up_at_most(&mut self, hours: u32) -> bool {
        let target_hour = self.clock_hour().min(self.world.hour().saturating_add(hours));
        while self.world.hour() < target_hour {
            let outcome = self.world.advance();
            self.world_totals.spend += outcome.spend.get();
            self.world_totals.conversion_value += outcome.conversion_value.get();
            self.world_totals.conversions += outcome.conversions;
            self.world_totals.spend_on_losing_ads += outcome.spend_on_losing_ads.get();
            self.register_launched_ads();
            self.record_scenario_pauses();
        }
        self.hours_behind() == 0
    }

    fn clock_hour(&self) -> u32 {
        (self.clock.now_seconds() / 3600.0).floor() as u32
    }

    fn register_launched_ads(&mut self) {
        let launched: Vec<(usize, campaign_sim::AdIdentity)> = self
            .world
            .observed_truth_indices()
            .iter()
            .copied()
            .zip(self.world.observation().ads.iter().map(|ad| ad.identity.clone()))
            .collect();
        for (truth_index, identity) in launched {
            self.objects.register_launched_ad(&LaunchedAd {
                truth_index,
                account_id: &identity.account_id,
                campaign_id: &identity.campaign_id,
                ad_set_id: &identity.ad_set_id,
                ad_id: &identity.ad_id,
                name: &identity.name,
            });
        }
    }

    /// The scenario pauses some ads itself (the advertiser's own pauses): reflect them as status changes.
    fn record_scenario_pauses(&mut self) {
        let simulated_hour = f64::from(self.world.hour());
        let paused_by_scenario: Vec<String> = self
            .objects
            .all()
            .filter(|object| object.kind == ObjectKind::Ad && object.status == ObjectStatus::Active)
            .filter(|ad| {
                ad.truth_index.is_some_and(|index| self.world.is_ad_paused(index))
                    && self.objects.ad_may_deliver(&ad.id)
            })
            .map(|ad| ad.id.clone())
            .collect();
        if !paused_by_scenario.is_empty() {
            self.objects.statuses_changed();
        }
        for ad_id in paused_by_scenario {
            if let Some(ad) = self.objects.get_mut(&ad_id) {
                ad.status = ObjectStatus::Paused;
                ad.history.push(ChangeRecord {
                    simulated_hour,
                    field: "status".into(),
                    old_value: "ACTIVE".into(),
                    new_value: "PAUSED".into(),
                    source: "scenario",
                });
            }
        }
    }

    /// Tells the world which ads may deliver after a status change.
    fn sync_delivery_with_statuses(&mut self) {
        self.objects.statuses_changed();
        let deliveries: Vec<(usize, bool)> = self
            .objects
            .all()
            .filter(|object| object.kind == ObjectKind::Ad)
            .filter_map(|ad| ad.truth_index.map(|index| (index, self.objects.ad_may_deliver(&ad.id))))
            .collect();
        for (truth_index, may_deliver) in deliveries {
            self.world.set_ad_paused(truth_index, !may_deliver);
        }
    }

    fn active_ads_in_account(&mut self, account_id: &str) -> u64 {
        self.objects.delivering_ads_in_account(account_id)
    }

    /// The ad account a Graph call is charged to, if the object exists.
    pub fn account_of(&self, object_id: &str) -> Option<String> {
        self.objects
            .get(object_id)
            .map(|object| object.account_id.clone())
            .or_else(|| self.report_runs.get(object_id).map(|run| run.account_id.clone()))
    }

    /// Usage headers for a response about `account_ids` (the first is the request's own account), with
    /// the insights throttle header when the response carries insights.
    pub fn usage_headers(&mut self, account_ids: &[String], includes_insights: bool) -> Vec<(&'static str, String)> {
        let accounts: Vec<(String, u64)> = account_ids
            .iter()
            .map(|account_id| (account_id.clone(), self.active_ads_in_account(account_id)))
            .collect();
        self.rate_limiter.usage_headers(
            &self.settings.rate_limits,
            &UsageReport {
                accounts: &accounts,
                includes_insights,
            },
        )
    }

    pub fn record_request(&mut self, mut record: RequestRecord) {
        record.sequence = self.next_request_sequence;
        self.next_request_sequence += 1;
        self.counters.requests += 1;
        self.requests.push_back(record);
        while self.requests.len() > self.settings.inspection.request_log_capacity {
            self.requests.pop_front();
        }
    }

    pub fn scenario_name(&self) -> &str {
        &self.scenario.name
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }
}
