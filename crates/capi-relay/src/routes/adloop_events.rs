//! `POST /v1/events`: adloop's own event shape for clients that do not speak Meta's — customer information
//! under plain names, money in minor units, the attributed ad as `ad_id` (see
//! `adloop_capi_events::friendly`). The token is `Authorization: Bearer`. Events are rewritten into Meta's
//! shape and then checked, de-duplicated and committed exactly as the drop-in endpoint does; errors use
//! adloop's shape (`{"error": {"code", "message", "field"}}`) and name fields as the client wrote them.
//!
//! ```json
//! {"pixel_id": "100000000000001", "partial": false,
//!  "events": [{"event_name": "Purchase", "event_time": 1796000000, "event_id": "order-1",
//!              "action_source": "website", "event_source_url": "https://shop.example/checkout",
//!              "customer": {"email": "ana@example.com", "phone": "+1 650 555 1212",
//!                           "client_user_agent": "Mozilla/5.0"},
//!              "value_minor": 4299, "currency": "USD", "ad_id": "120330000000000001"}]}
//! ```

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::ingest_common::{Refusal, admitted_body, authenticate, off_the_runtime_if_large};
use super::ingest_pipeline::{EventShape, IngestRequest, check_and_store};

/// The request's fields besides its events.
struct RequestFields {
    pixel_id: String,
    partial: bool,
    test_event_code: Option<String>,
}

fn parse_request(body: &[u8]) -> Result<(Vec<Value>, RequestFields), Refusal> {
    let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(body) else {
        return Err(Refusal::invalid(
            "",
            "the body must be a JSON object with pixel_id and events",
        ));
    };
    let pixel_id = match request.remove("pixel_id") {
        Some(Value::String(pixel_id)) if crate::sources::is_valid_pixel_id(&pixel_id) => pixel_id,
        _ => {
            return Err(Refusal::invalid(
                "pixel_id",
                "is required (a pixel id: 1 to 20 digits, as a string)",
            ));
        }
    };
    let partial = match request.remove("partial") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(partial)) => partial,
        Some(_) => return Err(Refusal::invalid("partial", "must be true or false")),
    };
    let test_event_code = match request.remove("test_event_code") {
        None | Some(Value::Null) => None,
        Some(Value::String(code)) => Some(code),
        Some(_) => return Err(Refusal::invalid("test_event_code", "must be a string")),
    };
    let Some(Value::Array(events)) = request.remove("events") else {
        return Err(Refusal::invalid("events", "is required (an array of events)"));
    };
    if let Some(unknown) = request.keys().next() {
        return Err(Refusal::invalid(
            unknown,
            "is not a field of this request (pixel_id, events, partial, test_event_code)",
        ));
    }
    Ok((
        events,
        RequestFields {
            pixel_id,
            partial,
            test_event_code,
        },
    ))
}

pub async fn post_adloop_events(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (body, _admitted) = match admitted_body(&state, &headers, body).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.adloop(),
    };
    let body_bytes = body.len();
    let (events, fields) = match off_the_runtime_if_large(body_bytes, move || parse_request(&body)).await {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.adloop(),
    };
    let source = match authenticate(&state, &headers, None).await {
        Ok(source) => source,
        Err(refusal) => return refusal.adloop(),
    };
    let request = IngestRequest {
        pixel_id: fields.pixel_id,
        source,
        events,
        partial: fields.partial,
        body_bytes,
        shape: EventShape::Adloop,
        test_event_code: fields.test_event_code,
    };
    let ingested = match check_and_store(&state, request).await {
        Ok(ingested) => ingested,
        Err(refusal) => return refusal.adloop(),
    };
    let accepted: Vec<Value> = ingested
        .accepted
        .iter()
        .map(|(index, event_id)| json!({ "index": index, "event_id": event_id }))
        .collect();
    let refused: Vec<Value> = ingested
        .refused
        .iter()
        .map(|refused| json!({ "index": refused.index, "field": refused.field, "rule": refused.rule }))
        .collect();
    Json(json!({
        "accepted": accepted,
        "refused": refused,
        "stored": ingested.stored.stored,
        "deduplicated": ingested.stored.deduplicated,
    }))
    .into_response()
}
