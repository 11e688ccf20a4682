//! `/v1/accounts/{account_id}/autopilot`: a tenant turns the autopilot on or off for one of its ad accounts,
//! chooses its mode and interval, and reads the cycles it ran.

use std::collections::HashMap;

use adloop_service_kit::error::{ErrorCode, ServiceError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::ad_changes::{api_actor, is_ad_account_id, next_page_cursor};
use super::auth::Tenant;
use super::request_input::{parse_json_body, parse_query};
use crate::autopilot::account_settings::{self, AccountAutopilot, AutopilotMode};
use crate::autopilot::runs;

/// A day of the autopilot's clock.
const DEFAULT_INTERVAL_SECONDS: i64 = 24 * 3600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutopilotBody {
    pub enabled: bool,
    /// `live` (the default), `approval` or `dry_run`.
    #[serde(default)]
    pub mode: Option<AutopilotMode>,
    #[serde(default)]
    pub interval_seconds: Option<i64>,
    /// Minor units of the account's currency; absent keeps the account's current total.
    #[serde(default)]
    pub total_daily_budget: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// Only cycles before this slot: the `next_before` of the previous page.
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

fn checked_account(account_id: &str) -> Result<(), ServiceError> {
    if is_ad_account_id(account_id) {
        Ok(())
    } else {
        Err(ServiceError::invalid_field("account_id", "must look like act_<digits>"))
    }
}

fn storage_failure(error: sqlx::Error) -> ServiceError {
    tracing::error!(%error, "autopilot storage failed");
    ServiceError::new(ErrorCode::Unavailable, "the autopilot's storage is unavailable; retry")
}

pub async fn post_autopilot(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(account_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ServiceError> {
    checked_account(&account_id)?;
    let body: AutopilotBody = parse_json_body(&body)?;
    let settings = AccountAutopilot {
        ad_account_id: account_id,
        enabled: body.enabled,
        mode: body.mode.unwrap_or(AutopilotMode::Live),
        interval_seconds: body.interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECONDS),
        total_daily_budget: body.total_daily_budget,
    };
    settings
        .validate()
        .map_err(|(field, rule)| ServiceError::invalid_field(field, rule))?;
    let stored = account_settings::store(&state.database_pool, &tenant, &settings, &api_actor(&tenant))
        .await
        .map_err(storage_failure)?;
    Ok(Json(json!(stored)))
}

pub async fn get_autopilot(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(account_id): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    checked_account(&account_id)?;
    let stored = account_settings::find(&state.database_pool, &tenant, &account_id)
        .await
        .map_err(storage_failure)?
        .ok_or_else(|| {
            ServiceError::new(
                ErrorCode::NotFound,
                format!("the autopilot was never set for {account_id}; POST /v1/accounts/{account_id}/autopilot"),
            )
        })?;
    Ok(Json(json!(stored)))
}

pub async fn list_autopilot_runs(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    Path(account_id): Path<String>,
    RawQuery(raw_query): RawQuery,
) -> Result<Json<Value>, ServiceError> {
    checked_account(&account_id)?;
    let query: RunsQuery = parse_query(raw_query.as_deref())?;
    let limit = query.limit.unwrap_or(20).clamp(1, 200);
    let rows = runs::list(&state.database_pool, &tenant, &account_id, query.before, limit)
        .await
        .map_err(storage_failure)?;
    let next_before = next_page_cursor(rows.iter().map(|run| run.cycle_slot), limit);
    Ok(Json(json!({ "runs": rows, "next_before": next_before })))
}

/// The most accounts `GET /v1/accounts` lists.
const MAX_ACCOUNTS_LISTED: i64 = 500;

/// `GET /v1/accounts`: the tenant's accounts with autopilot settings, each with its latest completed cycle
/// (the allocation it runs on now: every ad's recommendation, P(best) and reason).
pub async fn list_accounts(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
) -> Result<Json<Value>, ServiceError> {
    let accounts = account_settings::list_for_tenant(&state.database_pool, &tenant, MAX_ACCOUNTS_LISTED)
        .await
        .map_err(storage_failure)?;
    let account_ids: Vec<String> = accounts.iter().map(|account| account.ad_account_id.clone()).collect();
    let mut latest_by_account: HashMap<String, runs::RunRecord> =
        runs::latest_completed(&state.database_pool, &tenant, &account_ids)
            .await
            .map_err(storage_failure)?
            .into_iter()
            .map(|run| (run.ad_account_id.clone(), run))
            .collect();
    let listed: Vec<Value> = accounts
        .into_iter()
        .map(|account| {
            let latest = latest_by_account.remove(&account.ad_account_id);
            json!({ "ad_account_id": account.ad_account_id, "autopilot": account, "latest_completed_run": latest })
        })
        .collect();
    Ok(Json(json!({ "accounts": listed })))
}
