//! Each ad account's autopilot: on or off, its mode, how often it runs, and the budget it splits. Stored
//! per tenant and account; the scheduler reads the enabled ones.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// What a cycle does with the changes it plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutopilotMode {
    /// Enqueue them for the executor.
    Live,
    /// Enqueue them held in `awaiting_approval` until someone approves each.
    Approval,
    /// Record them in the run only; nothing is enqueued.
    DryRun,
}

impl AutopilotMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AutopilotMode::Live => "live",
            AutopilotMode::Approval => "approval",
            AutopilotMode::DryRun => "dry_run",
        }
    }

    pub fn parse(text: &str) -> Option<AutopilotMode> {
        match text {
            "live" => Some(AutopilotMode::Live),
            "approval" => Some(AutopilotMode::Approval),
            "dry_run" => Some(AutopilotMode::DryRun),
            _ => None,
        }
    }
}

/// The longest interval between cycles: a week.
pub const MAX_INTERVAL_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountAutopilot {
    pub ad_account_id: String,
    pub enabled: bool,
    pub mode: AutopilotMode,
    /// Seconds of the autopilot's clock between cycles.
    pub interval_seconds: i64,
    /// The daily budget to split across the account's ads, in minor units; `None` keeps the sum of its ad
    /// sets' budgets as they are.
    pub total_daily_budget: Option<i64>,
}

impl AccountAutopilot {
    /// The failing field and its rule.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=MAX_INTERVAL_SECONDS).contains(&self.interval_seconds) {
            return Err((
                "interval_seconds",
                format!("must be between 1 and {MAX_INTERVAL_SECONDS} (a week)"),
            ));
        }
        if self.total_daily_budget.is_some_and(|total| total <= 0) {
            return Err((
                "total_daily_budget",
                "must be a positive amount in minor units, or absent to keep the account's current total".into(),
            ));
        }
        Ok(())
    }
}

type AccountRow = (String, bool, String, i32, Option<i64>);

fn from_row((ad_account_id, enabled, mode, interval_seconds, total_daily_budget): AccountRow) -> AccountAutopilot {
    AccountAutopilot {
        ad_account_id,
        enabled,
        // The table's CHECK admits only the three modes.
        mode: AutopilotMode::parse(&mode).unwrap_or(AutopilotMode::DryRun),
        interval_seconds: i64::from(interval_seconds),
        total_daily_budget,
    }
}

pub async fn store(
    pool: &PgPool,
    tenant_id: &str,
    settings: &AccountAutopilot,
    actor: &str,
) -> Result<AccountAutopilot, sqlx::Error> {
    let interval_seconds = i32::try_from(settings.interval_seconds).unwrap_or(i32::MAX);
    let row: AccountRow = sqlx::query_as(
        "INSERT INTO autopilot_accounts
             (tenant_id, ad_account_id, enabled, mode, interval_seconds, total_daily_budget_minor, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, ad_account_id) DO UPDATE SET
             enabled = EXCLUDED.enabled, mode = EXCLUDED.mode, interval_seconds = EXCLUDED.interval_seconds,
             total_daily_budget_minor = EXCLUDED.total_daily_budget_minor, updated_by = EXCLUDED.updated_by,
             updated_at = now()
         RETURNING ad_account_id, enabled, mode, interval_seconds, total_daily_budget_minor",
    )
    .bind(tenant_id)
    .bind(&settings.ad_account_id)
    .bind(settings.enabled)
    .bind(settings.mode.as_str())
    .bind(interval_seconds)
    .bind(settings.total_daily_budget)
    .bind(actor)
    .fetch_one(pool)
    .await?;
    Ok(from_row(row))
}

/// A tenant's accounts with autopilot settings (enabled or not), by account id, at most `limit`.
pub async fn list_for_tenant(pool: &PgPool, tenant_id: &str, limit: i64) -> Result<Vec<AccountAutopilot>, sqlx::Error> {
    let rows: Vec<AccountRow> = sqlx::query_as(
        "SELECT ad_account_id, enabled, mode, interval_seconds, total_daily_budget_minor
         FROM autopilot_accounts WHERE tenant_id = $1 ORDER BY ad_account_id LIMIT $2",
    )
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

pub async fn find(
    pool: &PgPool,
    tenant_id: &str,
    ad_account_id: &str,
) -> Result<Option<AccountAutopilot>, sqlx::Error> {
    let row: Option<AccountRow> = sqlx::query_as(
        "SELECT ad_account_id, enabled, mode, interval_seconds, total_daily_budget_minor
         FROM autopilot_accounts WHERE tenant_id = $1 AND ad_account_id = $2",
    )
    .bind(tenant_id)
    .bind(ad_account_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(from_row))
}
