//! `POST /{version}/{pixel_id}/events`: Meta's own request shape (JSON, or a form body with `data` as a JSON
//! string, as Meta's SDKs send it), so an existing client only changes its base URL. The `access_token` is
//! the relay's ingest token (also accepted as `Authorization: Bearer`), scoped to the pixels its source may
//! write. Every event is checked as Meta would (`adloop_capi_events::event`); as at Meta one bad event
//! refuses the whole request and nothing is stored, unless `partial=true` asks to store the good ones and
//! list the refused. Accepted events are committed before the answer. Answers and errors keep Meta's shape.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::ingest_common::{Refusal, admitted_body, authenticate, off_the_runtime_if_large};
use super::ingest_pipeline::{EventShape, IngestRequest, check_and_store};

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
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !is_graph_version(&version) {
        return Refusal::invalid("version", "must look like v25.0").meta();
    }
    // Parsed here rather than by the framework's extractor, whose refusal is plain text. The only way these
    // text fields fail is a repeated one; the rule names them without echoing a value (a token).
    let Ok(query) = serde_urlencoded::from_str::<RequestFields>(raw_query.as_deref().unwrap_or_default()) else {
        return Refusal::invalid(
            "query",
            "access_token, test_event_code and partial may each appear once",
        )
        .meta();
    };
    let (body, _admitted) = match admitted_body(&state, &headers, body).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.meta(),
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let body_bytes = body.len();
    let parsed = off_the_runtime_if_large(body_bytes, move || parse_body(&body, is_form)).await;
    let (events, fields) = match parsed {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.meta(),
    };
    let access_token = fields.access_token.as_deref().or(query.access_token.as_deref());
    let source = match authenticate(&state, &headers, access_token).await {
        Ok(source) => source,
        Err(refusal) => return refusal.meta(),
    };
    let partial = match fields.partial.or(query.partial).as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return Refusal::invalid("partial", "must be true or false").meta(),
    };
    let test_event_code = fields.test_event_code.clone().or(query.test_event_code.clone());
    let request = IngestRequest {
        pixel_id,
        source,
        events,
        partial,
        body_bytes,
        shape: EventShape::Meta,
        test_event_code,
    };
    let ingested = match check_and_store(&state, request).await {
        Ok(ingested) => ingested,
        Err(refusal) => return refusal.meta(),
    };
    let messages: Vec<String> = ingested
        .refused
        .iter()
        .map(|refused| format!("{}: {}", refused.field, refused.rule))
        .collect();
    Json(json!({
        "events_received": ingested.accepted.len(),
        "messages": messages,
        "fbtrace_id": "adloop-relay",
        "adloop": {
            "stored": ingested.stored.stored,
            "deduplicated": ingested.stored.deduplicated,
            "refused": ingested.refused.len(),
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

/// The events and the other fields of a JSON or form body.
fn parse_body(body: &[u8], is_form: bool) -> Result<(Vec<Value>, RequestFields), Refusal> {
    if is_form {
        let form: FormBody = serde_urlencoded::from_bytes(body)
            .map_err(|_| Refusal::invalid("", "the form body is not valid form encoding"))?;
        let Some(data) = form.data else {
            return Err(Refusal::invalid("data", "is required (the events, as a JSON array)"));
        };
        let Ok(Value::Array(events)) = serde_json::from_str::<Value>(&data) else {
            return Err(Refusal::invalid("data", "must be a JSON array of events"));
        };
        return Ok((decoded_events(events), form.fields));
    }
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else {
        return Err(Refusal::invalid(
            "",
            "the body must be a JSON object with data (or a form body)",
        ));
    };
    let events = match object.remove("data") {
        Some(Value::Array(events)) => events,
        // The SDKs may send `data` as a JSON string inside JSON too.
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(events)) => events,
            _ => return Err(Refusal::invalid("data", "must be a JSON array of events")),
        },
        _ => return Err(Refusal::invalid("data", "is required (an array of events)")),
    };
    // A field of the wrong type is refused rather than dropped: a test_event_code given as a number must not
    // quietly send the event to production.
    let mut text_field = |name: &str, may_be_boolean: bool| match object.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(Value::Bool(flag)) if may_be_boolean => Ok(Some(flag.to_string())),
        Some(_) if may_be_boolean => Err(Refusal::invalid(name, "must be true or false")),
        Some(_) => Err(Refusal::invalid(name, "must be a string")),
    };
    let fields = RequestFields {
        access_token: text_field("access_token", false)?,
        test_event_code: text_field("test_event_code", false)?,
        partial: text_field("partial", true)?,
    };
    // Meta's label of the integration: checked as Meta checks it, not forwarded (the relay sends events of many
    // requests together, under its own).
    text_field("partner_agent", false)?;
    Ok((decoded_events(events), fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_versions_look_like_v25_0() {
        assert!(is_graph_version("v25.0"));
        assert!(!is_graph_version("25.0") && !is_graph_version("v25") && !is_graph_version("vx.1"));
    }

    #[test]
    fn request_fields_of_the_wrong_type_are_refused_by_name() {
        let refused_field = |body: &str| match parse_body(body.as_bytes(), false) {
            Ok(_) => None,
            Err(Refusal::Invalid { field, .. }) => Some(field),
            Err(_) => panic!("refused for another reason than a field"),
        };
        let events = r#""data": [{"event_name": "Lead"}]"#;
        assert_eq!(
            refused_field(&format!(r#"{{{events}, "partner_agent": "shop-plugin-2.1"}}"#)),
            None
        );
        assert_eq!(
            refused_field(&format!(r#"{{{events}, "partner_agent": {{}}}}"#)).as_deref(),
            Some("partner_agent")
        );
        assert_eq!(
            refused_field(&format!(r#"{{{events}, "test_event_code": 12345}}"#)).as_deref(),
            Some("test_event_code")
        );
        assert_eq!(
            refused_field(&format!(r#"{{{events}, "partial": null}}"#)),
            None,
            "null is absent"
        );
    }

    proptest::proptest! {
        #[test]
        fn no_body_makes_the_parser_panic(body in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..512), is_form: bool) {
            let _ = parse_body(&body, is_form);
        }

        #[test]
        fn no_json_or_form_text_makes_the_parser_panic(text in "\\PC{0,200}", is_form: bool) {
            let _ = parse_body(text.as_bytes(), is_form);
            let _ = parse_body(format!("data={text}").as_bytes(), true);
            let _ = parse_body(format!("{{\"data\": {text}}}").as_bytes(), false);
        }
    }
}
