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

/// Completed writes to `objects` in the last `object_window_seconds` (oldest first), and to any object of
/// `campaigns` in the last hour: two statements for a whole round.
pub async fn applied_history(
    pool: &PgPool,
    objects: &[(String, String)],
    campaigns: &[(String, String)],
    object_window_seconds: f64,
) -> Result<AppliedHistory, QueueError> {
    let object_ids: Vec<&str> = objects.iter().map(|(_, object)| object.as_str()).collect();
    type ObjectRow = (String, String, f64, Option<i64>, Option<i64>);
    let object_rows: Vec<ObjectRow> = sqlx::query_as(
        "SELECT a.tenant_id, a.object_id, EXTRACT(EPOCH FROM a.finalized_at)::float8, \
             (a.errors -> -1 -> 'detail' ->> 'budget_before')::bigint, \
             (a.errors -> -1 -> 'detail' ->> 'budget_sent')::bigint \
         FROM ad_changes a \
         WHERE a.state = 'completed' AND a.object_id = ANY($1) \
             AND a.finalized_at > now() - make_interval(secs => $2) \
             AND NOT COALESCE((a.errors -> -1 -> 'detail' ->> 'no_write')::boolean, false) \
         ORDER BY a.finalized_at",
    )
    .bind(&object_ids)
    .bind(object_window_seconds)
    .fetch_all(pool)
    .await?;
    let campaign_ids: Vec<&str> = campaigns.iter().map(|(_, campaign)| campaign.as_str()).collect();
    let campaign_rows: Vec<(String, String, f64)> = sqlx::query_as(
        "SELECT a.tenant_id, a.campaign_id, EXTRACT(EPOCH FROM a.finalized_at)::float8 \
         FROM ad_changes a \
         WHERE a.state = 'completed' AND a.campaign_id = ANY($1) \
             AND a.finalized_at > now() - interval '1 hour' \
             AND NOT COALESCE((a.errors -> -1 -> 'detail' ->> 'no_write')::boolean, false)",
    )
    .bind(&campaign_ids)
    .fetch_all(pool)
    .await?;
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
    for (tenant_id, campaign_id, at) in campaign_rows {
        let key = (tenant_id, campaign_id);
        if wanted_campaigns.contains(&key) {
            history.campaign_actions.entry(key).or_default().push(at);
        }
    }
    Ok(history)
}
