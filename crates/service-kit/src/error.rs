//! One small error code set for every adloop API. Each code has one HTTP status and one gRPC code, so a
//! failure means the same thing whichever protocol reports it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or breaks a rule; nothing was written.
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    /// The request conflicts with the current state (e.g. an idempotency key reused with another body).
    Conflict,
    /// The path exists but does not take the request's method.
    MethodNotAllowed,
    RateLimited,
    /// A dependency is down or the service is draining; retrying later may succeed.
    Unavailable,
    Timeout,
    Unimplemented,
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorCode::InvalidArgument => tonic::Code::InvalidArgument,
            ErrorCode::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorCode::PermissionDenied => tonic::Code::PermissionDenied,
            ErrorCode::NotFound => tonic::Code::NotFound,
            ErrorCode::Conflict => tonic::Code::AlreadyExists,
            ErrorCode::MethodNotAllowed => tonic::Code::Unimplemented,
            ErrorCode::RateLimited => tonic::Code::ResourceExhausted,
            ErrorCode::Unavailable => tonic::Code::Unavailable,
            ErrorCode::Timeout => tonic::Code::DeadlineExceeded,
            ErrorCode::Unimplemented => tonic::Code::Unimplemented,
            ErrorCode::Internal => tonic::Code::Internal,
        }
    }

    /// The code a gRPC status maps back to, for a gateway relaying an ml-service failure over HTTP.
    pub fn from_grpc_code(code: tonic::Code) -> Self {
        match code {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange | tonic::Code::FailedPrecondition => {
                ErrorCode::InvalidArgument
            }
            tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
            tonic::Code::PermissionDenied => ErrorCode::PermissionDenied,
            tonic::Code::NotFound => ErrorCode::NotFound,
            tonic::Code::AlreadyExists | tonic::Code::Aborted => ErrorCode::Conflict,
            tonic::Code::ResourceExhausted => ErrorCode::RateLimited,
            tonic::Code::Unavailable | tonic::Code::Cancelled => ErrorCode::Unavailable,
            tonic::Code::DeadlineExceeded => ErrorCode::Timeout,
            tonic::Code::Unimplemented => ErrorCode::Unimplemented,
            tonic::Code::Ok | tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::DataLoss => {
                ErrorCode::Internal
            }
        }
    }
}

/// An API failure: a code, a lowercase message that names the offending field and rule, and the field.
/// Messages never carry PII or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A bad-input error naming the field and the rule it breaks.
    pub fn invalid_field(field: impl Into<String>, rule: impl std::fmt::Display) -> Self {
        let field = field.into();
        ServiceError {
            code: ErrorCode::InvalidArgument,
            message: format!("{field}: {rule}"),
            field: Some(field),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorBodyInner<'a>,
}

#[derive(Serialize)]
struct ErrorBodyInner<'a> {
    code: ErrorCode,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ServiceError {
    /// `{"error": {"code": "invalid_argument", "message": "...", "field": "..."}}` with the code's HTTP status.
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorBodyInner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        (self.code.http_status(), axum::Json(body)).into_response()
    }
}

impl From<ServiceError> for tonic::Status {
    fn from(error: ServiceError) -> Self {
        tonic::Status::new(error.code.grpc_code(), error.message)
    }
}

impl From<tonic::Status> for ServiceError {
    /// The code maps back; an INVALID_ARGUMENT message of the form `field: rule` (as every adloop service
    /// writes them) gives back its field too.
    fn from(status: tonic::Status) -> Self {
        let code = ErrorCode::from_grpc_code(status.code());
        let message = status.message().to_owned();
        let field = (code == ErrorCode::InvalidArgument)
            .then(|| message.split_once(": "))
            .flatten()
            .map(|(field, _)| field)
            .filter(|field| !field.is_empty() && !field.contains(char::is_whitespace))
            .map(str::to_owned);
        ServiceError { code, message, field }
    }
}

/// The answer to a request no route takes (a router's fallback): the error body instead of an empty 404.
pub async fn no_such_route(method: axum::http::Method, uri: axum::http::Uri) -> ServiceError {
    ServiceError::new(ErrorCode::NotFound, format!("no route {method} {}", uri.path()))
}

/// The answer to a method a route does not take (a router's method-not-allowed fallback; the router still
/// lists the methods it does take in `Allow`).
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ServiceError {
    ServiceError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} does not take {method}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_field_survives_a_round_trip_through_grpc() {
        let original = ServiceError::invalid_field("ads[2].clicks", "must not exceed impressions");
        let relayed = ServiceError::from(tonic::Status::from(original.clone()));
        assert_eq!(relayed, original);
        let not_a_field = ServiceError::from(tonic::Status::internal("internal error: while computing"));
        assert_eq!(not_a_field.field, None);
    }

    #[test]
    fn every_code_survives_a_round_trip_through_grpc() {
        let all_codes = [
            ErrorCode::InvalidArgument,
            ErrorCode::Unauthenticated,
            ErrorCode::PermissionDenied,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
            ErrorCode::Timeout,
            ErrorCode::Unimplemented,
            ErrorCode::Internal,
        ];
        for code in all_codes {
            assert_eq!(ErrorCode::from_grpc_code(code.grpc_code()), code);
        }
    }

    #[test]
    fn invalid_field_names_the_field_and_maps_to_400_and_invalid_argument() {
        let error = ServiceError::invalid_field("ads[2].clicks", "must not exceed impressions");
        assert_eq!(error.message, "ads[2].clicks: must not exceed impressions");
        assert_eq!(error.code.http_status(), StatusCode::BAD_REQUEST);
        assert_eq!(tonic::Status::from(error).code(), tonic::Code::InvalidArgument);
    }
}
