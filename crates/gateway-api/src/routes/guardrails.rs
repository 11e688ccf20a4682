//! `/v1/guardrails`: a tenant reads and sets its own guardrails, for itself or for one of its ad accounts.
//! It stores only the keys it changes; the executor lays them over the deployment's defaults.

use adloop_service_kit::error::ServiceError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::ad_changes::{api_actor, is_ad_account_id, queue_failure};
use super::auth::Tenant;
use super::request_input::{parse_json_body, parse_query};
use crate::executor::guardrail_overrides::{effective, resolve, store, stored_layers};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailsQuery {
    #[serde(default)]
    pub account: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailsBody {
    #[serde(default)]
    pub ad_account_id: Option<String>,
    /// The keys to set; `{}` removes the layer.
    pub settings: Map<String, Value>,
}

fn checked_account(account: Option<&str>, field: &str) -> Result<(), ServiceError> {
    match account {
        Some(account) if !is_ad_account_id(account) => {
            Err(ServiceError::invalid_field(field, "must look like act_<digits>"))
        }
        _ => Ok(()),
    }
}

async fn answer(state: &AppState, tenant: &str, account: Option<&str>) -> Result<Value, ServiceError> {
    let layers = stored_layers(&state.database_pool, &[tenant.to_owned()])
        .await
        .map_err(queue_failure)?;
    let account_key = account.unwrap_or_default();
    let effective_settings = resolve(&state.guardrail_defaults, &layers, tenant, account_key);
    Ok(json!({
        "ad_account_id": account,
        "effective": effective_settings,
        "tenant_settings": layers.get(&(tenant.to_owned(), String::new())),
        "account_settings": account.and_then(|account| layers.get(&(tenant.to_owned(), account.to_owned()))),
        "defaults": state.guardrail_defaults,
    }))
}

pub async fn get_guardrails(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    RawQuery(raw_query): RawQuery,
) -> Result<Json<Value>, ServiceError> {
    let query: GuardrailsQuery = parse_query(raw_query.as_deref())?;
    checked_account(query.account.as_deref(), "account")?;
    Ok(Json(answer(&state, &tenant, query.account.as_deref()).await?))
}

pub async fn put_guardrails(
    State(state): State<AppState>,
    Extension(Tenant(tenant)): Extension<Tenant>,
    body: Bytes,
) -> Result<Json<Value>, ServiceError> {
    let mut body: GuardrailsBody = parse_json_body(&body)?;
    // Settings are checked and stored as JSON: a count written `4.0` is the count 4, as in every other body.
    for value in body.settings.values_mut() {
        super::request_input::whole_floats_to_integers(value);
    }
    let account = body.ad_account_id.as_deref();
    checked_account(account, "ad_account_id")?;
    let layers = stored_layers(&state.database_pool, std::slice::from_ref(&tenant))
        .await
        .map_err(queue_failure)?;
    let new_keys = Value::Object(body.settings.clone());
    let check = match account {
        None => effective(&state.guardrail_defaults, Some(&new_keys), None),
        Some(_) => effective(
            &state.guardrail_defaults,
            layers.get(&(tenant.clone(), String::new())),
            Some(&new_keys),
        ),
    };
    if let Err(broken) = check {
        // `effective` says "<field>: <rule>".
        let (field, rule) = broken.split_once(": ").unwrap_or(("settings", broken.as_str()));
        return Err(ServiceError::invalid_field(field, rule));
    }
    store(
        &state.database_pool,
        &tenant,
        account,
        &body.settings,
        &api_actor(&tenant),
    )
    .await
    .map_err(queue_failure)?;
    Ok(Json(answer(&state, &tenant, account).await?))
}
