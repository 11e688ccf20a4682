//! Writes to Graph objects: budgets (Meta's units, the account minimum, the hourly change limit), status and
//! name, each recorded in the object's history.

use std::collections::BTreeMap;

use adloop_money::{GraphAmount, MinorUnits, Money};
use serde_json::{Value, json};

use crate::graph_error::GraphError;
use crate::objects::{ChangeRecord, GraphObject, ObjectKind, ObjectStatus};

use super::SimState;

const BUDGET_CHANGES_PER_HOUR: usize = 4;
/// How long an ad set's budget stays locked after a refused change.
const BUDGET_LOCK_SECONDS: f64 = 3600.0;
const BUDGET_TOO_LOW_SUBCODE: u32 = 1_885_272;

impl SimState {
    pub(super) fn minimum_daily_budget(&self) -> MinorUnits {
        MinorUnits::from_major_rounded(
            self.settings.graph.minimum_daily_budget_major_units,
            self.scenario.currency,
        )
    }

    pub(super) fn update_object(
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
            Some(text) => Some(self.check_daily_budget(&object, text, validate_only)?),
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
                let now_seconds = self.clock.now_seconds();
                if let Some(stored) = self.objects.get_mut(object_id) {
                    stored.budget_change_seconds.push(now_seconds);
                    stored
                        .budget_change_seconds
                        .retain(|changed_at| now_seconds - changed_at < 3600.0);
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
    /// whole pesos for COP), on an ad set, at least the account minimum, and the ad set must not be locked:
    /// a change after 4 in the last hour is refused and locks the ad set's budget for an hour from the
    /// refusal (a validation only reports the refusal). Time is the simulated clock's.
    fn check_daily_budget(
        &mut self,
        object: &GraphObject,
        text: &str,
        validate_only: bool,
    ) -> Result<MinorUnits, GraphError> {
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
        let current_budget = object.truth_index.map(|index| self.world.ad_set_daily_budget(index));
        let is_a_change = current_budget != Some(MinorUnits(budget));
        if !is_a_change {
            return Ok(MinorUnits(budget));
        }
        if let Some(locked_until) = object.budget_locked_until_seconds
            && now_seconds < locked_until
        {
            return Err(GraphError::too_many_budget_changes(locked_until - now_seconds));
        }
        let changes_in_last_hour = object
            .budget_change_seconds
            .iter()
            .filter(|changed_at| now_seconds - **changed_at < 3600.0)
            .count();
        if changes_in_last_hour >= BUDGET_CHANGES_PER_HOUR {
            if !validate_only && let Some(stored) = self.objects.get_mut(&object.id) {
                stored.budget_locked_until_seconds = Some(now_seconds + BUDGET_LOCK_SECONDS);
            }
            return Err(GraphError::too_many_budget_changes(BUDGET_LOCK_SECONDS));
        }
        Ok(MinorUnits(budget))
    }
}
