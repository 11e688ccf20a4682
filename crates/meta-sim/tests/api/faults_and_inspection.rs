use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn an_error_rate_on_reads_returns_transient_errors_in_metas_shape() {
    let sim = spawn_meta_sim(&[]).await;
    let faults = json!({"rules": [{"endpoint": "graph_read", "probability": 1.0, "fault": {"kind": "graph_error", "code": 2, "http_status": 503}}]});
    assert_eq!(sim.post_json("_sim/faults", &faults).await.0, 200);
    let (status, body) = sim.get(&format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}")).await;
    assert_eq!((status, error_code(&body).0), (503, 2));
    assert_eq!(body["error"]["is_transient"], true);
    // Writes are another endpoint and still work.
    assert_eq!(sim.set_budget(FIRST_AD_SET, 20000).await.0, 200);

    let cleared = sim
        .http
        .delete(format!("{}/_sim/faults", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(
        sim.get(&format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}"))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_bare_http_status_and_a_dropped_connection_can_be_injected() {
    let sim = spawn_meta_sim(&[]).await;
    sim.post_json("_sim/faults", &json!({"rules": [{"endpoint": "graph_write", "probability": 1.0, "fault": {"kind": "http_status", "status": 502}}]})).await;
    assert_eq!(sim.set_budget(FIRST_AD_SET, 20000).await.0, 502);

    sim.post_json(
        "_sim/faults",
        &json!({"rules": [{"endpoint": "capi", "probability": 1.0, "fault": {"kind": "drop_connection"}}]}),
    )
    .await;
    let outcome = sim
        .http
        .post(format!("{}/{VERSION}/{PIXEL_ID}/events", sim.base_url))
        .json(&json!({"data": [], "access_token": TOKEN}))
        .send()
        .await;
    let failed = match outcome {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(failed, "the client sees the connection fail");
    assert_eq!(
        sim.ad_set_budget(FIRST_AD_SET).await,
        10000,
        "the 502 write was not applied"
    );
}

#[tokio::test]
async fn a_throttling_window_refuses_calls_until_it_passes() {
    let sim = spawn_meta_sim(&[]).await;
    sim.post_json(
        "_sim/faults",
        &json!({"throttle_window": {"code": 80004, "subcode": 2446079, "seconds": 1}}),
    )
    .await;
    let (_, body) = sim.get(&format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}")).await;
    assert_eq!(error_code(&body), (80004, Some(2_446_079)));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        sim.get(&format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}"))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn bad_fault_configurations_are_rejected_naming_the_field() {
    let sim = spawn_meta_sim(&[]).await;
    let (status, body) = sim
        .post_json(
            "_sim/faults",
            &json!({"rules": [{"endpoint": "capi", "probability": 2.0, "fault": {"kind": "drop_connection"}}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("probability"));
}

#[tokio::test]
async fn the_request_log_records_every_request_without_token_values() {
    let sim = spawn_meta_sim(&[]).await;
    sim.get(&format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}")).await;
    sim.set_budget(FIRST_AD_SET, 5).await;
    let (_, log) = sim.get("_sim/requests").await;
    let requests = log["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["method"], "GET");
    assert_eq!(requests[1]["status"], 400);
    assert_eq!(requests[1]["error_code"], 100);
    assert!(
        requests[1]["parameter_names"]
            .as_array()
            .unwrap()
            .contains(&json!("daily_budget"))
    );
    assert!(!log.to_string().contains(TOKEN), "tokens never reach the log");

    let (_, newer) = sim.get("_sim/requests?after_sequence=1").await;
    assert_eq!(newer["requests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn reset_restores_the_initial_world() {
    let sim = spawn_meta_sim(&[]).await;
    sim.set_budget(FIRST_AD_SET, 20000).await;
    sim.advance_hours(30.0).await;
    let (status, _) = sim.post_json("_sim/reset", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(sim.ad_set_budget(FIRST_AD_SET).await, 10000);
    let (_, clock) = sim.get("_sim/clock").await;
    assert_eq!(clock["world_hour"], 0);
    let (_, log) = sim.get("_sim/requests").await;
    assert_eq!(
        log["requests"].as_array().unwrap().len(),
        1,
        "only the request after the reset"
    );
}

#[tokio::test]
async fn a_reset_that_cannot_reload_its_scenario_says_so_and_changes_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let scenario_path = directory.path().join("scenario.toml");
    std::fs::copy(
        format!("{}/../../scenarios/stationary-10.toml", env!("CARGO_MANIFEST_DIR")),
        &scenario_path,
    )
    .unwrap();
    let sim = spawn_meta_sim(&[("ADLOOP_WORLD__SCENARIO_PATH", scenario_path.to_str().unwrap())]).await;
    sim.set_budget(FIRST_AD_SET, 20000).await;
    std::fs::write(&scenario_path, "not a scenario").unwrap();
    let (status, body) = sim.post_json("_sim/reset", &json!({})).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["reset"], false);
    assert!(
        body["error"].as_str().unwrap().contains("world.scenario_path"),
        "{body}"
    );
    assert_eq!(
        sim.ad_set_budget(FIRST_AD_SET).await,
        20000,
        "the world was left as it was"
    );
}

#[tokio::test]
async fn the_accelerated_clock_runs_simulated_days_in_seconds() {
    let sim = spawn_meta_sim(&[]).await;
    let (_, clock) = sim
        .post_json(
            "_sim/clock",
            &json!({"mode": "accelerated", "simulated_hours_per_second": 3600.0}),
        )
        .await;
    assert_eq!(clock["mode"], "accelerated");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (_, clock) = sim.get("_sim/clock").await;
    assert!(clock["world_hour"].as_u64().unwrap() >= 300, "{clock}");
    let (status, body) = sim.post_json("_sim/clock", &json!({"advance_hours": -5})).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_timeout_fault_holds_the_request_past_a_clients_deadline() {
    let sim = spawn_meta_sim(&[]).await;
    sim.post_json(
        "_sim/faults",
        &json!({"rules": [{"endpoint": "graph_read", "probability": 1.0, "fault": {"kind": "timeout", "milliseconds": 2000}}]}),
    )
    .await;
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(200))
        .build()
        .unwrap();
    let outcome = impatient
        .get(format!(
            "{}/{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}",
            sim.base_url
        ))
        .send()
        .await;
    assert!(outcome.unwrap_err().is_timeout());
}

#[tokio::test]
async fn every_throttling_code_can_be_injected_in_metas_shape() {
    let sim = spawn_meta_sim(&[]).await;
    for (code, subcode) in [
        (4, None),
        (17, Some(2_446_079)),
        (32, None),
        (613, Some(1_487_742)),
        (80004, Some(2_446_079)),
    ] {
        sim.post_json(
            "_sim/faults",
            &json!({"rules": [{"endpoint": "any", "probability": 1.0, "fault": {"kind": "graph_error", "code": code, "subcode": subcode, "http_status": 400}}]}),
        )
        .await;
        let (status, body) = sim.get(&format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}")).await;
        assert_eq!((status, error_code(&body)), (400, (code, subcode)), "{body}");
        assert_eq!(body["error"]["is_transient"], true);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("(#{code})"))
        );
    }
}

/// Errors clients meet at Meta, injected with only their code and subcode: Meta's HTTP status, wording,
/// user title and transience come with them.
#[tokio::test]
async fn metas_errors_can_be_injected_by_code_with_their_status_wording_and_transience() {
    let sim = spawn_meta_sim(&[]).await;
    // (code, subcode, HTTP status, transient, words in the message or user title)
    let cases: [(u64, Option<u64>, u16, bool, &str); 8] = [
        (190, None, 401, false, "Invalid OAuth access token"),
        (1, None, 500, true, "unknown error"),
        (1, Some(99), 500, true, "unknown error"),
        (613, None, 400, false, "exceeded the rate limit"),
        (4, Some(1_504_022), 400, true, "Ads Insights platform"),
        (4, Some(1_504_039), 400, true, "Ads Insights platform"),
        (17, Some(2_446_079), 400, true, "Ad Account Has Too Many API Calls"),
        (100, Some(1_885_621), 400, false, "Campaign Already Has a Budget"),
    ];
    for (code, subcode, http_status, transient, words) in cases {
        sim.post_json(
            "_sim/faults",
            &json!({"rules": [{"endpoint": "graph_read", "probability": 1.0, "fault": {"kind": "graph_error", "code": code, "subcode": subcode}}]}),
        )
        .await;
        let (status, body) = sim.get(&format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}")).await;
        assert_eq!((status, error_code(&body)), (http_status, (code, subcode)), "{body}");
        assert_eq!(body["error"]["is_transient"], transient, "{body}");
        assert!(body.to_string().contains(words), "{words}: {body}");
    }
    // Code 1's "reduce the amount of data" shares its code with the plain unknown error: given as a message.
    let reduce = "Please reduce the amount of data you're asking for, then retry your request";
    sim.post_json(
        "_sim/faults",
        &json!({"rules": [{"endpoint": "insights", "probability": 1.0, "fault": {"kind": "graph_error", "code": 1, "message": reduce}}]}),
    )
    .await;
    let (status, body) = sim
        .get(&format!("{VERSION}/{FIRST_AD_SET}/insights?access_token={TOKEN}"))
        .await;
    assert_eq!((status, error_code(&body).0), (500, 1));
    assert_eq!(body["error"]["message"], reduce);
}
