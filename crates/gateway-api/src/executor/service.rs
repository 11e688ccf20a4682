//! The executor running inside the gateway: `executor.workers` worker tasks, each running rounds while
//! changes are due and otherwise sleeping until a wake-up (`LISTEN adloop_ad_changes`, relayed by one
//! listener task) or the poll interval; one housekeeping task that rescues expired leases on its own
//! interval, analyses the queue table when it grew (`table_statistics`) and prunes rows past their
//! retention (`retention`). Several workers let one round wait for Postgres while another waits for the
//! Graph API. On stop every worker finishes the round in hand (every claimed change gets an outcome) and
//! exits.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::metrics::ExecutorMetrics;
use super::queue::{self, WAKE_UP_CHANNEL};
use super::retention::{self, RetentionSettings};
use super::table_statistics;
use super::worker::Executor;

/// How often housekeeping asks whether the queue table needs fresh planner statistics (a cheap catalog
/// read).
const STATISTICS_CHECK_INTERVAL: Duration = Duration::from_secs(2);

pub fn spawn_executor(executor: Executor, pool: PgPool, stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Each notification bumps the counter; a worker that saw no change since its last round sleeps.
        let (wake_sender, wake_receiver) = watch::channel(0_u64);
        let listener = tokio::spawn(relay_wake_ups(pool.clone(), wake_sender, stop.clone()));
        let housekeeping = tokio::spawn(keep_house(
            pool,
            executor.metrics().clone(),
            Duration::from_secs(executor.settings().rescue_interval_seconds),
            executor.settings().retention.clone(),
            stop.clone(),
        ));
        let workers: Vec<JoinHandle<()>> = (0..executor.settings().workers.max(1))
            .map(|index| tokio::spawn(run_worker(executor.worker(index), wake_receiver.clone(), stop.clone())))
            .collect();
        for worker in workers {
            let _ = worker.await;
        }
        listener.abort();
        let _ = housekeeping.await;
        tracing::info!("executor stopped");
    })
}

/// Runs rounds while they claim something; otherwise waits for a wake-up, the poll interval or the stop.
async fn run_worker(executor: Executor, mut wake_up: watch::Receiver<u64>, mut stop: watch::Receiver<bool>) {
    let poll_interval = Duration::from_millis(executor.settings().poll_interval_milliseconds);
    loop {
        if *stop.borrow() {
            break;
        }
        // Marks what this round has seen: a notification during the round makes the wait below return.
        wake_up.borrow_and_update();
        match executor.run_once().await {
            Ok(round) if round.claimed > 0 => {
                tracing::info!(
                    worker = executor.worker_name(),
                    claimed = round.claimed,
                    completed = round.completed,
                    retried = round.retried,
                    discarded = round.discarded,
                    held = round.held,
                    awaiting_approval = round.awaiting_approval,
                    leases_lost = round.leases_lost,
                    "executor round"
                );
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(worker = executor.worker_name(), %error, "executor round failed"),
        }
        tokio::select! {
            _ = wake_up.changed() => {}
            () = tokio::time::sleep(poll_interval) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Relays `NOTIFY adloop_ad_changes` to the workers; without a listener they poll.
async fn relay_wake_ups(pool: PgPool, wake_up: watch::Sender<u64>, mut stop: watch::Receiver<bool>) {
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "executor: no LISTEN connection; polling only");
            return;
        }
    };
    if let Err(error) = listener.listen(WAKE_UP_CHANNEL).await {
        tracing::warn!(%error, "executor: no LISTEN; polling only");
        return;
    }
    loop {
        tokio::select! {
            notification = listener.recv() => {
                // Either way the workers look: a lost connection may have swallowed a notification.
                wake_up.send_modify(|count| *count = count.wrapping_add(1));
                if let Err(error) = notification {
                    tracing::warn!(%error, "executor: LISTEN connection lost; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Rescues expired leases and measures the queue's depth on one interval, refreshes the queue's planner
/// statistics on another, and prunes on a third (the first pass at start).
async fn keep_house(
    pool: PgPool,
    metrics: ExecutorMetrics,
    rescue_interval: Duration,
    retention: RetentionSettings,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_rescue: Option<tokio::time::Instant> = None;
    let mut last_prune: Option<tokio::time::Instant> = None;
    let prune_interval = Duration::from_secs(retention.prune_interval_seconds);
    loop {
        if last_prune.is_none_or(|pruned_at| pruned_at.elapsed() >= prune_interval) {
            match retention::prune_once(&pool, &retention).await {
                Ok(report) => {
                    metrics.count_pruned(&report);
                    if report.total() > 0 {
                        tracing::info!(
                            changes = report.changes,
                            audit_entries = report.audit_entries,
                            idempotency_keys = report.idempotency_keys,
                            "executor: pruned rows past their retention"
                        );
                    }
                }
                Err(error) => tracing::warn!(%error, "executor: pruning failed"),
            }
            last_prune = Some(tokio::time::Instant::now());
        }
        match table_statistics::analyze_queue_if_stale(&pool).await {
            Ok(true) => tracing::info!("executor: analysed the queue table (it grew since its statistics)"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "executor: could not check the queue's statistics"),
        }
        if last_rescue.is_none_or(|rescued_at| rescued_at.elapsed() >= rescue_interval) {
            // The first pass only measures: a lease can have expired only after the process's first rescue
            // interval.
            if last_rescue.is_some() {
                match queue::rescue(&pool, "executor-rescuer").await {
                    Ok(0) => {}
                    Ok(rescued) => tracing::info!(rescued, "executor: returned expired leases to the queue"),
                    Err(error) => tracing::warn!(%error, "executor: rescue failed"),
                }
            }
            match queue::queue_depth(&pool).await {
                Ok(depth) => metrics.set_queue_depth(&depth),
                Err(error) => tracing::warn!(%error, "executor: could not measure the queue"),
            }
            last_rescue = Some(tokio::time::Instant::now());
        }
        tokio::select! {
            () = tokio::time::sleep(STATISTICS_CHECK_INTERVAL.min(rescue_interval)) => {}
            _ = stop.changed() => return,
        }
    }
}
