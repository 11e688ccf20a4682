//! One Graph call, outside or inside a batch: token, throttling and rate limits, then the read or write.

use serde_json::{Value, json};

use crate::graph_error::GraphError;
use crate::insights::{InsightsQuery, insights_rows, page_of_rows, parse_insights_query, parse_page_request};
use crate::objects::{GraphObject, ObjectKind};
use crate::rate_limits::{BusinessUseCase, CallCharge, CallKind};

use super::{GraphCall, SimState};

impl SimState {
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
        self.check_appsecret_proof(token, call.params.get("appsecret_proof").map(String::as_str))?;
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
        if self.report_runs.get(&call.object_id).is_some() {
            return self.read_report_run(call);
        }
        match (call.method.as_str(), call.edge.as_deref()) {
            ("GET", None) => self.read_object(&call.object_id, call.params.get("fields").map(String::as_str)),
            ("GET", Some("insights")) => self.read_insights(call),
            ("POST", Some("insights")) => self.start_report_run(call, &account_id),
            ("GET", Some("minimum_budgets")) if call.object_id.starts_with("act_") => Ok(self.read_minimum_budgets()),
            ("GET", Some(edge @ ("campaigns" | "adsets" | "ads"))) if call.object_id.starts_with("act_") => {
                self.list_account_objects(call, edge)
            }
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

    pub(super) fn object(&self, object_id: &str, method: &str) -> Result<&GraphObject, GraphError> {
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

    /// `GET act_{id}/campaigns|adsets|ads`: the account's objects of that kind with the requested fields, a
    /// page at a time. As at Meta, archived and deleted ones are left out unless `effective_status` (a JSON
    /// list) asks for them.
    fn list_account_objects(&self, call: &GraphCall, edge: &str) -> Result<Value, GraphError> {
        let kind = match edge {
            "campaigns" => ObjectKind::Campaign,
            "adsets" => ObjectKind::AdSet,
            _ => ObjectKind::Ad,
        };
        let wanted_statuses: Vec<String> = match call.params.get("effective_status") {
            Some(text) => serde_json::from_str(text).map_err(|_| {
                GraphError::invalid_parameter(format!(
                    "param effective_status must be a JSON list of statuses, e.g. [\"ACTIVE\",\"PAUSED\"]; got `{text}`"
                ))
            })?,
            None => Vec::new(),
        };
        let is_listed = |status: &str| {
            if wanted_statuses.is_empty() {
                !matches!(status, "ARCHIVED" | "DELETED")
            } else {
                wanted_statuses.iter().any(|wanted| wanted == status)
            }
        };
        let page = parse_page_request(&call.params)?;
        let fields = call.params.get("fields").map(String::as_str);
        let rows = self
            .objects
            .all()
            .filter(|object| object.kind == kind && object.account_id == call.object_id)
            .filter(|object| is_listed(self.objects.effective_status(object)))
            .map(|object| self.read_object(&object.id, fields))
            .collect::<Result<Vec<Value>, GraphError>>()?;
        let link = format!("{}/{}/{edge}", call.link_base, call.object_id);
        Ok(page_of_rows(rows, page, &link, &call.params))
    }

    /// An ad's creative features as Meta ad labels (`{"id", "name"}`): `feature:testimonial` for a feature
    /// the creative has, `feature:duration=0.5` for a number; absent features get no label. (Meta's ads carry
    /// the labels their advertiser gives them; this is how a platform's own creative tags reach adloop.)
    fn creative_feature_labels(&self, object: &GraphObject) -> Value {
        let Some(truth) = object.truth_index.and_then(|index| self.world.truths().get(index)) else {
            return json!([]);
        };
        let labels: Vec<Value> = truth
            .features
            .iter()
            .filter(|(_, value)| **value != 0.0)
            .enumerate()
            .map(|(index, (name, value))| {
                let label = if *value == 1.0 {
                    format!("feature:{name}")
                } else {
                    format!("feature:{name}={value}")
                };
                json!({ "id": format!("{}{index:02}", object.id), "name": label })
            })
            .collect();
        json!(labels)
    }

    /// When an object was created, as Unix seconds: an ad set or ad when its ad launched; an account or a
    /// campaign when the simulation began.
    fn created_unix(&self, object: &GraphObject) -> i64 {
        let start_unix = crate::dates::days_from_civil(self.start_date) * 86_400;
        let launch_hour = object
            .truth_index
            .and_then(|index| self.world.truths().get(index))
            .map_or(0, |truth| i64::from(truth.launch_hour));
        start_unix + launch_hour * 3600
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
            (ObjectKind::AdAccount, "timezone_offset_hours_utc") => json!(0.0),
            (_, "created_time") => {
                json!(crate::dates::graph_time(self.created_unix(object)))
            }
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
            (ObjectKind::Ad, "adlabels") => self.creative_feature_labels(object),
            _ => return None,
        };
        Some(value)
    }

    /// `POST /{object}/insights`: the rows the same GET would give, computed now, served by a report run.
    fn start_report_run(&mut self, call: &GraphCall, account_id: &str) -> Result<Value, GraphError> {
        let (_, rows) = self.insights_query_and_rows(call, "post")?;
        let now_unix = self.now_unix();
        let report_run_id = self.report_runs.start(account_id, rows, now_unix);
        Ok(json!({ "report_run_id": report_run_id }))
    }

    /// `GET /{report_run_id}` (its progress) or `GET /{report_run_id}/insights` (a page of its rows).
    fn read_report_run(&mut self, call: &GraphCall) -> Result<Value, GraphError> {
        let unknown = || GraphError::unknown_object(&call.object_id, &call.method.to_lowercase());
        match (call.method.as_str(), call.edge.as_deref()) {
            ("GET", None) => {
                let now_unix = self.now_unix();
                self.report_runs.poll(&call.object_id, now_unix).ok_or_else(unknown)
            }
            ("GET", Some("insights")) => {
                let page = parse_page_request(&call.params)?;
                let rows = self.report_runs.rows(&call.object_id).ok_or_else(unknown)??;
                let link = format!("{}/{}/insights", call.link_base, call.object_id);
                Ok(page_of_rows(rows.to_vec(), page, &link, &call.params))
            }
            _ => Err(unknown()),
        }
    }

    fn read_insights(&self, call: &GraphCall) -> Result<Value, GraphError> {
        let (query, rows) = self.insights_query_and_rows(call, "get")?;
        // Meta refuses a synchronous page that is too large (code 1, "reduce the amount of data"); how large
        // is undocumented, so the bound is a setting. Report runs (`POST .../insights`) are not bounded.
        if query.page.rows_of(rows.len()) > self.settings.graph.insights_max_rows_per_page {
            return Err(GraphError::too_much_data());
        }
        let link = format!("{}/{}/insights", call.link_base, call.object_id);
        Ok(page_of_rows(rows, query.page, &link, &call.params))
    }

    /// The insights query a call asks of its object (`method` as Meta names it in errors) and its rows now.
    fn insights_query_and_rows(
        &self,
        call: &GraphCall,
        method: &str,
    ) -> Result<(InsightsQuery, Vec<Value>), GraphError> {
        let object = self.object(&call.object_id, method)?;
        let today_index = i64::from(self.world.hour() / 24);
        let query = parse_insights_query(&call.params, object, self.start_date, today_index)?;
        let rows = insights_rows(
            &query,
            object,
            &self.objects,
            &self.world,
            self.scenario.currency,
            self.start_date,
        );
        Ok((query, rows))
    }
}
