//! `/_sim/*`: what tests and developers use to see and steer the simulation. Never part of Meta's API.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::clock::ClockMode;
use crate::faults::FaultSettings;
use crate::objects::ObjectKind;
use crate::state::SimState;

fn bad_request(field: &str, rule: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"code": "invalid_argument", "message": format!("{field}: {rule}"), "field": field}})),
    )
        .into_response()
}

fn clock_report(sim: &SimState) -> Value {
    let simulated_hour = sim.simulated_hour();
    json!({
        "mode": sim.clock.mode(),
        "simulated_hours_per_second": sim.clock.simulated_hours_per_second(),
        "simulated_hour": simulated_hour,
        "world_hour": sim.world().hour(),
        "now_unix": sim.now_unix(),
        "date": sim.start_date().plus_days((simulated_hour / 24.0).floor() as i64).to_string(),
        "start_date": sim.start_date().to_string(),
    })
}

/// Every object with its status, budget and history, plus counters.
pub async fn get_state(State(state): State<AppState>) -> Json<Value> {
    let sim = state.lock();
    let objects: Vec<Value> = sim
        .objects()
        .all()
        .map(|object| {
            let daily_budget = (object.kind == ObjectKind::AdSet)
                .then(|| {
                    object
                        .truth_index
                        .map(|index| sim.world().ad_set_daily_budget(index).get())
                })
                .flatten();
            json!({
                "id": object.id,
                "kind": object.kind,
                "name": object.name,
                "account_id": object.account_id,
                "campaign_id": object.campaign_id,
                "ad_set_id": object.ad_set_id,
                "status": object.status,
                "effective_status": sim.objects().effective_status(object),
                "daily_budget": daily_budget,
                "history": object.history,
            })
        })
        .collect();
    Json(json!({
        "scenario": sim.scenario_name(),
        "seed": sim.seed(),
        "currency": sim.currency().code(),
        "clock": clock_report(&sim),
        "counters": sim.counters,
        "world_totals": sim.world_totals,
        "objects": objects,
    }))
}

#[derive(Deserialize)]
pub struct RequestsQuery {
    /// Only requests with a larger sequence number.
    #[serde(default)]
    after_sequence: u64,
}

pub async fn get_requests(State(state): State<AppState>, Query(query): Query<RequestsQuery>) -> Json<Value> {
    let sim = state.lock();
    let requests: Vec<Value> = sim
        .requests()
        .filter(|record| record.sequence > query.after_sequence)
        .map(|record| json!(record))
        .collect();
    Json(json!({ "requests": requests }))
}

pub async fn get_capi_events(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let sim = state.lock();
    let events: Vec<Value> = sim
        .capi_store()
        .events()
        .iter()
        .filter(|event| query.get("pixel_id").is_none_or(|pixel_id| *pixel_id == event.pixel_id))
        .filter(|event| query.get("event_name").is_none_or(|name| *name == event.event_name))
        .map(|event| json!(event))
        .collect();
    let unique = events.iter().filter(|event| event["deduplicated"] == false).count();
    let from = |channel: &str| events.iter().filter(|event| event["channel"] == channel).count();
    Json(json!({
        "counts": {
            "received": events.len(),
            "unique": unique,
            "deduplicated": events.len() - unique,
            "browser": from("browser"),
            "server": from("server"),
        },
        // `?counts_only=true` leaves the events out (a month of them is megabytes).
        "events": if query.get("counts_only").is_some_and(|value| value == "true") { Vec::new() } else { events },
    }))
}

pub async fn post_reset(State(state): State<AppState>) -> Response {
    let mut sim = state.lock();
    match sim.reset() {
        Ok(()) => Json(json!({ "reset": true, "clock": clock_report(&sim) })).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "reset": false, "error": error.to_string() })),
        )
            .into_response(),
    }
}

pub async fn get_clock(State(state): State<AppState>) -> Json<Value> {
    let sim = state.lock();
    Json(clock_report(&sim))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockChange {
    mode: Option<ClockMode>,
    simulated_hours_per_second: Option<f64>,
    advance_hours: Option<f64>,
}

/// `{"mode": "manual"}`, `{"mode": "accelerated", "simulated_hours_per_second": 24}`, `{"advance_hours": 6}`.
pub async fn post_clock(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let change: ClockChange = match serde_json::from_slice(&body) {
        Ok(change) => change,
        Err(error) => {
            return bad_request(
                "body",
                &format!("expected mode, simulated_hours_per_second or advance_hours: {error}"),
            );
        }
    };
    let mut sim = state.lock();
    if let Some(speed) = change.simulated_hours_per_second
        && !(speed.is_finite() && speed > 0.0)
    {
        return bad_request("simulated_hours_per_second", "must be a positive number");
    }
    if let Some(hours) = change.advance_hours
        && !(hours.is_finite() && (0.0..=24.0 * 366.0).contains(&hours))
    {
        return bad_request("advance_hours", "must be between 0 and 8784 (a year)");
    }
    if change.mode.is_some() || change.simulated_hours_per_second.is_some() {
        let mode = change.mode.unwrap_or(sim.clock.mode());
        let speed = change
            .simulated_hours_per_second
            .unwrap_or(sim.clock.simulated_hours_per_second());
        sim.clock.set_mode(mode, speed);
    }
    if let Some(hours) = change.advance_hours {
        sim.clock.advance_hours(hours);
    }
    sim.catch_up();
    Json(clock_report(&sim)).into_response()
}

pub async fn get_faults(State(state): State<AppState>) -> Json<Value> {
    let sim = state.lock();
    Json(json!(sim.faults.settings()))
}

pub async fn post_faults(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let faults: FaultSettings = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(error) => return bad_request("body", &format!("not a fault configuration: {error}")),
    };
    if let Err(rule) = faults.validate() {
        return bad_request("faults", &rule);
    }
    let mut sim = state.lock();
    sim.replace_faults(faults);
    Json(json!(sim.faults.settings())).into_response()
}

pub async fn delete_faults(State(state): State<AppState>) -> Json<Value> {
    let mut sim = state.lock();
    sim.replace_faults(FaultSettings::default());
    Json(json!(sim.faults.settings()))
}
