//! The `ad_changes` queue in Postgres. Every function is one short transaction; none is held across a
//! Graph call.
//!
//! - `enqueue`: changes and their audit entries in one transaction; a repeated idempotency key finds the
//!   change it made; a new absolute change cancels queued changes of the same field of the same object, and
//!   a new relative budget change folds the object's queued budget changes into itself (coalescing: one
//!   write instead of several), never a running one.
//! - `claim`: up to N due changes with one statement (`FOR UPDATE SKIP LOCKED`), at most one per object and
//!   never an object that already has a running change, by priority, then fair round (a change's place among
//!   its campaign's queued changes, given at enqueue: the first changes of a claim are of different
//!   campaigns), then due time; marked running under a lease.
//! - `heartbeat`, `finish`, `rescue`: fenced on (id, state, lease owner, attempt). A worker whose lease was
//!   lost updates nothing; its outcome is still appended to the change's attempt log, because the Graph call
//!   happened.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{PgPool, Postgres};

use super::change::{AdChangeRow, ChangeState};

mod depth;
mod enqueue;
mod folding;
mod history;

pub use depth::{QueueDepth, queue_depth};
pub use enqueue::enqueue;
pub use history::{AppliedHistory, AppliedObjectChange, applied_history};

/// A claim ranks this many due changes per change it may claim (in claim order), enough to skip a second
/// change of an object and rows other claimers hold.
const CANDIDATES_PER_CLAIMED_CHANGE: i64 = 2;

/// The channel `enqueue` notifies when a change becomes claimable.
pub const WAKE_UP_CHANNEL: &str = "adloop_ad_changes";

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// One enqueued change: its id, and whether this call created it (false: its idempotency key was seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: i64,
    pub created: bool,
}

/// Why an attempt failed, as the change's attempt log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptError {
    pub code: Option<u32>,
    pub subcode: Option<u32>,
    pub message: String,
}

/// How a claimed change ended its attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Applied; `detail` records what was sent and how (e.g. a re-send after an unknown outcome).
    Completed { detail: Value },
    /// A transient failure: try again after `delay` (discarded instead once attempts are used up).
    Retry { error: AttemptError, delay: Duration },
    /// A permanent failure: kept as a dead letter with its error.
    Discard { error: AttemptError },
    /// Not attempted after all (shutdown): back to the queue without counting the attempt.
    Release,
    /// Not attempted now (a rate rule, a lock, a throttled account): back to the queue after `delay`
    /// without counting the attempt.
    Hold { delay: Duration, detail: Value },
    /// The change is larger than the approval threshold: it waits for `POST /v1/ad-changes/{id}/approve`.
    AwaitApproval { detail: Value },
}

/// Whether a fenced update found the change still held by this worker and attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fenced {
    Applied,
    LeaseLost,
}

fn attempt_entry(attempt: i32, outcome: &str, error: Option<&AttemptError>) -> Value {
    let mut entry = json!({ "attempt": attempt, "outcome": outcome });
    if let Some(error) = error {
        entry["code"] = json!(error.code);
        entry["subcode"] = json!(error.subcode);
        entry["message"] = json!(error.message);
    }
    entry
}

async fn audit(
    executor: impl sqlx::PgExecutor<'_>,
    tenant_id: &str,
    ad_change_id: i64,
    object_id: &str,
    event: &str,
    actor: &str,
    detail: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, ad_change_id, object_id, event, actor, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(ad_change_id)
    .bind(object_id)
    .bind(event)
    .bind(actor)
    .bind(detail)
    .execute(executor)
    .await?;
    Ok(())
}

/// Claims up to `limit` due changes for `worker` under a lease of `lease` (see the module docs).
pub async fn claim(pool: &PgPool, worker: &str, limit: i64, lease: Duration) -> Result<Vec<AdChangeRow>, QueueError> {
    let candidate_pool = limit * CANDIDATES_PER_CLAIMED_CHANGE;
    let mut transaction = pool.begin().await?;
    // The claim must walk the claimable index in order and stop after a few hundred rows. A planner whose
    // statistics predate a burst of enqueues (a queue table fills in seconds) believes a handful of rows
    // are due and instead collects every due row (a bitmap scan, or anti-joins that lose the index's
    // order) and sorts them: 12–28 ms instead of ~2 ms a claim at 7,000 due changes. So no bitmap scan
    // here, and the NOT EXISTS tests stay per-row filters (`OFFSET 0` keeps Postgres from turning them
    // into joins).
    sqlx::query("SET LOCAL enable_bitmapscan = off")
        .execute(&mut *transaction)
        .await?;
    let claimed = sqlx::query_as::<_, AdChangeRow>(
        "WITH candidates AS ( \
             SELECT q.id, q.priority, q.fair_round, q.run_at, q.object_id \
             FROM ad_changes q \
             WHERE q.state IN ('available', 'retryable') AND q.run_at <= now() \
                 AND NOT EXISTS (SELECT 1 FROM ad_changes r WHERE r.object_id = q.object_id AND r.state = 'running' \
                     OFFSET 0) \
                 AND NOT EXISTS (SELECT 1 FROM executor_pauses p WHERE (p.scope = 'global' \
                     OR (p.scope = 'tenant' AND p.scope_id = q.tenant_id) \
                     OR (p.scope = 'account' AND p.tenant_id = q.tenant_id AND p.scope_id = q.ad_account_id)) \
                     OFFSET 0) \
                 AND NOT EXISTS (SELECT 1 FROM graph_account_pacing g \
                     WHERE g.ad_account_id = q.ad_account_id AND g.blocked_until > now() OFFSET 0) \
             ORDER BY q.priority DESC, q.fair_round, q.run_at, q.id \
             LIMIT $4 \
         ), \
         first_per_object AS ( \
             SELECT id, priority, fair_round, run_at, \
                 row_number() OVER (PARTITION BY object_id ORDER BY priority DESC, fair_round, run_at, id) AS rank_in_object \
             FROM candidates \
         ), \
         chosen AS ( \
             SELECT q.id FROM ad_changes q \
             JOIN first_per_object AS ranked ON ranked.id = q.id AND ranked.rank_in_object = 1 \
             WHERE q.state IN ('available', 'retryable') \
             ORDER BY ranked.priority DESC, ranked.fair_round, ranked.run_at, ranked.id \
             LIMIT $1 \
             FOR UPDATE OF q SKIP LOCKED \
         ) \
         UPDATE ad_changes a SET state = 'running', attempt = a.attempt + 1, lease_owner = $2, \
             lease_expires_at = now() + make_interval(secs => $3), updated_at = now() \
         FROM chosen WHERE a.id = chosen.id \
         RETURNING a.*, EXTRACT(EPOCH FROM a.run_at)::float8 AS run_at_unix",
    )
    .bind(limit)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .bind(candidate_pool)
    .fetch_all(&mut *transaction)
    .await;
    match claimed {
        Ok(rows) => {
            transaction.commit().await?;
            Ok(rows)
        }
        // Two claimers raced for one object's changes and the one-running-per-object index refused the
        // second: nothing was claimed; the next round takes what is left.
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23505") => Ok(Vec::new()),
        Err(error) => Err(error.into()),
    }
}

/// Extends the leases `worker` still holds; returns the ids it still holds (a missing one was lost: do not
/// call the Graph API for it).
pub async fn heartbeat(
    pool: &PgPool,
    worker: &str,
    held: &[(i64, i32)],
    lease: Duration,
) -> Result<Vec<i64>, QueueError> {
    let ids: Vec<i64> = held.iter().map(|(id, _)| *id).collect();
    let attempts: Vec<i32> = held.iter().map(|(_, attempt)| *attempt).collect();
    let mut transaction = transaction_finding_changes_by_id(pool).await?;
    let still_held = sqlx::query_scalar(
        "UPDATE ad_changes a SET lease_expires_at = now() + make_interval(secs => $4), updated_at = now() \
         FROM unnest($1::bigint[], $2::int[]) AS held(id, attempt) \
         WHERE a.id = held.id AND a.attempt = held.attempt AND a.state = 'running' AND a.lease_owner = $3 \
         RETURNING a.id",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .fetch_all(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(still_held)
}

/// A transaction whose statements find claimed changes by their ids. Statistics older than a burst of
/// claims believe a handful of changes are running, and the planner would otherwise scan every running
/// change of every worker (or the whole table) to touch one worker's few hundred.
async fn transaction_finding_changes_by_id(pool: &PgPool) -> Result<sqlx::Transaction<'static, Postgres>, QueueError> {
    let mut transaction = pool.begin().await?;
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *transaction)
        .await?;
    sqlx::query("SET LOCAL enable_bitmapscan = off")
        .execute(&mut *transaction)
        .await?;
    Ok(transaction)
}

/// Records how attempt `attempt` of change `id` ended, if `worker` still holds it; otherwise appends the
/// outcome to the change's attempt log and audit trail as a lost lease.
pub async fn finish(
    pool: &PgPool,
    worker: &str,
    id: i64,
    attempt: i32,
    outcome: &Outcome,
) -> Result<Fenced, QueueError> {
    let fenced = finish_many(pool, worker, &[(id, attempt, outcome)]).await?;
    Ok(fenced.first().copied().unwrap_or(Fenced::LeaseLost))
}

/// How an outcome moves a change: the state asked for ('release' goes back to the queue), the delay
/// before it is due again, its attempt-log entry, and whether the attempt is given back.
fn transition_of(attempt: i32, outcome: &Outcome) -> (&'static str, Option<f64>, Value, i32) {
    match outcome {
        Outcome::Completed { detail } => {
            let mut entry = attempt_entry(attempt, "completed", None);
            entry["detail"] = detail.clone();
            ("completed", None, entry, 0)
        }
        Outcome::Retry { error, delay } => (
            "retryable",
            Some(delay.as_secs_f64()),
            attempt_entry(attempt, "retry", Some(error)),
            0,
        ),
        Outcome::Discard { error } => ("discarded", None, attempt_entry(attempt, "discarded", Some(error)), 0),
        Outcome::Release => ("release", Some(0.0), attempt_entry(attempt, "released", None), 1),
        Outcome::Hold { delay, detail } => {
            let mut entry = attempt_entry(attempt, "held", None);
            entry["detail"] = detail.clone();
            ("release", Some(delay.as_secs_f64()), entry, 1)
        }
        Outcome::AwaitApproval { detail } => {
            let mut entry = attempt_entry(attempt, "awaiting_approval", None);
            entry["detail"] = detail.clone();
            ("awaiting_approval", None, entry, 1)
        }
    }
}

/// `finish` for many changes with one statement (the updates and their audit entries); the answers are in
/// the order of `finishes`.
pub async fn finish_many(
    pool: &PgPool,
    worker: &str,
    finishes: &[(i64, i32, &Outcome)],
) -> Result<Vec<Fenced>, QueueError> {
    if finishes.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = Vec::with_capacity(finishes.len());
    let mut attempts = Vec::with_capacity(finishes.len());
    let mut next_states = Vec::with_capacity(finishes.len());
    let mut delays = Vec::with_capacity(finishes.len());
    let mut entries = Vec::with_capacity(finishes.len());
    let mut given_back = Vec::with_capacity(finishes.len());
    for (id, attempt, outcome) in finishes {
        let (next_state, delay_seconds, entry, give_back) = transition_of(*attempt, outcome);
        ids.push(*id);
        attempts.push(*attempt);
        next_states.push(next_state);
        delays.push(delay_seconds);
        entries.push(entry);
        given_back.push(give_back);
    }
    // One statement records the outcomes and their audit entries, finding each change by its id. The fence
    // is (id, state, lease owner, attempt), as on every other update of a claimed change.
    let mut transaction = transaction_finding_changes_by_id(pool).await?;
    let finished: Vec<(i64, String, String, String)> = sqlx::query_as(
        "WITH finished AS ( \
             UPDATE ad_changes a SET \
                 state = CASE \
                     WHEN f.next_state = 'release' THEN CASE WHEN a.attempt > 1 THEN 'retryable' ELSE 'available' END \
                     WHEN f.next_state = 'retryable' AND a.attempt >= a.max_attempts THEN 'discarded' \
                     ELSE f.next_state END, \
                 run_at = CASE WHEN f.delay IS NULL THEN a.run_at ELSE now() + make_interval(secs => f.delay) END, \
                 attempt = a.attempt - f.given_back, \
                 lease_owner = NULL, lease_expires_at = NULL, \
                 needs_reconcile = CASE WHEN f.next_state = 'completed' THEN false ELSE a.needs_reconcile END, \
                 errors = a.errors || jsonb_build_array(f.entry), \
                 updated_at = now(), \
                 finalized_at = CASE WHEN f.next_state IN ('completed', 'discarded') \
                     OR (f.next_state = 'retryable' AND a.attempt >= a.max_attempts) THEN now() END \
             FROM unnest($1::bigint[], $2::int[], $3::text[], $4::float8[], $5::jsonb[], $6::int[]) \
                 AS f(id, attempt, next_state, delay, entry, given_back) \
             WHERE a.id = f.id AND a.state = 'running' AND a.lease_owner = $7 AND a.attempt = f.attempt \
             RETURNING a.id, a.tenant_id, a.object_id, a.state, f.entry \
         ), \
         audited AS ( \
             INSERT INTO audit_log (tenant_id, ad_change_id, object_id, event, actor, detail) \
             SELECT tenant_id, id, object_id, state, $7, entry FROM finished \
         ) \
         SELECT id, tenant_id, object_id, state FROM finished",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(&next_states)
    .bind(&delays)
    .bind(&entries)
    .bind(&given_back)
    .bind(worker)
    .fetch_all(&mut *transaction)
    .await?;
    transaction.commit().await?;
    let position_of: HashMap<i64, usize> = ids.iter().enumerate().map(|(position, id)| (*id, position)).collect();
    let mut answers = vec![Fenced::LeaseLost; finishes.len()];
    for (id, _, _, _) in finished {
        if let Some(&position) = position_of.get(&id) {
            answers[position] = Fenced::Applied;
        }
    }
    if answers.iter().all(|answer| *answer == Fenced::Applied) {
        return Ok(answers);
    }
    // The lease was lost (rescued, then maybe claimed by another worker): the outcome is kept, the state is
    // not touched.
    let mut transaction = pool.begin().await?;
    let mut audit_rows = AuditRows::default();
    for (position, answer) in answers.iter().enumerate() {
        if *answer == Fenced::Applied {
            continue;
        }
        let mut lost = entries[position].clone();
        lost["lease_lost_by"] = json!(worker);
        let owner: Option<(String, String)> = sqlx::query_as(
            "UPDATE ad_changes SET errors = errors || jsonb_build_array($2::jsonb), updated_at = now() \
             WHERE id = $1 RETURNING tenant_id, object_id",
        )
        .bind(ids[position])
        .bind(&lost)
        .fetch_optional(&mut *transaction)
        .await?;
        if let Some((tenant_id, object_id)) = owner {
            audit_rows.push(tenant_id, ids[position], object_id, "lease_lost".into(), worker, lost);
        }
    }
    audit_rows.insert(&mut transaction).await?;
    transaction.commit().await?;
    Ok(answers)
}

/// Audit entries written with one statement.
#[derive(Default)]
struct AuditRows {
    tenant_ids: Vec<String>,
    change_ids: Vec<i64>,
    object_ids: Vec<String>,
    events: Vec<String>,
    actors: Vec<String>,
    details: Vec<Value>,
}

impl AuditRows {
    fn push(
        &mut self,
        tenant_id: String,
        change_id: i64,
        object_id: String,
        event: String,
        actor: &str,
        detail: Value,
    ) {
        self.tenant_ids.push(tenant_id);
        self.change_ids.push(change_id);
        self.object_ids.push(object_id);
        self.events.push(event);
        self.actors.push(actor.to_owned());
        self.details.push(detail);
    }

    async fn insert(self, transaction: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        if self.change_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO audit_log (tenant_id, ad_change_id, object_id, event, actor, detail) \
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::jsonb[])",
        )
        .bind(&self.tenant_ids)
        .bind(&self.change_ids)
        .bind(&self.object_ids)
        .bind(&self.events)
        .bind(&self.actors)
        .bind(&self.details)
        .execute(transaction)
        .await?;
        Ok(())
    }
}

/// Returns changes whose lease expired to the queue (retryable, to be reconciled before writing again), or
/// to the dead letters once their attempts are used up. Returns how many it rescued.
pub async fn rescue(pool: &PgPool, actor: &str) -> Result<u64, QueueError> {
    let mut transaction = pool.begin().await?;
    let rescued: Vec<(i64, String, String, String)> = sqlx::query_as(
        "WITH expired AS ( \
             SELECT id FROM ad_changes WHERE state = 'running' AND lease_expires_at < now() \
             LIMIT 500 FOR UPDATE SKIP LOCKED \
         ) \
         UPDATE ad_changes a SET \
             state = CASE WHEN a.attempt >= a.max_attempts THEN 'discarded' ELSE 'retryable' END, \
             finalized_at = CASE WHEN a.attempt >= a.max_attempts THEN now() END, \
             needs_reconcile = true, lease_owner = NULL, lease_expires_at = NULL, run_at = now(), \
             errors = a.errors || jsonb_build_array(jsonb_build_object( \
                 'attempt', a.attempt, 'outcome', 'lease_expired', 'lease_owner', a.lease_owner)), \
             updated_at = now() \
         FROM expired WHERE a.id = expired.id AND a.state = 'running' AND a.lease_expires_at < now() \
         RETURNING a.id, a.tenant_id, a.object_id, a.state",
    )
    .fetch_all(&mut *transaction)
    .await?;
    for (id, tenant_id, object_id, state) in &rescued {
        audit(
            &mut *transaction,
            tenant_id,
            *id,
            object_id,
            "rescued",
            actor,
            json!({ "state": state }),
        )
        .await?;
    }
    transaction.commit().await?;
    Ok(rescued.len() as u64)
}

/// One change by id, within its tenant.
pub async fn find(pool: &PgPool, tenant_id: &str, id: i64) -> Result<Option<AdChangeRow>, QueueError> {
    Ok(sqlx::query_as::<_, AdChangeRow>(
        "SELECT *, EXTRACT(EPOCH FROM run_at)::float8 AS run_at_unix FROM ad_changes WHERE id = $1 AND tenant_id = $2",
    )
    .bind(id)
    .bind(tenant_id)
    .fetch_optional(pool)
    .await?)
}

/// Why a user's transition of a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("no change {0} for this tenant")]
    NotFound(i64),
    #[error("change {id} is {state}; {action} needs it {needed}")]
    WrongState {
        id: i64,
        state: String,
        action: &'static str,
        needed: &'static str,
    },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<sqlx::Error> for TransitionError {
    fn from(error: sqlx::Error) -> Self {
        TransitionError::Queue(QueueError::Database(error))
    }
}

/// A transition a user may make: from one of `from` to `to`, named `action`.
struct Transition {
    from: &'static [&'static str],
    to: &'static str,
    action: &'static str,
    /// The states `from` says, for the error.
    needed: &'static str,
}

/// A user's transition of a change, audited; fenced on the state.
async fn transition(
    pool: &PgPool,
    tenant_id: &str,
    id: i64,
    transition: Transition,
    actor: &str,
) -> Result<AdChangeRow, TransitionError> {
    let Transition {
        from,
        to,
        action,
        needed,
    } = transition;
    let mut transaction = pool.begin().await?;
    let updated = sqlx::query_as::<_, AdChangeRow>(
        "UPDATE ad_changes SET state = $4, updated_at = now(), \
             finalized_at = CASE WHEN $4 = 'cancelled' THEN now() ELSE finalized_at END, \
             approved_by = CASE WHEN $5 = 'approve' THEN $6 ELSE approved_by END, \
             approved_at = CASE WHEN $5 = 'approve' THEN now() ELSE approved_at END, \
             run_at = CASE WHEN $5 = 'approve' THEN now() ELSE run_at END \
         WHERE id = $1 AND tenant_id = $2 AND state = ANY($3) \
         RETURNING *, EXTRACT(EPOCH FROM run_at)::float8 AS run_at_unix",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(from)
    .bind(to)
    .bind(action)
    .bind(actor)
    .fetch_optional(&mut *transaction)
    .await?;
    let Some(row) = updated else {
        let current: Option<String> =
            sqlx::query_scalar("SELECT state FROM ad_changes WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant_id)
                .fetch_optional(&mut *transaction)
                .await?;
        return Err(match current {
            None => TransitionError::NotFound(id),
            Some(state) => TransitionError::WrongState {
                id,
                state,
                action,
                needed,
            },
        });
    };
    audit(
        &mut *transaction,
        tenant_id,
        id,
        &row.object_id,
        action,
        actor,
        json!({}),
    )
    .await?;
    if to == "available" {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WAKE_UP_CHANNEL)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(row)
}

/// Cancels a change that has not run (available, retryable or awaiting approval).
pub async fn cancel(pool: &PgPool, tenant_id: &str, id: i64, actor: &str) -> Result<AdChangeRow, TransitionError> {
    let cancel = Transition {
        from: &["available", "retryable", "awaiting_approval"],
        to: "cancelled",
        action: "cancel",
        needed: "available, retryable or awaiting_approval",
    };
    transition(pool, tenant_id, id, cancel, actor).await
}

/// Approves a change held for approval: it becomes claimable at once and is not held for approval again.
pub async fn approve(pool: &PgPool, tenant_id: &str, id: i64, actor: &str) -> Result<AdChangeRow, TransitionError> {
    let approve = Transition {
        from: &["awaiting_approval"],
        to: "available",
        action: "approve",
        needed: "awaiting_approval",
    };
    transition(pool, tenant_id, id, approve, actor).await
}

/// A tenant's changes, newest first, optionally in one state and one ad account.
pub async fn list(
    pool: &PgPool,
    tenant_id: &str,
    state: Option<ChangeState>,
    ad_account_id: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AdChangeRow>, QueueError> {
    // The state is written into the statement (it comes from the enum, never from the request's text) so
    // that the planner can use the index that holds only that state's rows (`ad_changes_unusual_by_tenant`,
    // the claim's, the running objects'): a parameter would hide which partial index applies.
    let state_condition = match state {
        Some(state) => format!("AND state = '{}'", state.as_str()),
        None => String::new(),
    };
    let statement = format!(
        "SELECT *, EXTRACT(EPOCH FROM run_at)::float8 AS run_at_unix FROM ad_changes \
         WHERE tenant_id = $1 {state_condition} \
             AND ($2::text IS NULL OR ad_account_id = $2) AND ($4::bigint IS NULL OR id < $4) \
         ORDER BY id DESC LIMIT $3"
    );
    Ok(sqlx::query_as::<_, AdChangeRow>(sqlx::AssertSqlSafe(statement))
        .bind(tenant_id)
        .bind(ad_account_id)
        .bind(limit)
        .bind(before_id)
        .fetch_all(pool)
        .await?)
}

/// One audit entry.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub ad_change_id: Option<i64>,
    pub object_id: Option<String>,
    pub event: String,
    pub actor: String,
    pub detail: Value,
    pub at_unix: f64,
}

/// Which end of the audit trail a page reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditPage {
    /// Oldest first, from the entry after this id (a reader following the trail).
    OldestAfter(Option<i64>),
    /// Newest first, from the entry before this id (an operator looking at what just happened).
    NewestBefore(Option<i64>),
}

/// A tenant's audit trail, optionally for one object, a page from either end.
pub async fn audit_trail(
    pool: &PgPool,
    tenant_id: &str,
    object_id: Option<&str>,
    page: AuditPage,
    limit: i64,
) -> Result<Vec<AuditEntry>, QueueError> {
    let (cursor_rule, order, cursor) = match page {
        AuditPage::OldestAfter(after_id) => ("id > $4", "ASC", after_id),
        AuditPage::NewestBefore(before_id) => ("id < $4", "DESC", before_id),
    };
    // Both pieces of text come from the match above, never from the request.
    let statement = format!(
        "SELECT id, ad_change_id, object_id, event, actor, detail, EXTRACT(EPOCH FROM at)::float8 AS at_unix \
         FROM audit_log WHERE tenant_id = $1 AND ($2::text IS NULL OR object_id = $2) \
             AND ($4::bigint IS NULL OR {cursor_rule}) \
         ORDER BY id {order} LIMIT $3"
    );
    Ok(sqlx::query_as::<_, AuditEntry>(sqlx::AssertSqlSafe(statement))
        .bind(tenant_id)
        .bind(object_id)
        .bind(limit)
        .bind(cursor)
        .fetch_all(pool)
        .await?)
}
