//! `POST /{version}/{pixel_id}/events`: Meta's own request shape (JSON, or a form body with `data` as a JSON
//! string, as Meta's SDKs send it), so an existing client only changes its base URL. The `access_token` is
//! the relay's ingest token (also accepted as `Authorization: Bearer`), scoped to the pixels its source may
//! write. Every event is checked as Meta would (`adloop_capi_events::event`); as at Meta one bad event
//! refuses the whole request and nothing is stored, unless `partial=true` asks to store the good ones and
//! list the refused. Accepted events are committed before the answer. Answers and errors keep Meta's shape.

use adloop_capi_events::event::{EventError, MAX_EVENTS_PER_REQUEST, ValidatedEvent, validate_event};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::ingest_common::{
    admitted_body, authenticate, bad_request, event_rules, invalid_ingest_settings, meta_error, now_unix,
    off_the_runtime_if_large, overloaded, pixel_refused,
};
use crate::store::EventRow;
use crate::store::group_commit::GroupCommitError;

/// The fields of a request besides the events, wherever they came from (query, JSON or form body).
#[derive(Debug, Default, Deserialize)]
pub struct RequestFields {
    access_token: Option<String>,
    test_event_code: Option<String>,
    partial: Option<String>,
}

/// A form body: `data` is the events as a JSON string.
#[derive(Debug, Deserialize)]
struct FormBody {
    data: Option<String>,
    #[serde(flatten)]
    fields: RequestFields,
}

fn is_graph_version(version: &str) -> bool {
    version
        .strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|byte| byte.is_ascii_digit())
                && minor.bytes().all(|byte| byte.is_ascii_digit())
        })
}

pub async fn post_events(
    State(state): State<AppState>,
    Path((version, pixel_id)): Path<(String, String)>,
    Query(query): Query<RequestFields>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !is_graph_version(&version) {
        return bad_request("version: must look like v25.0");
    }
    let (body, _admitted) = match admitted_body(&state, &headers, body).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let body_bytes = body.len();
    let parsed = off_the_runtime_if_large(body_bytes, move || parse_body(&body, is_form)).await;
    let (events, fields) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return bad_request(&message),
    };
    let access_token = fields.access_token.as_deref().or(query.access_token.as_deref());
    let source = match authenticate(&state, &headers, access_token).await {
        Ok(source) => source,
        Err(refusal) => return refusal,
    };
    if !source.may_write(&pixel_id) {
        return pixel_refused();
    }
    if events.is_empty() || events.len() > MAX_EVENTS_PER_REQUEST {
        return bad_request("data: must hold 1 to 1000 events");
    }
    let partial = fields
        .partial
        .or(query.partial)
        .is_some_and(|value| value == "true" || value == "1");
    let now = now_unix();
    let Some((normalise, time_rules)) = event_rules(&state, now) else {
        return invalid_ingest_settings();
    };
    let received = events.len();
    let checked = off_the_runtime_if_large(body_bytes, move || {
        checked_rows(&events, partial, |index, event| {
            validate_event(index, event, now, &time_rules, &normalise)
        })
    })
    .await;
    let (rows, refused) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            state.ingest_metrics.count_refusal(&error.field);
            state.ingest_metrics.count("refused", received);
            return bad_request(&error.to_string());
        }
    };
    for error in &refused {
        state.ingest_metrics.count_refusal(&error.field);
    }
    let accepted_count = rows.len();
    let rows = rows
        .into_iter()
        .map(|event| EventRow::new(&pixel_id, source.id, event))
        .collect();
    let stored = match state.committer.store(rows).await {
        Ok(stored) => stored,
        Err(GroupCommitError::Overloaded) => return overloaded(),
        Err(error) => {
            tracing::error!(%error, "ingest: could not store events");
            return meta_error(
                StatusCode::SERVICE_UNAVAILABLE,
                2,
                "the relay could not store the events; retry",
            );
        }
    };
    state.ingest_metrics.count("stored", stored.stored);
    state.ingest_metrics.count("deduplicated", stored.deduplicated);
    state.ingest_metrics.count("refused", refused.len());
    Json(json!({
        "events_received": accepted_count,
        "messages": refused.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "fbtrace_id": "adloop-relay",
        "adloop": {
            "stored": stored.stored,
            "deduplicated": stored.deduplicated,
            "refused": refused.len(),
            "test_event_code": fields.test_event_code.or(query.test_event_code),
        },
    }))
    .into_response()
}

/// The events that pass their checks, and (with `partial`) the refused ones; without `partial` the first
/// refusal refuses them all.
fn checked_rows(
    events: &[Value],
    partial: bool,
    check: impl Fn(usize, &Value) -> Result<ValidatedEvent, EventError>,
) -> Result<(Vec<ValidatedEvent>, Vec<EventError>), EventError> {
    let mut accepted = Vec::with_capacity(events.len());
    let mut refused = Vec::new();
    for (index, event) in events.iter().enumerate() {
        match check(index, event) {
            Ok(validated) => accepted.push(validated),
            Err(error) if partial => refused.push(error),
            Err(error) => return Err(error),
        }
    }
    Ok((accepted, refused))
}

/// Events as objects: Meta's SDKs send each event of `data` as a JSON string of its own; one that does not
/// decode to an object is left for the validator to refuse by its index.
fn decoded_events(events: Vec<Value>) -> Vec<Value> {
    events
        .into_iter()
        .map(|event| match &event {
            Value::String(text) => serde_json::from_str::<Value>(text)
                .ok()
                .filter(Value::is_object)
                .unwrap_or(event),
            _ => event,
        })
        .collect()
}

/// The events and the other fields of a JSON or form body.
fn parse_body(body: &[u8], is_form: bool) -> Result<(Vec<Value>, RequestFields), String> {
    if is_form {
        let form: FormBody =
            serde_urlencoded::from_bytes(body).map_err(|_| "the form body is not valid form encoding".to_owned())?;
        let Some(data) = form.data else {
            return Err("data: is required (the events, as a JSON array)".into());
        };
        let Ok(Value::Array(events)) = serde_json::from_str::<Value>(&data) else {
            return Err("data: must be a JSON array of events".into());
        };
        return Ok((decoded_events(events), form.fields));
    }
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else {
        return Err("the body must be a JSON object with data (or a form body)".into());
    };
    let events = match object.remove("data") {
        Some(Value::Array(events)) => events,
        // The SDKs may send `data` as a JSON string inside JSON too.
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(events)) => events,
            _ => return Err("data: must be a JSON array of events".into()),
        },
        _ => return Err("data: is required (an array of events)".into()),
    };
    let text_field = |value: Option<Value>| match value {
        Some(Value::String(text)) => Some(text),
        Some(Value::Bool(flag)) => Some(flag.to_string()),
        _ => None,
    };
    Ok((
        decoded_events(events),
        RequestFields {
            access_token: text_field(object.remove("access_token")),
            test_event_code: text_field(object.remove("test_event_code")),
            partial: text_field(object.remove("partial")),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_versions_look_like_v25_0() {
        assert!(is_graph_version("v25.0"));
        assert!(!is_graph_version("25.0") && !is_graph_version("v25") && !is_graph_version("vx.1"));
    }
}
