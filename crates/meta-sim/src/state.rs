//! Everything meta-sim knows, behind one lock: the world, the clock, the Graph objects, received CAPI
//! events, rate-limit usage, faults and the request log. Graph calls (single or inside a batch) and CAPI
//! requests are executed here, so both paths obey the same rules.

use std::collections::{BTreeMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use adloop_money::{Currency, GraphAmount, MinorUnits, Money};
use campaign_sim::{Scenario, World};
use serde::Serialize;
use serde_json::{Value, json};

use crate::capi::{CapiStore, RequestContext, parse_events, validate_events};
use crate::clock::SimClock;
use crate::dates::{CivilDate, civil_from_days};
use crate::faults::{FaultInjector, FaultSettings};
use crate::graph_error::GraphError;
use crate::insights::{insights_rows, parse_insights_query};
use crate::objects::{ChangeRecord, GraphObject, LaunchedAd, ObjectKind, ObjectRegistry, ObjectStatus};
use crate::rate_limits::{BusinessUseCase, CallCharge, CallKind, RateLimiter};
use crate::settings::{AccountToken, MetaSimSettings};

const BUDGET_CHANGES_PER_HOUR: usize = 4;
const BUDGET_TOO_LOW_SUBCODE: u32 = 1_885_272;

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
    pub faults_injected: u64,
}

/// A Graph API call: an HTTP method on an object (optionally an edge), with its parameters.
#[derive(Debug, Clone)]
pub struct GraphCall {
    pub method: String,
    pub object_id: String,
    pub edge: Option<String>,
    pub params: BTreeMap<String, String>,
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
    rate_limiter: RateLimiter,
    pub faults: FaultInjector,
    requests: VecDeque<RequestRecord>,
    next_request_sequence: u64,
    pub counters: Counters,
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
            rate_limiter: RateLimiter::default(),
            faults,
            requests: VecDeque::new(),
            next_request_sequence: 1,
            counters: Counters::default(),
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
            self.world.advance();
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

    fn active_ads_in_account(&self, account_id: &str) -> u64 {
        self.objects
            .all()
            .filter(|object| object.kind == ObjectKind::Ad && object.account_id == account_id)
            .filter(|ad| self.objects.ad_may_deliver(&ad.id))
            .count() as u64
    }

    /// The grant behind a token: `None` for the default token (every account and pixel), 190 when the
    /// token is missing or unknown.
    fn token_grant(&self, token: Option<&str>) -> Result<Option<&AccountToken>, GraphError> {
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return Err(GraphError::invalid_access_token(
                "An active access token must be used to query information",
            ));
        };
        if token == self.settings.access.default_token.expose() {
            return Ok(None);
        }
        self.settings
            .access
            .account_tokens
            .iter()
            .find(|grant| grant.token.expose() == token)
            .map(Some)
            .ok_or_else(|| GraphError::invalid_access_token("Cannot parse access token"))
    }

    /// The token must be known (190 otherwise) and, when `account_id` is given, allowed to use that account.
    pub fn check_token_for_account(&self, token: Option<&str>, account_id: Option<&str>) -> Result<(), GraphError> {
        match (self.token_grant(token)?, account_id) {
            (Some(grant), Some(account_id)) if !grant.ad_account_ids.iter().any(|allowed| allowed == account_id) => {
                Err(GraphError::invalid_access_token(
                    "The access token is not authorised for this ad account",
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn check_token_for_pixel(&self, token: Option<&str>, pixel_id: &str) -> Result<(), GraphError> {
        match self.token_grant(token)? {
            Some(grant) if !grant.pixel_ids.iter().any(|allowed| allowed == pixel_id) => Err(
                GraphError::invalid_access_token("The access token is not authorised for this pixel"),
            ),
            _ => Ok(()),
        }
    }

    /// The ad account a Graph call is charged to, if the object exists.
    pub fn account_of(&self, object_id: &str) -> Option<String> {
        self.objects.get(object_id).map(|object| object.account_id.clone())
    }

    /// Usage headers for a response about `account_id`.
    pub fn usage_headers(&mut self, account_id: Option<&str>) -> Vec<(&'static str, String)> {
        let active_ads = account_id
            .map(|account_id| self.active_ads_in_account(account_id))
            .unwrap_or(0);
        self.rate_limiter
            .usage_headers(&self.settings.rate_limits, account_id, active_ads)
    }

    /// Executes one Graph call (outside or inside a batch): token, rate limits, then the operation.
    pub fn execute_graph_call(&mut self, call: &GraphCall, source: &'static str) -> Result<Value, GraphError> {
        self.counters.graph_calls += 1;
        let result = self.execute_graph_call_inner(call, source);
        if result.is_err() {
            self.counters.graph_errors += 1;
        }
        result
    }

    fn execute_graph_call_inner(&mut self, call: &GraphCall, source: &'static str) -> Result<Value, GraphError> {
        let token = call.params.get("access_token").map(String::as_str);
        let account_id = self.account_of(&call.object_id);
        self.check_token_for_account(token, account_id.as_deref())?;
        let Some(account_id) = account_id else {
            return Err(GraphError::unknown_object(&call.object_id, &call.method.to_lowercase()));
        };
        if let Some((code, subcode)) = self.faults.active_throttle() {
            return Err(GraphError::throttled(code, subcode));
        }
        let is_write = call.method == "POST" || call.method == "DELETE";
        let use_case = if call.edge.as_deref() == Some("insights") {
            BusinessUseCase::AdsInsights
        } else {
            BusinessUseCase::AdsManagement
        };
        let active_ads = self.active_ads_in_account(&account_id);
        self.rate_limiter.charge(
            &self.settings.rate_limits,
            &CallCharge {
                ad_account_id: Some(&account_id),
                kind: if is_write { CallKind::Write } else { CallKind::Read },
                use_case,
                active_ads_in_account: active_ads,
            },
        )?;
        match (call.method.as_str(), call.edge.as_deref()) {
            ("GET", None) => self.read_object(&call.object_id, call.params.get("fields").map(String::as_str)),
            ("GET", Some("insights")) => self.read_insights(&call.object_id, &call.params),
            ("POST", None) => self.update_object(&call.object_id, &call.params, source),
            ("DELETE", None) => {
                let mut params = call.params.clone();
                params.insert("status".into(), "DELETED".into());
                self.update_object(&call.object_id, &params, source)
            }
            (method, edge) => Err(GraphError::unknown_object(
                &format!(
                    "{}{}",
                    call.object_id,
                    edge.map(|edge| format!("/{edge}")).unwrap_or_default()
                ),
                &method.to_lowercase(),
            )),
        }
    }

    fn object(&self, object_id: &str, method: &str) -> Result<&GraphObject, GraphError> {
        self.objects
            .get(object_id)
            .ok_or_else(|| GraphError::unknown_object(object_id, method))
    }

    fn read_object(&self, object_id: &str, fields: Option<&str>) -> Result<Value, GraphError> {
        let object = self.object(object_id, "get")?;
        let requested: Vec<&str> = match fields {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|field| !field.is_empty())
                .collect(),
            None => vec!["id", "name"],
        };
        let mut result = serde_json::Map::new();
        for field in requested {
            let value = self.object_field(object, field).ok_or_else(|| {
                GraphError::invalid_parameter(format!(
                    "Tried accessing nonexisting field ({field}) on node type ({})",
                    object.kind.node_type()
                ))
            })?;
            if !value.is_null() {
                result.insert(field.to_owned(), value);
            }
        }
        result.insert("id".into(), json!(object.id));
        Ok(Value::Object(result))
    }

    /// A field of an object, `Value::Null` when it exists but has no value, `None` when it does not exist.
    fn object_field(&self, object: &GraphObject, field: &str) -> Option<Value> {
        // Budgets cross the Graph API in Meta's units for the currency (adloop_money::GraphAmount).
        let currency = self.scenario.currency;
        let budget = || {
            object
                .truth_index
                .map(|index| {
                    let budget = self.world.ad_set_daily_budget(index);
                    json!(budget.to_graph_amount_rounded_down(currency).get().to_string())
                })
                .unwrap_or(Value::Null)
        };
        let value = match (object.kind, field) {
            (_, "id") => json!(object.id),
            (_, "name") => json!(object.name),
            (ObjectKind::AdAccount, "account_id") => json!(object.id.trim_start_matches("act_")),
            (ObjectKind::AdAccount, "currency") => json!(self.scenario.currency.code()),
            (ObjectKind::AdAccount, "account_status") => json!(1),
            (ObjectKind::AdAccount, "timezone_name") => json!("Etc/UTC"),
            (ObjectKind::AdAccount, "min_daily_budget") => {
                json!(self.minimum_daily_budget().to_graph_amount_rounded_down(currency).get())
            }
            (ObjectKind::AdAccount, _) => return None,
            (_, "account_id") => json!(object.account_id.trim_start_matches("act_")),
            (_, "status") | (_, "configured_status") => json!(object.status.as_str()),
            (_, "effective_status") => json!(self.objects.effective_status(object)),
            (ObjectKind::Campaign, "daily_budget") | (ObjectKind::Campaign, "lifetime_budget") => Value::Null,
            (ObjectKind::Campaign, "objective") => json!("OUTCOME_SALES"),
            (ObjectKind::Campaign, "buying_type") => json!("AUCTION"),
            (ObjectKind::AdSet, "daily_budget") => budget(),
            (ObjectKind::AdSet, "lifetime_budget") => json!("0"),
            (ObjectKind::AdSet, "budget_remaining") => budget(),
            (ObjectKind::AdSet | ObjectKind::Ad, "campaign_id") => json!(object.campaign_id),
            (ObjectKind::Ad, "adset_id") => json!(object.ad_set_id),
            _ => return None,
        };
        Some(value)
    }

    fn minimum_daily_budget(&self) -> MinorUnits {
        MinorUnits::from_major_rounded(
            self.settings.graph.minimum_daily_budget_major_units,
            self.scenario.currency,
        )
    }

    fn read_insights(&self, object_id: &str, params: &BTreeMap<String, String>) -> Result<Value, GraphError> {
        let object = self.object(object_id, "get")?;
        let today_index = i64::from(self.world.hour() / 24);
        let query = parse_insights_query(params, object, self.start_date, today_index)?;
        Ok(insights_rows(
            &query,
            object,
            &self.objects,
            &self.world,
            self.scenario.currency,
            self.start_date,
        ))
    }

    fn update_object(
        &mut self,
        object_id: &str,
        params: &BTreeMap<String, String>,
        source: &'static str,
    ) -> Result<Value, GraphError> {
        const UPDATABLE: &[&str] = &["daily_budget", "lifetime_budget", "status", "name"];
        const CONTROL: &[&str] = &[
            "access_token",
            "execution_options",
            "method",
            "format",
            "suppress_http_code",
            "pretty",
        ];
        let object = self.object(object_id, "post")?.clone();
        if object.kind == ObjectKind::AdAccount {
            return Err(GraphError::unknown_object(object_id, "post"));
        }
        for key in params.keys() {
            if !UPDATABLE.contains(&key.as_str()) && !CONTROL.contains(&key.as_str()) {
                return Err(GraphError::invalid_parameter(format!(
                    "Param {key} is not a valid field for updating"
                )));
            }
        }
        if object.status == ObjectStatus::Deleted {
            return Err(GraphError::invalid_parameter(format!(
                "Object {object_id} is deleted and cannot be updated"
            )));
        }
        let validate_only = params
            .get("execution_options")
            .is_some_and(|options| options.contains("validate_only"));

        let new_status = match params.get("status") {
            Some(text) => Some(ObjectStatus::parse(text).ok_or_else(|| {
                GraphError::invalid_parameter(format!(
                    "param status must be one of {{ACTIVE, PAUSED, DELETED, ARCHIVED}}; got `{text}`"
                ))
            })?),
            None => None,
        };
        if params.contains_key("lifetime_budget") {
            return Err(GraphError::invalid_parameter(
                "This ad set uses a daily budget; lifetime_budget cannot be set on it",
            ));
        }
        let new_daily_budget = match params.get("daily_budget") {
            Some(text) => Some(self.check_daily_budget(&object, text)?),
            None => None,
        };
        if validate_only {
            return Ok(json!({ "success": true }));
        }

        let simulated_hour = self.simulated_hour();
        let mut changes: Vec<ChangeRecord> = Vec::new();
        if let Some(budget) = new_daily_budget
            && let Some(truth_index) = object.truth_index
        {
            let old_budget = self.world.ad_set_daily_budget(truth_index);
            if old_budget != budget {
                self.world.set_ad_set_daily_budget(truth_index, budget);
                if let Some(stored) = self.objects.get_mut(object_id) {
                    stored.budget_change_seconds.push(simulated_hour * 3600.0);
                }
                changes.push(ChangeRecord {
                    simulated_hour,
                    field: "daily_budget".into(),
                    old_value: old_budget.get().to_string(),
                    new_value: budget.get().to_string(),
                    source,
                });
            }
        }
        if let Some(status) = new_status
            && status != object.status
        {
            if let Some(stored) = self.objects.get_mut(object_id) {
                stored.status = status;
            }
            changes.push(ChangeRecord {
                simulated_hour,
                field: "status".into(),
                old_value: object.status.as_str().into(),
                new_value: status.as_str().into(),
                source,
            });
            self.sync_delivery_with_statuses();
        }
        if let Some(name) = params.get("name")
            && *name != object.name
        {
            if let Some(stored) = self.objects.get_mut(object_id) {
                stored.name = name.clone();
            }
            changes.push(ChangeRecord {
                simulated_hour,
                field: "name".into(),
                old_value: object.name.clone(),
                new_value: name.clone(),
                source,
            });
        }
        if let Some(stored) = self.objects.get_mut(object_id) {
            stored.history.extend(changes);
        }
        Ok(json!({ "success": true }))
    }

    /// A daily budget must be a whole number of Meta's units for the currency (its offset: cents for USD,
    /// whole pesos for COP), on an ad set, at least the account minimum, and the ad set must not have had 4
    /// budget changes in the last hour.
    fn check_daily_budget(&self, object: &GraphObject, text: &str) -> Result<MinorUnits, GraphError> {
        if object.kind != ObjectKind::AdSet {
            return Err(GraphError::invalid_parameter(format!(
                "daily_budget can only be set on ad sets here; {} {} has no budget (ad set budgets are in use)",
                object.kind.node_type(),
                object.id
            )));
        }
        let currency = self.scenario.currency;
        let graph_budget: i64 = text.trim().parse().map_err(|_| {
            GraphError::invalid_parameter(format!(
                "param daily_budget must be a whole number of {currency} units at offset {} (Meta's currency \
                 table); got `{text}`",
                currency.graph_api_offset()
            ))
        })?;
        let budget = GraphAmount(graph_budget).to_minor_units(currency).get();
        let minimum = self.minimum_daily_budget();
        if budget < minimum.get() {
            let minimum_in_graph_units = minimum.to_graph_amount_rounded_down(currency).get();
            return Err(GraphError::invalid_parameter_with_subcode(
                BUDGET_TOO_LOW_SUBCODE,
                format!("daily_budget {graph_budget} is below the account minimum of {minimum_in_graph_units}"),
            )
            .with_user_message(
                "Your Budget Is Too Low",
                format!(
                    "The minimum daily budget for this ad set is {}",
                    Money {
                        amount: minimum,
                        currency
                    }
                ),
            ));
        }
        let now_seconds = self.clock.now_seconds();
        let changes_in_last_hour = object
            .budget_change_seconds
            .iter()
            .filter(|changed_at| now_seconds - **changed_at < 3600.0)
            .count();
        let current_budget = object.truth_index.map(|index| self.world.ad_set_daily_budget(index));
        let is_a_change = current_budget != Some(MinorUnits(budget));
        if is_a_change && changes_in_last_hour >= BUDGET_CHANGES_PER_HOUR {
            return Err(GraphError::too_many_budget_changes());
        }
        Ok(MinorUnits(budget))
    }

    /// Validates and stores CAPI events for a pixel.
    pub fn receive_capi_events(
        &mut self,
        pixel_id: &str,
        params: &BTreeMap<String, Value>,
    ) -> Result<Value, GraphError> {
        self.counters.capi_requests += 1;
        let token = params.get("access_token").and_then(Value::as_str);
        if !self.settings.capi.pixel_ids.iter().any(|known| known == pixel_id) {
            self.check_token_for_account(token, None)?;
            return Err(GraphError::unknown_object(pixel_id, "post"));
        }
        self.check_token_for_pixel(token, pixel_id)?;
        if let Some((code, subcode)) = self.faults.active_throttle() {
            return Err(GraphError::throttled(code, subcode));
        }
        self.rate_limiter.charge(
            &self.settings.rate_limits,
            &CallCharge {
                ad_account_id: None,
                kind: CallKind::Write,
                use_case: BusinessUseCase::AdsManagement,
                active_ads_in_account: 0,
            },
        )?;
        let data = params
            .get("data")
            .ok_or_else(|| GraphError::invalid_parameter("The parameter data is required"))?;
        let events = parse_events(data)?;
        let now_unix = self.now_unix();
        validate_events(&events, now_unix, &self.settings.capi)?;
        let text_param = |name: &str| params.get(name).and_then(Value::as_str).map(str::to_owned);
        let context = RequestContext {
            pixel_id,
            received_at_unix: now_unix,
            test_event_code: text_param("test_event_code"),
            partner_agent: text_param("partner_agent"),
        };
        let received = self
            .capi
            .store(events, &context, self.settings.capi.deduplication_window_hours);
        self.counters.capi_events_received += received as u64;
        Ok(json!({
            "events_received": received,
            "messages": [],
            "fbtrace_id": crate::graph_error::new_fbtrace_id(),
        }))
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
