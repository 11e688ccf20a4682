//! JSON bodies whose errors name the offending field (`ads[2].clicks: invalid type ...`), answered as 400.

use adloop_service_kit::error::ServiceError;
use axum::body::Bytes;
use serde::de::DeserializeOwned;

pub fn parse_json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ServiceError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." || path.is_empty() {
            "body".to_owned()
        } else {
            path
        };
        ServiceError::invalid_field(field, error.inner().to_string())
    })
}
