//! The part of ingest both event endpoints share, once the request is parsed and its token known: the
//! pixel and size checks, each event checked as Meta would (events in adloop's shape rewritten into Meta's
//! first), the refusals counted, and the accepted events committed (group commit) before the answer.

use adloop_capi_events::event::{EventError, MAX_EVENTS_PER_REQUEST, ValidatedEvent, validate_event};
use adloop_capi_events::friendly::{client_field_name, to_meta_event};
use serde_json::Value;

use super::AppState;
use super::ingest_common::{Refusal, event_rules, now_unix, off_the_runtime_if_large};
use crate::sources::IngestSource;
use crate::store::group_commit::GroupCommitError;
use crate::store::{EventRow, Stored};

/// Which shape the events came in, and so how refusals name their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EventShape {
    /// Meta's own (`data[3].user_data.em`).
    Meta,
    /// adloop's (`events[3].customer.email`), rewritten into Meta's before the checks.
    Adloop,
}

impl EventShape {
    fn list_name(self) -> &'static str {
        match self {
            EventShape::Meta => "data",
            EventShape::Adloop => "events",
        }
    }

    /// A refused event's field as the client named it, with the event's index.
    pub(super) fn field_of(self, error: &EventError, value_was_minor: bool) -> String {
        let field = match self {
            EventShape::Meta => error.field.clone(),
            EventShape::Adloop => client_field_name(&error.field, value_was_minor),
        };
        self.indexed(error.index, &field)
    }

    /// `field` of event `index` as the client addresses it: `data[3].user_data.em`, `events[3]`.
    fn indexed(self, index: usize, field: &str) -> String {
        match field {
            "" => format!("{}[{index}]", self.list_name()),
            field => format!("{}[{index}].{field}", self.list_name()),
        }
    }

    fn check(
        self,
        index: usize,
        event: &Value,
        check_meta_event: &impl Fn(usize, &Value) -> Result<ValidatedEvent, EventError>,
    ) -> Result<ValidatedEvent, (EventError, String)> {
        let value_was_minor =
            self == EventShape::Adloop && event.get("value_minor").is_some_and(|value| !value.is_null());
        let outcome = match self {
            EventShape::Meta => check_meta_event(index, event),
            EventShape::Adloop => match to_meta_event(event) {
                Ok(meta_event) => check_meta_event(index, &meta_event),
                Err(error) => {
                    let error = EventError {
                        index,
                        field: error.field,
                        rule: error.rule,
                    };
                    // A rewrite error already names the client's own field.
                    let field = self.indexed(index, &error.field);
                    return Err((error, field));
                }
            },
        };
        outcome.map_err(|error| {
            let field = self.field_of(&error, value_was_minor);
            (error, field)
        })
    }
}

/// A parsed request, its token checked.
pub(super) struct IngestRequest {
    pub pixel_id: String,
    pub source: IngestSource,
    pub events: Vec<Value>,
    /// Store the good events and list the refused, instead of refusing the request.
    pub partial: bool,
    pub body_bytes: usize,
    pub shape: EventShape,
    /// The request's own test-event code (else the source's default applies).
    pub test_event_code: Option<String>,
}

/// A refused event: its index, the field as the client named it (with the index), and the rule.
#[derive(Debug, Clone)]
pub(super) struct RefusedEvent {
    pub index: usize,
    pub field: String,
    pub rule: String,
}

/// What became of a request's events.
pub(super) struct Ingested {
    /// Accepted events: their index in the request and the id they go by (the client's, or derived).
    pub accepted: Vec<(usize, String)>,
    pub refused: Vec<RefusedEvent>,
    pub stored: Stored,
}

/// Refuses a test-event code that breaks its rule (`sources::is_valid_test_event_code`).
pub(super) fn check_test_event_code(code: &str) -> Result<(), Refusal> {
    if !crate::sources::is_valid_test_event_code(code) {
        return Err(Refusal::invalid(
            "test_event_code",
            "must be 1 to 64 printable characters",
        ));
    }
    Ok(())
}

/// Checks every event and commits the accepted ones; a refusal of the request stores nothing.
pub(super) async fn check_and_store(state: &AppState, request: IngestRequest) -> Result<Ingested, Refusal> {
    if !request.source.may_write(&request.pixel_id) {
        return Err(Refusal::PixelNotAllowed);
    }
    let list_name = request.shape.list_name();
    if let Some(code) = request.test_event_code.as_deref() {
        check_test_event_code(code)?;
    }
    if request.events.is_empty() || request.events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(Refusal::invalid(list_name, "must hold 1 to 1000 events"));
    }
    let now = now_unix(state).await?;
    let (normalise, time_rules) = event_rules(state, now)?;
    let received = request.events.len();
    let (events, partial, shape) = (request.events, request.partial, request.shape);
    let checked = off_the_runtime_if_large(request.body_bytes, move || {
        let check_meta_event = |index: usize, event: &Value| validate_event(index, event, now, &time_rules, &normalise);
        let mut accepted = Vec::with_capacity(events.len());
        let mut refused = Vec::new();
        for (index, event) in events.iter().enumerate() {
            match shape.check(index, event, &check_meta_event) {
                Ok(validated) => accepted.push((index, validated)),
                Err((error, field)) => {
                    let refusal = RefusedEvent {
                        index,
                        field,
                        rule: error.rule,
                    };
                    if !partial {
                        return Err((error.field, refusal));
                    }
                    refused.push((error.field, refusal));
                }
            }
        }
        Ok((accepted, refused))
    })
    .await;
    let (accepted, refused) = match checked {
        Ok(checked) => checked,
        Err((metric_field, refusal)) => {
            state.ingest_metrics.count_refusal(&metric_field);
            state.ingest_metrics.count("refused", received);
            return Err(Refusal::invalid(&refusal.field, &refusal.rule));
        }
    };
    for (metric_field, _) in &refused {
        state.ingest_metrics.count_refusal(metric_field);
    }
    let refused: Vec<RefusedEvent> = refused.into_iter().map(|(_, refusal)| refusal).collect();
    let test_event_code = request
        .test_event_code
        .as_deref()
        .or(request.source.test_event_code.as_deref());
    let (indexes, rows): (Vec<usize>, Vec<EventRow>) = accepted
        .into_iter()
        .map(|(index, event)| {
            let row = EventRow::new(&request.pixel_id, request.source.id, event, test_event_code);
            (index, row)
        })
        .unzip();
    let accepted: Vec<(usize, String)> = indexes
        .into_iter()
        .zip(rows.iter().map(|row| row.event_id.clone()))
        .collect();
    let identifier_keys: Vec<String> = rows
        .iter()
        .filter_map(|row| row.body.get("user_data").and_then(Value::as_object))
        .flat_map(|user_data| user_data.keys().cloned())
        .collect();
    let stored_rows = rows.len();
    let stored = match state.committer.store(rows).await {
        Ok(stored) => stored,
        Err(GroupCommitError::Overloaded) => return Err(Refusal::Overloaded),
        Err(error) => {
            tracing::error!(%error, "ingest: could not store events");
            return Err(Refusal::StoreUnavailable);
        }
    };
    state.ingest_metrics.count("stored", stored.stored);
    state.ingest_metrics.count("deduplicated", stored.deduplicated);
    state.ingest_metrics.count("refused", refused.len());
    state.ingest_metrics.count_identifiers(
        &request.pixel_id,
        identifier_keys.iter().map(String::as_str),
        stored_rows,
    );
    Ok(Ingested {
        accepted,
        refused,
        stored,
    })
}
