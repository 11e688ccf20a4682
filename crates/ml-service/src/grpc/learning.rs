//! RecordEvent and GetWeights: the instant learner over gRPC.

use adloop_learner::{FtrlHead, InstantLearner};
use adloop_proto::ml::v1::{EventOutcome, GetWeightsResponse, LearnerHead, RecordEventRequest, RecordEventResponse};
use adloop_service_kit::error::{ErrorCode, ServiceError};
use tonic::Status;

use crate::learning::{LearningError, LearningService, accept_events};

/// The time an event without its own is read at (an ad's age for the CTR head's first-week rule).
fn unix_seconds_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since_epoch| since_epoch.as_secs() as i64)
}

pub async fn record_event(
    learning: &LearningService,
    request: RecordEventRequest,
) -> Result<RecordEventResponse, Status> {
    let events = accept_events(&request.events, &learning.event_rules(), unix_seconds_now())
        .map_err(|refusal| Status::from(ServiceError::invalid_field(refusal.field, refusal.rule)))?;
    let recorded = learning.record(events).await.map_err(unavailable)?;
    Ok(RecordEventResponse {
        applied: recorded.outcomes.iter().any(|outcome| !outcome.duplicate),
        model_version: model_version(recorded.applied_through),
        events_applied: recorded.events_applied as i64,
        outcomes: recorded
            .outcomes
            .into_iter()
            .map(|outcome| EventOutcome {
                event_id: outcome.event_id,
                duplicate: outcome.duplicate,
                ctr_before: outcome.applied.ctr_before,
                ctr_after: outcome.applied.ctr_after,
                conversion_rate_before: outcome.applied.conversion_rate_before,
                conversion_rate_after: outcome.applied.conversion_rate_after,
                drift_detected: outcome.applied.drift_detected,
            })
            .collect(),
    })
}

pub async fn get_weights(learning: &LearningService) -> Result<GetWeightsResponse, Status> {
    learning
        .read(|learner, applied_through| {
            let ctr = head(
                learner.ctr_head(),
                learner.drifts_detected().0,
                learner.drift_rise().0,
                learner,
            );
            let conversion = head(
                learner.conversion_head(),
                learner.drifts_detected().1,
                learner.drift_rise().1,
                learner,
            );
            GetWeightsResponse {
                model_version: model_version(applied_through),
                weights: ctr.weights.clone(),
                events_applied: learner.updates_applied() as i64,
                ctr: Some(ctr),
                conversion: Some(conversion),
            }
        })
        .await
        .map_err(unavailable)
}

/// The learner's version is its position in the log (sequence numbers may skip: a duplicate uses one up):
/// equal versions, equal weights, on every replica.
fn model_version(applied_through: i64) -> String {
    format!("instant-learner@{applied_through}")
}

fn head(model: &FtrlHead, drifts_detected: u64, drift_rise: f64, learner: &InstantLearner) -> LearnerHead {
    LearnerHead {
        weights: model
            .weights()
            .map(|(name, weight)| (name.to_owned(), weight))
            .collect(),
        bias: model.bias(),
        drifts_detected: drifts_detected as i64,
        drift_statistic: drift_rise,
        drift_threshold: learner.config().drift.threshold,
    }
}

fn unavailable(error: LearningError) -> Status {
    tracing::error!(%error, "learning request failed");
    Status::from(ServiceError::new(
        ErrorCode::Unavailable,
        "the learning log is unavailable, retry shortly",
    ))
}
