//! Keeps a round's leases alive: while the round reads, decides and writes, a task extends the leases of
//! the changes it claimed every third of the lease, and notes any it has lost (rescued after a stall, then
//! maybe claimed by another worker), so the round does not send a write for a change it no longer holds.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::PgPool;

use super::queue;

pub struct LeaseKeeper {
    lost: Arc<Mutex<HashSet<i64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseKeeper {
    /// Starts extending the leases of `held` ((id, attempt) pairs) for `worker`.
    pub fn start(pool: PgPool, worker: String, held: Vec<(i64, i32)>, lease: Duration) -> LeaseKeeper {
        let lost = Arc::new(Mutex::new(HashSet::new()));
        let lost_by_task = Arc::clone(&lost);
        let task = tokio::spawn(async move {
            let mut held = held;
            let period = (lease / 3).max(Duration::from_millis(100));
            while !held.is_empty() {
                tokio::time::sleep(period).await;
                match queue::heartbeat(&pool, &worker, &held, lease).await {
                    Ok(still_held) => {
                        let still_held: HashSet<i64> = still_held.into_iter().collect();
                        let mut lost = lost_by_task.lock().unwrap_or_else(PoisonError::into_inner);
                        held.retain(|(id, _)| {
                            let kept = still_held.contains(id);
                            if !kept {
                                lost.insert(*id);
                            }
                            kept
                        });
                    }
                    // The database is away: the leases may lapse, and the fenced finish will tell.
                    Err(error) => tracing::warn!(%error, "executor: lease heartbeat failed"),
                }
            }
        });
        LeaseKeeper { lost, task }
    }

    /// Whether the keeper found that the lease of change `id` was lost.
    pub fn has_lost(&self, id: i64) -> bool {
        self.lost.lock().unwrap_or_else(PoisonError::into_inner).contains(&id)
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}
