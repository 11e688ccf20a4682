//! Graph parameters arrive in the query string, a form body or a JSON body; all three merge into one map.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::Value;

use crate::graph_error::GraphError;

/// Query parameters, then body parameters (which win).
pub fn merge_parameters(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<BTreeMap<String, Value>, GraphError> {
    let mut parameters = BTreeMap::new();
    // `Authorization: Bearer <token>` (or `OAuth <token>`) carries the access token as well as the parameter.
    if let Some(token) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("OAuth ")))
    {
        parameters.insert("access_token".to_owned(), Value::String(token.trim().to_owned()));
    }
    if let Some(query) = query {
        for (key, value) in form_pairs(query.as_bytes())? {
            parameters.insert(key, Value::String(value));
        }
    }
    if body.is_empty() {
        return Ok(parameters);
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
            return Err(GraphError::invalid_parameter("the JSON body must be an object"));
        };
        parameters.extend(object);
    } else if content_type.starts_with("multipart/") {
        return Err(GraphError::invalid_parameter(
            "multipart bodies are not supported; send a form or JSON body",
        ));
    } else {
        for (key, value) in form_pairs(body)? {
            parameters.insert(key, Value::String(value));
        }
    }
    Ok(parameters)
}

pub fn form_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, GraphError> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
        .map_err(|error| GraphError::invalid_parameter(format!("malformed parameters: {error}")))
}

/// Graph calls take every parameter as text: strings as they are, anything else as its JSON text.
pub fn as_text_parameters(parameters: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    parameters
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (key.clone(), text)
        })
        .collect()
}
