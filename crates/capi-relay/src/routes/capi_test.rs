//! `POST /api/meta/capi/test`: the recovery plan's own check.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use adloop_capi_events::event::validate_event;

use super::AppState;
use super::ingest_common::{Refusal, authenticate, event_rules, now_unix};
use super::ingest_pipeline::check_test_event_code;

/// The pixel the event is checked for: the token's own (or `pixel_id` in the query, when the token may use it);
/// for a request with no token at all, the one `ingest.capi_test_pixel_without_token` names, if any.
async fn pixel_to_check_for(
    state: &AppState,
    headers: &HeaderMap,
    access_token: Option<&str>,
    requested_pixel_id: Option<&String>,
) -> Result<String, Refusal> {
    let sends_no_token = access_token.is_none() && !headers.contains_key(axum::http::header::AUTHORIZATION);
    if let (true, Some(open_pixel_id)) = (sends_no_token, &state.ingest.capi_test_pixel_without_token) {
        return match requested_pixel_id {
            Some(pixel_id) if pixel_id != open_pixel_id => Err(Refusal::invalid(
                "pixel_id",
                "without a token only the relay's own check pixel may be used (send a token for others)",
            )),
            _ => Ok(open_pixel_id.clone()),
        };
    }
    let source = authenticate(state, headers, access_token).await?;
    match (requested_pixel_id, source.pixel_ids.as_slice()) {
        (Some(pixel_id), _) if source.may_write(pixel_id) => Ok(pixel_id.clone()),
        (Some(_), _) => Err(Refusal::PixelNotAllowed),
        (None, [only]) => Ok(only.clone()),
        (None, _) => Err(Refusal::invalid(
            "pixel_id",
            "required when the token may use several pixels",
        )),
    }
}

/// `POST /api/meta/capi/test`: the recovery plan's own check, its body exactly as the plan shows it (one
/// event: `event_name`, `event_time`, `user_data`, `custom_data`). Answers what was accepted and how it was
/// normalised (hashes, never the raw values) without storing anything; with a `test_event_code` (query or
/// body) and delivery configured, it also sends the event to Meta's test view and shows Meta's answer. The
/// plan's body has no `action_source`: `other` is assumed, and the answer says so. The pixel is the token's
/// own, or `pixel_id` in the query when the token has several ([`pixel_to_check_for`]).
pub async fn post_capi_test(
    State(state): State<AppState>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(Value::Object(mut event)) = serde_json::from_slice::<Value>(&body) else {
        return Refusal::invalid("", "the body must be one event as a JSON object").meta();
    };
    let token_in_body = match event.remove("access_token") {
        Some(Value::String(token)) => Some(token),
        _ => None,
    };
    let access_token = query.get("access_token").cloned().or(token_in_body);
    let pixel_id = match pixel_to_check_for(&state, &headers, access_token.as_deref(), query.get("pixel_id")).await {
        Ok(pixel_id) => pixel_id,
        Err(refusal) => return refusal.meta(),
    };
    let test_event_code = match event.remove("test_event_code") {
        Some(Value::String(code)) => Some(code),
        Some(_) => return Refusal::invalid("test_event_code", "must be a string").meta(),
        None => query.get("test_event_code").cloned(),
    };
    if let Some(Err(refusal)) = test_event_code.as_deref().map(check_test_event_code) {
        return refusal.meta();
    }
    let mut defaulted = Vec::new();
    if !event.contains_key("action_source") {
        event.insert("action_source".into(), Value::String("other".into()));
        defaulted.push("action_source");
    }
    let now = match now_unix(&state).await {
        Ok(now) => now,
        Err(refusal) => return refusal.meta(),
    };
    let (normalise, time_rules) = match event_rules(&state, now) {
        Ok(rules) => rules,
        Err(refusal) => return refusal.meta(),
    };
    let validated = match validate_event(0, &Value::Object(event), now, &time_rules, &normalise) {
        Ok(validated) => validated,
        Err(error) => return Refusal::invalid("", &error.to_string()).meta(),
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
