//! The ad-change queue against a real Postgres: idempotent, coalescing enqueue; exclusive claims; fenced
//! completion when a lease is lost; rescue; dead letters; releases that do not count an attempt.

use std::collections::HashSet;
use std::time::Duration;

use adloop_config::DatabaseSettings;
use adloop_money::{Currency, MinorUnits};
use adloop_test_support::TestDatabase;
use gateway_api::executor::change::{ChangeRequest, ChangeState, NewAdChange, TargetStatus};
use gateway_api::executor::controls;
use gateway_api::executor::queue::{self, AttemptError, Fenced, Outcome};
use gateway_api::executor::retention::{self, PruneReport, RetentionSettings};
use sqlx::PgPool;

const LONG_LEASE: Duration = Duration::from_secs(60);

pub async fn queue_database() -> PgPool {
    let database = TestDatabase::create().await;
    let settings: DatabaseSettings = serde_json::from_value(serde_json::json!({
        "url": database.url,
        "schema": "gateway",
        "max_connections": 20,
        "connect_timeout_seconds": 5,
    }))
    .unwrap();
    adloop_service_kit::postgres::connect_and_migrate(&settings, &gateway_api::startup::MIGRATOR)
        .await
        .unwrap()
}

/// Enqueues `changes` (as the test) and returns their ids, in order.
pub async fn enqueue_ids(pool: &PgPool, changes: &[NewAdChange]) -> Vec<i64> {
    queue::enqueue(pool, changes, "test")
        .await
        .unwrap()
        .iter()
        .map(|enqueued| enqueued.id)
        .collect()
}

/// A relative budget change (`request`) of tenant-a's ad set `object_id`, otherwise as [`budget`].
fn relative_budget(object_id: &str, request: ChangeRequest, key: &str) -> NewAdChange {
    NewAdChange {
        request,
        ..budget(object_id, 0, key)
    }
}

/// A budget change of tenant-a's account act_1, campaign-1, to `amount` cents on ad set `object_id`.
pub fn budget(object_id: &str, amount: i64, key: &str) -> NewAdChange {
    NewAdChange {
        tenant_id: "tenant-a".into(),
        ad_account_id: "act_1".into(),
        campaign_id: Some("campaign-1".into()),
        ad_set_id: Some(object_id.into()),
        ad_id: None,
        object_id: object_id.into(),
        request: ChangeRequest::BudgetSet {
            currency: Currency::parse("USD").unwrap(),
            amount: MinorUnits(amount),
        },
        old_budget: Some(MinorUnits(10_000)),
        old_status: None,
        reason: "test".into(),
        confidence: Some(0.9),
        source: "test".into(),
        idempotency_key: key.into(),
        priority: 0,
        delay_seconds: 0.0,
        max_attempts: 3,
        needs_approval: false,
    }
}

async fn state_of(pool: &PgPool, id: i64) -> ChangeState {
    queue::find(pool, "tenant-a", id)
        .await
        .unwrap()
        .unwrap()
        .state()
        .unwrap()
}

async fn audit_events(pool: &PgPool, id: i64) -> Vec<String> {
    sqlx::query_scalar("SELECT event FROM audit_log WHERE ad_change_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_repeated_idempotency_key_finds_the_first_change_even_when_sent_concurrently() {
    let pool = queue_database().await;
    let first = queue::enqueue(&pool, &[budget("set-1", 12_000, "key-1")], "api")
        .await
        .unwrap();
    let again = queue::enqueue(&pool, &[budget("set-1", 12_000, "key-1")], "api")
        .await
        .unwrap();
    assert!(first[0].created && !again[0].created);
    assert_eq!(first[0].id, again[0].id);

    let mut racers = Vec::new();
    for _ in 0..8 {
        let pool = pool.clone();
        racers.push(tokio::spawn(async move {
            queue::enqueue(&pool, &[budget("set-2", 15_000, "key-2")], "api")
                .await
                .unwrap()[0]
        }));
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    for racer in racers {
        let enqueued = racer.await.unwrap();
        ids.insert(enqueued.id);
        created += usize::from(enqueued.created);
    }
    assert_eq!((ids.len(), created), (1, 1), "one row for one key");
    assert_eq!(audit_events(&pool, first[0].id).await, ["enqueued"]);
}

#[tokio::test]
async fn a_new_absolute_change_supersedes_queued_ones_but_never_a_running_one() {
    let pool = queue_database().await;
    let older = enqueue_ids(&pool, &[budget("set-1", 11_000, "a")]).await[0];
    let newer = enqueue_ids(&pool, &[budget("set-1", 12_000, "b")]).await[0];
    assert_eq!(state_of(&pool, older).await, ChangeState::Cancelled);
    assert_eq!(audit_events(&pool, older).await, ["enqueued", "superseded"]);

    let claimed = queue::claim(&pool, "worker-1", 10, LONG_LEASE).await.unwrap();
    assert_eq!(claimed.iter().map(|row| row.id).collect::<Vec<_>>(), [newer]);
    let newest = enqueue_ids(&pool, &[budget("set-1", 13_000, "c")]).await[0];
    assert_eq!(
        state_of(&pool, newer).await,
        ChangeState::Running,
        "a running change is never superseded"
    );
    // While it runs, the object's next change waits.
    assert!(
        queue::claim(&pool, "worker-2", 10, LONG_LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let completed = Outcome::Completed {
        detail: serde_json::json!({}),
    };
    assert_eq!(
        queue::finish(&pool, "worker-1", newer, 1, &completed).await.unwrap(),
        Fenced::Applied
    );
    let next = queue::claim(&pool, "worker-2", 10, LONG_LEASE).await.unwrap();
    assert_eq!(next.iter().map(|row| row.id).collect::<Vec<_>>(), [newest]);

    // A status change is another field: it does not cancel a budget change.
    let mut pause = budget("set-9", 0, "d");
    pause.request = ChangeRequest::Status {
        status: TargetStatus::Paused,
    };
    let budget_for_nine = enqueue_ids(&pool, &[budget("set-9", 9_000, "e")]).await[0];
    queue::enqueue(&pool, &[pause], "api").await.unwrap();
    assert_eq!(state_of(&pool, budget_for_nine).await, ChangeState::Available);
}

#[tokio::test]
async fn concurrent_claimers_take_each_change_once_and_one_object_at_a_time() {
    let pool = queue_database().await;
    // 600 changes on 200 objects: three per object, from three tenants so none supersedes or folds another.
    let changes: Vec<NewAdChange> = (0..600)
        .map(|index| {
            let mut change = budget(&format!("set-{}", index % 200), 0, &format!("key-{index}"));
            change.tenant_id = format!("tenant-{}", index / 200);
            change.request = ChangeRequest::BudgetIncrease {
                currency: Currency::parse("USD").unwrap(),
                by: MinorUnits(100),
            };
            change
        })
        .collect();
    for chunk in changes.chunks(100) {
        queue::enqueue(&pool, chunk, "api").await.unwrap();
    }
    let mut claimers = Vec::new();
    for worker in 0..8 {
        let pool = pool.clone();
        claimers.push(tokio::spawn(async move {
            let name = format!("worker-{worker}");
            let mut done = Vec::new();
            let mut idle_rounds = 0;
            while idle_rounds < 20 {
                let claimed = queue::claim(&pool, &name, 25, LONG_LEASE).await.unwrap();
                assert!(claimed.len() <= 25);
                let objects: HashSet<&String> = claimed.iter().map(|row| &row.object_id).collect();
                assert_eq!(objects.len(), claimed.len(), "one change per object per claim");
                if claimed.is_empty() {
                    idle_rounds += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                idle_rounds = 0;
                for row in claimed {
                    let outcome = Outcome::Completed {
                        detail: serde_json::json!({}),
                    };
                    assert_eq!(
                        queue::finish(&pool, &name, row.id, row.attempt, &outcome)
                            .await
                            .unwrap(),
                        Fenced::Applied
                    );
                    done.push(row.id);
                }
            }
            done
        }));
    }
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!((all.len(), distinct.len()), (600, 600), "every change once");
}

#[tokio::test]
async fn a_zombie_worker_that_lost_its_lease_changes_nothing_but_its_outcome_is_kept() {
    let pool = queue_database().await;
    let id = enqueue_ids(&pool, &[budget("set-1", 12_000, "k")]).await[0];
    let first = queue::claim(&pool, "worker-a", 1, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(first[0].attempt, 1);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(queue::rescue(&pool, "rescuer").await.unwrap(), 1);
    let row = queue::find(&pool, "tenant-a", id).await.unwrap().unwrap();
    assert!(row.needs_reconcile, "the first attempt's outcome is unknown");
    let second = queue::claim(&pool, "worker-b", 1, LONG_LEASE).await.unwrap();
    assert_eq!(second[0].attempt, 2);

    // worker-a comes back: its heartbeat and its completion update nothing.
    assert!(
        queue::heartbeat(&pool, "worker-a", &[(id, 1)], LONG_LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let late = Outcome::Completed {
        detail: serde_json::json!({"sent": 12_000}),
    };
    assert_eq!(
        queue::finish(&pool, "worker-a", id, 1, &late).await.unwrap(),
        Fenced::LeaseLost
    );
    let row = queue::find(&pool, "tenant-a", id).await.unwrap().unwrap();
    assert_eq!(
        (row.state.as_str(), row.lease_owner.as_deref()),
        ("running", Some("worker-b"))
    );
    assert!(row.errors.to_string().contains("lease_lost_by"), "{}", row.errors);

    assert_eq!(
        queue::heartbeat(&pool, "worker-b", &[(id, 2)], LONG_LEASE)
            .await
            .unwrap(),
        [id]
    );
    let completed = Outcome::Completed {
        detail: serde_json::json!({"sent": 12_000}),
    };
    assert_eq!(
        queue::finish(&pool, "worker-b", id, 2, &completed).await.unwrap(),
        Fenced::Applied
    );
    assert_eq!(state_of(&pool, id).await, ChangeState::Completed);
    assert_eq!(
        audit_events(&pool, id).await,
        ["enqueued", "rescued", "lease_lost", "completed"]
    );
}

#[tokio::test]
async fn rescue_never_undoes_a_completion_and_skips_live_leases() {
    let pool = queue_database().await;
    let ids: Vec<i64> = enqueue_ids(&pool, &[budget("set-1", 1_000, "a"), budget("set-2", 1_000, "b")]).await;
    let claimed = queue::claim(&pool, "worker", 2, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let completed = Outcome::Completed {
        detail: serde_json::json!({}),
    };
    queue::finish(&pool, "worker", ids[0], 1, &completed).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        queue::rescue(&pool, "rescuer").await.unwrap(),
        1,
        "only the expired running change"
    );
    assert_eq!(state_of(&pool, ids[0]).await, ChangeState::Completed);
    assert_eq!(state_of(&pool, ids[1]).await, ChangeState::Retryable);
    let fresh = queue::claim(&pool, "worker", 1, LONG_LEASE).await.unwrap();
    assert_eq!(queue::rescue(&pool, "rescuer").await.unwrap(), 0, "a live lease stays");
    assert_eq!(state_of(&pool, fresh[0].id).await, ChangeState::Running);
}

#[tokio::test]
async fn a_change_that_keeps_failing_ends_as_a_dead_letter_and_backoff_is_honoured() {
    let pool = queue_database().await;
    let id = enqueue_ids(&pool, &[budget("set-1", 12_000, "k")]).await[0];
    let transient = AttemptError {
        code: Some(2),
        subcode: None,
        message: "service unavailable".into(),
    };
    // Attempt 1 fails and waits an hour: nothing is claimable meanwhile.
    let claimed = queue::claim(&pool, "w", 1, LONG_LEASE).await.unwrap();
    let wait_an_hour = Outcome::Retry {
        error: transient.clone(),
        delay: Duration::from_secs(3600),
    };
    queue::finish(&pool, "w", id, claimed[0].attempt, &wait_an_hour)
        .await
        .unwrap();
    assert_eq!(state_of(&pool, id).await, ChangeState::Retryable);
    assert!(
        queue::claim(&pool, "w", 1, LONG_LEASE).await.unwrap().is_empty(),
        "run_at is honoured"
    );
    sqlx::query("UPDATE ad_changes SET run_at = now() WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    // Attempts 2 and 3 fail at once; the third is the last (max_attempts 3).
    for expected_attempt in [2, 3] {
        let claimed = queue::claim(&pool, "w", 1, LONG_LEASE).await.unwrap();
        assert_eq!(claimed[0].attempt, expected_attempt);
        let retry = Outcome::Retry {
            error: transient.clone(),
            delay: Duration::ZERO,
        };
        queue::finish(&pool, "w", id, expected_attempt, &retry).await.unwrap();
    }
    let row = queue::find(&pool, "tenant-a", id).await.unwrap().unwrap();
    assert_eq!(row.state(), Some(ChangeState::Discarded));
    assert_eq!(
        row.errors.as_array().unwrap().len(),
        3,
        "every attempt's error is kept: {}",
        row.errors
    );

    // A change whose worker keeps dying is dead-lettered by the rescuer after its attempts.
    let crashing = enqueue_ids(&pool, &[budget("set-2", 1_000, "crash")]).await[0];
    for _ in 0..3 {
        assert_eq!(
            queue::claim(&pool, "w", 1, Duration::from_millis(20))
                .await
                .unwrap()
                .len(),
            1
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        queue::rescue(&pool, "rescuer").await.unwrap();
    }
    assert_eq!(state_of(&pool, crashing).await, ChangeState::Discarded);
}

#[tokio::test]
async fn a_released_change_goes_back_without_counting_an_attempt_and_approval_waits_are_never_claimed() {
    let pool = queue_database().await;
    let id = enqueue_ids(&pool, &[budget("set-1", 12_000, "k")]).await[0];
    let claimed = queue::claim(&pool, "w", 1, LONG_LEASE).await.unwrap();
    assert_eq!(
        queue::finish(&pool, "w", id, 1, &Outcome::Release).await.unwrap(),
        Fenced::Applied
    );
    let row = queue::find(&pool, "tenant-a", id).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.attempt), ("available", 0));
    assert_eq!(claimed[0].attempt, 1);

    let mut needs_approval = budget("set-2", 50_000, "big");
    needs_approval.needs_approval = true;
    let waiting = enqueue_ids(&pool, &[needs_approval]).await[0];
    let claimed: Vec<i64> = queue::claim(&pool, "w", 10, LONG_LEASE)
        .await
        .unwrap()
        .iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(claimed, [id]);
    assert_eq!(state_of(&pool, waiting).await, ChangeState::AwaitingApproval);
}

#[tokio::test]
async fn a_pause_stops_claims_in_its_scope_only_and_resume_lets_them_through() {
    let pool = queue_database().await;
    let mut other_account = budget("set-2", 11_000, "other-account");
    other_account.ad_account_id = "act_2".into();
    let mut other_tenant = budget("set-3", 11_000, "other-tenant");
    other_tenant.tenant_id = "tenant-b".into();
    let ids: Vec<i64> = enqueue_ids(
        &pool,
        &[budget("set-1", 11_000, "paused-account"), other_account, other_tenant],
    )
    .await;
    let claim_ids = |claimed: Vec<gateway_api::executor::change::AdChangeRow>| -> HashSet<i64> {
        claimed.iter().map(|row| row.id).collect()
    };

    controls::pause(&pool, &controls::PauseScope::Global, "incident", "admin")
        .await
        .unwrap();
    assert!(queue::claim(&pool, "w", 10, LONG_LEASE).await.unwrap().is_empty());
    let status = controls::executor_status(&pool, "tenant-b").await.unwrap();
    assert_eq!(status["paused"], true);
    assert_eq!(status["pauses"][0]["reason"], "incident");
    assert!(
        controls::resume(&pool, &controls::PauseScope::Global, "admin")
            .await
            .unwrap()
    );
    assert!(
        !controls::resume(&pool, &controls::PauseScope::Global, "admin")
            .await
            .unwrap(),
        "nothing left to resume"
    );

    let account = controls::PauseScope::Account {
        tenant_id: "tenant-a".into(),
        ad_account_id: "act_1".into(),
    };
    controls::pause(&pool, &account, "", "api:tenant-a").await.unwrap();
    controls::pause(
        &pool,
        &controls::PauseScope::Tenant("tenant-b".into()),
        "",
        "api:tenant-b",
    )
    .await
    .unwrap();
    assert_eq!(
        claim_ids(queue::claim(&pool, "w", 10, LONG_LEASE).await.unwrap()),
        HashSet::from([ids[1]]),
        "only the unpaused account of tenant-a"
    );
    assert_eq!(
        controls::executor_status(&pool, "tenant-b").await.unwrap()["pauses"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "a tenant sees its own pauses, not another tenant's"
    );
    controls::resume(&pool, &account, "api:tenant-a").await.unwrap();
    controls::resume(&pool, &controls::PauseScope::Tenant("tenant-b".into()), "api:tenant-b")
        .await
        .unwrap();
    assert_eq!(
        claim_ids(queue::claim(&pool, "w", 10, LONG_LEASE).await.unwrap()),
        HashSet::from([ids[0], ids[2]])
    );
}

#[tokio::test]
async fn a_lease_keeper_keeps_a_slow_rounds_leases_and_notices_one_it_lost() {
    use gateway_api::executor::lease_keeper::LeaseKeeper;
    let pool = queue_database().await;
    let ids: Vec<i64> = enqueue_ids(
        &pool,
        &[budget("set-1", 11_000, "kept"), budget("set-2", 11_000, "lost")],
    )
    .await;
    let lease = Duration::from_secs(2);
    let claimed = queue::claim(&pool, "slow-worker", 10, lease).await.unwrap();
    let keeper = LeaseKeeper::start(
        pool.clone(),
        "slow-worker".into(),
        claimed.iter().map(|row| (row.id, row.attempt)).collect(),
        lease,
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        queue::rescue(&pool, "rescuer").await.unwrap(),
        0,
        "both leases were extended"
    );

    // The second change is taken from under the worker (as after a long stall); the keeper notices.
    sqlx::query("UPDATE ad_changes SET lease_owner = 'another-worker' WHERE id = $1")
        .bind(ids[1])
        .execute(&pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(keeper.has_lost(ids[1]));
    assert!(!keeper.has_lost(ids[0]));
    drop(keeper);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        queue::rescue(&pool, "rescuer").await.unwrap(),
        2,
        "once the round is over its leases lapse"
    );
}

#[tokio::test]
async fn a_claim_takes_one_ad_set_per_campaign_before_a_second_of_any() {
    let pool = queue_database().await;
    // Four ad sets of campaign-1 queued first, then one each of campaign-2 and campaign-3.
    let mut changes: Vec<NewAdChange> = (1..=4)
        .map(|number| budget(&format!("set-{number}"), 11_000, &format!("k{number}")))
        .collect();
    for campaign in [2, 3] {
        let mut change = budget(&format!("set-c{campaign}"), 11_000, &format!("kc{campaign}"));
        change.campaign_id = Some(format!("campaign-{campaign}"));
        changes.push(change);
    }
    enqueue_ids(&pool, &changes).await;

    let claimed = queue::claim(&pool, "w", 3, LONG_LEASE).await.unwrap();
    let mut campaigns: Vec<String> = claimed
        .iter()
        .map(|change| change.campaign_id.clone().unwrap())
        .collect();
    campaigns.sort();
    // Meta takes one ad set per campaign per batch: three from campaign-1 would need three requests.
    assert_eq!(campaigns, ["campaign-1", "campaign-2", "campaign-3"]);
    assert_eq!(
        claimed
            .iter()
            .find(|change| change.campaign_id.as_deref() == Some("campaign-1"))
            .unwrap()
            .object_id,
        "set-1"
    );
}

#[tokio::test]
async fn a_campaign_queued_later_takes_turns_from_the_current_round_instead_of_jumping_the_queue() {
    let pool = queue_database().await;
    // campaign-1 queues four ad sets; the first two are applied.
    let campaign_one: Vec<NewAdChange> = (1..=4)
        .map(|number| budget(&format!("set-{number}"), 11_000, &format!("k{number}")))
        .collect();
    enqueue_ids(&pool, &campaign_one).await;
    let done = Outcome::Completed {
        detail: serde_json::json!({}),
    };
    for expected in ["set-1", "set-2"] {
        let claimed = queue::claim(&pool, "w", 1, LONG_LEASE).await.unwrap();
        assert_eq!(claimed[0].object_id, expected);
        queue::finish(&pool, "w", claimed[0].id, claimed[0].attempt, &done)
            .await
            .unwrap();
    }

    // Then campaign-2 queues three.
    let campaign_two: Vec<NewAdChange> = ["a", "b", "c"]
        .iter()
        .map(|letter| {
            let mut change = budget(&format!("set-c2{letter}"), 11_000, &format!("kc2{letter}"));
            change.campaign_id = Some("campaign-2".into());
            change
        })
        .collect();
    enqueue_ids(&pool, &campaign_two).await;

    let claimed = queue::claim(&pool, "w", 4, LONG_LEASE).await.unwrap();
    let mut objects: Vec<&str> = claimed.iter().map(|change| change.object_id.as_str()).collect();
    objects.sort();
    // The campaigns alternate from here: campaign-2's backlog does not go first as a block.
    assert_eq!(objects, ["set-3", "set-4", "set-c2a", "set-c2b"]);
}

#[tokio::test]
async fn a_campaign_whose_only_change_is_running_queues_its_next_in_the_current_round() {
    let pool = queue_database().await;
    // campaign-1 queues one ad set, campaign-2 three; the first claim takes campaign-1's.
    let mut changes = vec![budget("set-1", 11_000, "k1")];
    for letter in ["a", "b", "c"] {
        let mut change = budget(&format!("set-c2{letter}"), 11_000, &format!("kc2{letter}"));
        change.campaign_id = Some("campaign-2".into());
        changes.push(change);
    }
    enqueue_ids(&pool, &changes).await;
    let running = queue::claim(&pool, "w", 1, LONG_LEASE).await.unwrap();
    assert_eq!(running[0].object_id, "set-1");

    // While it runs, campaign-1 queues another: it has nothing queued, so it takes its turn now rather
    // than a round behind campaign-2's backlog.
    enqueue_ids(&pool, &[budget("set-2", 11_000, "k2")]).await;
    let claimed = queue::claim(&pool, "w", 2, LONG_LEASE).await.unwrap();
    let mut objects: Vec<&str> = claimed.iter().map(|change| change.object_id.as_str()).collect();
    objects.sort();
    assert_eq!(objects, ["set-2", "set-c2a"]);
}

#[tokio::test]
async fn a_bulk_requests_changes_are_numbered_in_its_order_whatever_their_keys() {
    let pool = queue_database().await;
    // Keys in reverse alphabetical order, the same object's budget twice: the later change must get the
    // higher id (ids order changes: the later absolute change supersedes the earlier).
    let ids = enqueue_ids(
        &pool,
        &[
            budget("set-1", 11_000, "key-z"),
            budget("set-2", 12_000, "key-y"),
            budget("set-1", 13_000, "key-x"),
        ],
    )
    .await;
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "ids {ids:?}");
    let (state,): (String,) = sqlx::query_as("SELECT state FROM ad_changes WHERE id = $1")
        .bind(ids[0])
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(state, "cancelled", "set-1's later change supersedes its first");
}

#[tokio::test]
async fn one_bulk_request_keeps_its_order_repeats_and_supersedes_like_separate_ones() {
    let pool = queue_database().await;
    let known = enqueue_ids(&pool, &[budget("set-0", 10_500, "known")]).await[0];
    let mut relative = budget("set-1", 500, "relative-first");
    relative.request = ChangeRequest::BudgetIncrease {
        currency: Currency::parse("USD").unwrap(),
        by: MinorUnits(500),
    };
    let enqueued = queue::enqueue(
        &pool,
        &[
            relative,
            budget("set-1", 11_000, "absolute-second"),
            budget("set-2", 12_000, "repeated"),
            budget("set-2", 12_000, "repeated"),
            budget("set-0", 10_500, "known"),
            budget("set-1", 11_500, "absolute-last"),
        ],
        "api",
    )
    .await
    .unwrap();
    let created: Vec<bool> = enqueued.iter().map(|change| change.created).collect();
    assert_eq!(created, [true, true, true, false, false, true]);
    assert_eq!(
        enqueued[3].id, enqueued[2].id,
        "a key repeated in the request finds its first change"
    );
    assert_eq!(enqueued[4].id, known, "a key seen before finds its change");
    let created_ids: Vec<i64> = enqueued
        .iter()
        .filter(|change| change.created)
        .map(|change| change.id)
        .collect();
    assert!(
        created_ids.is_sorted(),
        "ids follow the request's order: {created_ids:?}"
    );
    // The last absolute budget of set-1 supersedes both earlier budget changes of set-1 in the request.
    for superseded in [enqueued[0].id, enqueued[1].id] {
        assert_eq!(state_of(&pool, superseded).await, ChangeState::Cancelled);
        assert_eq!(audit_events(&pool, superseded).await, ["enqueued", "superseded"]);
    }
    assert_eq!(state_of(&pool, enqueued[5].id).await, ChangeState::Available);
    assert_eq!(state_of(&pool, enqueued[2].id).await, ChangeState::Available);
    assert_eq!(audit_events(&pool, known).await, ["enqueued"]);
}

#[tokio::test]
async fn a_relative_budget_change_folds_the_objects_queued_budget_changes_into_one_write() {
    let pool = queue_database().await;
    let usd = Currency::parse("USD").unwrap();
    let raise = enqueue_ids(
        &pool,
        &[relative_budget(
            "set-1",
            ChangeRequest::BudgetIncrease {
                currency: usd,
                by: MinorUnits(500),
            },
            "raise",
        )],
    )
    .await[0];
    let trim = enqueue_ids(
        &pool,
        &[relative_budget(
            "set-1",
            ChangeRequest::BudgetDecrease {
                currency: usd,
                by: MinorUnits(200),
            },
            "trim",
        )],
    )
    .await[0];
    assert_eq!(state_of(&pool, raise).await, ChangeState::Cancelled);
    assert_eq!(audit_events(&pool, raise).await, ["enqueued", "superseded"]);
    let folded = queue::find(&pool, "tenant-a", trim).await.unwrap().unwrap();
    assert_eq!(
        (folded.kind.as_str(), folded.requested_budget_minor),
        ("budget_increase", Some(300))
    );
    assert_eq!(audit_events(&pool, trim).await, ["enqueued", "coalesced"]);

    // After a queued absolute budget, a relative change becomes that budget moved by it.
    enqueue_ids(&pool, &[budget("set-2", 10_000, "set-two")]).await;
    let more = enqueue_ids(
        &pool,
        &[relative_budget(
            "set-2",
            ChangeRequest::BudgetIncrease {
                currency: usd,
                by: MinorUnits(700),
            },
            "more",
        )],
    )
    .await[0];
    let folded = queue::find(&pool, "tenant-a", more).await.unwrap().unwrap();
    assert_eq!(
        (folded.kind.as_str(), folded.requested_budget_minor),
        ("budget_set", Some(10_700))
    );

    // A running change is never folded: the next relative change stays on its own.
    let claimed = queue::claim(&pool, "w", 10, LONG_LEASE).await.unwrap();
    assert!(claimed.iter().any(|change| change.id == trim));
    let after_running = enqueue_ids(
        &pool,
        &[relative_budget(
            "set-1",
            ChangeRequest::BudgetIncrease {
                currency: usd,
                by: MinorUnits(100),
            },
            "later",
        )],
    )
    .await[0];
    let alone = queue::find(&pool, "tenant-a", after_running).await.unwrap().unwrap();
    assert_eq!(
        (alone.kind.as_str(), alone.requested_budget_minor),
        ("budget_increase", Some(100))
    );
    assert_eq!(state_of(&pool, trim).await, ChangeState::Running);
}

#[tokio::test]
async fn relative_budget_changes_of_one_request_fold_in_the_requests_order() {
    let pool = queue_database().await;
    let usd = Currency::parse("USD").unwrap();
    let queued_before = enqueue_ids(&pool, &[budget("set-1", 10_000, "base")]).await[0];
    let request = [
        relative_budget(
            "set-1",
            ChangeRequest::BudgetIncrease {
                currency: usd,
                by: MinorUnits(400),
            },
            "raise",
        ),
        relative_budget(
            "set-2",
            ChangeRequest::BudgetIncrease {
                currency: usd,
                by: MinorUnits(50),
            },
            "other-object",
        ),
        relative_budget(
            "set-1",
            ChangeRequest::BudgetDecrease {
                currency: usd,
                by: MinorUnits(100),
            },
            "trim",
        ),
    ];
    let [raise, other_object, trim] = enqueue_ids(&pool, &request).await[..] else {
        panic!("three changes enqueued");
    };
    for folded in [queued_before, raise] {
        assert_eq!(state_of(&pool, folded).await, ChangeState::Cancelled);
    }
    assert_eq!(audit_events(&pool, queued_before).await, ["enqueued", "superseded"]);
    assert_eq!(
        audit_events(&pool, raise).await,
        ["enqueued", "coalesced", "superseded"],
        "the raise folded the queued budget, then the trim folded the raise"
    );
    let last = queue::find(&pool, "tenant-a", trim).await.unwrap().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.requested_budget_minor),
        ("budget_set", Some(10_300)),
        "one write carries the queued budget, the raise and the trim"
    );
    assert_eq!(audit_events(&pool, trim).await, ["enqueued", "coalesced"]);
    let untouched = queue::find(&pool, "tenant-a", other_object).await.unwrap().unwrap();
    assert_eq!(
        (untouched.kind.as_str(), untouched.requested_budget_minor),
        ("budget_increase", Some(50))
    );
    assert_eq!(state_of(&pool, other_object).await, ChangeState::Available);
}

#[tokio::test]
async fn queue_depth_counts_open_changes_by_state_and_ages_the_oldest_due_one() {
    let pool = queue_database().await;
    let empty = queue::queue_depth(&pool).await.unwrap();
    assert!(
        empty.open_by_state.iter().all(|(_, changes)| *changes == 0),
        "{empty:?}"
    );
    assert_eq!(empty.oldest_due_seconds, 0.0);

    enqueue_ids(
        &pool,
        &[
            budget("set-1", 1_000, "a"),
            budget("set-2", 1_000, "b"),
            budget("set-3", 1_000, "c"),
            budget("set-4", 1_000, "d"),
        ],
    )
    .await;
    let finished = queue::claim(&pool, "worker", 1, LONG_LEASE).await.unwrap();
    let completed = Outcome::Completed {
        detail: serde_json::json!({}),
    };
    queue::finish(&pool, "worker", finished[0].id, 1, &completed)
        .await
        .unwrap();
    queue::claim(&pool, "worker", 1, LONG_LEASE).await.unwrap();
    sqlx::query("UPDATE ad_changes SET run_at = now() - interval '90 seconds' WHERE state = 'available'")
        .execute(&pool)
        .await
        .unwrap();

    let depth = queue::queue_depth(&pool).await.unwrap();
    let count = |state: &str| depth.open_by_state.iter().find(|(name, _)| *name == state).unwrap().1;
    assert_eq!(count("available"), 2, "the completed change is not open: {depth:?}");
    assert_eq!(count("running"), 1, "{depth:?}");
    assert_eq!(count("retryable"), 0, "{depth:?}");
    assert!(depth.oldest_due_seconds >= 90.0, "{depth:?}");
}

#[tokio::test]
async fn retention_prunes_each_kind_of_row_past_its_own_age_and_nothing_else() {
    let pool = queue_database().await;
    let ids = enqueue_ids(
        &pool,
        &[
            budget("set-old", 1_000, "old"),
            budget("set-recent", 1_000, "recent"),
            budget("set-dead", 1_000, "dead"),
            budget("set-queued", 1_000, "queued"),
        ],
    )
    .await;
    let claimed = queue::claim(&pool, "worker", 3, LONG_LEASE).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let completed = Outcome::Completed {
        detail: serde_json::json!({}),
    };
    let refused = Outcome::Discard {
        error: AttemptError {
            code: Some(100),
            subcode: None,
            message: "invalid parameter".into(),
        },
    };
    for change in &claimed {
        let outcome = if change.id == ids[2] { &refused } else { &completed };
        queue::finish(&pool, "worker", change.id, change.attempt, outcome)
            .await
            .unwrap();
    }
    let age = |table: &str, column: &str, days: i32, id_column: &str, id: i64| {
        let statement =
            format!("UPDATE {table} SET {column} = now() - make_interval(days => $1) WHERE {id_column} = $2");
        let pool = pool.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .bind(days)
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // Completed 40 days ago (past the 30 kept), 10 days ago (kept); a dead letter of 40 days (90 kept); a
    // change still queued since 100 days ago (never pruned: it has not finished).
    age("ad_changes", "finalized_at", 40, "id", ids[0]).await;
    age("ad_changes", "finalized_at", 10, "id", ids[1]).await;
    age("ad_changes", "finalized_at", 40, "id", ids[2]).await;
    age("ad_changes", "created_at", 100, "id", ids[3]).await;
    // The old change's key is 8 days old (7 kept), the recent one's 3; the old change's audit entries 500
    // days (400 kept).
    age("ad_change_idempotency_keys", "created_at", 8, "ad_change_id", ids[0]).await;
    age("ad_change_idempotency_keys", "created_at", 3, "ad_change_id", ids[1]).await;
    age("audit_log", "at", 500, "ad_change_id", ids[0]).await;
    let old_audit_entries: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE ad_change_id = $1")
        .bind(ids[0])
        .fetch_one(&pool)
        .await
        .unwrap();

    // Autopilot cycles: one finished 100 days ago (90 kept), one 10 days ago, one still running since 100.
    for (slot, state, finished_days_ago) in [
        (1_i64, "completed", Some(100)),
        (2, "failed", Some(10)),
        (3, "running", None),
    ] {
        sqlx::query(
            "INSERT INTO autopilot_runs (tenant_id, ad_account_id, cycle_slot, mode, state, runner, lease_expires_at, \
                 clock_unix, started_at, finished_at) \
             VALUES ('tenant-a', 'act_1', $1, 'live', $2, 'runner', now(), 0, now() - interval '100 days', \
                 now() - make_interval(days => $3))",
        )
        .bind(slot)
        .bind(state)
        .bind(finished_days_ago)
        .execute(&pool)
        .await
        .unwrap();
    }

    let settings = RetentionSettings {
        batch_rows: 1,
        ..RetentionSettings::default()
    };
    let report = retention::prune_once(&pool, &settings).await.unwrap();
    assert_eq!(
        report,
        PruneReport {
            changes: 1,
            audit_entries: old_audit_entries as u64,
            idempotency_keys: 1,
            autopilot_runs: 1,
        }
    );
    let cycles_left: Vec<i64> = sqlx::query_scalar("SELECT cycle_slot FROM autopilot_runs ORDER BY cycle_slot")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(cycles_left, [2, 3], "the recent and the running cycles stay");
    let changes_left: Vec<i64> = sqlx::query_scalar("SELECT id FROM ad_changes ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(changes_left, ids[1..].to_vec());
    let keys_left: Vec<String> =
        sqlx::query_scalar("SELECT idempotency_key FROM ad_change_idempotency_keys ORDER BY idempotency_key")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(keys_left, ["dead", "queued", "recent"]);
    let audit_left: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE ad_change_id = $1")
        .bind(ids[1])
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(audit_left >= 2, "the recent change keeps its trail");
    assert_eq!(
        retention::prune_once(&pool, &settings).await.unwrap(),
        PruneReport::default(),
        "a second pass finds nothing"
    );
}
