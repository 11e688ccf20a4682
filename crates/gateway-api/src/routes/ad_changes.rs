//! `/v1/ad-changes`: enqueue changes for the safe executor, read them, cancel or approve them, and
//! `/v1/audit`: what happened to a tenant's objects. Every route acts for the tenant of the API key.

use adloop_money::{Currency, MinorUnits};
use adloop_service_kit::error::{ErrorCode, ServiceError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::auth::Tenant;
use super::request_input::{null_as_default, objects, parse_json_body, parse_query};
use crate::executor::change::{AdChangeRow, ChangeRequest, NewAdChange, TargetStatus};
use crate::executor::controls;
use crate::executor::queue::{self, QueueError, TransitionError};

/// The most changes one request may carry.
const MAX_CHANGES_PER_REQUEST: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdChangeBody {
    pub ad_account_id: String,
    #[serde(default)]
    pub campaign_id: Option<String>,
    #[serde(default)]
    pub ad_set_id: Option<String>,
    #[serde(default)]
    pub ad_id: Option<String>,
    /// The object written; by default the ad set for budgets, the most specific id given for a status.
    #[serde(default)]
    pub object_id: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub currency: Option<String>,
    /// Minor units: the budget for `budget_set`, the amount to move by for increases and decreases.
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub old_budget: Option<i64>,
    #[serde(default)]
    pub old_status: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub reason: String,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default = "default_source", deserialize_with = "source_or_default")]
    pub source: String,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub priority: i16,
    #[serde(default, deserialize_with = "null_as_default")]
    pub delay_seconds: f64,
    #[serde(default = "default_max_attempts", deserialize_with = "max_attempts_or_default")]
    pub max_attempts: i32,
    #[serde(default, deserialize_with = "null_as_default")]
    pub needs_approval: bool,
}

fn default_source() -> String {
    "api".to_owned()
}

fn default_max_attempts() -> i32 {
    10
}

/// An idempotency key, from the body or the `Idempotency-Key` header: 1 to 200 characters, not only spaces.
fn is_usable_idempotency_key(key: &str) -> bool {
    !key.trim().is_empty() && key.chars().count() <= 200
}

/// `source`, its default when null (as when absent).
fn source_or_default<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_else(default_source))
}

/// `max_attempts`, its default when null (as when absent).
fn max_attempts_or_default<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    Ok(Option::<i32>::deserialize(deserializer)?.unwrap_or_else(default_max_attempts))
}

/// One change, or many under `changes`.
#[derive(Debug)]
pub enum EnqueueBody {
    Many { changes: Vec<AdChangeBody> },
    One(Box<AdChangeBody>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeList {
    #[serde(deserialize_with = "objects")]
    changes: Vec<AdChangeBody>,
}

/// Whether a body has a `changes` key, read without building its values (they are skipped).
#[derive(Deserialize)]
struct BodyForm {
    #[serde(default, deserialize_with = "key_is_present")]
    changes: bool,
}

fn key_is_present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl EnqueueBody {
    /// A body with a `changes` key is a list, any other one change. Chosen by that key rather than by
    /// trying both forms (an untagged enum), whose only error is "did not match any variant": a client
    /// learns which field of which change broke which rule.
    fn parse(body: &Bytes) -> Result<EnqueueBody, ServiceError> {
        let is_list = serde_json::from_slice::<BodyForm>(body).is_ok_and(|form| form.changes);
        if is_list {
            let list: ChangeList = parse_json_body(body)?;
            return Ok(EnqueueBody::Many { changes: list.changes });
        }
        Ok(EnqueueBody::One(Box::new(parse_json_body(body)?)))
    }
}

#[derive(Debug, Serialize)]
pub struct EnqueuedAnswer {
    pub id: i64,
    /// False when the idempotency key was seen: the change it made is returned instead.
    pub created: bool,
}

fn invalid(field: String, rule: impl std::fmt::Display) -> ServiceError {
    ServiceError::invalid_field(field, rule)
}

/// Checks one change and turns it into the queue's form. `key_from_header` is the request's
/// `Idempotency-Key` (for a list, suffixed with the change's index).
fn new_change(
    tenant: &str,
    index: Option<usize>,
    body: &AdChangeBody,
    key_from_header: Option<String>,
) -> Result<NewAdChange, ServiceError> {
    let field = |name: &str| match index {
        Some(index) => format!("changes[{index}].{name}"),
        None => name.to_owned(),
    };
    if !is_ad_account_id(&body.ad_account_id) {
        return Err(invalid(field("ad_account_id"), "must look like act_<digits>"));
    }
    let currency = |body: &AdChangeBody| -> Result<Currency, ServiceError> {
        let code = body
            .currency
            .as_deref()
            .ok_or_else(|| invalid(field("currency"), "is required for a budget change"))?;
        Currency::parse(code).map_err(|error| invalid(field("currency"), error))
    };
    let amount = |body: &AdChangeBody| -> Result<MinorUnits, ServiceError> {
        match body.amount {
            Some(amount) if amount >= 0 => Ok(MinorUnits(amount)),
            Some(_) => Err(invalid(field("amount"), "must not be negative")),
            None => Err(invalid(
                field("amount"),
                "is required for a budget change (minor units)",
            )),
        }
    };
    let request = match body.kind.as_str() {
        "budget_set" => ChangeRequest::BudgetSet {
            currency: currency(body)?,
            amount: amount(body)?,
        },
        "budget_increase" => ChangeRequest::BudgetIncrease {
            currency: currency(body)?,
            by: amount(body)?,
        },
        "budget_decrease" => ChangeRequest::BudgetDecrease {
            currency: currency(body)?,
            by: amount(body)?,
        },
        "status_change" => {
            let text = body
                .status
                .as_deref()
                .ok_or_else(|| invalid(field("status"), "is required for a status change"))?;
            let status = TargetStatus::parse(text).ok_or_else(|| {
                invalid(
                    field("status"),
                    format!("must be ACTIVE, PAUSED or ARCHIVED (the executor never deletes); got `{text}`"),
                )
            })?;
            ChangeRequest::Status { status }
        }
        other => {
            return Err(invalid(
                field("kind"),
                format!("must be budget_set, budget_increase, budget_decrease or status_change; got `{other}`"),
            ));
        }
    };
    let object_id = match (&body.object_id, &request) {
        (Some(object_id), _) => object_id.clone(),
        (None, ChangeRequest::Status { .. }) => body
            .ad_id
            .clone()
            .or_else(|| body.ad_set_id.clone())
            .or_else(|| body.campaign_id.clone())
            .ok_or_else(|| {
                invalid(
                    field("object_id"),
                    "is required (or give ad_id, ad_set_id or campaign_id)",
                )
            })?,
        (None, _) => body
            .ad_set_id
            .clone()
            .ok_or_else(|| invalid(field("ad_set_id"), "is required for a budget change"))?,
    };
    if body.old_budget.is_some_and(|old_budget| old_budget < 0) {
        return Err(invalid(field("old_budget"), "must not be negative (minor units)"));
    }
    if let Some(confidence) = body.confidence
        && !(0.0..=1.0).contains(&confidence)
    {
        return Err(invalid(field("confidence"), "must be between 0 and 1"));
    }
    if !(1..=100).contains(&body.max_attempts) {
        return Err(invalid(field("max_attempts"), "must be between 1 and 100"));
    }
    if !(0.0..=30.0 * 86_400.0).contains(&body.delay_seconds) {
        return Err(invalid(field("delay_seconds"), "must be between 0 and 30 days"));
    }
    let idempotency_key = body
        .idempotency_key
        .clone()
        .or(key_from_header)
        .filter(|key| is_usable_idempotency_key(key))
        .ok_or_else(|| {
            invalid(
                field("idempotency_key"),
                "is required (1 to 200 characters), or send an Idempotency-Key header",
            )
        })?;
    Ok(NewAdChange {
        tenant_id: tenant.to_owned(),
        ad_account_id: body.ad_account_id.clone(),
        campaign_id: body.campaign_id.clone(),
        ad_set_id: body.ad_set_id.clone(),
        ad_id: body.ad_id.clone(),
        object_id,
        request,
        old_budget: body.old_budget.map(MinorUnits),
        old_status: body.old_status.clone(),
        reason: body.reason.clone(),
        confidence: body.confidence,
        source: body.source.clone(),
        idempotency_key,
        priority: body.priority,
        delay_seconds: body.delay_seconds,
        max_attempts: body.max_attempts,
        needs_approval: body.needs_approval,
    })
}

pub(super) fn queue_failure(error: QueueError) -> ServiceError {
    tracing::error!(%error, "ad-change queue failed");
    ServiceError::new(
        ErrorCode::Unavailable,
        "the ad-change queue is unavailable; retry with the same idempotency key",
    )
}

pub async fn post_ad_changes(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ServiceError> {
    let body = EnqueueBody::parse(&body)?;
    // A header that is there but unusable is refused, not ignored (the body's key may be the one meant).
    let header_key = match headers.get("idempotency-key").map(|value| value.to_str()) {
        None => None,
        Some(Ok(key)) if is_usable_idempotency_key(key) => Some(key.to_owned()),
        Some(_) => {
            return Err(invalid(
                "Idempotency-Key".into(),
                "must be 1 to 200 visible ASCII characters".to_owned(),
            ));
        }
    };
    let mut changes = match &body {
        EnqueueBody::One(change) => vec![new_change(&tenant, None, change, header_key)?],
        EnqueueBody::Many { changes } => {
            if changes.is_empty() || changes.len() > MAX_CHANGES_PER_REQUEST {
                return Err(invalid(
                    "changes".into(),
                    format!("must hold 1 to {MAX_CHANGES_PER_REQUEST} changes"),
                ));
            }
            changes
                .iter()
                .enumerate()
                .map(|(index, change)| {
                    let key = header_key.as_ref().map(|key| format!("{key}:{index}"));
                    new_change(&tenant, Some(index), change, key)
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    {
        let mut rng = rand::rng();
        for change in &mut changes {
            change.delay_seconds += state.enqueue_jitter.draw(&mut rng);
        }
    }
    let enqueued = queue::enqueue(&state.database_pool, &changes, &api_actor(&tenant))
        .await
        .map_err(queue_failure)?;
    let answers: Vec<EnqueuedAnswer> = enqueued
        .iter()
        .map(|enqueued| EnqueuedAnswer {
            id: enqueued.id,
            created: enqueued.created,
        })
        .collect();
    Ok(Json(json!({ "changes": answers })))
}

fn change_json(row: &AdChangeRow) -> Value {
    json!({
        "id": row.id,
        "ad_account_id": row.ad_account_id,
        "campaign_id": row.campaign_id,
        "ad_set_id": row.ad_set_id,
        "ad_id": row.ad_id,
        "object_id": row.object_id,
        "kind": row.kind,
        "currency": row.currency,
        "old_budget": row.old_budget_minor,
        "amount": row.requested_budget_minor,
        "old_status": row.old_status,
        "status": row.requested_status,
        "reason": row.reason,
        "confidence": row.confidence,
        "source": row.source,
        "idempotency_key": row.idempotency_key,
        "state": row.state,
        "attempt": row.attempt,
        "max_attempts": row.max_attempts,
        "needs_reconcile": row.needs_reconcile,
        "approved_by": row.approved_by,
        "run_at_unix": row.run_at_unix,
        "attempts": row.errors,
    })
}

fn id_from_path(text: &str) -> Result<i64, ServiceError> {
    text.parse()
        .map_err(|_| invalid("id".into(), format!("must be a change id (a number); got `{text}`")))
}

pub async fn get_ad_change(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    let id = id_from_path(&id)?;
    match queue::find(&state.database_pool, &tenant, id)
        .await
        .map_err(queue_failure)?
    {
        Some(row) => Ok(Json(change_json(&row))),
        None => Err(ServiceError::new(
            ErrorCode::NotFound,
            format!("no change {id} for this tenant"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    /// Only changes with a smaller id: the `next_before` of the previous page.
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

pub async fn list_ad_changes(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    RawQuery(raw_query): RawQuery,
) -> Result<Json<Value>, ServiceError> {
    let query: ListQuery = parse_query(raw_query.as_deref())?;
    let wanted_state = match &query.state {
        None => None,
        Some(wanted) => Some(
            crate::executor::change::ChangeState::parse(wanted)
                .ok_or_else(|| invalid("state".into(), format!("`{wanted}` is not a change state")))?,
        ),
    };
    if query
        .account
        .as_deref()
        .is_some_and(|account| !is_ad_account_id(account))
    {
        return Err(invalid("account".into(), "must look like act_<digits>"));
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let rows = queue::list(
        &state.database_pool,
        &tenant,
        wanted_state,
        query.account.as_deref(),
        query.before,
        limit,
    )
    .await
    .map_err(queue_failure)?;
    let next_before = next_page_cursor(rows.iter().map(|row| row.id), limit);
    Ok(Json(json!({
        "changes": rows.iter().map(change_json).collect::<Vec<_>>(),
        "next_before": next_before,
    })))
}

fn transition_failure(error: TransitionError) -> ServiceError {
    match error {
        TransitionError::NotFound(id) => {
            ServiceError::new(ErrorCode::NotFound, format!("no change {id} for this tenant"))
        }
        wrong @ TransitionError::WrongState { .. } => ServiceError::new(ErrorCode::Conflict, wrong.to_string()),
        TransitionError::Queue(error) => queue_failure(error),
    }
}

pub async fn cancel_ad_change(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    let id = id_from_path(&id)?;
    let row = queue::cancel(&state.database_pool, &tenant, id, &api_actor(&tenant))
        .await
        .map_err(transition_failure)?;
    Ok(Json(change_json(&row)))
}

pub async fn approve_ad_change(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    let id = id_from_path(&id)?;
    let row = queue::approve(&state.database_pool, &tenant, id, &api_actor(&tenant))
        .await
        .map_err(transition_failure)?;
    Ok(Json(change_json(&row)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    pub object: Option<String>,
    /// `oldest` (the default: oldest first, paged with `after`) or `newest` (newest first, paged with `before`).
    #[serde(default)]
    pub order: Option<String>,
    /// Only entries with a larger id: the `next_after` of the previous page (oldest first).
    #[serde(default)]
    pub after: Option<i64>,
    /// Only entries with a smaller id: the `next_before` of the previous page (newest first).
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

fn audit_page(query: &AuditQuery) -> Result<queue::AuditPage, ServiceError> {
    match query.order.as_deref().unwrap_or("oldest") {
        "oldest" if query.before.is_some() => Err(invalid(
            "before".to_owned(),
            "pages newest-first reads only: use after, or order=newest",
        )),
        "oldest" => Ok(queue::AuditPage::OldestAfter(query.after)),
        "newest" if query.after.is_some() => Err(invalid(
            "after".to_owned(),
            "pages oldest-first reads only: use before, or order=oldest",
        )),
        "newest" => Ok(queue::AuditPage::NewestBefore(query.before)),
        _ => Err(invalid("order".to_owned(), "must be oldest or newest")),
    }
}

pub async fn get_audit(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    RawQuery(raw_query): RawQuery,
) -> Result<Json<Value>, ServiceError> {
    let query: AuditQuery = parse_query(raw_query.as_deref())?;
    let page = audit_page(&query)?;
    let limit = query.limit.unwrap_or(500).clamp(1, 5000);
    let entries = queue::audit_trail(&state.database_pool, &tenant, query.object.as_deref(), page, limit)
        .await
        .map_err(queue_failure)?;
    let next_cursor = next_page_cursor(entries.iter().map(|entry| entry.id), limit);
    Ok(Json(match page {
        queue::AuditPage::OldestAfter(_) => json!({ "entries": entries, "next_after": next_cursor }),
        queue::AuditPage::NewestBefore(_) => json!({ "entries": entries, "next_before": next_cursor }),
    }))
}

/// The cursor of the next page — the last id of a full page — or `None` when this page was the last.
pub(super) fn next_page_cursor(ids: impl ExactSizeIterator<Item = i64>, limit: i64) -> Option<i64> {
    let count = ids.len() as i64;
    if count < limit {
        return None;
    }
    ids.last()
}

pub async fn rollback_ad_change(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    let id = id_from_path(&id)?;
    let enqueued = controls::rollback(&state.database_pool, &tenant, id, &api_actor(&tenant))
        .await
        .map_err(transition_failure)?;
    Ok(Json(
        json!({ "changes": [EnqueuedAnswer { id: enqueued.id, created: enqueued.created }] }),
    ))
}

/// Who the audit trail names for a change made through the API: the key's tenant.
pub(super) fn api_actor(tenant: &str) -> String {
    format!("api:{tenant}")
}

/// Meta's ad account ids: `act_` and digits.
pub(super) fn is_ad_account_id(candidate: &str) -> bool {
    candidate
        .strip_prefix("act_")
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()))
}

/// A pause or resume of the executor for the key's tenant, or one of its ad accounts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    #[serde(default)]
    pub ad_account_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub reason: String,
}

fn pause_scope(tenant: &str, body: &PauseBody) -> controls::PauseScope {
    match &body.ad_account_id {
        Some(ad_account_id) => controls::PauseScope::Account {
            tenant_id: tenant.to_owned(),
            ad_account_id: ad_account_id.clone(),
        },
        None => controls::PauseScope::Tenant(tenant.to_owned()),
    }
}

fn pause_body(body: &Bytes) -> Result<PauseBody, ServiceError> {
    if body.is_empty() {
        return Ok(PauseBody::default());
    }
    let parsed: PauseBody = parse_json_body(body)?;
    if parsed.ad_account_id.as_deref().is_some_and(|id| !is_ad_account_id(id)) {
        return Err(invalid("ad_account_id".to_owned(), "must look like act_<digits>"));
    }
    if parsed.reason.len() > 500 {
        return Err(invalid("reason".to_owned(), "must be at most 500 bytes"));
    }
    Ok(parsed)
}

pub async fn pause_executor(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    body: Bytes,
) -> Result<Json<Value>, ServiceError> {
    let body = pause_body(&body)?;
    controls::pause(
        &state.database_pool,
        &pause_scope(&tenant, &body),
        &body.reason,
        &api_actor(&tenant),
    )
    .await
    .map_err(queue_failure)?;
    let status = controls::executor_status(&state.database_pool, &tenant)
        .await
        .map_err(queue_failure)?;
    Ok(Json(status))
}

pub async fn resume_executor(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    body: Bytes,
) -> Result<Json<Value>, ServiceError> {
    let body = pause_body(&body)?;
    controls::resume(&state.database_pool, &pause_scope(&tenant, &body), &api_actor(&tenant))
        .await
        .map_err(queue_failure)?;
    let status = controls::executor_status(&state.database_pool, &tenant)
        .await
        .map_err(queue_failure)?;
    Ok(Json(status))
}

pub async fn executor_status(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
) -> Result<Json<Value>, ServiceError> {
    let status = controls::executor_status(&state.database_pool, &tenant)
        .await
        .map_err(queue_failure)?;
    Ok(Json(status))
}
