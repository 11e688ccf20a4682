//! An ad change as the queue holds it: what to change on which Graph object, why, and where it stands.

use adloop_money::{Currency, MinorUnits};
use serde::Serialize;

/// What a change asks for. Budgets are minor units of the account currency; the executor turns every
/// change into an absolute value (Graph updates are never deltas) when it applies it.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeRequest {
    BudgetSet { currency: Currency, amount: MinorUnits },
    BudgetIncrease { currency: Currency, by: MinorUnits },
    BudgetDecrease { currency: Currency, by: MinorUnits },
    Status { status: TargetStatus },
}

/// Statuses adloop may set. DELETED is deliberately absent: the executor never deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetStatus {
    Active,
    Paused,
    Archived,
}

impl TargetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Active => "ACTIVE",
            TargetStatus::Paused => "PAUSED",
            TargetStatus::Archived => "ARCHIVED",
        }
    }

    pub fn parse(text: &str) -> Option<TargetStatus> {
        match text {
            "ACTIVE" => Some(TargetStatus::Active),
            "PAUSED" => Some(TargetStatus::Paused),
            "ARCHIVED" => Some(TargetStatus::Archived),
            _ => None,
        }
    }
}

impl ChangeRequest {
    /// The `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            ChangeRequest::BudgetSet { .. } => "budget_set",
            ChangeRequest::BudgetIncrease { .. } => "budget_increase",
            ChangeRequest::BudgetDecrease { .. } => "budget_decrease",
            ChangeRequest::Status { .. } => "status_change",
        }
    }

    /// An absolute change (a budget or a status) makes queued changes of the same field to the same object
    /// pointless; a relative one (increase, decrease) must not swallow them.
    pub fn is_absolute(&self) -> bool {
        matches!(self, ChangeRequest::BudgetSet { .. } | ChangeRequest::Status { .. })
    }

    /// The kinds that change the same field of an object as this one.
    /// The field of the object the change writes: `budget` or `status` (an absolute change supersedes
    /// queued changes of the same field).
    pub fn field(&self) -> &'static str {
        match self {
            ChangeRequest::Status { .. } => "status",
            _ => "budget",
        }
    }

    pub fn currency(&self) -> Option<Currency> {
        match self {
            ChangeRequest::BudgetSet { currency, .. }
            | ChangeRequest::BudgetIncrease { currency, .. }
            | ChangeRequest::BudgetDecrease { currency, .. } => Some(*currency),
            ChangeRequest::Status { .. } => None,
        }
    }

    /// The `requested_budget_minor` column: the budget to set, or the amount to move it by.
    pub fn budget_amount(&self) -> Option<MinorUnits> {
        match self {
            ChangeRequest::BudgetSet { amount, .. } => Some(*amount),
            ChangeRequest::BudgetIncrease { by, .. } | ChangeRequest::BudgetDecrease { by, .. } => Some(*by),
            ChangeRequest::Status { .. } => None,
        }
    }

    pub fn status(&self) -> Option<TargetStatus> {
        match self {
            ChangeRequest::Status { status } => Some(*status),
            _ => None,
        }
    }
}

/// Folds queued budget changes of one object, oldest first (as stored: kind and amount in minor units),
/// into the one change with the same net effect: a `budget_set` followed by increases and decreases is a
/// `budget_set` of the sum; increases and decreases alone are their net increase or decrease. `None` when a
/// kind is not a budget change. (Net, not step by step: a decrease below zero that a later increase undoes
/// is not clamped in between.)
pub fn fold_budget_changes(changes: &[(&str, i64)]) -> Option<(&'static str, i64)> {
    let mut absolute: Option<i64> = None;
    let mut delta: i64 = 0;
    for (kind, amount) in changes {
        match *kind {
            "budget_set" => {
                absolute = Some(*amount);
                delta = 0;
            }
            "budget_increase" => delta = delta.saturating_add(*amount),
            "budget_decrease" => delta = delta.saturating_sub(*amount),
            _ => return None,
        }
    }
    Some(match absolute {
        Some(base) => ("budget_set", base.saturating_add(delta).max(0)),
        None if delta >= 0 => ("budget_increase", delta),
        None => ("budget_decrease", delta.saturating_neg()),
    })
}

/// A change to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAdChange {
    pub tenant_id: String,
    pub ad_account_id: String,
    pub campaign_id: Option<String>,
    pub ad_set_id: Option<String>,
    pub ad_id: Option<String>,
    /// The Graph object written: the ad set for budgets; the ad, ad set or campaign for a status.
    pub object_id: String,
    pub request: ChangeRequest,
    /// What the requester believed the budget / status was (for the audit and rollback).
    pub old_budget: Option<MinorUnits>,
    pub old_status: Option<String>,
    pub reason: String,
    pub confidence: Option<f64>,
    pub source: String,
    pub idempotency_key: String,
    pub priority: i16,
    /// Not claimable until this many seconds from now.
    pub delay_seconds: f64,
    pub max_attempts: i32,
    /// Waits in `awaiting_approval` until approved.
    pub needs_approval: bool,
}

/// Where a change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeState {
    Available,
    Running,
    Retryable,
    Completed,
    Discarded,
    Cancelled,
    AwaitingApproval,
}

impl ChangeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeState::Available => "available",
            ChangeState::Running => "running",
            ChangeState::Retryable => "retryable",
            ChangeState::Completed => "completed",
            ChangeState::Discarded => "discarded",
            ChangeState::Cancelled => "cancelled",
            ChangeState::AwaitingApproval => "awaiting_approval",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeState> {
        [
            ChangeState::Available,
            ChangeState::Running,
            ChangeState::Retryable,
            ChangeState::Completed,
            ChangeState::Discarded,
            ChangeState::Cancelled,
            ChangeState::AwaitingApproval,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }

    /// No transition leaves these.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ChangeState::Completed | ChangeState::Discarded | ChangeState::Cancelled
        )
    }
}

/// A change as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AdChangeRow {
    pub id: i64,
    pub tenant_id: String,
    pub ad_account_id: String,
    pub campaign_id: Option<String>,
    pub ad_set_id: Option<String>,
    pub ad_id: Option<String>,
    pub object_id: String,
    pub kind: String,
    pub currency: Option<String>,
    pub old_budget_minor: Option<i64>,
    pub requested_budget_minor: Option<i64>,
    pub old_status: Option<String>,
    pub requested_status: Option<String>,
    pub reason: String,
    pub confidence: Option<f64>,
    pub source: String,
    pub idempotency_key: String,
    pub state: String,
    pub priority: i16,
    pub attempt: i32,
    pub max_attempts: i32,
    pub lease_owner: Option<String>,
    pub needs_reconcile: bool,
    pub errors: serde_json::Value,
    pub approved_by: Option<String>,
    /// When the change is due (Unix seconds): its delay, backoff or hold.
    pub run_at_unix: f64,
}

impl AdChangeRow {
    pub fn state(&self) -> Option<ChangeState> {
        ChangeState::parse(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_budget_changes_fold_into_one_with_the_same_net_effect() {
        assert_eq!(
            fold_budget_changes(&[("budget_increase", 500), ("budget_decrease", 200)]),
            Some(("budget_increase", 300))
        );
        assert_eq!(
            fold_budget_changes(&[("budget_increase", 100), ("budget_decrease", 400)]),
            Some(("budget_decrease", 300))
        );
        assert_eq!(
            fold_budget_changes(&[
                ("budget_increase", 999),
                ("budget_set", 10_000),
                ("budget_decrease", 1_000)
            ]),
            Some(("budget_set", 9_000)),
            "what came before a set does not count"
        );
        assert_eq!(
            fold_budget_changes(&[("budget_set", 100), ("budget_decrease", 500)]),
            Some(("budget_set", 0))
        );
        assert_eq!(
            fold_budget_changes(&[("budget_increase", 1), ("status_change", 0)]),
            None
        );
    }
}
