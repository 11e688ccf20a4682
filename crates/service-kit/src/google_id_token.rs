//! Google-signed ID tokens, for calls to a Cloud Run service whose IAM admits only chosen service accounts
//! (ml-service admits gateway-api's and capi-relay's). Every Cloud Run instance and GKE pod with Workload
//! Identity can ask its metadata server for a token of its own service account, for one audience (the
//! called service's URL); tokens last an hour. A background task keeps one fresh; calls attach it as
//! `authorization: Bearer` and never wait for it.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tonic::metadata::{AsciiMetadataValue, MetadataMap};

/// The metadata server every Google Cloud runtime serves.
pub const DEFAULT_METADATA_URL: &str = "http://metadata.google.internal";
/// Tokens live 60 minutes; a fresh one is fetched well before.
const REFRESH_EVERY: Duration = Duration::from_secs(45 * 60);
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
const METADATA_TIME_OUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("the metadata server did not answer: {0}")]
    Unreachable(String),
    #[error("the metadata server refused the identity request: HTTP {0}")]
    Refused(u16),
    #[error("the metadata server's token is not a valid header value")]
    Malformed,
}

/// The current token for one audience, shared by every clone; refreshed in the background while any
/// clone lives.
#[derive(Clone, Debug)]
pub struct IdTokens {
    current: Arc<RwLock<Option<AsciiMetadataValue>>>,
}

impl IdTokens {
    /// Starts keeping a token for `audience` fresh, from the metadata server at `metadata_url`.
    pub fn start(metadata_url: &str, audience: &str) -> IdTokens {
        let current = Arc::new(RwLock::new(None));
        let request_url = format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/identity?audience={}&format=full",
            metadata_url.trim_end_matches('/'),
            crate::percent_encoding::percent_encode(audience)
        );
        tokio::spawn(keep_fresh(Arc::downgrade(&current), request_url));
        IdTokens { current }
    }

    /// Adds `authorization: Bearer <token>` when a token is at hand (none yet: the call goes without and
    /// the called service's IAM refuses it, as it would any unauthenticated caller).
    pub fn attach(&self, metadata: &mut MetadataMap) {
        let current = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bearer) = current.as_ref() {
            metadata.insert("authorization", bearer.clone());
        }
    }

    /// Whether a token has been fetched.
    pub fn has_token(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }
}

/// Attaches the ID token, when there is one, to every call of a gRPC client.
#[derive(Clone, Debug, Default)]
pub struct IdTokenInterceptor(pub Option<IdTokens>);

impl tonic::service::Interceptor for IdTokenInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(id_tokens) = &self.0 {
            id_tokens.attach(request.metadata_mut());
        }
        Ok(request)
    }
}

async fn keep_fresh(current: Weak<RwLock<Option<AsciiMetadataValue>>>, request_url: String) {
    let http = reqwest::Client::builder().timeout(METADATA_TIME_OUT).build();
    let Ok(http) = http else {
        tracing::error!("cannot build the HTTP client for the metadata server");
        return;
    };
    loop {
        let wait = match fetch(&http, &request_url).await {
            Ok(bearer) => {
                let Some(current) = current.upgrade() else { return };
                *current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bearer);
                REFRESH_EVERY
            }
            Err(error) => {
                tracing::warn!(%error, "cannot fetch an ID token for ml-service; retrying");
                RETRY_AFTER_FAILURE
            }
        };
        tokio::time::sleep(wait).await;
        if current.strong_count() == 0 {
            return;
        }
    }
}

async fn fetch(http: &reqwest::Client, request_url: &str) -> Result<AsciiMetadataValue, IdTokenError> {
    let answer = http
        .get(request_url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .map_err(|error| IdTokenError::Unreachable(error.without_url().to_string()))?;
    if !answer.status().is_success() {
        return Err(IdTokenError::Refused(answer.status().as_u16()));
    }
    let token = answer
        .text()
        .await
        .map_err(|error| IdTokenError::Unreachable(error.without_url().to_string()))?;
    AsciiMetadataValue::try_from(format!("Bearer {}", token.trim())).map_err(|_| IdTokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the metadata server (the real one exists only on Google Cloud), answering as its
    /// documentation says: a token for the requested audience, only with `Metadata-Flavor: Google`.
    async fn metadata_server() -> String {
        use axum::extract::Query;
        use axum::http::{HeaderMap, StatusCode};
        async fn identity(
            headers: HeaderMap,
            Query(query): Query<std::collections::HashMap<String, String>>,
        ) -> Result<String, StatusCode> {
            if headers.get("metadata-flavor").and_then(|value| value.to_str().ok()) != Some("Google") {
                return Err(StatusCode::FORBIDDEN);
            }
            if query.get("format").map(String::as_str) != Some("full") {
                return Err(StatusCode::BAD_REQUEST);
            }
            let audience = query.get("audience").ok_or(StatusCode::BAD_REQUEST)?;
            Ok(format!("token-for-{}\n", audience.replace([':', '/'], "_")))
        }
        let router = axum::Router::new().route(
            "/computeMetadata/v1/instance/service-accounts/default/identity",
            axum::routing::get(identity),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn calls_carry_the_metadata_servers_token_for_the_called_services_url() {
        let metadata_url = metadata_server().await;
        let id_tokens = IdTokens::start(&metadata_url, "https://ml.a.run.app");
        for _ in 0..100 {
            if id_tokens.has_token() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut interceptor = IdTokenInterceptor(Some(id_tokens));
        let request = tonic::service::Interceptor::call(&mut interceptor, tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer token-for-https___ml.a.run.app"
        );
    }

    #[tokio::test]
    async fn without_a_token_a_call_goes_out_without_authorization() {
        let id_tokens = IdTokens::start("http://127.0.0.1:1", "https://ml.a.run.app");
        let mut interceptor = IdTokenInterceptor(Some(id_tokens));
        let request = tonic::service::Interceptor::call(&mut interceptor, tonic::Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
    }
}
