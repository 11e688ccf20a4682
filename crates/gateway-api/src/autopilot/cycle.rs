//! One cycle of one account: read it, allocate, plan, enqueue (or only record, in dry-run), and say what
//! happened in the run's outcome. A cycle never fails silently: every error ends in the run row.

use std::time::Duration;

use adloop_allocator::{
    ReportingDelay, estimate_delivery_curves, estimate_weekday_ctr_multipliers, weekday_multiplier_is_worth_saying,
};
use adloop_learner::DeliveryFeed;
use adloop_money::MinorUnits;
use adloop_proto::ml::v1 as proto;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::account_reader::{AccountReadError, DailyDeliveryByAd, DeliveryWindows, read_account};
use super::account_settings::{self, AutopilotMode};
use super::cycle_memory::{self, CycleMemory};
use super::learning_feed;
use super::plan::{self, AllocatedAd, AllocationTerms};
use super::reporting_delays;
use super::runs::{self, ClaimedRun, RunOutcome};
use super::settings::AutopilotSettings;
use crate::executor::graph_client::GraphClient;
use crate::executor::guardrail_overrides::{resolve, stored_layers};
use crate::executor::guardrails::GuardrailSettings;
use crate::executor::queue::{self, QueueError};
use crate::ml_client::MlServiceConnection;

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("the account's autopilot is no longer enabled")]
    Disabled,
    #[error("reading the account: {0}")]
    Account(#[from] AccountReadError),
    #[error("ml-service: {0}")]
    Allocation(String),
    #[error("ml-service's learner: {0}")]
    Learning(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("enqueueing the changes: {0}")]
    Queue(#[from] QueueError),
}

/// What a cycle needs, shared by every cycle of this gateway.
#[derive(Clone)]
pub struct CycleContext {
    pub pool: PgPool,
    pub graph: GraphClient,
    pub ml_service: MlServiceConnection,
    pub guardrail_defaults: GuardrailSettings,
    pub settings: AutopilotSettings,
}

/// Runs one claimed cycle to its outcome (an error is an outcome too).
pub async fn run_cycle(context: &CycleContext, run: &ClaimedRun) -> RunOutcome {
    let mut outcome = RunOutcome::default();
    if let Err(error) = run_cycle_steps(context, run, &mut outcome).await {
        outcome.error = Some(error.to_string());
    }
    outcome
}

async fn run_cycle_steps(context: &CycleContext, run: &ClaimedRun, outcome: &mut RunOutcome) -> Result<(), CycleError> {
    let account = account_settings::find(&context.pool, &run.tenant_id, &run.ad_account_id)
        .await?
        .filter(|account| account.enabled)
        .ok_or(CycleError::Disabled)?;
    let windows = DeliveryWindows {
        recent_days: context.settings.recent_window_days,
        settled_days: (context.settings.settled_window_days > 0).then_some(context.settings.settled_window_days),
        daily_delivery_days: reads_daily_delivery(&context.settings).then_some(context.settings.delivery_curve.days),
    };
    // Each ad's days as an earlier cycle read them: reused while no new day has finished.
    let known_days = if reads_daily_delivery(&context.settings) {
        cycle_memory::load::<DailyDeliveryByAd>(
            &context.pool,
            CycleMemory::DeliveryDays,
            &run.tenant_id,
            &run.ad_account_id,
        )
        .await?
        .map(|(_, days)| days)
    } else {
        None
    };
    let snapshot = read_account(
        &context.graph,
        &run.ad_account_id,
        windows,
        run.clock_unix,
        context.settings.max_ads_per_account,
        known_days,
    )
    .await?;
    if let Some(days) = &snapshot.daily_delivery_read {
        cycle_memory::store(
            &context.pool,
            CycleMemory::DeliveryDays,
            &run.tenant_id,
            &run.ad_account_id,
            run.cycle_slot,
            days,
        )
        .await?;
    }
    outcome.ads_read = i32::try_from(snapshot.ads.len()).unwrap_or(i32::MAX);
    let current_total = plan::current_total(&snapshot);
    let total = match account.total_daily_budget {
        Some(total) => MinorUnits(total),
        None => runs::last_total(&context.pool, &run.tenant_id, &run.ad_account_id)
            .await?
            .map_or(current_total, MinorUnits),
    };
    let reporting_delay = if context.settings.estimate_reporting_delays {
        reporting_delays::account_schedule(
            &context.pool,
            &run.tenant_id,
            &run.ad_account_id,
            run.cycle_slot,
            run.clock_unix,
            &snapshot,
            &context.settings,
        )
        .await?
    } else {
        context.settings.reporting_delay_prior.clone()
    };
    // Before allocating, so the allocation's priors already know what the account delivered since.
    let learning_started = std::time::Instant::now();
    let learning_events_sent = if context.settings.learn_from_delivery {
        teach_the_learner(context, run, &snapshot, &reporting_delay).await?
    } else {
        0
    };
    let learned_in_ms = learning_started.elapsed().as_secs_f64() * 1000.0;
    if plan::allocatable_ads(&snapshot).is_empty() || total.get() == 0 {
        outcome.summary = json!({
            "note": "no active ad with a daily budget: nothing to allocate",
            "currency": snapshot.currency.code(),
        });
        return Ok(());
    }
    let layers = stored_layers(&context.pool, std::slice::from_ref(&run.tenant_id)).await?;
    let guardrails = resolve(&context.guardrail_defaults, &layers, &run.tenant_id, &run.ad_account_id);
    let terms = AllocationTerms {
        total_daily_budget: total,
        max_change_fraction: guardrails.max_change_fraction_per_step,
        seed: u64::try_from(run.cycle_slot).unwrap_or(1),
    };
    let mut request = plan::allocation_request(&run.ad_account_id, &snapshot, run.clock_unix, terms);
    let daily_estimates = add_daily_estimates(&mut request, &snapshot, run.clock_unix, &context.settings).await;
    if context.settings.estimate_reporting_delays {
        request
            .reporting_delays
            .insert(run.ad_account_id.clone(), reporting_delay.clone());
    }
    let allocation_started = std::time::Instant::now();
    let response = context
        .ml_service
        .client()
        .allocate(proto::AllocateRequest::from(&request))
        .await
        .map_err(|status| CycleError::Allocation(format!("{:?}: {}", status.code(), status.message())))?
        .into_inner();
    let allocated_in_ms = allocation_started.elapsed().as_secs_f64() * 1000.0;
    outcome.model_version = Some(response.model_version.clone());
    let allocated: Vec<AllocatedAd> = response
        .recommendations
        .iter()
        .map(|recommendation| AllocatedAd {
            ad_id: recommendation
                .ids
                .as_ref()
                .map(|ids| ids.ad_id.clone())
                .unwrap_or_default(),
            recommended_daily_budget: MinorUnits(
                recommendation
                    .recommended_daily_budget
                    .as_ref()
                    .map_or(0, |money| money.minor_units),
            ),
            probability_best: recommendation.probability_best,
            is_kill: recommendation.decision == proto::Decision::Kill as i32,
            reason: recommendation.reason.clone(),
        })
        .collect();
    let planned = plan::plan_changes(&snapshot, &allocated);
    outcome.changes_planned = i32::try_from(planned.len()).unwrap_or(i32::MAX);
    let mode = AutopilotMode::parse(&run.mode).unwrap_or(AutopilotMode::DryRun);
    let mut change_ids: Vec<Option<i64>> = vec![None; planned.len()];
    if mode != AutopilotMode::DryRun {
        let rows = plan::queue_rows(
            &run.tenant_id,
            &run.ad_account_id,
            run.cycle_slot,
            snapshot.currency,
            mode,
            &planned,
        );
        let enqueued = queue::enqueue(&context.pool, &rows, &format!("autopilot run {}", run.id)).await?;
        outcome.changes_enqueued = i32::try_from(enqueued.iter().filter(|change| change.created).count()).unwrap_or(0);
        change_ids = enqueued.iter().map(|change| Some(change.id)).collect();
    }
    let changes: Vec<Value> = planned
        .iter()
        .zip(&change_ids)
        .map(|(change, id)| {
            let mut entry = json!(change);
            entry["ad_change_id"] = json!(id);
            entry
        })
        .collect();
    let answer = crate::routes::allocations::allocation_answer(response, snapshot.currency.code());
    outcome.summary = json!({
        "currency": snapshot.currency.code(),
        "total_daily_budget": total.get(),
        "current_total_daily_budget": current_total.get(),
        "max_change_fraction": terms.max_change_fraction,
        "learning_events_sent": learning_events_sent,
        "reporting_delay": reporting_delays::summary_of(&reporting_delay),
        // Ads whose CPM was seen to rise with their daily volume (the allocator funds them by marginal return),
        // and why there are none when each ad's days could not be read.
        "ads_with_delivery_curves": daily_estimates.ads_with_delivery_curves,
        // Ads whose own weekday rhythm moves their CTR on the coming day by 1% or more.
        "ads_with_weekday_rhythms": daily_estimates.ads_with_weekday_rhythms,
        "delivery_curves_unavailable": snapshot.daily_delivery_unread,
        // Whether each ad's days were read from Meta this cycle (false: an earlier cycle of the day read them).
        "delivery_days_read": snapshot.daily_delivery_read.is_some(),
        // The hours each insights window covered up to now (whole days and today so far).
        "windows": {
            "recent_hours": snapshot.recent_window_hours,
            "settled_hours": snapshot.settled_window_hours,
        },
        // The learner's events committed, then the allocation that already used them (read your writes).
        "learned_in_ms": learned_in_ms,
        "allocated_in_ms": allocated_in_ms,
        "changes": changes,
        "recommendations": answer.recommendations,
    });
    Ok(())
}

/// Whether cycles read each ad's days: the delivery curves and the weekday rhythms both need them.
fn reads_daily_delivery(settings: &super::settings::AutopilotSettings) -> bool {
    settings.estimate_delivery_curves || settings.weekday_rhythm.enabled
}

/// What the account's days added to the request.
#[derive(Debug, Default, Clone, Copy)]
struct DailyEstimates {
    ads_with_delivery_curves: usize,
    ads_with_weekday_rhythms: usize,
}

/// Each ad's delivery curve and own weekday rhythm, estimated from the account's days
/// (`plan::delivery_histories`) off the runtime's threads (a few ms for a thousand ads' four weeks), into the
/// request, as far as the settings turn them on; the coming day is the 24 hours from `clock_unix` on the
/// account's calendar.
async fn add_daily_estimates(
    request: &mut adloop_allocator::AllocationRequest,
    snapshot: &super::account_reader::AccountSnapshot,
    clock_unix: i64,
    settings: &super::settings::AutopilotSettings,
) -> DailyEstimates {
    if !reads_daily_delivery(settings) {
        return DailyEstimates::default();
    }
    let histories = plan::delivery_histories(snapshot);
    let now_day = (clock_unix as f64 / 3600.0 + snapshot.timezone_offset_hours) / 24.0;
    let (curve_settings, rhythm_settings) = (settings.delivery_curve, settings.weekday_rhythm);
    let with_curves = settings.estimate_delivery_curves;
    let estimated = tokio::task::spawn_blocking(move || {
        let curves = if with_curves {
            estimate_delivery_curves(&histories, &curve_settings)
        } else {
            vec![None; histories.len()]
        };
        let rhythms = estimate_weekday_ctr_multipliers(&histories, now_day, &rhythm_settings);
        (curves, rhythms)
    })
    .await;
    let (curves, rhythms) = match estimated {
        Ok(estimates) => estimates,
        Err(error) => {
            tracing::warn!(%error, "autopilot: the estimates from each ad's days failed; allocating without them");
            return DailyEstimates::default();
        }
    };
    debug_assert_eq!(curves.len(), request.ads.len());
    for ((ad, curve), rhythm) in request.ads.iter_mut().zip(curves).zip(rhythms) {
        ad.delivery_curve = curve;
        ad.weekday_ctr_multiplier = rhythm;
    }
    DailyEstimates {
        ads_with_delivery_curves: request.ads.iter().filter(|ad| ad.delivery_curve.is_some()).count(),
        ads_with_weekday_rhythms: request
            .ads
            .iter()
            .filter(|ad| {
                ad.weekday_ctr_multiplier
                    .is_some_and(weekday_multiplier_is_worth_saying)
            })
            .count(),
    }
}

/// Sends ml-service's learner what each ad delivered since the account's previous cycle (once per cycle:
/// a rerun finds the feed already at its slot, and the events' ids are the cycle's). Returns how many events
/// were sent.
async fn teach_the_learner(
    context: &CycleContext,
    run: &ClaimedRun,
    snapshot: &super::account_reader::AccountSnapshot,
    reporting_delay: &ReportingDelay,
) -> Result<usize, CycleError> {
    let stored: Option<(i64, DeliveryFeed)> = cycle_memory::load(
        &context.pool,
        CycleMemory::LearningFeed,
        &run.tenant_id,
        &run.ad_account_id,
    )
    .await?;
    if stored.as_ref().is_some_and(|(slot, _)| *slot >= run.cycle_slot) {
        return Ok(0);
    }
    let mut feed = stored.map(|(_, feed)| feed).unwrap_or_default();
    let updates =
        learning_feed::delivery_updates(&mut feed, &run.ad_account_id, snapshot, run.clock_unix, reporting_delay);
    let events = learning_feed::learning_events(
        &updates,
        snapshot,
        &run.ad_account_id,
        run.cycle_slot,
        run.clock_unix,
        context.settings.conversions_from_delivery,
    );
    for chunk in events.chunks(MAX_EVENTS_PER_RECORD_REQUEST) {
        context
            .ml_service
            .client()
            .record_event(proto::RecordEventRequest { events: chunk.to_vec() })
            .await
            .map_err(|status| CycleError::Learning(format!("{:?}: {}", status.code(), status.message())))?;
    }
    cycle_memory::store(
        &context.pool,
        CycleMemory::LearningFeed,
        &run.tenant_id,
        &run.ad_account_id,
        run.cycle_slot,
        &feed,
    )
    .await?;
    Ok(events.len())
}

/// ml-service's bound on one `RecordEvent` request (`learning.max_events_per_request`, 5,000 by default).
const MAX_EVENTS_PER_RECORD_REQUEST: usize = 1000;

/// A cycle that takes longer than this much of its lease is abandoned (another runner may take it over).
pub fn cycle_deadline(settings: &AutopilotSettings) -> Duration {
    Duration::from_secs(settings.run_lease_seconds) * 4 / 5
}
