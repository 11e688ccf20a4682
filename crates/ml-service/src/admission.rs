//! Admission control for allocations: at most `max_running` run at once and at most `max_waiting` wait for
//! a slot; anything beyond is refused at once with RESOURCE_EXHAUSTED (HTTP 429 through the gateway), so
//! overload costs the caller a retry, never the service its memory.

use std::sync::atomic::{AtomicUsize, Ordering};

use adloop_service_kit::error::{ErrorCode, ServiceError};
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use tokio::sync::{Semaphore, SemaphorePermit};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationLimits {
    /// Allocations and scorings computed at once (they are CPU-bound: about the number of cores).
    pub max_running: usize,
    /// Requests allowed to wait for a slot; more are refused with RESOURCE_EXHAUSTED.
    pub max_waiting: usize,
}

pub struct Admission {
    running: Semaphore,
    admitted: AtomicUsize,
    limits: AllocationLimits,
    shed: Counter,
}

/// Held while a request runs; gives its slot back when dropped.
pub struct AdmissionTicket<'a> {
    _running: SemaphorePermit<'a>,
    _admitted: AdmittedGuard<'a>,
}

struct AdmittedGuard<'a>(&'a AtomicUsize);

impl Drop for AdmittedGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    pub fn new(limits: AllocationLimits, shed: Counter) -> Admission {
        Admission {
            running: Semaphore::new(limits.max_running),
            admitted: AtomicUsize::new(0),
            limits,
            shed,
        }
    }

    /// Waits for a running slot, or refuses at once when too many already wait.
    pub async fn admit(&self) -> Result<AdmissionTicket<'_>, ServiceError> {
        let capacity = self.limits.max_running + self.limits.max_waiting;
        let already_admitted = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admitted = AdmittedGuard(&self.admitted);
        if already_admitted >= capacity {
            self.shed.inc();
            return Err(ServiceError::new(
                ErrorCode::RateLimited,
                format!(
                    "ml-service is busy: {} allocations running and {} waiting (allocation_limits); retry shortly",
                    self.limits.max_running, self.limits.max_waiting
                ),
            ));
        }
        let running = self
            .running
            .acquire()
            .await
            .map_err(|_| ServiceError::new(ErrorCode::Unavailable, "ml-service is shutting down"))?;
        Ok(AdmissionTicket {
            _running: running,
            _admitted: admitted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_beyond_running_and_waiting_are_refused_at_once() {
        let shed = Counter::default();
        let admission = Admission::new(
            AllocationLimits {
                max_running: 1,
                max_waiting: 1,
            },
            shed.clone(),
        );
        let running = admission.admit().await.expect("a free slot");
        let waiting = admission.admit();
        tokio::pin!(waiting);
        // The second waits for the slot...
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), &mut waiting)
                .await
                .is_err()
        );
        // ...and, while it waits, a third is refused with rate_limited.
        let refused = admission.admit().await.err().expect("refused");
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert_eq!(shed.get(), 1);
        drop(running);
        let second = waiting.await.expect("admitted once the slot frees");
        drop(second);
        assert!(admission.admit().await.is_ok(), "slots come back when tickets drop");
    }
}
