//! Liveness (`/healthz`: the process serves requests) and readiness (`/readyz`: its required dependencies
//! answer). Optional dependencies are reported without making the service unready.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The longest one dependency check may take. Checks run concurrently, so a readiness answer takes about this
/// long at worst: well inside the probes' `timeoutSeconds: 2` in `deploy/kubernetes`.
pub const DEPENDENCY_CHECK_TIMEOUT: Duration = Duration::from_millis(800);

/// Whether `check` answered `true` within [`DEPENDENCY_CHECK_TIMEOUT`]; a slow dependency counts as down.
pub async fn answers_in_time(check: impl Future<Output = bool>) -> bool {
    tokio::time::timeout(DEPENDENCY_CHECK_TIMEOUT, check)
        .await
        .unwrap_or(false)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Unavailable,
}

impl CheckStatus {
    pub fn from_answered(answered: bool) -> Self {
        if answered {
            CheckStatus::Ok
        } else {
            CheckStatus::Unavailable
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DependencyCheck {
    pub name: &'static str,
    pub status: CheckStatus,
    /// A required dependency that is unavailable makes the service unready.
    pub required: bool,
}

impl DependencyCheck {
    /// A dependency the service cannot serve without.
    pub fn required(name: &'static str, answered: bool) -> Self {
        DependencyCheck {
            name,
            status: CheckStatus::from_answered(answered),
            required: true,
        }
    }

    /// A dependency the service reports but serves without.
    pub fn optional(name: &'static str, answered: bool) -> Self {
        DependencyCheck {
            name,
            status: CheckStatus::from_answered(answered),
            required: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadinessReport {
    pub service: &'static str,
    pub version: &'static str,
    pub ready: bool,
    pub checks: Vec<DependencyCheck>,
}

impl ReadinessReport {
    pub fn from_checks(service: &'static str, version: &'static str, checks: Vec<DependencyCheck>) -> Self {
        let ready = checks
            .iter()
            .all(|check| !check.required || check.status == CheckStatus::Ok);
        ReadinessReport {
            service,
            version,
            ready,
            checks,
        }
    }
}

impl IntoResponse for ReadinessReport {
    /// 200 when ready, 503 otherwise, with the report as JSON either way.
    fn into_response(self) -> Response {
        let status = if self.ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, Json(self)).into_response()
    }
}

#[derive(Serialize)]
struct LivenessBody {
    status: &'static str,
}

/// `/healthz`: answers as long as the process serves requests.
pub async fn liveness() -> Response {
    Json(LivenessBody { status: "ok" }).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_optional_dependency_keeps_the_service_ready() {
        let report = ReadinessReport::from_checks(
            "ml-service",
            "0.1.0",
            vec![
                DependencyCheck {
                    name: "postgres",
                    status: CheckStatus::Ok,
                    required: true,
                },
                DependencyCheck {
                    name: "redis",
                    status: CheckStatus::Unavailable,
                    required: false,
                },
            ],
        );
        assert!(report.ready);
    }

    #[test]
    fn an_unavailable_required_dependency_makes_the_service_unready() {
        let report = ReadinessReport::from_checks(
            "capi-relay",
            "0.1.0",
            vec![DependencyCheck {
                name: "postgres",
                status: CheckStatus::Unavailable,
                required: true,
            }],
        );
        assert!(!report.ready);
        assert_eq!(report.into_response().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
