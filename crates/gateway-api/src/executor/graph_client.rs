//! The executor's Graph API client: batch requests (reads and writes) and single writes, with the Meta
//! token from the configuration as the only credential sent (no header of ours is ever forwarded).

use std::time::Duration;

use adloop_config::Secret;
use adloop_service_kit::appsecret_proof::appsecret_proof;
use serde::Deserialize;
use serde_json::Value;

use super::graph_outcome::{UsageReport, parse_usage};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSettings {
    /// `https://graph.facebook.com` at Meta; meta-sim's address in development.
    pub base_url: String,
    pub api_version: String,
    /// The Meta access token (a secret: `ADLOOP_GRAPH__ACCESS_TOKEN` or `_FILE`); required when the
    /// executor is enabled.
    #[serde(default)]
    pub access_token: Option<Secret<String>>,
    /// When the app requires it, every call carries `appsecret_proof` computed with this secret.
    #[serde(default)]
    pub app_secret: Option<Secret<String>>,
    pub request_timeout_ms: u64,
}

/// One operation of a batch request.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub method: &'static str,
    /// Relative to the API version: `23851000000001?fields=daily_budget`.
    pub relative_url: String,
    /// URL-encoded form body, for writes.
    pub body: Option<String>,
}

/// One operation's answer; `None` in a batch result means Meta did not say whether it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationResult {
    pub http_status: u16,
    pub body: Value,
    pub usage: UsageReport,
}

impl OperationResult {
    pub fn is_success(&self) -> bool {
        self.http_status == 200
    }

    /// `(code, subcode)` of a Graph error body.
    pub fn error_code(&self) -> (Option<u32>, Option<u32>) {
        let error = &self.body["error"];
        let number = |field: &str| error[field].as_u64().and_then(|value| u32::try_from(value).ok());
        (number("code"), number("error_subcode"))
    }

    pub fn error_message(&self) -> String {
        self.body["error"]["message"].as_str().unwrap_or_default().to_owned()
    }
}

/// The error and each cause beneath it ("error sending request: ... invalid peer certificate: UnknownIssuer"),
/// without the URL (it carries the access token in its query).
fn cause_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[derive(Debug, thiserror::Error)]
pub enum GraphClientError {
    /// No answer (connection refused or dropped, time-out): for a write, the outcome is unknown.
    #[error("no answer from the Graph API: {0}")]
    NoAnswer(String),
    /// The whole request was refused (a bad token, a retired version, a throttled app).
    #[error("the Graph API refused the request: HTTP {}", .0.http_status)]
    Refused(OperationResult),
}

/// Clones share the connection pool and the request count.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    settings: GraphSettings,
    /// Requests sent, for the batch-versus-single comparison.
    requests_sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl GraphClient {
    pub fn new(settings: GraphSettings) -> Result<GraphClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.request_timeout_ms))
            .build()?;
        Ok(GraphClient {
            http,
            settings,
            requests_sent: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
        })
    }

    pub fn requests_sent(&self) -> u64 {
        self.requests_sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn credentials(&self) -> Vec<(&'static str, String)> {
        let token = self
            .settings
            .access_token
            .as_ref()
            .map(|token| token.expose().clone())
            .unwrap_or_default();
        let mut credentials = vec![("access_token", token.clone())];
        if let Some(app_secret) = &self.settings.app_secret {
            credentials.push(("appsecret_proof", appsecret_proof(&token, app_secret.expose())));
        }
        credentials
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.settings.base_url.trim_end_matches('/'),
            self.settings.api_version,
            path
        )
    }

    /// Sends up to 50 operations as one batch request; each result is `None` when Meta did not say.
    pub async fn batch(&self, operations: &[Operation]) -> Result<Vec<Option<OperationResult>>, GraphClientError> {
        let batch: Vec<Value> = operations
            .iter()
            .map(|operation| {
                let mut entry = serde_json::json!({
                    "method": operation.method,
                    "relative_url": operation.relative_url,
                });
                if let Some(body) = &operation.body {
                    entry["body"] = Value::String(body.clone());
                }
                entry
            })
            .collect();
        let mut form = self.credentials();
        form.push(("batch", Value::Array(batch).to_string()));
        form.push(("include_headers", "true".to_owned()));
        self.requests_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = self
            .http
            .post(self.url(""))
            .form(&form)
            .send()
            .await
            // Without the URL: it never carries the token here, but errors are logged.
            .map_err(|error| GraphClientError::NoAnswer(cause_chain(error)))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|error| GraphClientError::NoAnswer(cause_chain(error)))?;
        let Value::Array(results) = body else {
            return Err(GraphClientError::Refused(OperationResult {
                http_status: status,
                body,
                usage: UsageReport::default(),
            }));
        };
        Ok(results.into_iter().map(operation_result).collect())
    }

    /// One write without a batch (single-request mode).
    pub async fn post(&self, object_id: &str, params: &[(&str, String)]) -> Result<OperationResult, GraphClientError> {
        let mut form = self.credentials();
        form.extend(params.iter().map(|(name, value)| (*name, value.clone())));
        self.send_one(self.http.post(self.url(object_id)).form(&form)).await
    }

    /// One read without a batch (single-request mode): `fields` of `object_id`.
    pub async fn get(&self, object_id: &str, fields: &str) -> Result<OperationResult, GraphClientError> {
        let mut query = self.credentials();
        query.push(("fields", fields.to_owned()));
        self.send_one(self.http.get(self.url(object_id)).query(&query)).await
    }

    /// One read of `path` (an object or an edge such as `act_1/insights`) with its query parameters.
    pub async fn get_with_query(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<OperationResult, GraphClientError> {
        let mut query = self.credentials();
        query.extend(params.iter().map(|(name, value)| (*name, value.clone())));
        self.send_one(self.http.get(self.url(path)).query(&query)).await
    }

    async fn send_one(&self, request: reqwest::RequestBuilder) -> Result<OperationResult, GraphClientError> {
        self.requests_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = request
            .send()
            .await
            .map_err(|error| GraphClientError::NoAnswer(cause_chain(error)))?;
        let http_status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect();
        let body: Value = response
            .json()
            .await
            .map_err(|error| GraphClientError::NoAnswer(cause_chain(error)))?;
        let usage = parse_usage(
            headers.iter().map(|(name, value)| (name.as_str(), value.as_str())),
            None,
        );
        Ok(OperationResult {
            http_status,
            body,
            usage,
        })
    }
}

/// A batch entry: `null`, or `{code, headers: [{name, value}], body: "<json>"}`.
fn operation_result(entry: Value) -> Option<OperationResult> {
    if entry.is_null() {
        return None;
    }
    let http_status = entry["code"]
        .as_u64()
        .and_then(|code| u16::try_from(code).ok())
        .unwrap_or(0);
    let body = entry["body"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    let headers: Vec<(&str, &str)> = entry["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|header| Some((header["name"].as_str()?, header["value"].as_str()?)))
        .collect();
    Some(OperationResult {
        http_status,
        body,
        usage: parse_usage(headers, None),
    })
}
