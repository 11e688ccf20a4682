//! What an account's cycles remember from one to the next, one JSON value per account and kind, stamped
//! with the cycle that wrote it: the learner's delivery feed, the reporting-delay estimator, each ad's days
//! for the delivery curves. A cycle reads
//! it, advances it once (a rerun of the same cycle finds it already at its slot) and writes it back; a write
//! from an older cycle than the stored one is ignored.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleMemory {
    /// The learner library's `DeliveryFeed` (`learning_feed`).
    LearningFeed,
    /// The allocator library's `ReportingDelayEstimator` (`reporting_delays`).
    ReportingDelays,
    /// Each ad's days over the account's last finished days (`account_reader::DailyDeliveryByAd`).
    DeliveryDays,
}

impl CycleMemory {
    /// The table and its JSON column (fixed names, never input).
    fn table_and_column(self) -> (&'static str, &'static str) {
        match self {
            CycleMemory::LearningFeed => ("autopilot_learning_feeds", "feed"),
            CycleMemory::ReportingDelays => ("autopilot_reporting_delays", "estimator"),
            CycleMemory::DeliveryDays => ("autopilot_delivery_days", "days"),
        }
    }
}

/// The account's memory as the last cycle left it, with that cycle's slot. A value that no longer reads (an
/// older shape) starts afresh.
pub async fn load<T: DeserializeOwned + Default>(
    pool: &PgPool,
    memory: CycleMemory,
    tenant_id: &str,
    ad_account_id: &str,
) -> Result<Option<(i64, T)>, sqlx::Error> {
    let (table, column) = memory.table_and_column();
    // Table and column are the fixed names above, never input.
    let row: Option<(i64, serde_json::Value)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT cycle_slot, {column} FROM {table} WHERE tenant_id = $1 AND ad_account_id = $2"
    )))
    .bind(tenant_id)
    .bind(ad_account_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(slot, value)| (slot, serde_json::from_value(value).unwrap_or_default())))
}

pub async fn store<T: Serialize>(
    pool: &PgPool,
    memory: CycleMemory,
    tenant_id: &str,
    ad_account_id: &str,
    cycle_slot: i64,
    value: &T,
) -> Result<(), sqlx::Error> {
    let (table, column) = memory.table_and_column();
    let value = serde_json::to_value(value).unwrap_or_default();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} (tenant_id, ad_account_id, cycle_slot, {column}) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, ad_account_id) DO UPDATE
             SET cycle_slot = EXCLUDED.cycle_slot, {column} = EXCLUDED.{column}, updated_at = now()
         WHERE {table}.cycle_slot < EXCLUDED.cycle_slot"
    )))
    .bind(tenant_id)
    .bind(ad_account_id)
    .bind(cycle_slot)
    .bind(value)
    .execute(pool)
    .await?;
    Ok(())
}
