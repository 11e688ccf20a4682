//! What every ingest route shares: the ingest token check, the bound on bodies in flight, the rules events
//! are checked by, and refusals — answered in Meta's error shape by the drop-in routes and in adloop's own
//! (`{"error": {"code", "message", "field"}}`) by `/v1/events`.

use adloop_capi_events::event::TimeRules;
use adloop_capi_events::user_data::NormaliseSettings;
use adloop_service_kit::error::{ErrorCode, ServiceError};
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::routes::AppState;
use crate::sources::IngestSource;

/// Why an ingest request is refused, before either shape renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Bad input: the field (empty for the request as a whole) and the rule; nothing was stored.
    Invalid {
        field: String,
        rule: String,
    },
    MissingToken,
    UnknownToken,
    PixelNotAllowed,
    TooLarge,
    /// Too much in flight: retry in a moment.
    Overloaded,
    /// Postgres did not answer or failed: nothing was acknowledged; retry.
    StoreUnavailable,
    /// The clock events are judged by (`clock.source`) could not be read: retry.
    ClockUnavailable,
    InvalidSettings,
}

impl Refusal {
    pub(super) fn invalid(field: &str, rule: &str) -> Refusal {
        Refusal::Invalid {
            field: field.to_owned(),
            rule: rule.to_owned(),
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::Invalid { field, rule } if field.is_empty() => rule.clone(),
            Refusal::Invalid { field, rule } => format!("{field}: {rule}"),
            Refusal::MissingToken => "an ingest token is required: access_token, or Authorization: Bearer".into(),
            Refusal::UnknownToken => "access_token: not a valid ingest token".into(),
            Refusal::PixelNotAllowed => "pixel_id: this ingest token may not use this pixel".into(),
            Refusal::TooLarge => "the request body is larger than 8 MiB (1,000 events of a few KiB each)".into(),
            Refusal::Overloaded => "the relay is overloaded; retry in a moment".into(),
            Refusal::StoreUnavailable => "the relay could not store the events; retry".into(),
            Refusal::ClockUnavailable => "the relay cannot read its clock (clock.source); retry".into(),
            Refusal::InvalidSettings => "the relay's ingest settings are invalid".into(),
        }
    }

    /// Meta's shape: code 100 for a bad parameter, 190 for a bad token, 200 for a pixel the token may not
    /// write, 2 for "temporary, retry" (Meta's SDKs and most clients retry it).
    pub(super) fn meta(self) -> Response {
        let (status, code) = match &self {
            Refusal::Invalid { .. } => (StatusCode::BAD_REQUEST, 100),
            Refusal::MissingToken | Refusal::UnknownToken => (StatusCode::UNAUTHORIZED, 190),
            Refusal::PixelNotAllowed => (StatusCode::FORBIDDEN, 200),
            Refusal::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, 100),
            Refusal::Overloaded => (StatusCode::TOO_MANY_REQUESTS, 2),
            Refusal::StoreUnavailable | Refusal::ClockUnavailable => (StatusCode::SERVICE_UNAVAILABLE, 2),
            Refusal::InvalidSettings => (StatusCode::INTERNAL_SERVER_ERROR, 1),
        };
        let message = self.message();
        let body = json!({
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "error_user_msg": message,
                "fbtrace_id": "adloop-relay",
            }
        });
        self.with_retry_after((status, Json(body)).into_response())
    }

    /// adloop's shared error shape and codes.
    pub(super) fn adloop(self) -> Response {
        let code = match &self {
            Refusal::Invalid { .. } | Refusal::TooLarge => ErrorCode::InvalidArgument,
            Refusal::MissingToken | Refusal::UnknownToken => ErrorCode::Unauthenticated,
            Refusal::PixelNotAllowed => ErrorCode::PermissionDenied,
            Refusal::Overloaded => ErrorCode::RateLimited,
            Refusal::StoreUnavailable | Refusal::ClockUnavailable => ErrorCode::Unavailable,
            Refusal::InvalidSettings => ErrorCode::Internal,
        };
        let error = match &self {
            Refusal::Invalid { field, rule } if !field.is_empty() => ServiceError::invalid_field(field, rule),
            Refusal::PixelNotAllowed => {
                ServiceError::invalid_field("pixel_id", "this ingest token may not use this pixel")
            }
            _ => ServiceError::new(code, self.message()),
        };
        let error = ServiceError { code, ..error };
        let mut response = error.into_response();
        if self == Refusal::TooLarge {
            *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        }
        self.with_retry_after(response)
    }

    fn with_retry_after(&self, mut response: Response) -> Response {
        if *self == Refusal::Overloaded {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Now on the relay's clock (the system's, or meta-sim's simulated one in development), in Unix seconds.
pub(super) async fn now_unix(state: &AppState) -> Result<i64, Refusal> {
    match state.clock.now_unix().await {
        Ok(now) => Ok(now.floor() as i64),
        Err(error) => {
            tracing::warn!(%error, "cannot read the clock");
            Err(Refusal::ClockUnavailable)
        }
    }
}

/// The calendar year of a Unix time (UTC).
pub(super) fn year_of(unix_seconds: i64) -> u32 {
    let date = adloop_service_kit::calendar::civil_from_days(unix_seconds.div_euclid(86_400));
    u32::try_from(date.year).unwrap_or(0)
}

/// The ingest source of the request's token (bearer first, then `access_token`).
pub(super) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    access_token: Option<&str>,
) -> Result<IngestSource, Refusal> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = bearer.or(access_token) else {
        return Err(Refusal::MissingToken);
    };
    match state.sources.source_of_token(&state.database_pool, token).await {
        Ok(Some(source)) => Ok(source),
        Ok(None) => Err(Refusal::UnknownToken),
        Err(error) => {
            tracing::error!(%error, "ingest: could not look the token up");
            Err(Refusal::StoreUnavailable)
        }
    }
}

/// The rules events are checked by at `now`: the relay's ingest settings, this year as the latest birth year.
pub(super) fn event_rules(state: &AppState, now: i64) -> Result<(NormaliseSettings, TimeRules), Refusal> {
    let mut normalise = state.ingest.normalise_settings().ok_or(Refusal::InvalidSettings)?;
    normalise.current_year = year_of(now);
    let time_rules = TimeRules {
        future_tolerance_seconds: state.ingest.future_tolerance_seconds,
        ..TimeRules::default()
    };
    Ok((normalise, time_rules))
}

/// The request's body, read only if the relay can hold it now: bodies in flight are bounded (by their
/// declared length, or the largest allowed when none is declared), so a burst is refused with 429 rather
/// than exhausting memory. The permit is held until the request is answered.
pub(super) async fn admitted_body(
    state: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<(axum::body::Bytes, tokio::sync::OwnedSemaphorePermit), Refusal> {
    let declared_bytes = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(super::MAX_BODY_BYTES);
    if declared_bytes > super::MAX_BODY_BYTES {
        return Err(Refusal::TooLarge);
    }
    let kib = u32::try_from(declared_bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let Ok(permit) = state.bodies_in_flight.clone().try_acquire_many_owned(kib) else {
        return Err(Refusal::Overloaded);
    };
    match axum::body::to_bytes(body, super::MAX_BODY_BYTES).await {
        Ok(bytes) => Ok((bytes, permit)),
        Err(_) => Err(Refusal::TooLarge),
    }
}

/// Bodies larger than this are parsed and checked on the blocking pool: a thousand events take
/// milliseconds of CPU, far past what one async task may hold a runtime thread for.
const LARGE_BODY_BYTES: usize = 16 * 1024;

/// Runs `work` here for a small body, on the blocking pool for a large one.
pub(super) async fn off_the_runtime_if_large<T: Send + 'static>(
    body_bytes: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    if body_bytes <= LARGE_BODY_BYTES {
        return work();
    }
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
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
}
