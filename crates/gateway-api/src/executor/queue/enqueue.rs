//! Enqueueing: one insert for a request's changes, a look-up of repeated idempotency keys, superseding by
//! new absolute changes, folding of queued budget changes into new relative ones (`folding`), and one audit
//! insert.

use std::collections::HashMap;

use serde_json::json;
use sqlx::PgPool;

use super::folding::{RequestBudgetChange, fold_queued_budget_changes};
use super::{AuditRows, Enqueued, QueueError, WAKE_UP_CHANNEL};
use crate::executor::change::{ChangeState, NewAdChange};

/// The columns of changes to insert, one array per column (bound to `unnest`).
#[derive(Default)]
struct NewChangeColumns {
    tenant_ids: Vec<String>,
    ad_account_ids: Vec<String>,
    campaign_ids: Vec<Option<String>>,
    ad_set_ids: Vec<Option<String>>,
    ad_ids: Vec<Option<String>>,
    object_ids: Vec<String>,
    kinds: Vec<&'static str>,
    currencies: Vec<Option<String>>,
    old_budgets: Vec<Option<i64>>,
    requested_budgets: Vec<Option<i64>>,
    old_statuses: Vec<Option<String>>,
    requested_statuses: Vec<Option<&'static str>>,
    reasons: Vec<String>,
    confidences: Vec<Option<f64>>,
    sources: Vec<String>,
    idempotency_keys: Vec<String>,
    states: Vec<&'static str>,
    priorities: Vec<i16>,
    delays: Vec<f64>,
    max_attempts: Vec<i32>,
}

impl NewChangeColumns {
    fn of(changes: &[NewAdChange]) -> NewChangeColumns {
        let mut columns = NewChangeColumns::default();
        for change in changes {
            columns.tenant_ids.push(change.tenant_id.clone());
            columns.ad_account_ids.push(change.ad_account_id.clone());
            columns.campaign_ids.push(change.campaign_id.clone());
            columns.ad_set_ids.push(change.ad_set_id.clone());
            columns.ad_ids.push(change.ad_id.clone());
            columns.object_ids.push(change.object_id.clone());
            columns.kinds.push(change.request.kind());
            columns
                .currencies
                .push(change.request.currency().map(|currency| currency.code().to_owned()));
            columns.old_budgets.push(change.old_budget.map(|amount| amount.get()));
            columns
                .requested_budgets
                .push(change.request.budget_amount().map(|amount| amount.get()));
            columns.old_statuses.push(change.old_status.clone());
            columns
                .requested_statuses
                .push(change.request.status().map(|status| status.as_str()));
            columns.reasons.push(change.reason.clone());
            columns.confidences.push(change.confidence);
            columns.sources.push(change.source.clone());
            columns.idempotency_keys.push(change.idempotency_key.clone());
            columns.states.push(initial_state(change).as_str());
            columns.priorities.push(change.priority);
            columns.delays.push(change.delay_seconds.max(0.0));
            columns.max_attempts.push(change.max_attempts);
        }
        columns
    }
}

fn initial_state(change: &NewAdChange) -> ChangeState {
    if change.needs_approval {
        ChangeState::AwaitingApproval
    } else {
        ChangeState::Available
    }
}

/// Enqueues changes in one transaction with their audit entries (see the module docs): one insert, one
/// look-up of repeated idempotency keys, one update for superseded changes and one audit insert, however
/// many changes. Changes keep their order (a later absolute change in the list supersedes an earlier one).
pub async fn enqueue(pool: &PgPool, changes: &[NewAdChange], actor: &str) -> Result<Vec<Enqueued>, QueueError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let columns = NewChangeColumns::of(changes);
    let mut transaction = pool.begin().await?;
    // Each change's fair round (see the migration `fair_claim_order`): after its campaign's queued changes,
    // and never below the round the claims are serving now, so a campaign that had nothing queued is
    // served in the current round rather than after every round the others have queued. That round is
    // looked up once per campaign (`MATERIALIZED`: inlined, it was looked up again for every change).
    let inserted: Vec<(i64, String, String)> = sqlx::query_as(
        "WITH new AS ( \
             SELECT *, COALESCE(campaign_id, object_id) AS campaign_key \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                 $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::float8[], \
                 $15::text[], $16::text[], $17::text[], $18::smallint[], $19::float8[], $20::int[]) \
                 WITH ORDINALITY AS new(tenant_id, ad_account_id, campaign_id, ad_set_id, ad_id, object_id, kind, \
                 currency, old_budget, requested_budget, old_status, requested_status, reason, confidence, \
                 source, idempotency_key, state, priority, delay, max_attempts, position) \
         ), \
         numbered AS ( \
             SELECT first_of_key.*, nextval('ad_changes_id_seq') AS id \
             FROM (SELECT DISTINCT ON (tenant_id, idempotency_key) * FROM new \
                 ORDER BY tenant_id, idempotency_key, position) AS first_of_key \
             ORDER BY position \
         ), \
         new_keys AS ( \
             INSERT INTO ad_change_idempotency_keys (tenant_id, idempotency_key, ad_change_id) \
             SELECT tenant_id, idempotency_key, id FROM numbered \
             ON CONFLICT (tenant_id, idempotency_key) DO NOTHING \
             RETURNING ad_change_id \
         ), \
         serving AS ( \
             SELECT COALESCE((SELECT fair_round FROM ad_changes \
                 WHERE state IN ('available', 'retryable') AND run_at <= now() \
                 ORDER BY priority DESC, fair_round, run_at, id LIMIT 1), 0) AS round \
         ), \
         next_of_campaign AS MATERIALIZED ( \
             SELECT keys.campaign_key, ( \
                 SELECT max(a.fair_round) + 1 FROM ad_changes a \
                 WHERE COALESCE(a.campaign_id, a.object_id) = keys.campaign_key \
                     AND a.state IN ('available', 'retryable')) AS round \
             FROM (SELECT DISTINCT campaign_key FROM new) AS keys \
         ) \
         INSERT INTO ad_changes (id, tenant_id, ad_account_id, campaign_id, ad_set_id, ad_id, object_id, kind, \
             currency, old_budget_minor, requested_budget_minor, old_status, requested_status, reason, \
             confidence, source, idempotency_key, state, priority, run_at, max_attempts, fair_round) \
         SELECT new.id, new.tenant_id, new.ad_account_id, new.campaign_id, new.ad_set_id, new.ad_id, \
             new.object_id, new.kind, new.currency, new.old_budget, new.requested_budget, new.old_status, \
             new.requested_status, new.reason, new.confidence, new.source, new.idempotency_key, new.state, \
             new.priority, now() + make_interval(secs => new.delay), new.max_attempts, \
             GREATEST(COALESCE(next_of_campaign.round, 0), serving.round) \
                 + row_number() OVER (PARTITION BY new.campaign_key ORDER BY new.position) - 1 \
         FROM numbered AS new JOIN new_keys ON new_keys.ad_change_id = new.id \
             JOIN next_of_campaign USING (campaign_key) CROSS JOIN serving \
         ORDER BY new.position \
         RETURNING id, tenant_id, idempotency_key",
    )
    .bind(&columns.tenant_ids)
    .bind(&columns.ad_account_ids)
    .bind(&columns.campaign_ids)
    .bind(&columns.ad_set_ids)
    .bind(&columns.ad_ids)
    .bind(&columns.object_ids)
    .bind(&columns.kinds)
    .bind(&columns.currencies)
    .bind(&columns.old_budgets)
    .bind(&columns.requested_budgets)
    .bind(&columns.old_statuses)
    .bind(&columns.requested_statuses)
    .bind(&columns.reasons)
    .bind(&columns.confidences)
    .bind(&columns.sources)
    .bind(&columns.idempotency_keys)
    .bind(&columns.states)
    .bind(&columns.priorities)
    .bind(&columns.delays)
    .bind(&columns.max_attempts)
    .fetch_all(&mut *transaction)
    .await?;
    let mut created_ids: HashMap<(String, String), i64> = inserted
        .into_iter()
        .map(|(id, tenant_id, key)| ((tenant_id, key), id))
        .collect();
    let repeated_keys: Vec<usize> = (0..changes.len())
        .filter(|position| {
            !created_ids.contains_key(&(
                columns.tenant_ids[*position].clone(),
                columns.idempotency_keys[*position].clone(),
            ))
        })
        .collect();
    let existing_ids: HashMap<(String, String), i64> = if repeated_keys.is_empty() {
        HashMap::new()
    } else {
        let tenants: Vec<&str> = repeated_keys
            .iter()
            .map(|position| columns.tenant_ids[*position].as_str())
            .collect();
        let keys: Vec<&str> = repeated_keys
            .iter()
            .map(|position| columns.idempotency_keys[*position].as_str())
            .collect();
        sqlx::query_as::<_, (i64, String, String)>(
            "SELECT k.ad_change_id, k.tenant_id, k.idempotency_key FROM ad_change_idempotency_keys k \
             JOIN unnest($1::text[], $2::text[]) AS wanted(tenant_id, idempotency_key) \
                 ON k.tenant_id = wanted.tenant_id AND k.idempotency_key = wanted.idempotency_key",
        )
        .bind(&tenants)
        .bind(&keys)
        .fetch_all(&mut *transaction)
        .await?
        .into_iter()
        .map(|(id, tenant_id, key)| ((tenant_id, key), id))
        .collect()
    };

    let mut enqueued = Vec::with_capacity(changes.len());
    let mut audit_rows = AuditRows::default();
    let mut superseding = SupersedingChanges::default();
    let mut budget_changes = Vec::new();
    let mut wake_workers = false;
    for (position, change) in changes.iter().enumerate() {
        let key = (change.tenant_id.clone(), change.idempotency_key.clone());
        // A key repeated within the request: its first change was created, the rest find it.
        if let Some(id) = created_ids.remove(&key) {
            audit_rows.push(
                change.tenant_id.clone(),
                id,
                change.object_id.clone(),
                "enqueued".into(),
                actor,
                json!({"kind": change.request.kind(), "state": columns.states[position], "reason": change.reason}),
            );
            if change.request.is_absolute() {
                superseding.push(change, id);
            }
            if change.request.budget_amount().is_some() && !change.needs_approval {
                budget_changes.push(RequestBudgetChange { id, change });
            }
            wake_workers |= !change.needs_approval && change.delay_seconds <= 0.0;
            enqueued.push(Enqueued { id, created: true });
            continue;
        }
        let id = enqueued
            .iter()
            .zip(changes)
            .find(|(_, earlier)| {
                earlier.tenant_id == change.tenant_id && earlier.idempotency_key == change.idempotency_key
            })
            .map(|(earlier, _)| earlier.id)
            .or_else(|| existing_ids.get(&key).copied());
        let Some(id) = id else {
            return Err(QueueError::Database(sqlx::Error::RowNotFound));
        };
        enqueued.push(Enqueued { id, created: false });
    }
    for fold in fold_queued_budget_changes(&mut transaction, &budget_changes).await? {
        let change = budget_changes[fold.request_index].change;
        audit_rows.push(
            change.tenant_id.clone(),
            fold.id,
            change.object_id.clone(),
            "coalesced".into(),
            actor,
            json!({"folded": fold.folded, "kind": fold.kind, "amount": fold.amount}),
        );
        for folded_id in fold.folded {
            audit_rows.push(
                change.tenant_id.clone(),
                folded_id,
                change.object_id.clone(),
                "superseded".into(),
                actor,
                json!({"by": fold.id, "coalesced": true}),
            );
        }
    }
    for (id, tenant_id, object_id, by) in superseding.cancel_older(&mut transaction).await? {
        audit_rows.push(tenant_id, id, object_id, "superseded".into(), actor, json!({"by": by}));
    }
    audit_rows.insert(&mut transaction).await?;
    if wake_workers {
        // One notification per transaction, delivered at commit.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WAKE_UP_CHANNEL)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(enqueued)
}

/// New absolute changes: each cancels the live changes of the same field of its object enqueued before it.
#[derive(Default)]
struct SupersedingChanges {
    tenant_ids: Vec<String>,
    object_ids: Vec<String>,
    fields: Vec<&'static str>,
    ids: Vec<i64>,
}

impl SupersedingChanges {
    fn push(&mut self, change: &NewAdChange, id: i64) {
        self.tenant_ids.push(change.tenant_id.clone());
        self.object_ids.push(change.object_id.clone());
        self.fields.push(change.request.field());
        self.ids.push(id);
    }

    /// Cancels the superseded changes; returns (id, tenant, object, superseded by).
    async fn cancel_older(
        self,
        transaction: &mut sqlx::PgConnection,
    ) -> Result<Vec<(i64, String, String, i64)>, sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(Vec::new());
        }
        // The field of a stored kind, as `ChangeRequest::field` names it. Each new change looks its object's
        // queued changes up in the index by object (`OFFSET 0` keeps the look-up a per-object subquery: joined
        // flat, the planner hashed every queued change of the table whenever its statistics were older than
        // a burst of enqueues, so each request cost as much as the whole queue). The state is tested again
        // on the updated row, so a change claimed meanwhile is not cancelled.
        sqlx::query_as(
            "WITH newest AS ( \
                 SELECT tenant_id, object_id, field, max(id) AS by_id \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS new(tenant_id, object_id, field, id) \
                 GROUP BY tenant_id, object_id, field \
             ), \
             superseded AS ( \
                 SELECT older.id, newest.by_id FROM newest CROSS JOIN LATERAL ( \
                     SELECT q.id FROM ad_changes q \
                     WHERE q.object_id = newest.object_id AND q.tenant_id = newest.tenant_id \
                         AND (CASE WHEN q.kind = 'status_change' THEN 'status' ELSE 'budget' END) = newest.field \
                         AND q.id < newest.by_id AND q.state IN ('available', 'retryable', 'awaiting_approval') \
                     OFFSET 0 \
                 ) AS older \
             ) \
             UPDATE ad_changes a SET state = 'cancelled', finalized_at = now(), updated_at = now(), \
                 errors = a.errors || jsonb_build_array(jsonb_build_object('outcome', 'superseded', 'by', superseded.by_id)) \
             FROM superseded \
             WHERE a.id = superseded.id AND a.state IN ('available', 'retryable', 'awaiting_approval') \
             RETURNING a.id, a.tenant_id, a.object_id, superseded.by_id",
        )
        .bind(&self.tenant_ids)
        .bind(&self.object_ids)
        .bind(&self.fields)
        .bind(&self.ids)
        .fetch_all(transaction)
        .await
    }
}
