//! Errors in the Graph API's shape: `{"error":{"message","type","code","error_subcode","fbtrace_id",...}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::RngExt as _;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphError {
    #[serde(skip)]
    pub http_status: u16,
    pub message: String,
    #[serde(rename = "type")]
    pub error_type: &'static str,
    pub code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<u32>,
    pub is_transient: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_user_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_user_msg: Option<String>,
    pub fbtrace_id: String,
}

/// A trace id like Meta's: 23 URL-safe characters.
pub fn new_fbtrace_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..23)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl GraphError {
    fn new(http_status: u16, error_type: &'static str, code: u32, subcode: Option<u32>, message: String) -> GraphError {
        GraphError {
            http_status,
            message,
            error_type,
            code,
            error_subcode: subcode,
            is_transient: false,
            error_user_title: None,
            error_user_msg: None,
            fbtrace_id: new_fbtrace_id(),
        }
    }

    pub fn with_user_message(mut self, title: &str, message: impl Into<String>) -> GraphError {
        self.error_user_title = Some(title.to_owned());
        self.error_user_msg = Some(message.into());
        self
    }

    /// Code 100: a parameter is missing, malformed or breaks a rule.
    pub fn invalid_parameter(message: impl Into<String>) -> GraphError {
        GraphError::new(400, "OAuthException", 100, None, format!("(#100) {}", message.into()))
    }

    pub fn invalid_parameter_with_subcode(subcode: u32, message: impl Into<String>) -> GraphError {
        GraphError::new(
            400,
            "OAuthException",
            100,
            Some(subcode),
            format!("(#100) {}", message.into()),
        )
    }

    /// Code 100 / subcode 33: the object does not exist or this token cannot see it.
    pub fn unknown_object(object_id: &str, method: &str) -> GraphError {
        GraphError::new(
            400,
            "GraphMethodException",
            100,
            Some(33),
            format!(
                "Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be loaded due to \
                 missing permissions, or does not support this operation"
            ),
        )
    }

    /// Code 190: the access token is missing, malformed or unknown.
    pub fn invalid_access_token(reason: &str) -> GraphError {
        GraphError::new(
            400,
            "OAuthException",
            190,
            None,
            format!("Invalid OAuth access token - {reason}"),
        )
    }

    /// Code 2635: the API version is retired or unknown.
    pub fn unsupported_version(version: &str, minimum: &str) -> GraphError {
        GraphError::new(
            400,
            "OAuthException",
            2635,
            None,
            format!("(#2635) You are calling a deprecated version of the Ads API ({version}); use {minimum} or newer"),
        )
    }

    /// Throttling errors: 4 (app), 17 (user / ad account), 32, 613, 8000x (business use case).
    pub fn throttled(code: u32, subcode: Option<u32>) -> GraphError {
        let message = match code {
            4 => "(#4) Application request limit reached".to_owned(),
            17 => "(#17) User request limit reached".to_owned(),
            32 => "(#32) Page request limit reached".to_owned(),
            613 => "(#613) Calls to this api have exceeded the rate limit.".to_owned(),
            80000 => "(#80000) There have been too many calls from this ad-account (ads insights).".to_owned(),
            80004 => "(#80004) There have been too many calls to this ad-account (ads management).".to_owned(),
            other => format!("(#{other}) Request limit reached"),
        };
        let mut error = GraphError::new(400, "OAuthException", code, subcode, message);
        error.is_transient = true;
        error
    }

    /// 613 / 1487632: an ad set's budget changed too often within an hour.
    /// 613 / 1487632: an ad set's budget changed 4 times within an hour; changes are refused until the
    /// lock (an hour from the refusal that started it) ends. Meta's exact wording is not in its documents.
    pub fn too_many_budget_changes(seconds_locked: f64) -> GraphError {
        let minutes_left = (seconds_locked / 60.0).ceil().max(1.0) as u64;
        GraphError::throttled(613, Some(1_487_632)).with_user_message(
            "Too Many Budget Changes",
            format!(
                "This ad set's budget was changed 4 times within an hour, so budget changes are blocked for \
                 {minutes_left} more minutes. Try again later."
            ),
        )
    }

    /// Codes 1 and 2: Meta's transient "unknown" and "service" errors.
    pub fn transient_service_error(code: u32, http_status: u16) -> GraphError {
        let message = if code == 1 {
            "An unknown error occurred".to_owned()
        } else {
            "An unexpected error has occurred. Please retry your request later.".to_owned()
        };
        let mut error = GraphError::new(http_status, "OAuthException", code, None, message);
        error.is_transient = true;
        error
    }

    /// The error an injected `graph_error` fault answers with: codes 1 and 2 as Meta's transient service
    /// errors, any other code in the throttling shape, with the configured HTTP status.
    pub fn injected(code: u32, subcode: Option<u32>, http_status: u16) -> GraphError {
        if matches!(code, 1 | 2) {
            return GraphError::transient_service_error(code, http_status);
        }
        let mut error = GraphError::throttled(code, subcode);
        error.http_status = http_status;
        error
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self })
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.http_status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, axum::Json(self.body())).into_response()
    }
}
