//! The operator page's server side: the page and its assets served from the binary without a key and under
//! a strict content-security policy, only API routes the OpenAPI document lists called from its script, and
//! the relay's health as the gateway reads it. The page itself is driven in headless Chromium by
//! `scripts/check-operator-page` (tests/ui/operator_page.py).

use serde_json::Value;

use crate::helpers::{spawn_gateway, spawn_stack};

#[tokio::test]
async fn the_page_and_its_assets_are_served_without_a_key_under_a_strict_content_security_policy() {
    let stack = spawn_stack().await;
    let base_url = stack.gateway.base_url();
    for (path, content_type, must_contain) in [
        ("/ui", "text/html", "adloop operator"),
        ("/ui/app.js", "text/javascript", "kill-switch"),
        ("/ui/app.css", "text/css", "#message"),
    ] {
        let response = reqwest::get(format!("{base_url}{path}")).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert!(
            header("content-type").starts_with(content_type),
            "{path}: {}",
            header("content-type")
        );
        let policy = header("content-security-policy");
        assert!(
            policy.contains("default-src 'none'") && policy.contains("script-src 'self'"),
            "{path}: {policy}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert!(response.text().await.unwrap().contains(must_contain), "{path}");
    }

    // Every API path the script calls is one the gateway documents (and so serves: another test checks).
    let script = reqwest::get(format!("{base_url}/ui/app.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let document: Value = reqwest::get(format!("{base_url}/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let documented: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
    let called: Vec<&str> = script
        .split('"')
        .filter(|piece| piece.starts_with("/v1/"))
        .map(|piece| piece.split('?').next().unwrap())
        .collect();
    assert!(called.len() >= 5, "{called:?}");
    for path in called {
        // "/v1/ad-changes/" + id + "/approve" appears as its first piece; match documented paths by prefix.
        assert!(
            documented.iter().any(|documented| documented.starts_with(path)),
            "the page calls {path}, which the OpenAPI document does not list"
        );
    }
}

#[tokio::test]
async fn the_relays_health_is_read_from_the_relay_and_an_unreachable_or_unset_relay_is_reported_not_failed() {
    let stack = spawn_stack().await;
    let relay_url = stack.capi_relay.base_url();
    let with_relay = spawn_gateway(
        &stack.database,
        &stack.ml_service.base_url(),
        &[("ADLOOP_RELAY__URL", relay_url.as_str())],
    )
    .await;
    // Nothing listens on port 9 of this machine (discard): the relay is unreachable.
    let unreachable = spawn_gateway(
        &stack.database,
        &stack.ml_service.base_url(),
        &[("ADLOOP_RELAY__URL", "http://127.0.0.1:9")],
    )
    .await;
    let health = |gateway: &crate::helpers::RunningService| {
        let url = format!("{}/v1/relay/health", gateway.base_url());
        let key = gateway.api_key().to_owned();
        async move {
            let response = reqwest::Client::new().get(url).bearer_auth(key).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };

    let answer = health(&with_relay).await;
    assert_eq!(
        (answer["configured"].as_bool(), answer["ready"].as_bool()),
        (Some(true), Some(true)),
        "{answer}"
    );
    assert_eq!(
        answer["readiness"]["service"], "capi-relay",
        "the relay's own report: {answer}"
    );
    assert!(answer["error"].is_null(), "{answer}");
    assert!(
        answer["oldest_due_event_seconds"].is_number(),
        "read from the relay's metrics: {answer}"
    );

    let answer = health(&unreachable).await;
    assert_eq!(
        (answer["configured"].as_bool(), answer["ready"].as_bool()),
        (Some(true), Some(false)),
        "{answer}"
    );
    assert!(answer["error"].as_str().unwrap().contains("did not answer"), "{answer}");

    let answer = health(&stack.gateway).await;
    assert_eq!(answer["configured"], false, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("relay.url"), "{answer}");
}
