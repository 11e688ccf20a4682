//! Folding at enqueue: a new relative budget change takes in its object's queued budget changes (same tenant
//! and currency, available or retryable: not running and not awaiting approval) and becomes their net effect
//! (`change::fold_budget_changes`); they are cancelled as superseded by it. One write then carries them all
//! (Meta allows an ad set 4 budget changes an hour).
//!
//! A request's folds cost one read and at most two writes however many relative changes it carries: the
//! queued budget changes of its objects are read (and locked) at once, the folds are planned in memory in the
//! request's order — a later change of the request folds an earlier one, with what that one had folded — and
//! written with one update of the folding changes and one of the folded.

use std::collections::HashMap;

use crate::executor::change::{NewAdChange, fold_budget_changes};

/// One budget change the request created that is not held for approval: absolute ones can be folded by a
/// later relative one of the request; relative ones fold.
pub(super) struct RequestBudgetChange<'request> {
    pub id: i64,
    pub change: &'request NewAdChange,
}

impl RequestBudgetChange<'_> {
    fn is_relative(&self) -> bool {
        !self.change.request.is_absolute()
    }

    fn as_queued(&self) -> QueuedBudgetChange {
        QueuedBudgetChange {
            id: self.id,
            tenant_id: self.change.tenant_id.clone(),
            object_id: self.change.object_id.clone(),
            currency: self
                .change
                .request
                .currency()
                .map(|currency| currency.code().to_owned()),
            kind: self.change.request.kind().to_owned(),
            requested_budget_minor: self
                .change
                .request
                .budget_amount()
                .map(|amount| amount.get())
                .unwrap_or(0),
        }
    }
}

/// What one relative change became: the changes it folded, and its new kind and amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fold {
    /// Which of the request's budget changes folded (its index among them).
    pub request_index: usize,
    pub id: i64,
    pub folded: Vec<i64>,
    pub kind: &'static str,
    pub amount: i64,
}

/// A queued budget change of one of the request's objects, as stored, or as the request just created it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct QueuedBudgetChange {
    id: i64,
    tenant_id: String,
    object_id: String,
    currency: Option<String>,
    kind: String,
    requested_budget_minor: i64,
}

/// Folds the queued budget changes of the objects of the request's relative changes into them, inside the
/// enqueue's transaction. `request_changes` are in the request's order (ascending ids). Returns the folds that
/// took something in.
pub(super) async fn fold_queued_budget_changes(
    transaction: &mut sqlx::PgConnection,
    request_changes: &[RequestBudgetChange<'_>],
) -> Result<Vec<Fold>, sqlx::Error> {
    let relatives = request_changes
        .iter()
        .filter(|request_change| request_change.is_relative());
    let mut objects: Vec<(&str, &str)> = relatives
        .map(|relative| (relative.change.tenant_id.as_str(), relative.change.object_id.as_str()))
        .collect();
    if objects.is_empty() {
        return Ok(Vec::new());
    }
    objects.sort_unstable();
    objects.dedup();
    let (tenant_ids, object_ids): (Vec<&str>, Vec<&str>) = objects.into_iter().unzip();
    let first_of_request = request_changes
        .iter()
        .map(|request_change| request_change.id)
        .min()
        .unwrap_or(0);
    // Only the changes queued before the request are read and locked (in id order, so two requests folding
    // the same objects wait for each other instead of deadlocking); the request's own are known, and locking
    // them would only write a lock into each new row.
    let mut queued: Vec<QueuedBudgetChange> = sqlx::query_as(
        "SELECT a.id, a.tenant_id, a.object_id, a.currency, a.kind, a.requested_budget_minor FROM ad_changes a \
         WHERE a.object_id = ANY($2::text[]) \
             AND (a.tenant_id, a.object_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) \
             AND a.id < $3 \
             AND a.kind IN ('budget_set', 'budget_increase', 'budget_decrease') \
             AND a.state IN ('available', 'retryable') \
         ORDER BY a.id FOR UPDATE",
    )
    .bind(&tenant_ids)
    .bind(&object_ids)
    .bind(first_of_request)
    .fetch_all(&mut *transaction)
    .await?;
    queued.extend(request_changes.iter().map(RequestBudgetChange::as_queued));
    let folds = plan_folds(queued, request_changes);
    write_folds(transaction, &folds).await?;
    Ok(folds)
}

/// The folds, in the request's order, over the queued changes (ascending ids, the request's own last).
fn plan_folds(queued: Vec<QueuedBudgetChange>, request_changes: &[RequestBudgetChange<'_>]) -> Vec<Fold> {
    /// A queued change while the request's folds are planned: `live` until a fold takes it in.
    struct Planned {
        row: QueuedBudgetChange,
        live: bool,
    }
    let mut by_object: HashMap<(String, String), Vec<Planned>> = HashMap::new();
    for row in queued {
        by_object
            .entry((row.tenant_id.clone(), row.object_id.clone()))
            .or_default()
            .push(Planned { row, live: true });
    }
    let mut folds = Vec::new();
    for (request_index, relative) in request_changes.iter().enumerate() {
        if !relative.is_relative() {
            continue;
        }
        let change = relative.change;
        let Some(object_changes) = by_object.get_mut(&(change.tenant_id.clone(), change.object_id.clone())) else {
            continue;
        };
        let currency = change.request.currency().map(|currency| currency.code().to_owned());
        let older: Vec<usize> = object_changes
            .iter()
            .enumerate()
            .filter(|(_, queued)| {
                queued.live
                    && queued.row.id < relative.id
                    && queued.row.currency.is_some()
                    && queued.row.currency == currency
            })
            .map(|(index, _)| index)
            .collect();
        if older.is_empty() {
            continue;
        }
        let own_kind = change.request.kind();
        let own_amount = change.request.budget_amount().map(|amount| amount.get()).unwrap_or(0);
        let mut steps: Vec<(&str, i64)> = older
            .iter()
            .map(|index| {
                let row = &object_changes[*index].row;
                (row.kind.as_str(), row.requested_budget_minor)
            })
            .collect();
        steps.push((own_kind, own_amount));
        let Some((kind, amount)) = fold_budget_changes(&steps) else {
            continue;
        };
        for index in &older {
            object_changes[*index].live = false;
        }
        // A later change of the request that folds this one takes in what this one became.
        if let Some(own) = object_changes.iter_mut().find(|queued| queued.row.id == relative.id) {
            own.row.kind = kind.to_owned();
            own.row.requested_budget_minor = amount;
        }
        folds.push(Fold {
            request_index,
            id: relative.id,
            folded: older.iter().map(|index| object_changes[*index].row.id).collect(),
            kind,
            amount,
        });
    }
    folds
}

/// One update for the folding changes' new kinds and amounts, one for cancelling the folded.
async fn write_folds(transaction: &mut sqlx::PgConnection, folds: &[Fold]) -> Result<(), sqlx::Error> {
    if folds.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = folds.iter().map(|fold| fold.id).collect();
    let kinds: Vec<&str> = folds.iter().map(|fold| fold.kind).collect();
    let amounts: Vec<i64> = folds.iter().map(|fold| fold.amount).collect();
    sqlx::query(
        "UPDATE ad_changes a SET kind = f.kind, requested_budget_minor = f.amount, updated_at = now() \
         FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS f(id, kind, amount) WHERE a.id = f.id",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&amounts)
    .execute(&mut *transaction)
    .await?;
    let (folded_ids, by_ids): (Vec<i64>, Vec<i64>) = folds
        .iter()
        .flat_map(|fold| fold.folded.iter().map(|folded_id| (*folded_id, fold.id)))
        .unzip();
    sqlx::query(
        "UPDATE ad_changes a SET state = 'cancelled', finalized_at = now(), updated_at = now(), \
             errors = a.errors || jsonb_build_array(jsonb_build_object('outcome', 'superseded', 'by', f.by_id, \
                 'coalesced', true)) \
         FROM unnest($1::bigint[], $2::bigint[]) AS f(id, by_id) WHERE a.id = f.id",
    )
    .bind(&folded_ids)
    .bind(&by_ids)
    .execute(&mut *transaction)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::change::ChangeRequest;
    use adloop_money::{Currency, MinorUnits};

    fn budget_change(object_id: &str, request: ChangeRequest) -> NewAdChange {
        let idempotency_key = format!("{object_id}-{}", request.kind());
        NewAdChange {
            tenant_id: "tenant-a".into(),
            ad_account_id: "act_1".into(),
            campaign_id: Some("campaign-1".into()),
            ad_set_id: Some(object_id.into()),
            ad_id: None,
            object_id: object_id.into(),
            request,
            old_budget: None,
            old_status: None,
            reason: "test".into(),
            confidence: None,
            source: "test".into(),
            idempotency_key,
            priority: 0,
            delay_seconds: 0.0,
            max_attempts: 5,
            needs_approval: false,
        }
    }

    fn queued(id: i64, object_id: &str, kind: &str, amount: i64) -> QueuedBudgetChange {
        QueuedBudgetChange {
            id,
            tenant_id: "tenant-a".into(),
            object_id: object_id.into(),
            currency: Some("USD".into()),
            kind: kind.into(),
            requested_budget_minor: amount,
        }
    }

    /// The folds of a request over what was queued before it.
    fn folds_of(queued_before: Vec<QueuedBudgetChange>, request_changes: &[RequestBudgetChange<'_>]) -> Vec<Fold> {
        let mut queued = queued_before;
        queued.extend(request_changes.iter().map(RequestBudgetChange::as_queued));
        plan_folds(queued, request_changes)
    }

    #[test]
    fn a_later_change_of_the_request_folds_an_earlier_one_with_what_that_one_folded() {
        let usd = Currency::parse("USD").unwrap();
        let raise = budget_change(
            "set-1",
            ChangeRequest::BudgetIncrease {
                currency: usd,
                by: MinorUnits(300),
            },
        );
        let trim = budget_change(
            "set-1",
            ChangeRequest::BudgetDecrease {
                currency: usd,
                by: MinorUnits(100),
            },
        );
        let elsewhere = budget_change(
            "set-2",
            ChangeRequest::BudgetIncrease {
                currency: usd,
                by: MinorUnits(50),
            },
        );
        let request = [
            RequestBudgetChange { id: 5, change: &raise },
            RequestBudgetChange { id: 6, change: &trim },
            RequestBudgetChange {
                id: 7,
                change: &elsewhere,
            },
        ];
        let folds = folds_of(vec![queued(1, "set-1", "budget_set", 10_000)], &request);
        assert_eq!(
            folds,
            [
                Fold {
                    request_index: 0,
                    id: 5,
                    folded: vec![1],
                    kind: "budget_set",
                    amount: 10_300
                },
                Fold {
                    request_index: 1,
                    id: 6,
                    folded: vec![5],
                    kind: "budget_set",
                    amount: 10_200
                },
            ],
            "the trim folds the raise as it became (the queued budget moved by 300), not as it was asked"
        );
    }

    #[test]
    fn a_relative_change_folds_an_absolute_one_earlier_in_its_request_but_not_a_later_one() {
        let usd = Currency::parse("USD").unwrap();
        let set = budget_change(
            "set-1",
            ChangeRequest::BudgetSet {
                currency: usd,
                amount: MinorUnits(8_000),
            },
        );
        let raise = budget_change(
            "set-1",
            ChangeRequest::BudgetIncrease {
                currency: usd,
                by: MinorUnits(500),
            },
        );
        let set_again = budget_change(
            "set-1",
            ChangeRequest::BudgetSet {
                currency: usd,
                amount: MinorUnits(9_000),
            },
        );
        let request = [
            RequestBudgetChange { id: 3, change: &set },
            RequestBudgetChange { id: 4, change: &raise },
            RequestBudgetChange {
                id: 5,
                change: &set_again,
            },
        ];
        let folds = folds_of(Vec::new(), &request);
        assert_eq!(
            folds,
            [Fold {
                request_index: 1,
                id: 4,
                folded: vec![3],
                kind: "budget_set",
                amount: 8_500
            }]
        );
    }

    #[test]
    fn another_currency_is_not_folded() {
        let eur = Currency::parse("EUR").unwrap();
        let raise = budget_change(
            "set-1",
            ChangeRequest::BudgetIncrease {
                currency: eur,
                by: MinorUnits(300),
            },
        );
        let folds = folds_of(
            vec![queued(1, "set-1", "budget_set", 10_000)],
            &[RequestBudgetChange { id: 2, change: &raise }],
        );
        assert!(folds.is_empty(), "a USD budget is not moved by a EUR amount: {folds:?}");
    }
}
