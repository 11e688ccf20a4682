//! The executor running inside the gateway: one worker task that runs rounds while changes are due, sleeps
//! until a notification (`LISTEN adloop_ad_changes`) or the poll interval, rescues expired leases on its
//! own interval, and analyses the queue table when it grew (`table_statistics`). On stop it finishes the
//! round in hand (every claimed change gets an outcome) and exits.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::queue::{self, WAKE_UP_CHANNEL};
use super::table_statistics;
use super::worker::Executor;

/// How often the worker asks whether the queue table needs fresh planner statistics (a cheap catalog read).
const STATISTICS_CHECK_INTERVAL: Duration = Duration::from_secs(2);

pub fn spawn_executor(executor: Executor, pool: PgPool, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let poll_interval = Duration::from_millis(executor_poll_interval(&executor));
        let rescue_interval = Duration::from_secs(executor_rescue_interval(&executor));
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(WAKE_UP_CHANNEL).await {
                Ok(()) => Some(listener),
                Err(error) => {
                    tracing::warn!(%error, "executor: no LISTEN; polling only");
                    None
                }
            },
            Err(error) => {
                tracing::warn!(%error, "executor: no LISTEN connection; polling only");
                None
            }
        };
        let mut last_rescue = tokio::time::Instant::now();
        let mut last_statistics_check = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            if last_statistics_check.elapsed() >= STATISTICS_CHECK_INTERVAL {
                match table_statistics::analyze_queue_if_stale(&pool).await {
                    Ok(true) => tracing::info!("executor: analysed the queue table (it grew since its statistics)"),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "executor: could not check the queue's statistics"),
                }
                last_statistics_check = tokio::time::Instant::now();
            }
            if last_rescue.elapsed() >= rescue_interval {
                match queue::rescue(&pool, "executor-rescuer").await {
                    Ok(0) => {}
                    Ok(rescued) => tracing::info!(rescued, "executor: returned expired leases to the queue"),
                    Err(error) => tracing::warn!(%error, "executor: rescue failed"),
                }
                last_rescue = tokio::time::Instant::now();
            }
            match executor.run_once().await {
                Ok(round) if round.claimed > 0 => {
                    tracing::info!(
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
                Err(error) => tracing::warn!(%error, "executor round failed"),
            }
            let wake_up = async {
                match listener.as_mut() {
                    Some(listener) => {
                        let _ = listener.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wake_up => {}
                () = tokio::time::sleep(poll_interval) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!("executor stopped");
    })
}

fn executor_poll_interval(executor: &Executor) -> u64 {
    executor.settings().poll_interval_milliseconds
}

fn executor_rescue_interval(executor: &Executor) -> u64 {
    executor.settings().rescue_interval_seconds
}
