//! A model-based property test of the ad-change queue: random sequences of enqueues (with repeated keys,
//! absolute and relative changes that supersede or fold queued ones, approvals), claims by two workers, every kind of outcome, lease expiry
//! and rescue, stale finishes from workers that lost their lease, cancels and approvals run against the
//! real Postgres queue and against a small in-memory model of the state machine. After every step each
//! change's state and attempt count must match the model, and every claim must obey the queue's rules.
//!
//! Where the queue may choose (which of several due changes a claim takes), the model checks the choice is
//! allowed and then follows it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use adloop_money::{Currency, MinorUnits};
use gateway_api::executor::change::{ChangeRequest, NewAdChange};
use gateway_api::executor::queue::{self, AttemptError, Fenced, Outcome};
use proptest::prelude::*;
use sqlx::PgPool;

use crate::queue::{budget, queue_database};

const WORKERS: [&str; 2] = ["worker-0", "worker-1"];
const OBJECTS: usize = 3;
const MAX_ATTEMPTS: i32 = 3;
const LEASE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
enum FinishWith {
    Completed,
    Retry,
    Discard,
    Release,
    Hold,
    AwaitApproval,
}

#[derive(Debug, Clone)]
enum Step {
    Enqueue {
        object: usize,
        key: usize,
        relative: bool,
        needs_approval: bool,
    },
    Claim {
        worker: usize,
        limit: i64,
    },
    Finish {
        worker: usize,
        pick: usize,
        with: FinishWith,
    },
    ExpireLeasesAndRescue,
    StaleFinish {
        pick: usize,
    },
    Cancel {
        pick: usize,
    },
    Approve {
        pick: usize,
    },
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let finish_with = prop_oneof![
        Just(FinishWith::Completed),
        Just(FinishWith::Retry),
        Just(FinishWith::Discard),
        Just(FinishWith::Release),
        Just(FinishWith::Hold),
        Just(FinishWith::AwaitApproval),
    ];
    prop_oneof![
        4 => (0..OBJECTS, 0..8_usize, any::<bool>(), prop::bool::weighted(0.2)).prop_map(
            |(object, key, relative, needs_approval)| Step::Enqueue { object, key, relative, needs_approval }
        ),
        4 => (0..WORKERS.len(), 1..4_i64).prop_map(|(worker, limit)| Step::Claim { worker, limit }),
        5 => (0..WORKERS.len(), 0..8_usize, finish_with)
            .prop_map(|(worker, pick, with)| Step::Finish { worker, pick, with }),
        1 => Just(Step::ExpireLeasesAndRescue),
        1 => (0..8_usize).prop_map(|pick| Step::StaleFinish { pick }),
        1 => (0..16_usize).prop_map(|pick| Step::Cancel { pick }),
        1 => (0..16_usize).prop_map(|pick| Step::Approve { pick }),
    ]
}

#[derive(Debug, Clone)]
struct ModelChange {
    object: usize,
    state: &'static str,
    attempt: i32,
    /// (worker, attempt) while running.
    lease: Option<(usize, i32)>,
}

/// What the queue should hold.
#[derive(Debug, Default)]
struct Model {
    changes: BTreeMap<i64, ModelChange>,
    ids_by_key: HashMap<usize, i64>,
    /// Leases that were rescued from under their worker: (worker, id, attempt).
    stale: Vec<(usize, i64, i32)>,
}

impl Model {
    fn claimable_objects(&self) -> HashSet<usize> {
        let running: HashSet<usize> = self
            .changes
            .values()
            .filter(|change| change.state == "running")
            .map(|change| change.object)
            .collect();
        self.changes
            .values()
            .filter(|change| matches!(change.state, "available" | "retryable"))
            .map(|change| change.object)
            .filter(|object| !running.contains(object))
            .collect()
    }

    fn held_by(&self, worker: usize) -> Vec<(i64, i32)> {
        self.changes
            .iter()
            .filter_map(|(id, change)| match change.lease {
                Some((holder, attempt)) if holder == worker => Some((*id, attempt)),
                _ => None,
            })
            .collect()
    }
}

fn new_change(object: usize, key: usize, relative: bool, needs_approval: bool) -> NewAdChange {
    let mut change = budget(&format!("set-{object}"), 10_000 + key as i64, &format!("key-{key}"));
    if relative {
        change.request = ChangeRequest::BudgetIncrease {
            currency: Currency::parse("USD").unwrap(),
            by: MinorUnits(100),
        };
    }
    change.max_attempts = MAX_ATTEMPTS;
    change.needs_approval = needs_approval;
    change
}

fn outcome(with: FinishWith) -> Outcome {
    let error = AttemptError {
        code: Some(2),
        subcode: None,
        message: "model".into(),
    };
    match with {
        FinishWith::Completed => Outcome::Completed {
            detail: serde_json::json!({}),
        },
        FinishWith::Retry => Outcome::Retry {
            error,
            delay: Duration::ZERO,
        },
        FinishWith::Discard => Outcome::Discard { error },
        FinishWith::Release => Outcome::Release,
        FinishWith::Hold => Outcome::Hold {
            delay: Duration::ZERO,
            detail: serde_json::json!({}),
        },
        FinishWith::AwaitApproval => Outcome::AwaitApproval {
            detail: serde_json::json!({}),
        },
    }
}

/// Runs one step on the queue and on the model; panics on the first disagreement.
async fn apply(pool: &PgPool, model: &mut Model, step: &Step) {
    match *step {
        Step::Enqueue {
            object,
            key,
            relative,
            needs_approval,
        } => {
            let enqueued = queue::enqueue(pool, &[new_change(object, key, relative, needs_approval)], "model")
                .await
                .unwrap()[0];
            if let Some(existing) = model.ids_by_key.get(&key) {
                assert_eq!((enqueued.id, enqueued.created), (*existing, false), "a repeated key");
                return;
            }
            assert!(enqueued.created);
            // An absolute change supersedes the object's queued changes (awaiting approval too); a relative one
            // folds the queued ones that are not awaiting approval into itself (unless it awaits approval).
            let superseded_states: &[&str] = match (relative, needs_approval) {
                (false, _) => &["available", "retryable", "awaiting_approval"],
                (true, false) => &["available", "retryable"],
                (true, true) => &[],
            };
            for change in model.changes.values_mut() {
                if change.object == object && superseded_states.contains(&change.state) {
                    change.state = "cancelled";
                }
            }
            model.ids_by_key.insert(key, enqueued.id);
            model.changes.insert(
                enqueued.id,
                ModelChange {
                    object,
                    state: if needs_approval {
                        "awaiting_approval"
                    } else {
                        "available"
                    },
                    attempt: 0,
                    lease: None,
                },
            );
        }
        Step::Claim { worker, limit } => {
            let claimable = model.claimable_objects();
            let claimed = queue::claim(pool, WORKERS[worker], limit, LEASE).await.unwrap();
            assert_eq!(
                claimed.len(),
                claimable.len().min(limit as usize),
                "a claim takes as many as it may: one per object with a due change and nothing running"
            );
            let mut objects_claimed = HashSet::new();
            for row in claimed {
                let change = model
                    .changes
                    .get_mut(&row.id)
                    .expect("a claimed change the model knows");
                assert!(
                    matches!(change.state, "available" | "retryable"),
                    "claimed from {}",
                    change.state
                );
                assert!(
                    objects_claimed.insert(change.object),
                    "two changes of one object in one claim"
                );
                assert!(claimable.contains(&change.object));
                change.state = "running";
                change.attempt += 1;
                change.lease = Some((worker, change.attempt));
                assert_eq!(row.attempt, change.attempt);
            }
        }
        Step::Finish { worker, pick, with } => {
            let held = model.held_by(worker);
            if held.is_empty() {
                return;
            }
            let (id, attempt) = held[pick % held.len()];
            let fenced = queue::finish(pool, WORKERS[worker], id, attempt, &outcome(with))
                .await
                .unwrap();
            assert_eq!(fenced, Fenced::Applied, "the lease holder finishes");
            let change = model.changes.get_mut(&id).unwrap();
            change.lease = None;
            let (state, attempt) = match with {
                FinishWith::Completed => ("completed", attempt),
                FinishWith::Discard => ("discarded", attempt),
                FinishWith::Retry if attempt >= MAX_ATTEMPTS => ("discarded", attempt),
                FinishWith::Retry => ("retryable", attempt),
                FinishWith::Release | FinishWith::Hold if attempt > 1 => ("retryable", attempt - 1),
                FinishWith::Release | FinishWith::Hold => ("available", attempt - 1),
                FinishWith::AwaitApproval => ("awaiting_approval", attempt - 1),
            };
            change.state = state;
            change.attempt = attempt;
        }
        Step::ExpireLeasesAndRescue => {
            sqlx::query("UPDATE ad_changes SET lease_expires_at = now() - interval '1 second' WHERE state = 'running'")
                .execute(pool)
                .await
                .unwrap();
            let rescued = queue::rescue(pool, "model").await.unwrap();
            let mut expected = 0;
            for (id, change) in model.changes.iter_mut() {
                if let Some((worker, attempt)) = change.lease.take() {
                    expected += 1;
                    model.stale.push((worker, *id, attempt));
                    change.state = if attempt >= MAX_ATTEMPTS {
                        "discarded"
                    } else {
                        "retryable"
                    };
                }
            }
            assert_eq!(rescued, expected);
        }
        Step::StaleFinish { pick } => {
            if model.stale.is_empty() {
                return;
            }
            let (worker, id, attempt) = model.stale[pick % model.stale.len()];
            let fenced = queue::finish(pool, WORKERS[worker], id, attempt, &outcome(FinishWith::Completed))
                .await
                .unwrap();
            assert_eq!(
                fenced,
                Fenced::LeaseLost,
                "a worker whose lease was rescued changes nothing"
            );
        }
        Step::Cancel { pick } => {
            let Some((&id, _)) = model.changes.iter().nth(pick % model.changes.len().max(1)) else {
                return;
            };
            let result = queue::cancel(pool, "tenant-a", id, "model").await;
            let change = model.changes.get_mut(&id).unwrap();
            let allowed = matches!(change.state, "available" | "retryable" | "awaiting_approval");
            assert_eq!(result.is_ok(), allowed, "cancel from {}", change.state);
            if allowed {
                change.state = "cancelled";
            }
        }
        Step::Approve { pick } => {
            let Some((&id, _)) = model.changes.iter().nth(pick % model.changes.len().max(1)) else {
                return;
            };
            let result = queue::approve(pool, "tenant-a", id, "model").await;
            let change = model.changes.get_mut(&id).unwrap();
            let allowed = change.state == "awaiting_approval";
            assert_eq!(result.is_ok(), allowed, "approve from {}", change.state);
            if allowed {
                change.state = "available";
            }
        }
    }
}

async fn assert_queue_matches(pool: &PgPool, model: &Model, step: &Step) {
    let rows: Vec<(i64, String, i32)> = sqlx::query_as("SELECT id, state, attempt FROM ad_changes ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    let expected: Vec<(i64, String, i32)> = model
        .changes
        .iter()
        .map(|(id, change)| (*id, change.state.to_owned(), change.attempt))
        .collect();
    assert_eq!(rows, expected, "after {step:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_queue_follows_its_state_machine(steps in prop::collection::vec(step_strategy(), 1..45)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            // A fresh database per case: claims are not scoped to a tenant, so cases must not share one.
            let pool = queue_database().await;
            let mut model = Model::default();
            for step in &steps {
                apply(&pool, &mut model, step).await;
                assert_queue_matches(&pool, &model, step).await;
            }
            pool.close().await;
        });
    }
}
