//! Allocation through ml-service's gRPC contract and the gateway's HTTP routes.

use std::time::Duration;

use adloop_proto::ml::v1 as proto;
use serde_json::{Value, json};

use crate::fixtures::{allocation_request as request, grpc_client, three_ads};
use crate::helpers::{Stack, http_refusal, spawn_stack};

#[tokio::test]
async fn allocate_over_grpc_conserves_the_total_and_explains_each_ad() {
    let stack = spawn_stack().await;
    let mut client = grpc_client(&stack.ml_service.base_url()).await;
    let response = client
        .allocate(request(three_ads(), 30_000))
        .await
        .unwrap()
        .into_inner();
    let total: i64 = response
        .recommendations
        .iter()
        .map(|entry| entry.recommended_daily_budget.as_ref().unwrap().minor_units)
        .sum();
    assert_eq!(total, 30_000);
    assert_eq!(response.model_version, adloop_allocator::MODEL_VERSION);
    let winner = &response.recommendations[0];
    assert!(winner.probability_best > 0.9, "{winner:?}");
    assert_eq!(winner.change_fraction, Some(0.5));
    assert!(winner.reason.contains("P(best)"), "{}", winner.reason);
    assert!(winner.roas.unwrap().mean > response.recommendations[2].roas.unwrap().mean);
}

#[tokio::test]
async fn bad_requests_get_invalid_argument_naming_the_field_and_are_not_cached() {
    let stack = spawn_stack().await;
    let mut client = grpc_client(&stack.ml_service.base_url()).await;
    let mut cases: Vec<(proto::AllocateRequest, &str)> = Vec::new();

    let mut unknown_currency = request(three_ads(), 30_000);
    unknown_currency.total_daily_budget = Some(proto::Money {
        minor_units: 30_000,
        currency: "XYZ".into(),
    });
    cases.push((unknown_currency, "total_daily_budget.currency"));

    let mut negative = request(three_ads(), 30_000);
    negative.ads[1].impressions = -1;
    cases.push((negative, "ads[1].impressions"));

    let mut too_many_clicks = request(three_ads(), 30_000);
    too_many_clicks.ads[2].clicks = 200_000;
    cases.push((too_many_clicks, "ads[2].clicks"));

    cases.push((request(vec![], 30_000), "ads"));

    let mut latest_beyond_recent = request(three_ads(), 30_000);
    let mut latest = latest_beyond_recent.ads[0].recent.clone().unwrap();
    latest.hours /= 2.0;
    latest.impressions += 1;
    latest_beyond_recent.ads[0].latest = Some(latest);
    cases.push((latest_beyond_recent, "ads[0].latest"));

    let mut duplicate = request(three_ads(), 30_000);
    duplicate.ads[2].ids.as_mut().unwrap().ad_id = "winner".into();
    cases.push((duplicate, "ads[2].ids.ad_id"));

    let mut mixed_currency = request(three_ads(), 30_000);
    mixed_currency.ads[0].spend = Some(proto::Money {
        minor_units: 100_000,
        currency: "EUR".into(),
    });
    cases.push((mixed_currency, "ads[0].spend.currency"));

    let late_schedule = |account_id: &str, min_hours: f64, max_hours: f64| proto::AccountReportingDelay {
        account_id: account_id.into(),
        components: vec![proto::ReportingDelayComponent {
            share: 1.0,
            min_hours,
            max_hours,
        }],
    };
    let mut backwards_schedule = request(three_ads(), 30_000);
    backwards_schedule.reporting_delays = vec![late_schedule("act_1", 48.0, 24.0)];
    cases.push((backwards_schedule, "reporting_delays[act_1].components[0].max_hours"));

    let mut twice_for_one_account = request(three_ads(), 30_000);
    twice_for_one_account.reporting_delays = vec![late_schedule("act_1", 0.0, 24.0), late_schedule("act_1", 0.0, 48.0)];
    cases.push((twice_for_one_account, "reporting_delays[1].account_id"));

    let mut more_schedules_than_ads = request(three_ads(), 30_000);
    more_schedules_than_ads.reporting_delays = (0..4)
        .map(|index| late_schedule(&format!("act_{index}"), 0.0, 24.0))
        .collect();
    cases.push((more_schedules_than_ads, "reporting_delays"));

    let refusals = cases.len() as f64;
    for (bad_request, field) in cases {
        let status = client.allocate(bad_request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{field}: {status:?}");
        assert!(status.message().starts_with(field), "{field}: {}", status.message());
    }

    let metrics = stack.ml_service.metrics_text().await;
    assert!(
        !metrics.contains("score_cache_lookups_total{tier=\"l1\""),
        "nothing was looked up or cached:\n{metrics}"
    );
    // Per-method gRPC metrics: the refusals under Allocate with code 3 (INVALID_ARGUMENT), one valid
    // call under code 0, each with its latency.
    client.allocate(request(three_ads(), 30_000)).await.unwrap();
    // A call to a service ml-service does not serve adds no gRPC series of its own (names are the caller's).
    reqwest::Client::new()
        .post(format!("{}/made.up.Service/AnyMethod", stack.ml_service.base_url()))
        .header("content-type", "application/grpc")
        .body(vec![0_u8; 5])
        .send()
        .await
        .unwrap();
    let metrics = stack.ml_service.metrics_text().await;
    let allocate = "grpc_service=\"adloop.ml.v1.MlService\",grpc_method=\"Allocate\"";
    let handled = |code: &str| {
        adloop_telemetry::metrics::sample_value(
            &metrics,
            &format!("adloop_ml_grpc_server_handled_total{{{allocate},grpc_code=\"{code}\"}}"),
        )
    };
    assert_eq!(handled("3"), Some(refusals), "{metrics}");
    assert!(!metrics.contains("made.up.Service"), "{metrics}");
    assert_eq!(handled("0"), Some(1.0), "{metrics}");
    assert_eq!(
        adloop_telemetry::metrics::sample_value(
            &metrics,
            &format!("adloop_ml_grpc_server_handling_seconds_count{{{allocate}}}")
        ),
        Some(refusals + 1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn repeated_polls_hit_the_cache_and_metrics_count_it() {
    let stack = spawn_stack().await;
    let mut client = grpc_client(&stack.ml_service.base_url()).await;
    let first = client
        .allocate(request(three_ads(), 30_000))
        .await
        .unwrap()
        .into_inner();
    // A few more impressions: the quantised states are unchanged, so the draws come from the cache.
    let mut slightly_later = three_ads();
    for ad in &mut slightly_later {
        ad.impressions += 50;
    }
    let second = client
        .allocate(request(slightly_later, 30_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.recommendations, second.recommendations);

    let scores = client
        .score(proto::ScoreRequest { ads: three_ads() })
        .await
        .unwrap()
        .into_inner();
    assert!(scores.scores.iter().all(|score| score.from_cache));
    assert!(scores.scores[0].score > scores.scores[2].score);

    let metrics = stack.ml_service.metrics_text().await;
    let counter = |labels: &str| -> f64 {
        metrics
            .lines()
            .find(|line| line.starts_with("adloop_ml_score_cache_lookups_total") && line.contains(labels))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(counter("tier=\"l1\",outcome=\"miss\""), 3.0, "{metrics}");
    assert_eq!(counter("tier=\"l1\",outcome=\"hit\""), 6.0, "{metrics}");
    assert!(
        metrics.contains("adloop_ml_score_cache_stale_hits_total 0"),
        "{metrics}"
    );
}

/// `POST /v1/allocations` with the stack's API key.
async fn post_allocation(stack: &Stack, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/allocations", stack.gateway.base_url()))
        .bearer_auth(stack.gateway.api_key())
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn gateway_allocations_route_calls_ml_service_and_names_bad_fields() {
    let stack = spawn_stack().await;
    let body = json!({
        "currency": "USD",
        "total_daily_budget": 30000,
        "ads": [
            {"ad_id": "winner", "impressions": 100000, "clicks": 2000, "conversions": 100, "spend": 100000, "conversion_value": 500000, "age_hours": 240, "current_daily_budget": 10000},
            {"ad_id": "loser", "impressions": 100000, "clicks": 1000, "conversions": 20, "spend": 100000, "conversion_value": 100000, "age_hours": 240, "current_daily_budget": 10000},
            {"ad_id": "newcomer", "impressions": 800, "clicks": 9, "spend": 800, "age_hours": 10, "current_daily_budget": 10000}
        ]
    });
    let response = post_allocation(&stack, &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let total: i64 = answer["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["recommended_daily_budget"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 30000);
    assert_eq!(answer["recommendations"][0]["decision"], "scale");

    let mut bad = body.clone();
    bad["ads"][1]["clicks"] = json!("many");
    let response = post_allocation(&stack, &bad).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["field"], "ads[1].clicks", "{error}");

    let mut rule_broken = body.clone();
    rule_broken["ads"][1]["clicks"] = json!(200000);
    let response = post_allocation(&stack, &rule_broken).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"]["message"].as_str().unwrap().starts_with("ads[1].clicks"),
        "{error}"
    );

    // The account's own reporting schedule travels to ml-service and is checked there.
    let mut in_one_account = body.clone();
    for ad in in_one_account["ads"].as_array_mut().unwrap() {
        ad["account_id"] = json!("act_1");
    }
    let mut late_account = in_one_account.clone();
    late_account["reporting_delays"] = json!({
        "act_1": {"components": [{"share": 1.0, "min_hours": 168.0, "max_hours": 336.0}]}
    });
    let mut answers = Vec::new();
    for request_body in [&in_one_account, &late_account] {
        let response = post_allocation(&stack, request_body).await;
        assert_eq!(response.status(), 200);
        answers.push(response.json::<Value>().await.unwrap());
    }
    let newcomer_roas = |answer: &Value| answer["recommendations"][2]["roas"]["mean"].as_f64().unwrap();
    assert_ne!(
        newcomer_roas(&answers[1]),
        newcomer_roas(&answers[0]),
        "the schedule changes how the young ad's conversions are read"
    );
    let mut backwards = body.clone();
    backwards["reporting_delays"] = json!({
        "act_9": {"components": [{"share": 1.0, "min_hours": 48.0, "max_hours": 24.0}]}
    });
    let response = post_allocation(&stack, &backwards).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("reporting_delays[act_9].components[0].max_hours"),
        "{error}"
    );
    let mut unknown_field = body.clone();
    unknown_field["reporting_delays"] = json!({
        "act_9": {"components": [{"share": 1.0, "min_hours": 0.0, "max_hours": 24.0, "weight": 2.0}]}
    });
    let response = post_allocation(&stack, &unknown_field).await;
    assert_eq!(response.status(), 400, "an unknown field in a schedule is refused");

    // A nested object written as an array is refused by its field, not read by position (floor, cap and
    // change limit; an ad's fields in declaration order).
    let mut positional_constraints = body.clone();
    positional_constraints["constraints"] = json!([0, 0, 0.5]);
    let mut positional_ad = body.clone();
    positional_ad["ads"][1] = json!(["", "", "", "loser", 100000, 1000, 20, 100000, 100000, 240, 10000]);
    // A latest window needs the recent window it lies inside.
    let mut latest_alone = body.clone();
    latest_alone["ads"][0]["recent"] = Value::Null;
    latest_alone["ads"][0]["latest"] = json!({"hours": 24.0, "impressions": 100, "clicks": 2, "spend": 100});
    for (request_body, field) in [
        (&positional_constraints, "constraints"),
        (&positional_ad, "ads[1]"),
        (&latest_alone, "ads[0].latest"),
    ] {
        let response = post_allocation(&stack, request_body).await;
        assert_eq!(response.status(), 400, "{field}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["field"], field, "{error}");
    }
}

#[tokio::test]
async fn the_original_select_endpoint_answers_in_its_own_shape_and_conserves_the_total() {
    let stack = spawn_stack().await;
    // The original's verified failure case: every ad got +50% and the total was $225 of $300.
    let body = json!({
        "ad_states": [
            {"ad_id": "a", "impressions": 10000, "clicks": 500, "spend": 100.0, "pipeline_value": 500.0, "age_hours": 48},
            {"ad_id": "b", "impressions": 10000, "clicks": 300, "spend": 100.0, "pipeline_value": 300.0, "age_hours": 48},
            {"ad_id": "c", "impressions": 10000, "clicks": 100, "spend": 100.0, "pipeline_value": 100.0, "cash_revenue": 20.0, "age_hours": 48}
        ],
        "total_budget": 300.0
    });
    let select = |body: Value| {
        reqwest::Client::new()
            .post(format!("{}/api/v1/ml/battle-hardened/select", stack.gateway.base_url()))
            .bearer_auth(stack.gateway.api_key())
            .json(&body)
            .send()
    };
    let answer: Value = select(body.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(answer["num_ads"], 3);
    let budgets: Vec<f64> = answer["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["recommended_budget"].as_f64().unwrap())
        .collect();
    assert!((budgets.iter().sum::<f64>() - 300.0).abs() < 0.005, "{budgets:?}");
    assert!(budgets[0] > budgets[2], "{budgets:?}");
    assert_eq!(
        answer["recommendations"][0]["current_budget"], 50.0,
        "lifetime average daily spend, as the original used"
    );
    assert!(answer["recommendations"][0]["metrics"]["ctr"].as_f64().unwrap() > 4.9);

    // Errors name the field as the caller sent it: `ad_states[1]`, not ml-service's `ads[1]`.
    let mut more_clicks_than_impressions = body.clone();
    more_clicks_than_impressions["ad_states"][1]["clicks"] = json!(20_000);
    let (field, message) = http_refusal(select(more_clicks_than_impressions).await.unwrap(), 400).await;
    assert_eq!(field, "ad_states[1].clicks");
    assert!(message.starts_with("ad_states[1].clicks:"), "{message}");

    // A positive total below one cent rounds to nothing: the answer says what the least is.
    let mut a_fraction_of_a_cent = body.clone();
    a_fraction_of_a_cent["total_budget"] = json!(0.001);
    let (field, message) = http_refusal(select(a_fraction_of_a_cent).await.unwrap(), 400).await;
    assert_eq!(field, "total_budget");
    assert!(message.contains("at least one minor unit of USD (0.01)"), "{message}");
}

#[tokio::test]
async fn redis_down_means_the_in_process_cache_only_never_an_error() {
    adloop_telemetry::init_telemetry_for_tests();
    let database = adloop_test_support::TestDatabase::create().await;
    // Nothing listens on port 1: Redis is down from the start.
    let ml_service =
        crate::helpers::spawn_ml_service_with(&database, &[("ADLOOP_REDIS__URL", "redis://127.0.0.1:1")]).await;
    let mut client = grpc_client(&ml_service.base_url()).await;
    for _ in 0..3 {
        let response = tokio::time::timeout(Duration::from_secs(5), client.allocate(request(three_ads(), 30_000)))
            .await
            .expect("no hang on a dead redis")
            .unwrap();
        assert_eq!(response.into_inner().recommendations.len(), 3);
    }
    let metrics = ml_service.metrics_text().await;
    assert!(metrics.contains("adloop_ml_score_cache_redis_available 0"), "{metrics}");
    assert!(
        metrics.contains("tier=\"l1\",outcome=\"hit\""),
        "L1 keeps serving:\n{metrics}"
    );
}
