//! Writes to Graph objects: budgets (Meta's units, the account minimum, the hourly change limit), status and
//! name, each recorded in the object's history.

use std::collections::BTreeMap;

use adloop_money::{Currency, GraphAmount, MinorUnits};
use serde_json::{Value, json};

use crate::graph_error::GraphError;
use crate::objects::{ChangeRecord, GraphObject, ObjectKind, ObjectStatus};
use crate::settings::BudgetGoal;

use super::SimState;

const BUDGET_CHANGES_PER_HOUR: usize = 4;
/// How long an ad set's budget stays locked after a refused change.
const BUDGET_LOCK_SECONDS: f64 = 3600.0;
const BUDGET_TOO_LOW_SUBCODE: u32 = 1_885_272;

impl SimState {
    /// The smallest daily budget the account's ad sets may have: Meta's minimum for the account currency and
    /// the ad sets' optimisation goal (`graph.minimum_daily_budgets`, `graph.ad_set_budget_goal`).
    pub(super) fn minimum_daily_budget(&self) -> MinorUnits {
        let graph = &self.settings.graph;
        let minimums = graph.minimum_daily_budgets(self.scenario.currency.code());
        MinorUnits::from_major_rounded(minimums.for_goal(graph.ad_set_budget_goal), self.scenario.currency)
    }

    /// `GET act_{id}/minimum_budgets`: Meta's minimums for each goal, in Graph units of the currency.
    pub(super) fn read_minimum_budgets(&self) -> Value {
        let currency = self.scenario.currency;
        let minimums = self.settings.graph.minimum_daily_budgets(currency.code());
        let in_graph_units = |goal: BudgetGoal| {
            MinorUnits::from_major_rounded(minimums.for_goal(goal), currency)
                .to_graph_amount_rounded_down(currency)
                .get()
        };
        json!({"data": [{
            "currency": currency.code(),
            "min_daily_budget_imp": in_graph_units(BudgetGoal::Impressions),
            "min_daily_budget_high_freq": in_graph_units(BudgetGoal::HighFrequency),
            "min_daily_budget_low_freq": in_graph_units(BudgetGoal::LowFrequency),
            "min_daily_budget_video_views": in_graph_units(BudgetGoal::VideoViews),
        }]})
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
        let is_change = |key: &str| UPDATABLE.contains(&key);
        if object.status == ObjectStatus::Archived {
            let only_rename_or_delete = params
                .iter()
                .filter(|(key, _)| is_change(key))
                .all(|(key, value)| key == "name" || (key == "status" && value == ObjectStatus::Deleted.as_str()));
            if !only_rename_or_delete {
                return Err(GraphError::invalid_parameter(format!(
                    "Object {object_id} is archived: it can only be renamed or deleted"
                )));
            }
        } else if matches!(self.objects.effective_status(&object), "ARCHIVED" | "DELETED") {
            return Err(GraphError::invalid_parameter(format!(
                "Object {object_id} is in an archived or deleted {}: it cannot be edited",
                if object.kind == ObjectKind::Ad {
                    "campaign or ad set"
                } else {
                    "campaign"
                }
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
                "Budget Is Too Low",
                format!(
                    "The budget for this ad set must be at least {}. Please edit your budget in your ad set to \
                     enable delivery of your ads.",
                    money_for_people(minimum, currency)
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

/// An amount as Meta's messages show it: the currency's symbol where it has a well-known one (`$5.00`,
/// `¥500`), else its code (`COP 5000`), with as many decimals as Meta's unit for the currency has.
fn money_for_people(amount: MinorUnits, currency: Currency) -> String {
    let decimals = if currency.graph_api_offset() == 1 { 0 } else { 2 };
    let number = format!("{:.decimals$}", amount.to_major(currency));
    let symbol = match currency.code() {
        "USD" | "AUD" | "CAD" | "NZD" | "SGD" | "HKD" | "MXN" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" | "CNY" => "¥",
        "INR" => "₹",
        "KRW" => "₩",
        "BRL" => "R$",
        _ => return format!("{} {number}", currency.code()),
    };
    format!("{symbol}{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_messages_look_like_metas() {
        let currency = |code: &str| Currency::parse(code).expect("a known currency");
        assert_eq!(money_for_people(MinorUnits(500), currency("USD")), "$5.00");
        assert_eq!(money_for_people(MinorUnits(4000), currency("INR")), "₹40.00");
        assert_eq!(money_for_people(MinorUnits(500), currency("JPY")), "¥500");
        assert_eq!(money_for_people(MinorUnits(500_000), currency("COP")), "COP 5000");
        assert_eq!(money_for_people(MinorUnits(12_340), currency("BHD")), "BHD 12.34");
    }
}
