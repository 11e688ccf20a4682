//! `POST /{version}/{pixel_id}/events`: Meta's own request shape (JSON, or a form body with `data` as a JSON
//! string, as Meta's SDKs send it), so an existing client only changes its base URL. The `access_token` is
//! the relay's ingest token (also accepted as `Authorization: Bearer`), scoped to the pixels its source may
//! write. Every event is checked as Meta would (`adloop_capi_events::event`); as at Meta one bad event
//! refuses the whole request and nothing is stored, unless `partial=true` asks to store the good ones and
//! list the refused. Accepted events are committed before the answer. Answers and errors keep Meta's shape.

use std::time::{SystemTime, UNIX_EPOCH};

use adloop_capi_events::event::{EventError, MAX_EVENTS_PER_REQUEST, TimeRules, ValidatedEvent, validate_event};
use adloop_capi_events::user_data::NormaliseSettings;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::routes::AppState;
use crate::sources::source_of_token;
use crate::store::store_events;

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

/// An error in Meta's shape: `code` 100 for a bad parameter, 190 for a bad token, 200 for a pixel the
/// token may not write.
fn meta_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "error_user_msg": message,
                "fbtrace_id": "adloop-relay",
            }
        })),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    meta_error(StatusCode::BAD_REQUEST, 100, message)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// The calendar year of a Unix time (UTC).
fn year_of(unix_seconds: i64) -> u32 {
    // Days to a civil date (the proleptic Gregorian calendar), as in Howard Hinnant's `civil_from_days`.
    let days = unix_seconds.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let year = year_of_era + era * 400 + i64::from(month_index >= 10);
    u32::try_from(year).unwrap_or(0)
}

/// The ingest source of the request's token (bearer first, then `access_token`), or the error to answer.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    access_token: Option<&str>,
) -> Result<crate::sources::IngestSource, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = bearer.or(access_token) else {
        return Err(meta_error(
            StatusCode::UNAUTHORIZED,
            190,
            "an ingest token is required: access_token, or Authorization: Bearer",
        ));
    };
    match source_of_token(&state.database_pool, token).await {
        Ok(Some(source)) => Ok(source),
        Ok(None) => Err(meta_error(
            StatusCode::UNAUTHORIZED,
            190,
            "access_token: not a valid ingest token",
        )),
        Err(error) => {
            tracing::error!(%error, "ingest: could not look the token up");
            Err(meta_error(
                StatusCode::SERVICE_UNAVAILABLE,
                2,
                "the relay cannot reach its database; retry",
            ))
        }
    }
}

fn pixel_refused() -> Response {
    meta_error(
        StatusCode::FORBIDDEN,
        200,
        "pixel_id: this ingest token may not use this pixel",
    )
}

/// The rules events are checked by at `now`: the relay's ingest settings, this year as the latest birth year
/// (`None` only for settings that start-up would have refused).
fn event_rules(state: &AppState, now: i64) -> Option<(NormaliseSettings, TimeRules)> {
    let mut normalise = state.ingest.normalise_settings()?;
    normalise.current_year = year_of(now);
    let time_rules = TimeRules {
        future_tolerance_seconds: state.ingest.future_tolerance_seconds,
        ..TimeRules::default()
    };
    Some((normalise, time_rules))
}

fn invalid_ingest_settings() -> Response {
    meta_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        1,
        "the relay's ingest settings are invalid",
    )
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
    body: Bytes,
) -> Response {
    if !is_graph_version(&version) {
        return bad_request("version: must look like v25.0");
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let (events, fields) = match parse_body(&body, is_form) {
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
    let mut accepted: Vec<ValidatedEvent> = Vec::with_capacity(events.len());
    let mut refused: Vec<EventError> = Vec::new();
    for (index, event) in events.iter().enumerate() {
        match validate_event(index, event, now, &time_rules, &normalise) {
            Ok(validated) => accepted.push(validated),
            Err(error) if partial => {
                state.ingest_metrics.count_refusal(&error.field);
                refused.push(error);
            }
            Err(error) => {
                state.ingest_metrics.count_refusal(&error.field);
                state.ingest_metrics.count("refused", events.len());
                return bad_request(&error.to_string());
            }
        }
    }
    let stored = match store_events(&state.database_pool, &pixel_id, source.id, &accepted).await {
        Ok(stored) => stored,
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
        "events_received": accepted.len(),
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

/// `GET /v1/events/{event_id}?pixel_id=P[&event_name=N]`: where an event stands (pending, delivered, dead),
/// for a token that may write to the pixel. Without `event_name`, every event with that id on the pixel.
pub async fn get_event(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(pixel_id) = query.get("pixel_id") else {
        return bad_request("pixel_id: is required");
    };
    match authenticate(&state, &headers, query.get("access_token").map(String::as_str)).await {
        Ok(source) if source.may_write(pixel_id) => {}
        Ok(_) => return pixel_refused(),
        Err(refusal) => return refusal,
    }
    match crate::store::event_status(&state.database_pool, pixel_id, &event_id, query.get("event_name")).await {
        Ok(events) if events.is_empty() => {
            meta_error(StatusCode::NOT_FOUND, 100, "event_id: no such event on this pixel")
        }
        Ok(events) => Json(json!({ "events": events })).into_response(),
        Err(error) => {
            tracing::error!(%error, "event status: could not read the event");
            meta_error(
                StatusCode::SERVICE_UNAVAILABLE,
                2,
                "the relay cannot reach its database; retry",
            )
        }
    }
}

/// `POST /api/meta/capi/test`: the recovery plan's own check, its body exactly as the plan shows it (one
/// event: `event_name`, `event_time`, `user_data`, `custom_data`). Answers what was accepted and how it was
/// normalised (hashes, never the raw values) without storing anything; with a `test_event_code` (query or
/// body) and delivery configured, it also sends the event to Meta's test view and shows Meta's answer. The
/// plan's body has no `action_source`: `other` is assumed, and the answer says so. The pixel is the token's
/// own, or `pixel_id` in the query when the token has several.
pub async fn post_capi_test(
    State(state): State<AppState>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(Value::Object(mut event)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body must be one event as a JSON object");
    };
    let token_in_body = match event.remove("access_token") {
        Some(Value::String(token)) => Some(token),
        _ => None,
    };
    let access_token = query.get("access_token").cloned().or(token_in_body);
    let source = match authenticate(&state, &headers, access_token.as_deref()).await {
        Ok(source) => source,
        Err(refusal) => return refusal,
    };
    let pixel_id = match (query.get("pixel_id"), source.pixel_ids.as_slice()) {
        (Some(pixel_id), _) if source.may_write(pixel_id) => pixel_id.clone(),
        (Some(_), _) => return pixel_refused(),
        (None, [only]) => only.clone(),
        (None, _) => return bad_request("pixel_id: required when the token may use several pixels"),
    };
    let test_event_code = match event.remove("test_event_code") {
        Some(Value::String(code)) => Some(code),
        _ => query.get("test_event_code").cloned(),
    };
    let mut defaulted = Vec::new();
    if !event.contains_key("action_source") {
        event.insert("action_source".into(), Value::String("other".into()));
        defaulted.push("action_source");
    }
    let now = now_unix();
    let Some((normalise, time_rules)) = event_rules(&state, now) else {
        return invalid_ingest_settings();
    };
    let validated = match validate_event(0, &Value::Object(event), now, &time_rules, &normalise) {
        Ok(validated) => validated,
        Err(error) => return bad_request(&error.to_string()),
    };
    let meta = match (&test_event_code, state.delivery.enabled) {
        (Some(code), true) => {
            let answer = crate::delivery::post_to_meta(
                &state.http,
                &state.delivery,
                &pixel_id,
                vec![Value::Object(validated.body.clone())],
                Some(code),
            )
            .await;
            match answer {
                Some((status, answer)) => json!({ "status": status, "answer": answer }),
                None => json!({ "status": null, "answer": "meta did not answer" }),
            }
        }
        (Some(_), false) => json!("not sent: delivery is not enabled in this relay"),
        (None, _) => json!("not sent: give a test_event_code to send the event to Meta's test view"),
    };
    Json(json!({
        "accepted": true,
        "pixel_id": pixel_id,
        "event": validated.body,
        "defaulted": defaulted,
        "stored": false,
        "meta": meta,
    }))
    .into_response()
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
    fn the_year_of_a_unix_time() {
        assert_eq!(year_of(0), 1970);
        assert_eq!(year_of(1_780_000_000), 2026);
        assert_eq!(year_of(1_798_761_599), 2026, "2026-12-31T23:59:59Z");
        assert_eq!(year_of(1_798_761_600), 2027);
    }

    #[test]
    fn graph_versions_look_like_v25_0() {
        assert!(is_graph_version("v25.0"));
        assert!(!is_graph_version("25.0") && !is_graph_version("v25") && !is_graph_version("vx.1"));
    }
}
