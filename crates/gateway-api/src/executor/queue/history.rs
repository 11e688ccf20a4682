//! What the guardrails read before deciding: the writes applied lately to a round's objects and campaigns.

use std::collections::{HashMap, HashSet};

use sqlx::PgPool;

use super::QueueError;

/// A budget or status change applied to an object: when it completed (Unix seconds) and the budgets
/// before and after (none for a status change).
pub type AppliedObjectChange = (f64, Option<i64>, Option<i64>);

/// What has been applied lately to the objects and campaigns of a round's changes, for the guardrails,
/// keyed by (tenant, object id) and (tenant, campaign id).
#[derive(Debug, Default)]
pub struct AppliedHistory {
    pub object_changes: HashMap<(String, String), Vec<AppliedObjectChange>>,
    pub campaign_actions: HashMap<(String, String), Vec<f64>>,
}

/// When a completed change was applied, in Unix seconds: on the system clock when it was finalised; on a
/// simulated clock the clock's time its attempt recorded (`clock_unix`).
const FINALIZED_AT: &str = "EXTRACT(EPOCH FROM a.finalized_at)::float8";
const APPLIED_AT_ON_SIMULATED_CLOCK: &str = "(a.errors -> -1 -> 'detail' ->> 'clock_unix')::float8";

/// Completed writes to `objects` in the last `object_window_seconds` (oldest first), and to any object of
/// `campaigns` in the last hour: two statements for a whole round. `simulated_now` is the time on a
/// simulated clock (development), whose windows are counted in that clock's time; `None` on the system clock.
pub async fn applied_history(
    pool: &PgPool,
    objects: &[(String, String)],
    campaigns: &[(String, String)],
    object_window_seconds: f64,
    simulated_now: Option<f64>,
) -> Result<AppliedHistory, QueueError> {
    // Statements built from the constants above only (no input). $2 is the window; on a simulated clock
    // $3 is its now. The system clock's windows are ranges of finalized_at, which its index serves. A
    // simulated clock goes back when its world starts afresh: changes recorded "after" now belong to an
    // earlier run of the world and are not counted.
    let (applied_at, object_window, campaign_window) = match simulated_now {
        None => (
            FINALIZED_AT,
            "a.finalized_at > now() - make_interval(secs => $2)".to_owned(),
            "a.finalized_at > now() - interval '1 hour'".to_owned(),
        ),
        Some(_) => (
            APPLIED_AT_ON_SIMULATED_CLOCK,
            format!("{APPLIED_AT_ON_SIMULATED_CLOCK} BETWEEN $3 - $2 AND $3"),
            format!("{APPLIED_AT_ON_SIMULATED_CLOCK} BETWEEN $3 - 3600 AND $3"),
        ),
    };
    let object_ids: Vec<&str> = objects.iter().map(|(_, object)| object.as_str()).collect();
    type ObjectRow = (String, String, f64, Option<i64>, Option<i64>);
    let object_statement = format!(
        "SELECT a.tenant_id, a.object_id, {applied_at}, \
             (a.errors -> -1 -> 'detail' ->> 'budget_before')::bigint, \
             (a.errors -> -1 -> 'detail' ->> 'budget_sent')::bigint \
         FROM ad_changes a \
         WHERE a.state = 'completed' AND a.object_id = ANY($1) AND {object_window} \
             AND NOT COALESCE((a.errors -> -1 -> 'detail' ->> 'no_write')::boolean, false) \
         ORDER BY 3"
    );
    let mut object_query = sqlx::query_as::<_, ObjectRow>(sqlx::AssertSqlSafe(object_statement))
        .bind(&object_ids)
        .bind(object_window_seconds);
    if let Some(now) = simulated_now {
        object_query = object_query.bind(now);
    }
    let object_rows = object_query.fetch_all(pool).await?;
    let campaign_ids: Vec<&str> = campaigns.iter().map(|(_, campaign)| campaign.as_str()).collect();
    // One row per campaign (a busy campaign has thousands of actions an hour in a bulk run): decoding one
    // array costs the gateway far less than as many rows.
    let campaign_statement = format!(
        "SELECT a.tenant_id, a.campaign_id, array_agg({applied_at}) \
         FROM ad_changes a \
         WHERE a.state = 'completed' AND a.campaign_id = ANY($1) AND {} \
             AND NOT COALESCE((a.errors -> -1 -> 'detail' ->> 'no_write')::boolean, false) \
         GROUP BY a.tenant_id, a.campaign_id",
        campaign_window.replace("$3", "$2")
    );
    let mut campaign_query =
        sqlx::query_as::<_, (String, String, Vec<f64>)>(sqlx::AssertSqlSafe(campaign_statement)).bind(&campaign_ids);
    if let Some(now) = simulated_now {
        campaign_query = campaign_query.bind(now);
    }
    let campaign_rows = campaign_query.fetch_all(pool).await?;
    // Both statements look objects and campaigns up by id alone (their indexes); keep the wanted tenants'.
    let mut history = AppliedHistory::default();
    let wanted_objects: HashSet<&(String, String)> = objects.iter().collect();
    let wanted_campaigns: HashSet<&(String, String)> = campaigns.iter().collect();
    for (tenant_id, object_id, at, before, after) in object_rows {
        let key = (tenant_id, object_id);
        if !wanted_objects.contains(&key) {
            continue;
        }
        history.object_changes.entry(key).or_default().push((at, before, after));
    }
    for (tenant_id, campaign_id, times) in campaign_rows {
        let key = (tenant_id, campaign_id);
        if wanted_campaigns.contains(&key) {
            history.campaign_actions.insert(key, times);
        }
    }
    Ok(history)
}
