//! Every route but health, readiness and metrics needs `Authorization: Bearer <API key>`; the key decides
//! the tenant the request acts for. The recovery plan's routes may be opened to keyless requests
//! (`api_keys.open_recovery_plan_routes`); they act for no tenant.

use adloop_service_kit::error::{ErrorCode, ServiceError};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The tenant of the request's API key.
#[derive(Debug, Clone)]
pub struct Tenant(pub String);

/// Lets a request without an `Authorization` header through when the deployment opened the recovery plan's
/// routes; any key a request does send is checked as on every other route, so a wrong key is still refused.
pub async fn require_api_key_unless_recovery_plan_routes_open(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let sends_no_key = !request.headers().contains_key(axum::http::header::AUTHORIZATION);
    if state.open_recovery_plan_routes && sends_no_key {
        return next.run(request).await;
    }
    require_api_key(State(state), request, next).await
}

pub async fn require_api_key(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(key) = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|key| !key.is_empty())
    else {
        return ServiceError::new(
            ErrorCode::Unauthenticated,
            "missing API key: send `Authorization: Bearer <key>` (create one with `gateway-api keys create --tenant <tenant>`)",
        )
        .into_response();
    };
    match crate::api_keys::tenant_of_key(&state.database_pool, key).await {
        Ok(Some(tenant)) => {
            request.extensions_mut().insert(Tenant(tenant));
            next.run(request).await
        }
        Ok(None) => ServiceError::new(ErrorCode::Unauthenticated, "unknown or revoked API key").into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot check an API key");
            ServiceError::new(ErrorCode::Unavailable, "cannot check the API key right now").into_response()
        }
    }
}
