//! Request input whose errors name the offending field, answered as 400 with the service's error body:
//! JSON bodies (`ads[2].clicks: invalid type ...`) and query strings (`limit: invalid digit found in
//! string`; the framework's own extractor answers those in plain text, naming no field). Text holding a NUL
//! character is refused here too: Postgres cannot store one, and it is never meaningful input.

use std::fmt::Display;

use adloop_service_kit::error::ServiceError;
use axum::body::Bytes;
use serde::de::DeserializeOwned;

const NUL_RULE: &str = "must not contain a NUL character";

pub fn parse_json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ServiceError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed: T =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| invalid_input(error, "body"))?;
    // JSON can carry a NUL only escaped; only then is the body looked at again, to name the field.
    if body.windows(6).any(|window| window.eq_ignore_ascii_case(b"\\u0000")) {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        if let Some(field) = path_to_text_with_nul(&value, "") {
            return Err(ServiceError::invalid_field(field, NUL_RULE));
        }
    }
    Ok(parsed)
}

/// The path (`ads[2].ad_id`) of the first key or string in `value` that holds a NUL character.
fn path_to_text_with_nul(value: &serde_json::Value, path: &str) -> Option<String> {
    let name = |path: &str| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => Some(name(path)),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| path_to_text_with_nul(item, &format!("{}[{index}]", name(path)))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let field_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                Some(name(path))
            } else {
                path_to_text_with_nul(item, &field_path)
            }
        }),
        _ => None,
    }
}

/// Parses a route's query string (absent: no parameters) into `T`.
pub fn parse_query<T: DeserializeOwned>(raw_query: Option<&str>) -> Result<T, ServiceError> {
    let parameters = form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes());
    if let Some((name, _)) = parameters
        .clone()
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        let field = if name.contains('\0') {
            "query".to_owned()
        } else {
            name.into_owned()
        };
        return Err(ServiceError::invalid_field(field, NUL_RULE));
    }
    let deserializer = serde_urlencoded::Deserializer::new(parameters);
    serde_path_to_error::deserialize(deserializer).map_err(|error| invalid_input(error, "query"))
}

/// The error named by the path to the offending field (an unknown one names itself), or `whole` (the
/// body, the query) when the input as a whole is wrong (a body that is not JSON).
fn invalid_input<E: Display>(error: serde_path_to_error::Error<E>, whole: &str) -> ServiceError {
    let path = error.path().to_string();
    let field = if path == "." || path.is_empty() {
        whole.to_owned()
    } else {
        path
    };
    ServiceError::invalid_field(field, error.inner().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Query {
        object: Option<String>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        ads: Vec<serde_json::Value>,
    }

    #[test]
    fn a_nul_character_anywhere_is_refused_naming_its_field() {
        let error = parse_query::<Query>(Some("object=a%00b")).unwrap_err();
        assert_eq!(
            (error.field.as_deref(), error.message.as_str()),
            (Some("object"), "object: must not contain a NUL character")
        );
        assert!(parse_query::<Query>(Some("object=ab")).is_ok());
        let body = Bytes::from_static(br#"{"ads": [{"ad_id": "fine"}, {"ad_id": "bad\u0000"}]}"#);
        let error = parse_json_body::<Body>(&body).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("ads[1].ad_id"));
        let fine = Bytes::from_static(br#"{"ads": [{"ad_id": "a\\u0000 spelled out"}]}"#);
        assert!(
            parse_json_body::<Body>(&fine).is_ok(),
            "an escaped backslash is not a NUL"
        );
    }
}
