//! Group commit: concurrent requests share one transaction. Each request hands its rows to a queue and
//! waits; a few writer tasks each take everything queued (up to a bound), insert it in one statement, and
//! answer every request in it once that statement has committed. No writer waits for a group to fill:
//! while one group commits, the next collects, so a busy relay commits larger groups and an idle one
//! commits each request at once. The queue is bounded; a full queue refuses at once (the caller answers
//! "overloaded, retry") instead of holding ever more requests in memory.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::metrics::CommitMetrics;

use super::{EventRow, StoreError, Stored, credit_requests, insert_rows_with_outbox};

/// How group commit is sized.
#[derive(Debug, Clone, Copy)]
pub struct GroupCommitSettings {
    /// Writer tasks, each with at most one statement in flight.
    pub writers: usize,
    /// The most events one statement carries (a request is never split, so one may carry more).
    pub max_events_per_commit: usize,
    /// Requests waiting for a writer before new ones are refused.
    pub queue_capacity: usize,
    /// Queue attributed conversions for ml-service's learner with their events.
    pub learning_outbox: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupCommitError {
    #[error("the relay is overloaded: too many requests are waiting to be stored")]
    Overloaded,
    #[error("the relay is shutting down")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct PendingRequest {
    rows: Vec<EventRow>,
    answer: oneshot::Sender<Result<Stored, Arc<StoreError>>>,
}

/// The handle requests store through; cloning shares the writers.
#[derive(Clone)]
pub struct GroupCommitter {
    queue: mpsc::Sender<PendingRequest>,
}

impl GroupCommitter {
    /// Starts `settings.writers` writer tasks on `pool`; they stop when every handle is dropped.
    pub fn start(pool: PgPool, settings: GroupCommitSettings, metrics: CommitMetrics) -> GroupCommitter {
        let (queue, waiting) = mpsc::channel(settings.queue_capacity.max(1));
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..settings.writers.max(1) {
            tokio::spawn(write_groups(pool.clone(), waiting.clone(), settings, metrics.clone()));
        }
        GroupCommitter { queue }
    }

    /// Stores `rows` (one request's events) and returns once they are committed.
    pub async fn store(&self, rows: Vec<EventRow>) -> Result<Stored, GroupCommitError> {
        if rows.is_empty() {
            return Ok(Stored::default());
        }
        let (answer, answered) = oneshot::channel();
        self.queue
            .try_send(PendingRequest { rows, answer })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => GroupCommitError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => GroupCommitError::Stopped,
            })?;
        match answered.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(error)) => Err(GroupCommitError::Store(StoreError::Group(error.to_string()))),
            Err(_) => Err(GroupCommitError::Stopped),
        }
    }
}

/// One writer: takes what is queued, commits it, answers; until the queue closes.
async fn write_groups(
    pool: PgPool,
    waiting: Arc<Mutex<mpsc::Receiver<PendingRequest>>>,
    settings: GroupCommitSettings,
    metrics: CommitMetrics,
) {
    let max_events = settings.max_events_per_commit;
    loop {
        let group = {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            let mut events = first.rows.len();
            let mut group = vec![first];
            while events < max_events {
                let Ok(next) = waiting.try_recv() else { break };
                events += next.rows.len();
                group.push(next);
            }
            group
        };
        let started = std::time::Instant::now();
        let (requests, events) = (
            group.len(),
            group.iter().map(|request| request.rows.len()).sum::<usize>(),
        );
        commit_group(&pool, group, settings.learning_outbox).await;
        metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        metrics.requests_per_commit.observe(requests as f64);
        metrics.events_per_commit.observe(events as f64);
    }
}

async fn commit_group(pool: &PgPool, group: Vec<PendingRequest>, learning_outbox: bool) {
    let rows: Vec<&EventRow> = group.iter().flat_map(|request| request.rows.iter()).collect();
    match insert_rows_with_outbox(pool, &rows, learning_outbox).await {
        Ok(inserted) => {
            let requests: Vec<&[EventRow]> = group.iter().map(|request| request.rows.as_slice()).collect();
            let credited = credit_requests(&requests, &inserted);
            for (request, stored) in group.into_iter().zip(credited) {
                let _ = request.answer.send(Ok(stored));
            }
        }
        // One request's rows may be what the database refused: each is tried on its own, so only it fails.
        Err(error) if group.len() > 1 => {
            tracing::warn!(%error, requests = group.len(), "group commit: a group failed; storing its requests one by one");
            for request in group {
                let outcome = insert_rows_with_outbox(pool, &request.rows.iter().collect::<Vec<_>>(), learning_outbox)
                    .await
                    .map(|inserted| credit_requests(&[request.rows.as_slice()], &inserted)[0])
                    .map_err(Arc::new);
                if let Err(error) = &outcome {
                    tracing::error!(%error, "group commit: could not store a request");
                }
                let _ = request.answer.send(outcome);
            }
        }
        Err(error) => {
            tracing::error!(%error, "group commit: could not store a request");
            let error = Arc::new(error);
            for request in group {
                let _ = request.answer.send(Err(error.clone()));
            }
        }
    }
}
