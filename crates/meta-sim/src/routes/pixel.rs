//! `GET /tr`: the browser pixel's image request, as a website's `fbq('track', ...)` or `<img>` pixel sends
//! it to Meta (`id` the pixel, `ev` the event name, `eid` the event id shared with the server's copy,
//! `cd[value]` and `cd[currency]`, `ts` in milliseconds). It is stored as the browser's copy of the event,
//! de-duplicated against the Conversions API's by event name and id, and answered with a 1×1 GIF.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;

/// A transparent 1×1 GIF, what an image pixel gets back.
const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

fn refused(field: &str, rule: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(
            json!({"error": {"code": "invalid_argument", "message": format!("{field}: {rule}"), "field": field}}),
        ),
    )
        .into_response()
}

/// The browser event a pixel request describes.
fn browser_event(params: &BTreeMap<String, String>, now_unix: i64) -> Result<Value, Response> {
    let event_name = params
        .get("ev")
        .filter(|name| !name.is_empty())
        .ok_or_else(|| refused("ev", "the event name is required"))?;
    let event_time = match params.get("ts") {
        Some(milliseconds) => milliseconds
            .parse::<i64>()
            .map(|milliseconds| milliseconds / 1000)
            .map_err(|_| refused("ts", "must be Unix milliseconds"))?,
        None => now_unix,
    };
    let mut event = json!({
        "event_name": event_name,
        "event_time": event_time,
        "action_source": "website",
    });
    if let Some(event_id) = params.get("eid") {
        event["event_id"] = json!(event_id);
    }
    if let Some(url) = params.get("dl") {
        event["event_source_url"] = json!(url);
    }
    if let Some(value) = params.get("cd[value]") {
        let value: f64 = value.parse().map_err(|_| refused("cd[value]", "must be a number"))?;
        event["custom_data"] = json!({ "value": value, "currency": params.get("cd[currency]") });
    }
    Ok(event)
}

pub async fn get_pixel(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params: BTreeMap<String, String> = match serde_urlencoded::from_str(query.as_deref().unwrap_or_default()) {
        Ok(params) => params,
        Err(error) => return refused("query", &error.to_string()),
    };
    let Some(pixel_id) = params.get("id") else {
        return refused("id", "the pixel id is required");
    };
    let mut sim = state.lock();
    let event = match browser_event(&params, sim.now_unix()) {
        Ok(event) => event,
        Err(response) => return response,
    };
    if let Err(rule) = sim.receive_pixel_event(pixel_id, event) {
        return refused("id", &rule);
    }
    ([(header::CONTENT_TYPE, "image/gif")], PIXEL_GIF).into_response()
}
