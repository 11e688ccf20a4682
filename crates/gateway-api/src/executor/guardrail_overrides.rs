//! Guardrails per tenant and per ad account: a tenant stores only the keys it changes, for itself or for one
//! account; the executor lays the account's keys over the tenant's over the deployment's defaults. Merging
//! and checking are pure (`effective`); the same check guards what the API stores.

use std::collections::HashMap;

use serde_json::{Map, Value};
use sqlx::PgPool;

use super::guardrails::GuardrailSettings;
use super::queue::QueueError;

/// The settings that hold for an account: `defaults`, then the tenant's keys, then the account's.
/// The error names the offending key and its rule.
pub fn effective(
    defaults: &GuardrailSettings,
    tenant_keys: Option<&Value>,
    account_keys: Option<&Value>,
) -> Result<GuardrailSettings, String> {
    let mut merged = serde_json::to_value(defaults).map_err(|error| error.to_string())?;
    for layer in [tenant_keys, account_keys].into_iter().flatten() {
        let Some(keys) = layer.as_object() else {
            return Err("settings: must be an object of guardrail keys".into());
        };
        if let Some(target) = merged.as_object_mut() {
            for (key, value) in keys {
                target.insert(key.clone(), value.clone());
            }
        }
    }
    let settings: GuardrailSettings = serde_json::from_value(merged).map_err(|error| format!("settings: {error}"))?;
    settings
        .validate()
        .map_err(|(key, rule)| format!("settings.{key}: {rule}"))?;
    Ok(settings)
}

/// Every stored layer of these tenants, by (tenant, account; '' for the tenant's own).
pub async fn stored_layers(
    pool: &PgPool,
    tenant_ids: &[String],
) -> Result<HashMap<(String, String), Value>, QueueError> {
    let rows: Vec<(String, String, Value)> =
        sqlx::query_as("SELECT tenant_id, ad_account_id, settings FROM guardrail_settings WHERE tenant_id = ANY($1)")
            .bind(tenant_ids)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant, account, settings)| ((tenant, account), settings))
        .collect())
}

/// The settings for `tenant` / `account` from layers read by `stored_layers`; a layer that no longer fits
/// (a key removed in a later version) falls back to the tenant's, then to the defaults, and says so.
pub fn resolve(
    defaults: &GuardrailSettings,
    layers: &HashMap<(String, String), Value>,
    tenant: &str,
    account: &str,
) -> GuardrailSettings {
    let tenant_keys = layers.get(&(tenant.to_owned(), String::new()));
    let account_keys = layers.get(&(tenant.to_owned(), account.to_owned()));
    effective(defaults, tenant_keys, account_keys)
        .or_else(|error| {
            tracing::warn!(tenant, account, %error, "stored guardrail settings no longer fit; using the tenant's");
            effective(defaults, tenant_keys, None)
        })
        .unwrap_or_else(|_| defaults.clone())
}

/// Stores a tenant's keys for itself (`account` = None) or one account, replacing what was there; an empty
/// object removes the layer.
pub async fn store(
    pool: &PgPool,
    tenant: &str,
    account: Option<&str>,
    keys: &Map<String, Value>,
    actor: &str,
) -> Result<(), QueueError> {
    let account = account.unwrap_or_default();
    if keys.is_empty() {
        sqlx::query("DELETE FROM guardrail_settings WHERE tenant_id = $1 AND ad_account_id = $2")
            .bind(tenant)
            .bind(account)
            .execute(pool)
            .await?;
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO guardrail_settings (tenant_id, ad_account_id, settings, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, ad_account_id) DO UPDATE SET settings = $3, updated_by = $4, updated_at = now()",
    )
    .bind(tenant)
    .bind(account)
    .bind(Value::Object(keys.clone()))
    .bind(actor)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_account_layer_wins_over_the_tenant_layer_over_the_defaults() {
        let defaults = GuardrailSettings::default();
        let tenant = json!({ "max_change_fraction_per_step": 0.1, "min_confidence": 0.5 });
        let account = json!({ "max_change_fraction_per_step": 0.3 });
        let settings = effective(&defaults, Some(&tenant), Some(&account)).unwrap();
        assert_eq!(settings.max_change_fraction_per_step, 0.3);
        assert_eq!(settings.min_confidence, 0.5);
        assert_eq!(settings.max_net_change_fraction, defaults.max_net_change_fraction);
    }

    #[test]
    fn unknown_keys_and_values_out_of_range_are_named() {
        let defaults = GuardrailSettings::default();
        let unknown = effective(&defaults, Some(&json!({ "max_change": 0.1 })), None).unwrap_err();
        assert!(unknown.contains("max_change"), "{unknown}");
        let out_of_range = effective(&defaults, None, Some(&json!({ "min_confidence": 2.0 }))).unwrap_err();
        assert_eq!(out_of_range, "settings.min_confidence: must be between 0 and 1");
        let mut layers = HashMap::new();
        layers.insert(("t".to_owned(), "act_1".to_owned()), json!({ "min_confidence": 2.0 }));
        layers.insert(("t".to_owned(), String::new()), json!({ "min_confidence": 0.4 }));
        assert_eq!(
            resolve(&defaults, &layers, "t", "act_1").min_confidence,
            0.4,
            "a stored layer that no longer fits falls back to the tenant's"
        );
    }
}
