//! `GET /v1/events/{event_id}`: where an accepted event stands (adloop's error shape, like `/v1/events`).

use adloop_service_kit::error::{ErrorCode, ServiceError};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::ingest_common::{Refusal, authenticate};

/// `GET /v1/events/{event_id}?pixel_id=P[&event_name=N]`: where an event stands (pending, delivered, dead),
/// for a token that may write to the pixel. Without `event_name`, every event with that id on the pixel.
pub async fn get_event(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(pixel_id) = query.get("pixel_id") else {
        return Refusal::invalid("pixel_id", "is required").adloop();
    };
    // Postgres stores no NUL character; none of these can hold one.
    let texts = [
        ("event_id", Some(&event_id)),
        ("pixel_id", Some(pixel_id)),
        ("event_name", query.get("event_name")),
    ];
    if let Some((field, _)) = texts
        .iter()
        .find(|(_, text)| text.is_some_and(|text| text.contains('\0')))
    {
        return Refusal::invalid(field, "must not contain the NUL character (\\u0000)").adloop();
    }
    match authenticate(&state, &headers, query.get("access_token").map(String::as_str)).await {
        Ok(source) if source.may_write(pixel_id) => {}
        Ok(_) => return Refusal::PixelNotAllowed.adloop(),
        Err(refusal) => return refusal.adloop(),
    }
    match crate::store::event_status(&state.database_pool, pixel_id, &event_id, query.get("event_name")).await {
        Ok(events) if events.is_empty() => {
            ServiceError::new(ErrorCode::NotFound, "event_id: no such event on this pixel").into_response()
        }
        Ok(events) => Json(json!({ "events": events })).into_response(),
        Err(error) => {
            tracing::error!(%error, "event status: could not read the event");
            Refusal::StoreUnavailable.adloop()
        }
    }
}
