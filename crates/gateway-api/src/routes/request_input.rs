//! Request input whose errors name the offending field, answered as 400 with the service's error body:
//! JSON bodies (`ads[2].clicks: invalid type ...`) and query strings (`limit: invalid digit found in
//! string`; the framework's own extractor answers those in plain text, naming no field).

use std::fmt::Display;

use adloop_service_kit::error::ServiceError;
use axum::body::Bytes;
use serde::de::DeserializeOwned;

pub fn parse_json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ServiceError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| invalid_input(error, "body"))
}

/// Parses a route's query string (absent: no parameters) into `T`.
pub fn parse_query<T: DeserializeOwned>(raw_query: Option<&str>) -> Result<T, ServiceError> {
    let parameters = form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes());
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
