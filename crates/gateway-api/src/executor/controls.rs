//! The operator's and tenant's controls over the executor, on top of the queue: pauses that the claim
//! statement reads (global, a tenant, one ad account), the executor's status for a tenant, and rollback of
//! a completed budget change as a new, guarded change.

use serde_json::{Value, json};
use sqlx::PgPool;

use super::queue::{Enqueued, QueueError, TransitionError, WAKE_UP_CHANNEL, enqueue, find};

/// What a pause covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PauseScope {
    Global,
    Tenant(String),
    Account { tenant_id: String, ad_account_id: String },
}

impl PauseScope {
    fn columns(&self) -> (&'static str, String, String) {
        match self {
            PauseScope::Global => ("global", String::new(), String::new()),
            PauseScope::Tenant(tenant_id) => ("tenant", tenant_id.clone(), tenant_id.clone()),
            PauseScope::Account {
                tenant_id,
                ad_account_id,
            } => ("account", ad_account_id.clone(), tenant_id.clone()),
        }
    }
}

/// Stops claiming changes in `scope` at once (a change already running finishes its attempt); the pause and
/// its audit entry are one transaction.
pub async fn pause(pool: &PgPool, scope: &PauseScope, reason: &str, actor: &str) -> Result<(), QueueError> {
    let (kind, scope_id, tenant_id) = scope.columns();
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "INSERT INTO executor_pauses (scope, scope_id, tenant_id, reason, paused_by) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (scope, tenant_id, scope_id) DO UPDATE SET reason = $4, paused_by = $5, paused_at = now()",
    )
    .bind(kind)
    .bind(&scope_id)
    .bind(&tenant_id)
    .bind(reason)
    .bind(actor)
    .execute(&mut *transaction)
    .await?;
    audit_pause_change(&mut transaction, scope, "executor_paused", reason, actor).await?;
    transaction.commit().await?;
    Ok(())
}

/// Lifts a pause; returns whether there was one (only a lifted pause is audited).
pub async fn resume(pool: &PgPool, scope: &PauseScope, actor: &str) -> Result<bool, QueueError> {
    let (kind, scope_id, tenant_id) = scope.columns();
    let mut transaction = pool.begin().await?;
    let removed = sqlx::query("DELETE FROM executor_pauses WHERE scope = $1 AND scope_id = $2 AND tenant_id = $3")
        .bind(kind)
        .bind(&scope_id)
        .bind(&tenant_id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
    if removed > 0 {
        audit_pause_change(&mut transaction, scope, "executor_resumed", "", actor).await?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WAKE_UP_CHANNEL)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(removed > 0)
}

/// The audit trail's entry for a pause or resume: no change of its own; the object is the paused account or
/// tenant (none for a global pause, which is audited under no tenant).
async fn audit_pause_change(
    transaction: &mut sqlx::PgConnection,
    scope: &PauseScope,
    event: &str,
    reason: &str,
    actor: &str,
) -> Result<(), QueueError> {
    let (kind, scope_id, tenant_id) = scope.columns();
    let object_id = (!scope_id.is_empty()).then_some(scope_id);
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, ad_change_id, object_id, event, actor, detail) \
         VALUES ($1, NULL, $2, $3, $4, $5)",
    )
    .bind(tenant_id)
    .bind(object_id)
    .bind(event)
    .bind(actor)
    .bind(json!({ "scope": kind, "reason": reason }))
    .execute(transaction)
    .await?;
    Ok(())
}

/// The pauses that cover `tenant_id` (global, its own, its accounts') and its changes by state.
pub async fn executor_status(pool: &PgPool, tenant_id: &str) -> Result<Value, QueueError> {
    let pauses: Vec<(String, String, String, String, f64)> = sqlx::query_as(
        "SELECT scope, scope_id, reason, paused_by, EXTRACT(EPOCH FROM paused_at)::float8 FROM executor_pauses \
         WHERE scope = 'global' OR tenant_id = $1 ORDER BY paused_at",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM ad_changes WHERE tenant_id = $1 GROUP BY state ORDER BY state")
            .bind(tenant_id)
            .fetch_all(pool)
            .await?;
    // Only accounts this tenant has changes for: the pacing table is shared by every tenant.
    let blocked: Vec<(String, f64, String, f64)> = sqlx::query_as(
        "SELECT g.ad_account_id, g.highest_percent, g.reason, EXTRACT(EPOCH FROM g.blocked_until - now())::float8 \
         FROM graph_account_pacing g WHERE g.blocked_until > now() \
             AND EXISTS (SELECT 1 FROM ad_changes c WHERE c.tenant_id = $1 AND c.ad_account_id = g.ad_account_id) \
         ORDER BY g.ad_account_id",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    Ok(json!({
        "paused": !pauses.is_empty(),
        "accounts_waiting_on_meta": blocked.iter().map(|(account, percent, reason, seconds)| json!({
            "ad_account_id": account, "highest_percent": percent, "reason": reason, "seconds_left": seconds,
        })).collect::<Vec<_>>(),
        "pauses": pauses.iter().map(|(scope, scope_id, reason, paused_by, at)| json!({
            "scope": scope, "id": scope_id, "reason": reason, "paused_by": paused_by, "paused_at_unix": at,
        })).collect::<Vec<_>>(),
        "changes_by_state": counts.into_iter().collect::<std::collections::BTreeMap<String, i64>>(),
    }))
}

/// Enqueues the inverse of a completed budget change: back to the budget it replaced, through the same
/// guardrails as any change. Returns the new change's id.
pub async fn rollback(pool: &PgPool, tenant_id: &str, id: i64, actor: &str) -> Result<Enqueued, TransitionError> {
    let Some(original) = find(pool, tenant_id, id).await? else {
        return Err(TransitionError::NotFound(id));
    };
    let wrong_state = |state: &str| TransitionError::WrongState {
        id,
        state: state.to_owned(),
        action: "rollback",
        needed: "a completed budget change",
    };
    if original.state != "completed" {
        return Err(wrong_state(&original.state));
    }
    let last_attempt = original.errors.as_array().and_then(|attempts| attempts.last());
    if last_attempt.is_some_and(|last| last["detail"]["dry_run"] == true) {
        return Err(wrong_state("completed as a dry run, which changed nothing"));
    }
    let budget_before = last_attempt.and_then(|last| last["detail"]["budget_before"].as_i64());
    let currency = original
        .currency
        .as_deref()
        .and_then(|code| adloop_money::Currency::parse(code).ok());
    let (Some(budget_before), Some(currency)) = (budget_before, currency) else {
        return Err(wrong_state("completed without a budget to return to"));
    };
    let inverse = super::change::NewAdChange {
        tenant_id: tenant_id.to_owned(),
        ad_account_id: original.ad_account_id.clone(),
        campaign_id: original.campaign_id.clone(),
        ad_set_id: original.ad_set_id.clone(),
        ad_id: original.ad_id.clone(),
        object_id: original.object_id.clone(),
        request: super::change::ChangeRequest::BudgetSet {
            currency,
            amount: adloop_money::MinorUnits(budget_before),
        },
        old_budget: None,
        old_status: None,
        reason: format!("rollback of change {id}"),
        confidence: None,
        source: "rollback".to_owned(),
        idempotency_key: format!("rollback-of-{id}"),
        priority: original.priority,
        delay_seconds: 0.0,
        max_attempts: original.max_attempts,
        needs_approval: false,
    };
    let enqueued = enqueue(pool, &[inverse], actor).await?;
    Ok(enqueued[0])
}
