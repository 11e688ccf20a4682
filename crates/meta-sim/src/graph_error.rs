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

    /// A refused Conversions API event: Meta answers `message: "Invalid parameter"` and puts the detail in
    /// `error_user_msg`.
    pub fn capi_invalid_parameter(subcode: Option<u32>, title: &str, detail: String) -> GraphError {
        GraphError::new(400, "OAuthException", 100, subcode, "Invalid parameter".to_owned())
            .with_user_message(title, detail)
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

    /// Code 190: the access token is missing, malformed or unknown (HTTP 401).
    pub fn invalid_access_token(reason: &str) -> GraphError {
        GraphError::new(
            401,
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

    /// Code 1 as Meta answers an insights request whose answer would be too large: not transient (the same
    /// request fails again); a smaller page or an async report run succeeds.
    pub fn too_much_data() -> GraphError {
        GraphError::new(
            500,
            "OAuthException",
            1,
            None,
            "Please reduce the amount of data you're asking for, then retry your request".to_owned(),
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

    /// The error an injected `graph_error` fault answers with: Meta's wording, type, HTTP status and
    /// transience for the codes in [`KNOWN_ERRORS`], the throttling shape for other codes; `http_status` and
    /// `message` override.
    pub fn injected(code: u32, subcode: Option<u32>, http_status: Option<u16>, message: Option<String>) -> GraphError {
        let mut error = match KNOWN_ERRORS
            .iter()
            .find(|known| known.code == code && known.subcode == subcode)
        {
            Some(known) => {
                let mut error = GraphError::new(
                    known.http_status,
                    known.error_type,
                    code,
                    subcode,
                    known.message.to_owned(),
                );
                error.is_transient = known.is_transient;
                if let Some((title, user_message)) = known.user_message {
                    error = error.with_user_message(title, user_message);
                }
                error
            }
            None if matches!(code, 1 | 2) => GraphError::transient_service_error(code, 500),
            None => GraphError::throttled(code, subcode),
        };
        if let Some(http_status) = http_status {
            error.http_status = http_status;
        }
        if let Some(message) = message {
            error.message = message;
        }
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

/// An error as Meta sends it, for injection.
struct KnownError {
    code: u32,
    subcode: Option<u32>,
    http_status: u16,
    error_type: &'static str,
    message: &'static str,
    user_message: Option<(&'static str, &'static str)>,
    is_transient: bool,
}

/// Errors clients meet at Meta, by code and subcode, with the HTTP status, type, wording and transience
/// Meta's error reference and public SDK users report. (Code 1's "Please reduce the amount of data you're
/// asking for, then retry your request" shares code 1 with the plain unknown error: inject it with
/// `message`.)
const KNOWN_ERRORS: &[KnownError] = &[
    KnownError {
        code: 1,
        subcode: None,
        http_status: 500,
        error_type: "OAuthException",
        message: "An unknown error occurred",
        user_message: None,
        is_transient: true,
    },
    KnownError {
        code: 1,
        subcode: Some(99),
        http_status: 500,
        error_type: "OAuthException",
        message: "An unknown error occurred",
        user_message: None,
        is_transient: true,
    },
    KnownError {
        code: 2,
        subcode: None,
        http_status: 503,
        error_type: "OAuthException",
        message: "An unexpected error has occurred. Please retry your request later.",
        user_message: None,
        is_transient: true,
    },
    KnownError {
        code: 4,
        subcode: None,
        http_status: 400,
        error_type: "OAuthException",
        message: "(#4) Application request limit reached",
        user_message: None,
        is_transient: true,
    },
    KnownError {
        code: 4,
        subcode: Some(1_504_022),
        http_status: 400,
        error_type: "OAuthException",
        message: "(#4) Application request limit reached",
        user_message: Some((
            "Too many API requests",
            "There have been too many calls to the Ads Insights platform. Please wait a bit and try again.",
        )),
        is_transient: true,
    },
    KnownError {
        code: 4,
        subcode: Some(1_504_039),
        http_status: 400,
        error_type: "OAuthException",
        message: "(#4) Application request limit reached",
        user_message: Some((
            "Too many API requests",
            "There have been too many calls to the Ads Insights platform. Please wait a bit and try again.",
        )),
        is_transient: true,
    },
    KnownError {
        code: 17,
        subcode: Some(2_446_079),
        http_status: 400,
        error_type: "OAuthException",
        message: "(#17) User request limit reached",
        user_message: Some((
            "Ad Account Has Too Many API Calls",
            "There have been too many calls from this ad account. Please wait a bit and try again.",
        )),
        is_transient: true,
    },
    KnownError {
        code: 190,
        subcode: None,
        http_status: 401,
        error_type: "OAuthException",
        message: "Invalid OAuth access token - Cannot parse access token",
        user_message: None,
        is_transient: false,
    },
    KnownError {
        code: 613,
        subcode: None,
        http_status: 400,
        error_type: "OAuthException",
        message: "(#613) Calls to this api have exceeded the rate limit.",
        user_message: None,
        is_transient: false,
    },
    KnownError {
        code: 613,
        subcode: Some(1_487_742),
        http_status: 400,
        error_type: "OAuthException",
        message: "(#613) Calls to this api have exceeded the rate limit.",
        user_message: Some((
            "Too Many Calls",
            "There have been too many calls from this ad-account. Wait a bit and try again.",
        )),
        is_transient: true,
    },
    KnownError {
        code: 100,
        subcode: Some(1_885_621),
        http_status: 400,
        error_type: "OAuthException",
        message: "Invalid parameter",
        user_message: Some((
            "Budget Conflict: Campaign Already Has a Budget",
            "This ad set is in a campaign that uses a campaign budget: set the budget on the campaign, not on its \
             ad sets.",
        )),
        is_transient: false,
    },
];
