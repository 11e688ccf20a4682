//! The instant learner through the real services: the recovery plan's own flow through the gateway,
//! replicas that agree, duplicates applied once, bad input refused with nothing logged, and a restart
//! that loses nothing acknowledged.

use std::collections::{BTreeMap, HashMap};

use adloop_proto::ml::v1 as proto;
use adloop_proto::ml::v1::ml_service_client::MlServiceClient;
use adloop_test_support::TestDatabase;
use serde_json::{Value, json};

use crate::fixtures::grpc_client;
use crate::helpers::{spawn_gateway, spawn_ml_service, spawn_ml_service_with};

/// The learner's state as `GetWeights` serves it.
async fn learner_state(client: &mut MlServiceClient<tonic::transport::Channel>) -> proto::GetWeightsResponse {
    client
        .get_weights(proto::GetWeightsRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// Records `events` through `RecordEvent`, which must accept them.
async fn recorded(
    client: &mut MlServiceClient<tonic::transport::Channel>,
    events: Vec<proto::LearningEvent>,
) -> proto::RecordEventResponse {
    client
        .record_event(proto::RecordEventRequest { events })
        .await
        .unwrap()
        .into_inner()
}

fn event(event_id: &str, ad_id: &str, features: &[&str], impressions: f64, clicks: f64) -> proto::LearningEvent {
    proto::LearningEvent {
        event_id: event_id.to_owned(),
        ids: Some(proto::AdIds {
            ad_id: ad_id.to_owned(),
            ..proto::AdIds::default()
        }),
        creative_features: features.iter().map(|name| ((*name).to_owned(), 1.0)).collect(),
        impressions,
        clicks,
        ..proto::LearningEvent::default()
    }
}

/// The recovery plan's `test_instant_learning_flow`, step by step, against the running gateway — its
/// requests as the plan writes them, without an API key, to a gateway that opened the plan's routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_plans_instant_learning_flow_passes() {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service(&database).await;
    let gateway = spawn_gateway(
        &database,
        &ml_service.base_url(),
        &[("ADLOOP_API_KEYS__OPEN_RECOVERY_PLAN_ROUTES", "true")],
    )
    .await;
    let http = reqwest::Client::new();
    let weights = || async {
        http.get(format!("{}/api/weights", gateway.base_url()))
            .send()
            .await
            .unwrap()
            .json::<HashMap<String, f64>>()
            .await
            .unwrap()
    };

    let initial_weights = weights().await;
    let event_data = json!({
        "ad_id": "test_ad_123",
        "event_type": "conversion",
        "ctr": 0.15,
        "predicted_ctr": 0.05,
        "features": { "has_pain_point": true, "has_number": true, "has_question": false }
    });
    let response = http
        .post(format!("{}/api/internal/learning/event", gateway.base_url()))
        .json(&event_data)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.unwrap();
    // No waiting: the answer comes after the event is applied.
    let updated_weights = weights().await;

    assert!(
        updated_weights["pain_point"] > initial_weights["pain_point"],
        "pain point weight should increase after a high-performing event: {initial_weights:?} -> {updated_weights:?}"
    );
    assert!(updated_weights["number"] > initial_weights["number"]);
    assert_eq!(updated_weights["question"], initial_weights["question"]);
    assert!(answer["prediction_after"]["ctr"].as_f64() > answer["prediction_before"]["ctr"].as_f64());
    assert_eq!(answer["predicted_ctr"], json!(0.05));

    let learner: Value = http
        .get(format!("{}/v1/learner", gateway.base_url()))
        .bearer_auth(gateway.api_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(learner["events_applied"], json!(1));
    assert!(learner["ctr"]["weights"]["has_pain_point"].as_f64().unwrap() > 0.0);

    // Bad input: 400 naming the field, nothing learned.
    for (body, field) in [
        (
            json!({ "ad_id": "a", "features": { "has number": true }, "impressions": 5 }),
            "features.has number",
        ),
        (
            json!({ "ad_id": "a", "features": { "hook": [1] }, "impressions": 5 }),
            "features.hook",
        ),
        (
            json!({ "ad_id": "a", "features": { "x": true }, "impressions": 5, "clicks": 9 }),
            "clicks",
        ),
        (json!({ "ad_id": "a", "features": { "x": true }, "ctr": 1.5 }), "ctr"),
        (
            json!({ "ad_id": "a", "event_type": "purchase", "features": { "x": true } }),
            "event_type",
        ),
        // Milliseconds where seconds belong: refused by name, not a date the log fails to store.
        (
            json!({ "ad_id": "a", "features": { "x": true }, "impressions": 5, "event_time": 1_764_000_000_000_i64 }),
            "event_time",
        ),
        (
            json!({ "ad_id": "a", "features": { "x": true }, "impressions": 5, "ad_created_time": 1_764_000_000_000_i64 }),
            "ad_created_time",
        ),
        (
            json!({ "ad_id": "a", "features": { "x": true }, "impressions": 5, "value": -1, "currency": "USD" }),
            "value",
        ),
        // An empty category would be learned as the feature `=`.
        (
            json!({ "ad_id": "a", "features": { "": "" }, "impressions": 5 }),
            "features.",
        ),
        (
            json!({ "ad_id": "a", "features": { "hook_type": " " }, "impressions": 5 }),
            "features.hook_type",
        ),
        (
            json!({ "ad_id": "a", "features": { "duration": -1.7e145 }, "impressions": 5 }),
            "features.duration",
        ),
    ] {
        let refused = http
            .post(format!("{}/api/internal/learning/event", gateway.base_url()))
            .bearer_auth(gateway.api_key())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 400, "{body}");
        let error: Value = refused.json().await.unwrap();
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{body}: {message}");
    }
    let after_refusals = weights().await;
    assert_eq!(after_refusals, updated_weights);
}

/// The recovery plan's routes need a key unless the deployment opens them; opened, a keyless request is
/// served but a wrong key is still refused, and every other route still needs a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_gateway_that_opens_the_recovery_plans_routes_serves_them_without_a_key() {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service(&database).await;
    let closed = spawn_gateway(&database, &ml_service.base_url(), &[]).await;
    let open = spawn_gateway(
        &database,
        &ml_service.base_url(),
        &[("ADLOOP_API_KEYS__OPEN_RECOVERY_PLAN_ROUTES", "true")],
    )
    .await;
    let http = reqwest::Client::new();
    let event = json!({ "ad_id": "a", "event_type": "click", "ctr": 0.1, "features": { "has_number": true } });
    let selection = json!({
        "ad_states": [
            { "ad_id": "a", "impressions": 1000, "clicks": 20, "spend": 10.0, "age_hours": 48 },
            { "ad_id": "b", "impressions": 1000, "clicks": 10, "spend": 10.0, "age_hours": 48 }
        ],
        "total_budget": 100.0
    });
    let status = |gateway: &crate::helpers::RunningService,
                  method: &'static str,
                  path: &'static str,
                  body: Option<Value>,
                  key: Option<&str>| {
        let mut request = match method {
            "GET" => http.get(format!("{}{path}", gateway.base_url())),
            _ => http.post(format!("{}{path}", gateway.base_url())),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let plan_routes = [
        ("GET", "/api/weights", None),
        ("POST", "/api/internal/learning/event", Some(event.clone())),
        ("POST", "/api/v1/ml/battle-hardened/select", Some(selection.clone())),
    ];
    for (method, path, body) in plan_routes.clone() {
        assert_eq!(
            status(&closed, method, path, body.clone(), None).await,
            401,
            "{path} on a closed gateway"
        );
        assert_eq!(
            status(&open, method, path, body.clone(), None).await,
            200,
            "{path} opened, no key"
        );
        assert_eq!(
            status(&open, method, path, body.clone(), Some("adl_wrong")).await,
            401,
            "{path} opened, a wrong key"
        );
        assert_eq!(
            status(&open, method, path, body, Some(open.api_key())).await,
            200,
            "{path} opened, a key"
        );
    }
    for path in ["/v1/learner", "/v1/ad-changes", "/v1/guardrails"] {
        assert_eq!(
            status(&open, "GET", path, None, None).await,
            401,
            "{path} is not the plan's"
        );
    }
}

/// An event whose ad was created more than a week before it teaches the conversion head, not the CTR head;
/// one left with nothing to teach is still logged (a re-send is a duplicate) and a replica replays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ad_older_than_a_week_teaches_conversions_but_not_clicks() {
    const EVENT_TIME: i64 = 1_796_083_200;
    const DAY: i64 = 86_400;
    let database = TestDatabase::create().await;
    let first = spawn_ml_service(&database).await;
    let mut client = grpc_client(&first.base_url()).await;
    let delivery = |event_id: &str, created_days_before: i64, conversions: f64| proto::LearningEvent {
        event_time_unix_seconds: EVENT_TIME,
        ad_created_unix_seconds: EVENT_TIME - created_days_before * DAY,
        matured_clicks: if conversions > 0.0 { 40.0 } else { 0.0 },
        conversions,
        ..event(event_id, "ad-1", &["has_number"], 1000.0, 40.0)
    };
    let heads = |response: proto::GetWeightsResponse| {
        let head = |head: Option<proto::LearnerHead>| {
            let head = head.unwrap();
            (head.weights.into_iter().collect::<BTreeMap<_, _>>(), head.bias)
        };
        (head(response.ctr), head(response.conversion))
    };
    let (ctr_before, conversion_before) = heads(learner_state(&mut client).await);

    let old_ad = recorded(&mut client, vec![delivery("old-1", 30, 4.0)]).await;
    let outcome = &old_ad.outcomes[0];
    assert_eq!(
        outcome.ctr_after, outcome.ctr_before,
        "a month-old ad's 40 clicks must not teach CTR"
    );
    assert!(outcome.conversion_rate_after > outcome.conversion_rate_before);
    let (ctr_after, conversion_after) = heads(learner_state(&mut client).await);
    assert_eq!(ctr_after, ctr_before);
    assert_ne!(conversion_after, conversion_before);

    let clicks_only = delivery("old-2", 30, 0.0);
    let first_time = recorded(&mut client, vec![clicks_only.clone()]).await;
    assert!(first_time.applied && !first_time.outcomes[0].duplicate);
    let again = recorded(&mut client, vec![clicks_only]).await;
    assert!(
        again.outcomes[0].duplicate,
        "the event was logged although it taught nothing"
    );

    let young_ad = recorded(&mut client, vec![delivery("young-1", 3, 0.0)]).await;
    assert!(young_ad.outcomes[0].ctr_after > young_ad.outcomes[0].ctr_before);

    let weights_here = learner_state(&mut client).await;
    let replica = spawn_ml_service(&database).await;
    let mut replica_client = grpc_client(&replica.base_url()).await;
    let weights_there = learner_state(&mut replica_client).await;
    assert_eq!(weights_there.events_applied, 3);
    assert_eq!(heads(weights_there), heads(weights_here));
    let metrics = first.metrics_text().await;
    assert!(
        metrics.contains("adloop_ml_learner_ctr_trials_withheld_total 2"),
        "the two month-old ad's events, counted once each:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_agree_duplicates_apply_once_and_a_restart_loses_nothing() {
    let database = TestDatabase::create().await;
    let snapshot_often = [
        ("ADLOOP_LEARNING__SNAPSHOT_EVERY_EVENTS", "7"),
        ("ADLOOP_LEARNING__SNAPSHOT_MIN_INTERVAL_SECONDS", "0"),
        ("ADLOOP_LEARNING__CATCH_UP_INTERVAL_MILLISECONDS", "50"),
    ];
    let mut first = spawn_ml_service_with(&database, &snapshot_often).await;
    let second = spawn_ml_service_with(&database, &snapshot_often).await;
    let mut first_client = grpc_client(&first.base_url()).await;
    let mut second_client = grpc_client(&second.base_url()).await;

    let features = [
        ["has_number", "has_face"],
        ["has_question", "has_face"],
        ["has_number", "has_pain_point"],
    ];
    for round in 0..6 {
        let events = (0..5)
            .map(|index| {
                let creative = &features[(round + index) % features.len()];
                event(
                    &format!("e-{round}-{index}"),
                    &format!("ad-{index}"),
                    creative,
                    100.0,
                    (index * 2) as f64,
                )
            })
            .collect();
        let client = if round % 2 == 0 {
            &mut first_client
        } else {
            &mut second_client
        };
        let answer = recorded(client, events).await;
        assert!(answer.applied);
        assert_eq!(answer.events_applied, (round as i64 + 1) * 5);
    }
    let weights_of = |response: proto::GetWeightsResponse| {
        let ctr = response.ctr.unwrap();
        (
            (response.model_version, response.events_applied),
            ctr.weights.into_iter().collect::<BTreeMap<_, _>>(),
            ctr.bias,
            response.conversion.unwrap().bias,
        )
    };
    let from_first = weights_of(learner_state(&mut first_client).await);
    let from_second = weights_of(learner_state(&mut second_client).await);
    assert_eq!(
        from_first, from_second,
        "both replicas applied the same log in the same order"
    );
    assert_eq!(from_first.0, ("instant-learner@30".to_owned(), 30));

    // The same event again: recorded as a duplicate, applied zero more times.
    let again = recorded(
        &mut first_client,
        vec![event("e-0-0", "ad-0", &features[0], 100.0, 0.0)],
    )
    .await;
    assert!(!again.applied && again.outcomes[0].duplicate);
    assert_eq!(again.events_applied, 30);

    // Bad input: INVALID_ARGUMENT naming the field, and nothing of the batch is logged.
    let refused = first_client
        .record_event(proto::RecordEventRequest {
            events: vec![
                event("ok-1", "ad-1", &["has_number"], 10.0, 1.0),
                event("bad-1", "ad-1", &["has_number"], 10.0, 11.0),
            ],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().starts_with("events[1].clicks"),
        "{}",
        refused.message()
    );

    // A conversion without features learns with its ad's last known features.
    let conversion = proto::LearningEvent {
        kind: proto::EventKind::Conversion as i32,
        ..event("conversion-1", "ad-2", &[], 0.0, 0.0)
    };
    recorded(&mut first_client, vec![conversion]).await;

    // A restart (from a snapshot plus the log after it) holds exactly what the running replica holds. The
    // replicas' background loop takes the snapshots: wait for one.
    let pool = sqlx::PgPool::connect(&format!("{}?options=-csearch_path%3Dml", database.url))
        .await
        .unwrap();
    let mut newest_snapshot = 0_i64;
    for _ in 0..200 {
        newest_snapshot = sqlx::query_scalar("SELECT coalesce(max(through_seq), 0) FROM learner_state_snapshots")
            .fetch_one(&pool)
            .await
            .unwrap();
        if newest_snapshot >= 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        newest_snapshot >= 7,
        "a snapshot every 7 events, taken in the background"
    );
    recorded(
        &mut first_client,
        vec![event("after-snapshot", "ad-3", &features[1], 50.0, 1.0)],
    )
    .await;
    first.stop();
    let _ = first.task.await;
    let restarted = spawn_ml_service_with(&database, &snapshot_often).await;
    let mut restarted_client = grpc_client(&restarted.base_url()).await;
    let after_restart = weights_of(learner_state(&mut restarted_client).await);
    let still_running = weights_of(learner_state(&mut second_client).await);
    assert_eq!(after_restart, still_running);
    assert_eq!(
        after_restart.0.1, 32,
        "30 events, a duplicate not counted, a conversion, one after the snapshot"
    );
    // Sequence numbers have gaps (a duplicate's insert takes one): count the events the snapshot covers.
    let covered: i64 = sqlx::query_scalar("SELECT count(*) FROM learning_events WHERE seq <= $1")
        .bind(newest_snapshot)
        .fetch_one(&pool)
        .await
        .unwrap();
    let metrics = restarted.metrics_text().await;
    let replayed = adloop_telemetry::metrics::sample_value(&metrics, "adloop_ml_learner_events_applied_total")
        .unwrap_or_else(|| panic!("the restarted replica counts the events it applied:\n{metrics}"));
    assert!(
        replayed <= (32 - covered) as f64,
        "the restart read its snapshot ({covered} events) and replayed only the {replayed} after it"
    );
    let borrowed: String =
        sqlx::query_scalar("SELECT features::text FROM learning_events WHERE event_id = 'conversion-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        borrowed.contains("has_question"),
        "the conversion borrowed ad-2's features: {borrowed}"
    );
}

/// What the learner learned moves allocations: two new ads, identical but for one feature the learner has
/// seen double the click-through rate on, get the learner's prior and are split accordingly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learned_feature_moves_the_allocation_of_new_ads() {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service(&database).await;
    let mut client = grpc_client(&ml_service.base_url()).await;
    let events = (0..400)
        .map(|index| {
            let has_face = index % 2 == 0;
            let features: &[&str] = if has_face {
                &["has_face", "has_number"]
            } else {
                &["has_number"]
            };
            let clicks = if has_face { 40.0 } else { 20.0 };
            event(
                &format!("history-{index}"),
                &format!("old-{}", index % 20),
                features,
                1_000.0,
                clicks,
            )
        })
        .collect();
    recorded(&mut client, events).await;

    let new_ad = |ad_id: &str, features: &[&str]| {
        let mut state = crate::fixtures::ad_state(ad_id, 0, 0, 0, 0);
        state.age_hours = 1.0;
        state.recent = None;
        state.creative_features = features.iter().map(|name| ((*name).to_owned(), 1.0)).collect();
        state
    };
    let request = crate::fixtures::allocation_request(
        vec![
            new_ad("with-face", &["has_face", "has_number"]),
            new_ad("without-face", &["has_number"]),
        ],
        20_000,
    );
    let allocation = client.allocate(request).await.unwrap().into_inner();
    let [with_face, without_face] = &allocation.recommendations[..] else {
        panic!("two recommendations")
    };
    assert_eq!(with_face.prior_source, "population+instant_learner");
    assert!(
        with_face.probability_best > without_face.probability_best,
        "{} vs {}",
        with_face.probability_best,
        without_face.probability_best
    );
    assert!(with_face.ctr.as_ref().unwrap().mean > without_face.ctr.as_ref().unwrap().mean);
}

/// The simulator's `adloop` policy and ml-service run the same learner: fed the same deltas (the policy
/// learns them itself; ml-service takes them through `RecordEvent`), they hold bit-identical weights, and
/// with the learner's priors they allocate the same budgets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_service_learns_and_allocates_exactly_as_the_simulators_adloop_policy() {
    ml_service_matches_the_adloop_policy("cold-start", 23, 8).await;
}

/// The same with five accounts that all share patterns: the cross-learner's store and priors agree too
/// (the policy's requests carry cross-learner priors, and ml-service allocates the same budgets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_service_shares_patterns_across_accounts_exactly_as_the_simulators_adloop_policy() {
    ml_service_matches_the_adloop_policy("creative-accounts", 29, 10).await;
}

async fn ml_service_matches_the_adloop_policy(scenario_name: &str, seed: u64, days: u32) {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service(&database).await;
    let mut client = grpc_client(&ml_service.base_url()).await;
    let scenario_path = format!("{}/../../scenarios/{scenario_name}.toml", env!("CARGO_MANIFEST_DIR"));
    let scenario = campaign_sim::Scenario::from_toml(&std::fs::read_to_string(scenario_path).unwrap()).unwrap();
    let mut world = campaign_sim::World::new(&scenario, seed);
    let mut policy = campaign_sim::policy::Adloop::new(seed);
    let mut client_feed = adloop_learner::DeliveryFeed::default();
    let allocator_config = adloop_allocator::AllocatorConfig::default();
    let mut account_delays = campaign_sim::policy::AccountDelayEstimates::default();
    let mut sharing_accounts = std::collections::BTreeSet::new();
    let mut cross_learner_priors_seen = 0;
    for day in 0..days {
        world.advance();
        let observation = world.observation().clone();
        let account_of: HashMap<String, String> = observation
            .ads
            .iter()
            .map(|ad| (ad.identity.ad_id.clone(), ad.identity.account_id.clone()))
            .collect();
        // In the simulator every account shares; ml-service learns it through SetPatternSharing.
        for account in account_of.values() {
            if sharing_accounts.insert(account.clone()) {
                crate::fixtures::share_patterns(&mut client, &[account.as_str()]).await;
            }
        }
        let true_roas = vec![1.0; observation.ads.len()];
        // The client estimates each account's reporting delays as the policy does, and sends them along.
        account_delays.record(&observation);
        let account_schedules = account_delays.schedules(&allocator_config);
        let events: Vec<proto::LearningEvent> = campaign_sim::policy::learning_updates(
            &mut client_feed,
            &observation,
            &account_schedules,
            &allocator_config.reporting_delay,
            64,
        )
        .into_iter()
        .enumerate()
        .map(|(index, update)| proto::LearningEvent {
            event_id: format!("day-{day}-{index}"),
            ids: Some(proto::AdIds {
                account_id: account_of[&update.ad_id].clone(),
                ad_id: update.ad_id.clone(),
                ..proto::AdIds::default()
            }),
            creative_features: update
                .features
                .iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            impressions: update.impressions,
            clicks: update.clicks,
            matured_clicks: update.matured_clicks,
            conversions: update.conversions,
            ..proto::LearningEvent::default()
        })
        .collect();
        recorded(&mut client, events).await;
        let simulated = campaign_sim::Policy::decide(
            &mut policy,
            &observation,
            &campaign_sim::HiddenTruths {
                true_roas: &true_roas,
                true_rates: &[],
                daily_auction_curves: &[],
            },
        )
        .unwrap();
        cross_learner_priors_seen += policy
            .request_with_priors(&observation)
            .ads
            .iter()
            .flat_map(|ad| &ad.priors)
            .filter(|prior| prior.source == adloop_cross_learner::CROSS_LEARNER_SOURCE)
            .count();
        let request = adloop_allocator::AllocationRequest {
            reporting_delays: account_schedules,
            ..campaign_sim::policy::allocation_request(&observation, seed, 0.5)
        };
        let served = client
            .allocate(proto::AllocateRequest::from(&request))
            .await
            .unwrap()
            .into_inner();
        for (index, (recommendation, expected)) in served.recommendations.iter().zip(&simulated).enumerate() {
            let budget = recommendation.recommended_daily_budget.as_ref().unwrap().minor_units;
            assert!(
                (budget - expected.get()).abs() <= 1,
                "{scenario_name} day {day}, ad {index}: ml-service {budget}, simulator {}",
                expected.get()
            );
        }
    }
    if sharing_accounts.len() > 3 {
        assert!(cross_learner_priors_seen > 0, "the cross-learner gave priors");
    }
    let learner = policy.learner().unwrap();
    let served = learner_state(&mut client).await;
    let ctr = served.ctr.unwrap();
    let conversion = served.conversion.unwrap();
    let as_map = |weights: Vec<(&str, f64)>| -> BTreeMap<String, f64> {
        weights
            .into_iter()
            .map(|(name, weight)| (name.to_owned(), weight))
            .collect()
    };
    assert!(!ctr.weights.is_empty(), "the learner learned features");
    assert_eq!(
        ctr.weights.into_iter().collect::<BTreeMap<_, _>>(),
        as_map(learner.ctr_head().weights().collect())
    );
    assert_eq!(
        conversion.weights.into_iter().collect::<BTreeMap<_, _>>(),
        as_map(learner.conversion_head().weights().collect())
    );
    assert_eq!(
        (ctr.bias, conversion.bias),
        (learner.ctr_head().bias(), learner.conversion_head().bias())
    );
    assert_eq!(served.events_applied as u64, learner.updates_applied());
}
