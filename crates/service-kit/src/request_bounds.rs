//! Bounds on an HTTP API's requests, so overload is refused with a clear error instead of growing memory:
//! at most `max_requests_in_flight` requests are served at once (more are refused at once with 429 and
//! `Retry-After`), and a body may be at most `max_body_kib` (413, whether its length was declared or found
//! while reading it). Both answers are the service's JSON error body.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::error::{ErrorCode, ServiceError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBounds {
    /// The largest request body, in KiB.
    pub max_body_kib: usize,
    /// Requests served at once; more are refused at once.
    pub max_requests_in_flight: usize,
}

impl RequestBounds {
    /// The key (within its section) and rule of the first bound that is out of range.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.max_body_kib == 0 {
            return Err(("max_body_kib", "must be at least 1"));
        }
        if self.max_requests_in_flight == 0 {
            return Err(("max_requests_in_flight", "must be at least 1"));
        }
        Ok(())
    }

    fn max_body_bytes(&self) -> usize {
        self.max_body_kib.saturating_mul(1024)
    }
}

#[derive(Clone)]
struct Gate {
    bounds: RequestBounds,
    in_flight: Arc<Semaphore>,
    /// Names the settings section in the answers, so an operator knows which key to raise.
    settings_section: &'static str,
}

/// `router` with `bounds` applied to each of its requests; `settings_section` is where the bounds are set.
pub fn bounded<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    bounds: RequestBounds,
    settings_section: &'static str,
) -> Router<S> {
    let max_body_bytes = bounds.max_body_bytes();
    let gate = Gate {
        in_flight: Arc::new(Semaphore::new(bounds.max_requests_in_flight)),
        bounds,
        settings_section,
    };
    router
        .layer(from_fn_with_state(gate, admit))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

async fn admit(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let Ok(_serving) = gate.in_flight.clone().try_acquire_owned() else {
        let mut response = ServiceError::new(
            ErrorCode::RateLimited,
            format!(
                "too many requests in flight ({}, {}.max_requests_in_flight); retry shortly",
                gate.bounds.max_requests_in_flight, gate.settings_section
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > gate.bounds.max_body_bytes()) {
        return body_too_large(&gate);
    }
    let response = next.run(request).await;
    // A body without a declared length that outgrew the limit while being read: the extractor's own
    // answer is plain text.
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return body_too_large(&gate);
    }
    response
}

fn body_too_large(gate: &Gate) -> Response {
    let mut response = ServiceError::invalid_field(
        "body",
        format!(
            "larger than {} KiB ({}.max_body_kib)",
            gate.bounds.max_body_kib, gate.settings_section
        ),
    )
    .into_response();
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    response
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Bytes;
    use axum::routing::post;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{Notify, mpsc};

    use super::*;

    const BOUNDS: RequestBounds = RequestBounds {
        max_body_kib: 1,
        max_requests_in_flight: 1,
    };

    /// Serves `router` on a free port of this machine.
    async fn serve(router: Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        address
    }

    fn echo_router() -> Router {
        bounded(
            Router::new().route("/echo", post(|body: Bytes| async move { body })),
            BOUNDS,
            "http_limits",
        )
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_with_413_whether_or_not_its_length_was_declared() {
        let address = serve(echo_router()).await;
        let client = reqwest::Client::new();
        let fits = client
            .post(format!("http://{address}/echo"))
            .body(vec![b'a'; 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(fits.status().as_u16(), 200);

        let declared = client
            .post(format!("http://{address}/echo"))
            .body(vec![b'a'; 1025])
            .send()
            .await
            .unwrap();
        assert_eq!(declared.status().as_u16(), 413);
        let answer: serde_json::Value = declared.json().await.unwrap();
        assert_eq!(answer["error"]["field"], "body", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("http_limits.max_body_kib")
        );

        // Chunked: no length to check up front, so the limit is found while reading.
        let mut connection = tokio::net::TcpStream::connect(address).await.unwrap();
        let chunk = "a".repeat(800);
        let request = format!(
            "POST /echo HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             {length:x}\r\n{chunk}\r\n{length:x}\r\n{chunk}\r\n0\r\n\r\n",
            length = chunk.len()
        );
        connection.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        connection.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(
            answer.contains("application/json") && answer.contains("max_body_kib"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_request_beyond_those_in_flight_is_refused_at_once_with_429_and_retry_after() {
        let (entered_sender, mut entered) = mpsc::channel::<()>(1);
        let release = Arc::new(Notify::new());
        let held = release.clone();
        let router = bounded(
            Router::new().route(
                "/slow",
                post(move || {
                    let (entered_sender, held) = (entered_sender.clone(), held.clone());
                    async move {
                        entered_sender.send(()).await.unwrap();
                        held.notified().await;
                        "done"
                    }
                }),
            ),
            BOUNDS,
            "http_limits",
        );
        let address = serve(router).await;
        let client = reqwest::Client::new();
        let first = tokio::spawn(client.post(format!("http://{address}/slow")).send());
        entered.recv().await.unwrap();

        let refused = client.post(format!("http://{address}/slow")).send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 429);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        let answer: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "rate_limited", "{answer}");

        release.notify_one();
        assert_eq!(first.await.unwrap().unwrap().status().as_u16(), 200);
        // Its slot is free again.
        let again = tokio::spawn(client.post(format!("http://{address}/slow")).send());
        entered.recv().await.unwrap();
        release.notify_one();
        assert_eq!(again.await.unwrap().unwrap().status().as_u16(), 200);
    }
}
