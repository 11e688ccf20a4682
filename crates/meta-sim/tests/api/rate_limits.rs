use crate::helpers::*;

fn usage(headers: &reqwest::header::HeaderMap, name: &str) -> serde_json::Value {
    serde_json::from_str(headers.get(name).unwrap().to_str().unwrap()).unwrap()
}

#[tokio::test]
async fn every_graph_response_carries_the_three_usage_headers() {
    let sim = spawn_meta_sim(&[]).await;
    let (_, headers, _) = sim
        .get_with_headers(&format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}"))
        .await;
    // Percentages are numbers that may be fractional (`9.67`), as Meta sends them.
    assert!(usage(&headers, "x-app-usage")["call_count"].is_number());
    let account = usage(&headers, "x-ad-account-usage");
    assert!(account["acc_id_util_pct"].is_number() && account["reset_time_duration"].is_u64());
    assert_eq!(account["ads_api_access_tier"], "standard_access");
    let business = usage(&headers, "x-business-use-case-usage");
    let entries = business["100000001"].as_array().unwrap();
    assert!(entries.iter().any(|entry| entry["type"] == "ads_management"));
    assert!(entries[0]["estimated_time_to_regain_access"].is_u64());
}

#[tokio::test]
async fn the_ad_account_score_blocks_with_17_2446079_and_the_headers_say_so() {
    // Writes cost 3 points; a limit of 10 allows three writes.
    let sim = spawn_meta_sim(&[
        ("ADLOOP_RATE_LIMITS__AD_ACCOUNT_SCORE_LIMIT", "10"),
        ("ADLOOP_RATE_LIMITS__AD_ACCOUNT_SCORE_DECAY_SECONDS", "3600"),
    ])
    .await;
    for budget in [11000, 12000, 13000] {
        assert_eq!(sim.set_budget(FIRST_AD_SET, budget).await.0, 200);
    }
    let (status, body) = sim.set_budget(FIRST_AD_SET, 14000).await;
    assert_eq!((status, error_code(&body)), (400, (17, Some(2_446_079))));
    assert_eq!(body["error"]["is_transient"], true);
    let (_, headers, body) = sim
        .get_with_headers(&format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}"))
        .await;
    assert_eq!(error_code(&body).0, 17, "throttled callers stay throttled");
    let account = usage(&headers, "x-ad-account-usage");
    assert!(account["reset_time_duration"].as_u64().unwrap() > 0, "{account}");
    let (_, state) = sim.get("_sim/state").await;
    let ad_set = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|object| object["id"] == FIRST_AD_SET)
        .unwrap()
        .clone();
    assert_eq!(ad_set["daily_budget"], 13000, "the refused write changed nothing");
}

#[tokio::test]
async fn ads_management_quota_throttles_with_80004_until_the_window_passes() {
    let sim = spawn_meta_sim(&[
        ("ADLOOP_RATE_LIMITS__ADS_MANAGEMENT_BASE_CALLS", "3"),
        ("ADLOOP_RATE_LIMITS__ADS_MANAGEMENT_CALLS_PER_ACTIVE_AD", "0"),
        ("ADLOOP_RATE_LIMITS__WINDOW_SECONDS", "1"),
    ])
    .await;
    let read = format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}");
    for _ in 0..3 {
        assert_eq!(sim.get(&read).await.0, 200);
    }
    let (_, headers, body) = sim.get_with_headers(&read).await;
    assert_eq!(error_code(&body), (80004, Some(2_446_079)));
    let business = usage(&headers, "x-business-use-case-usage");
    let management = business["100000001"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["type"] == "ads_management")
        .unwrap()
        .clone();
    assert_eq!(management["call_count"].as_f64(), Some(100.0));
    // Insights have their own quota.
    let (status, _) = sim
        .get(&format!("{VERSION}/{FIRST_AD_SET}/insights?access_token={TOKEN}"))
        .await;
    assert_eq!(status, 200);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(sim.get(&read).await.0, 200, "a new window restores access");
}

#[tokio::test]
async fn the_app_call_limit_throttles_with_code_4() {
    let sim = spawn_meta_sim(&[("ADLOOP_RATE_LIMITS__APP_CALLS_PER_WINDOW", "2")]).await;
    let read = format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}");
    sim.get(&read).await;
    sim.get(&read).await;
    let (_, body) = sim.get(&read).await;
    assert_eq!(error_code(&body).0, 4);
}

#[tokio::test]
async fn more_than_the_mutation_rate_per_account_is_refused_with_613_5044001() {
    let sim = spawn_meta_sim(&[("ADLOOP_RATE_LIMITS__MUTATIONS_PER_SECOND_PER_ACCOUNT", "5")]).await;
    let mut codes = Vec::new();
    for index in 0..7 {
        let status = if index % 2 == 0 { "PAUSED" } else { "ACTIVE" };
        let (_, body) = sim
            .post_form(
                &format!("{VERSION}/{FIRST_AD}"),
                &[("status", status), ("access_token", TOKEN)],
            )
            .await;
        codes.push(error_code(&body));
    }
    assert_eq!(codes[..5], [(0, None); 5], "{codes:?}");
    assert_eq!(codes[5], (613, Some(5_044_001)), "{codes:?}");
    // Reads are not mutations.
    assert_eq!(
        sim.get(&format!("{VERSION}/{FIRST_AD}?access_token={TOKEN}")).await.0,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = sim
        .post_form(
            &format!("{VERSION}/{FIRST_AD}"),
            &[("status", "ACTIVE"), ("access_token", TOKEN)],
        )
        .await;
    assert_eq!(status, 200, "a second later writes are accepted again");
}

#[tokio::test]
async fn usage_percentages_are_fractional_and_insights_carry_their_throttle_header() {
    let sim = spawn_meta_sim(&[("ADLOOP_RATE_LIMITS__AD_ACCOUNT_SCORE_LIMIT", "30")]).await;
    let (_, headers, _) = sim
        .get_with_headers(&format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}"))
        .await;
    let account = usage(&headers, "x-ad-account-usage");
    let percent = account["acc_id_util_pct"].as_f64().unwrap();
    assert!(
        percent > 3.0 && percent < 3.5 && percent.fract() != 0.0,
        "one read of 30: {account}"
    );
    assert!(headers.get("x-fb-ads-insights-throttle").is_none());

    let (_, headers, _) = sim
        .get_with_headers(&format!("{VERSION}/{FIRST_AD_SET}/insights?access_token={TOKEN}"))
        .await;
    let throttle = usage(&headers, "x-fb-ads-insights-throttle");
    assert!(throttle["acc_id_util_pct"].as_f64().unwrap() > 0.0, "{throttle}");
    assert!(throttle.get("app_id_util_pct").is_some(), "{throttle}");
}

#[tokio::test]
async fn usage_headers_can_be_left_out_while_usage_is_negligible() {
    let sim = spawn_meta_sim(&[
        ("ADLOOP_RATE_LIMITS__USAGE_HEADERS_FROM_PERCENT", "50"),
        ("ADLOOP_RATE_LIMITS__AD_ACCOUNT_SCORE_LIMIT", "10"),
    ])
    .await;
    let read = format!("{VERSION}/{FIRST_AD_SET}?access_token={TOKEN}");
    let (_, headers, _) = sim.get_with_headers(&read).await;
    assert!(headers.get("x-ad-account-usage").is_none(), "{headers:?}");
    for _ in 0..5 {
        sim.get(&read).await;
    }
    let (_, headers, _) = sim.get_with_headers(&read).await;
    assert!(
        usage(&headers, "x-ad-account-usage")["acc_id_util_pct"]
            .as_f64()
            .unwrap()
            >= 50.0
    );
}

#[tokio::test]
async fn the_use_case_header_of_a_batch_lists_every_account_it_touched() {
    let directory = tempfile::tempdir().unwrap();
    let scenario_path = directory.path().join("two-accounts.toml");
    let scenario = std::fs::read_to_string(format!(
        "{}/../../scenarios/stationary-10.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    // The second ad moves to an account of its own.
    .replacen("name = \"ad-02\"", "name = \"ad-02\"\naccount = \"second\"", 1);
    std::fs::write(&scenario_path, scenario).unwrap();
    let sim = spawn_meta_sim(&[("ADLOOP_WORLD__SCENARIO_PATH", scenario_path.to_str().unwrap())]).await;
    let (_, state) = sim.get("_sim/state").await;
    let accounts: Vec<String> = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|object| object["kind"] == "ad_account" || object["id"].as_str().unwrap().starts_with("act_"))
        .map(|object| object["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    let operations = serde_json::json!([
        {"method": "GET", "relative_url": accounts[0]},
        {"method": "GET", "relative_url": accounts[1]},
    ]);
    let response = sim
        .http
        .post(format!("{}/{VERSION}/", sim.base_url))
        .form(&[("access_token", TOKEN), ("batch", &operations.to_string())])
        .send()
        .await
        .unwrap();
    let business = usage(response.headers(), "x-business-use-case-usage");
    for account in &accounts {
        assert!(
            business.get(account.trim_start_matches("act_")).is_some(),
            "{account} missing from {business}"
        );
    }
}
