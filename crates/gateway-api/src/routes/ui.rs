//! `/ui`: the operator's page, compiled into the binary (no build step, nothing fetched at run time). The
//! page holds no data of its own: it calls the JSON API with the API key its user types in, so it needs no
//! authentication to be served and can show nothing its key could not read.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName};
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");

/// Only the page's own script, styles and API: nothing injected can load or send anything elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers: [(HeaderName, &'static str); 5] = [
        (CONTENT_TYPE, content_type),
        // Assets change with the binary; revalidating keeps a page from mixing two releases' files.
        (CACHE_CONTROL, "no-cache"),
        (
            HeaderName::from_static("content-security-policy"),
            CONTENT_SECURITY_POLICY,
        ),
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
        (HeaderName::from_static("referrer-policy"), "no-referrer"),
    ];
    (headers, body).into_response()
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}
