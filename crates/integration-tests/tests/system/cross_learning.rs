//! The cross-learner through the real ml-service: accounts opt in, their events pool into creative patterns,
//! a new ad in another sharing account finds them (as lifts, without any account id) and gets a prior that
//! moves its allocation; an account that does not share neither finds nor contributes; opting out removes
//! an account's contributions at once.

use adloop_proto::ml::v1 as proto;
use adloop_test_support::TestDatabase;

use crate::fixtures::{grpc_client, share_patterns};
use crate::helpers::{spawn_ml_service, spawn_ml_service_with};

const STAR: [&str; 2] = ["has_number", "ugc_style"];
const PLAIN: [&str; 1] = ["long_video"];

fn delivery(
    event_id: String,
    account: &str,
    ad: &str,
    features: &[&str],
    impressions: f64,
    ctr: f64,
) -> proto::LearningEvent {
    proto::LearningEvent {
        event_id,
        ids: Some(proto::AdIds {
            account_id: account.to_owned(),
            ad_id: ad.to_owned(),
            ..proto::AdIds::default()
        }),
        creative_features: features.iter().map(|name| ((*name).to_owned(), 1.0)).collect(),
        impressions,
        clicks: impressions * ctr,
        matured_clicks: impressions * ctr,
        conversions: impressions * ctr * 0.05,
        ..proto::LearningEvent::default()
    }
}

fn query(features: &[&str], account: &str) -> proto::FindSimilarPatternsRequest {
    proto::FindSimilarPatternsRequest {
        creative_features: features.iter().map(|name| ((*name).to_owned(), 1.0)).collect(),
        top_k: 3,
        account_id: account.to_owned(),
        embedding: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similar_patterns_from_other_sharing_accounts_become_a_bounded_prior() {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service(&database).await;
    let mut client = grpc_client(&ml_service.base_url()).await;
    share_patterns(&mut client, &["act-low", "act-mid", "act-high", "act-new"]).await;
    // Three accounts at different levels; in each the star creative earns 1.5× the account's plain ads.
    let mut events = Vec::new();
    for (account, level) in [("act-low", 0.01), ("act-mid", 0.02), ("act-high", 0.04)] {
        events.push(delivery(
            format!("{account}-star"),
            account,
            &format!("{account}-1"),
            &STAR,
            50_000.0,
            level * 1.5,
        ));
        events.push(delivery(
            format!("{account}-plain"),
            account,
            &format!("{account}-2"),
            &PLAIN,
            450_000.0,
            level * 0.9444,
        ));
    }
    // A pattern only two accounts ran (at their usual rates) stays private.
    for (account, level) in [("act-low", 0.01), ("act-mid", 0.02)] {
        events.push(delivery(
            format!("{account}-rare"),
            account,
            &format!("{account}-3"),
            &["has_face"],
            10_000.0,
            level,
        ));
    }
    client.record_event(proto::RecordEventRequest { events }).await.unwrap();

    let found = client
        .find_similar_patterns(query(&STAR, "act-new"))
        .await
        .unwrap()
        .into_inner();
    let top = &found.patterns[0];
    assert_eq!((top.accounts, top.similarity > 0.999), (3, true), "{found:?}");
    assert!((top.ctr_lift - 1.5).abs() < 0.02, "{found:?}");
    let prior = found.prior.clone().expect("a prior from the similar patterns");
    assert!(prior.rates_are_lifts && prior.source == "cross_learner");
    assert!(
        prior.expected_ctr > 1.1 && prior.expected_ctr * prior.expected_conversions_per_click <= 1.2 + 1e-9,
        "{prior:?}"
    );
    for account in ["act-low", "act-mid", "act-high"] {
        assert!(!format!("{found:?}").contains(account), "an account id left ml-service");
    }
    let rare = client
        .find_similar_patterns(query(&["has_face"], "act-new"))
        .await
        .unwrap()
        .into_inner();
    assert!(rare.patterns.iter().all(|pattern| pattern.accounts >= 3), "{rare:?}");

    // An account that does not share receives nothing.
    let outsider = client
        .find_similar_patterns(query(&STAR, "act-outsider"))
        .await
        .unwrap()
        .into_inner();
    assert!(outsider.patterns.is_empty() && outsider.prior.is_none());

    // The prior moves a new ad of the sharing account.
    let new_ad = |ad_id: &str, features: &[&str]| {
        let mut state = crate::fixtures::ad_state(ad_id, 0, 0, 0, 0);
        state.ids.as_mut().unwrap().account_id = "act-new".into();
        state.age_hours = 1.0;
        state.recent = None;
        state.creative_features = features.iter().map(|name| ((*name).to_owned(), 1.0)).collect();
        state
    };
    let allocation = client
        .allocate(crate::fixtures::allocation_request(
            vec![new_ad("new-star", &STAR), new_ad("new-plain", &PLAIN)],
            20_000,
        ))
        .await
        .unwrap()
        .into_inner();
    let [star, plain] = &allocation.recommendations[..] else {
        panic!("two recommendations")
    };
    assert!(star.prior_source.contains("cross_learner"), "{}", star.prior_source);
    assert!(star.probability_best > plain.probability_best);

    // Opting out removes the account's contributions at once: two accounts left, the pattern is private.
    client
        .set_pattern_sharing(proto::SetPatternSharingRequest {
            account_id: "act-high".into(),
            shares: false,
        })
        .await
        .unwrap();
    let after_opt_out = client
        .find_similar_patterns(query(&STAR, "act-new"))
        .await
        .unwrap()
        .into_inner();
    assert!(
        after_opt_out.patterns.iter().all(|pattern| pattern.accounts >= 3),
        "{after_opt_out:?}"
    );
    assert!(after_opt_out.patterns.iter().all(|pattern| pattern.similarity < 0.999));
    let sharing = client
        .get_pattern_sharing(proto::GetPatternSharingRequest {
            account_id: "act-high".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!sharing.shares);

    let refused = client
        .find_similar_patterns(proto::FindSimilarPatternsRequest {
            top_k: 1_000,
            ..query(&STAR, "act-new")
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().starts_with("top_k"), "{}", refused.message());

    // Postgres cannot store a NUL character: an account id with one is bad input, not an outage.
    let refused = client
        .set_pattern_sharing(proto::SetPatternSharingRequest {
            account_id: "act\0-high".into(),
            shares: true,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{}", refused.message());
    assert!(refused.message().starts_with("account_id"), "{}", refused.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_opt_in_and_query_patterns_through_the_gateway() {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service(&database).await;
    let gateway = crate::helpers::spawn_gateway(&database, &ml_service.base_url(), &[]).await;
    let http = reqwest::Client::new();
    let sharing_url = format!("{}/v1/accounts/act_42/pattern-sharing", gateway.base_url());
    let before: serde_json::Value = http
        .get(&sharing_url)
        .bearer_auth(gateway.api_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["shares"], false, "sharing is off until turned on");
    let turned_on = http
        .put(&sharing_url)
        .bearer_auth(gateway.api_key())
        .json(&serde_json::json!({ "shares": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(turned_on.status().as_u16(), 200);
    let after: serde_json::Value = http
        .get(&sharing_url)
        .bearer_auth(gateway.api_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["shares"], true);

    // Nothing shared yet: no patterns, no prior, no error.
    let similar_url = format!("{}/v1/patterns/similar", gateway.base_url());
    let empty: serde_json::Value = http
        .post(&similar_url)
        .bearer_auth(gateway.api_key())
        .json(&serde_json::json!({ "account_id": "act_42", "features": { "has_number": true, "hook_type": "demo" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(empty, serde_json::json!({ "patterns": [], "prior": null }));

    let refused = http
        .post(&similar_url)
        .bearer_auth(gateway.api_key())
        .json(&serde_json::json!({ "account_id": "act_42", "features": { "has number": true } }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let error: serde_json::Value = refused.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("features.has number"),
        "{error}"
    );
    // Searching by embedding needs ml-service's embeddings turned on (off here): 400 naming the field.
    let embedding_refused = http
        .post(&similar_url)
        .bearer_auth(gateway.api_key())
        .json(&serde_json::json!({ "account_id": "act_42", "embedding": [0.5, 0.5] }))
        .send()
        .await
        .unwrap();
    assert_eq!(embedding_refused.status().as_u16(), 400);
    let error: serde_json::Value = embedding_refused.json().await.unwrap();
    assert!(
        error["error"]["message"].as_str().unwrap().starts_with("embedding"),
        "{error}"
    );
}

/// A search by embedding for `act-new` (top_k 0 asks for the default).
fn embedding_query(embedding: Vec<f32>, top_k: u32) -> proto::FindSimilarPatternsRequest {
    proto::FindSimilarPatternsRequest {
        embedding,
        top_k,
        account_id: "act-new".into(),
        ..proto::FindSimilarPatternsRequest::default()
    }
}

/// A unit vector near `direction` (0..8 picks the axis, `tilt` leans it towards the next axis).
fn embedding_towards(direction: usize, tilt: f32) -> Vec<f32> {
    let mut values = vec![0.01_f32; 8];
    values[direction] = 1.0;
    values[(direction + 1) % 8] = tilt;
    values
}

/// Clients may describe creatives by their own embeddings: events carry one, the cross-learner pools them in
/// a store of embedded patterns, and a search by a nearby embedding finds the pattern (shared once three
/// other accounts ran it). An embedding of the wrong length, or one sent while embeddings are off, is
/// refused naming the field, and nothing is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creatives_are_found_by_the_clients_own_embeddings() {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service_with(&database, &[("ADLOOP_CROSS_LEARNER__EMBEDDING_DIMENSIONS", "8")]).await;
    let mut client = grpc_client(&ml_service.base_url()).await;
    share_patterns(&mut client, &["act-a", "act-b", "act-c", "act-new"]).await;
    let mut events = Vec::new();
    for account in ["act-a", "act-b", "act-c"] {
        let mut winner = delivery(
            format!("{account}-winner"),
            account,
            &format!("{account}-1"),
            &PLAIN,
            40_000.0,
            0.03,
        );
        winner.creative_embedding = embedding_towards(2, 0.0);
        let mut usual = delivery(
            format!("{account}-usual"),
            account,
            &format!("{account}-2"),
            &PLAIN,
            400_000.0,
            0.02,
        );
        usual.creative_embedding = embedding_towards(5, 0.0);
        events.extend([winner, usual]);
    }
    client.record_event(proto::RecordEventRequest { events }).await.unwrap();

    let found = client
        .find_similar_patterns(embedding_query(embedding_towards(2, 0.2), 1))
        .await
        .unwrap()
        .into_inner();
    let top = &found.patterns[0];
    assert!(top.pattern_id.starts_with('e') && top.accounts == 3, "{found:?}");
    assert!(top.similarity > 0.97 && top.similarity < 1.0, "{found:?}");
    assert!(
        top.ctr_lift > 1.3,
        "the winner's lift over its accounts' averages: {found:?}"
    );
    assert!(found.prior.is_some());
    // Another replica builds the same store from the log.
    let replica = spawn_ml_service_with(&database, &[("ADLOOP_CROSS_LEARNER__EMBEDDING_DIMENSIONS", "8")]).await;
    let replica_found = grpc_client(&replica.base_url())
        .await
        .find_similar_patterns(embedding_query(embedding_towards(2, 0.2), 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replica_found, found);

    let wrong_length = client
        .find_similar_patterns(embedding_query(vec![1.0; 3], 0))
        .await
        .unwrap_err();
    assert_eq!(wrong_length.code(), tonic::Code::InvalidArgument);
    assert!(
        wrong_length.message().contains("embedding"),
        "{}",
        wrong_length.message()
    );

    let mut bad_event = delivery("bad-embedding".into(), "act-a", "act-a-9", &PLAIN, 10.0, 0.1);
    bad_event.creative_embedding = vec![0.0; 8];
    let refused = client
        .record_event(proto::RecordEventRequest {
            events: vec![bad_event],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("events[0].creative_embedding"),
        "{}",
        refused.message()
    );
    let weights = client
        .get_weights(proto::GetWeightsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(weights.events_applied, 6, "the refused event was not logged");

    // With embeddings off (the default), one is refused naming the setting.
    let other_database = TestDatabase::create().await;
    let embeddings_off = spawn_ml_service(&other_database).await;
    let mut off_client = grpc_client(&embeddings_off.base_url()).await;
    let mut with_embedding = delivery("with-embedding".into(), "act-a", "act-a-1", &PLAIN, 10.0, 0.1);
    with_embedding.creative_embedding = embedding_towards(1, 0.0);
    let off = off_client
        .record_event(proto::RecordEventRequest {
            events: vec![with_embedding],
        })
        .await
        .unwrap_err();
    assert!(
        off.message().contains("cross_learner.embedding_dimensions"),
        "{}",
        off.message()
    );
}

/// Above `store.approximate.above_patterns` ml-service builds the HNSW index in the background (its own loop,
/// so catching up with the log never waits for a build), says so in `/metrics`, and searches through it
/// answer as the exact scan did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_store_gets_an_approximate_index_in_the_background_and_answers_alike() {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service_with(
        &database,
        &[("ADLOOP_CROSS_LEARNER__STORE__APPROXIMATE__ABOVE_PATTERNS", "20")],
    )
    .await;
    let mut client = grpc_client(&ml_service.base_url()).await;
    share_patterns(&mut client, &["act-a", "act-b", "act-c", "act-new"]).await;
    // Thirty creatives, each run by the three accounts: every combination of two of eight features, and more.
    let names = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"];
    let mut creatives: Vec<Vec<&str>> = Vec::new();
    for first in 0..names.len() {
        for second in first + 1..names.len() {
            creatives.push(vec![names[first], names[second]]);
        }
    }
    creatives.push(vec!["f0", "f1", "f2"]);
    creatives.push(vec!["f3", "f4", "f5"]);
    let mut events = Vec::new();
    for (index, creative) in creatives.iter().enumerate() {
        for account in ["act-a", "act-b", "act-c"] {
            let ctr = 0.01 + 0.0005 * index as f64;
            events.push(delivery(
                format!("{account}-{index}"),
                account,
                &format!("{account}-{index}"),
                creative,
                10_000.0,
                ctr,
            ));
        }
    }
    client.record_event(proto::RecordEventRequest { events }).await.unwrap();
    let exact = client
        .find_similar_patterns(query(&["f0", "f1", "f2"], "act-new"))
        .await
        .unwrap()
        .into_inner();

    let metrics_url = format!("{}/metrics", ml_service.base_url());
    let mut covered = 0.0;
    for _ in 0..100 {
        let text = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
        covered = adloop_telemetry::metrics::sample_value(&text, "adloop_ml_pattern_index_patterns").unwrap_or(0.0);
        if covered > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(covered, creatives.len() as f64, "the index covers every pattern");
    let through_the_index = client
        .find_similar_patterns(query(&["f0", "f1", "f2"], "act-new"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(through_the_index, exact);
    assert!(
        through_the_index.patterns[0].similarity > 0.999,
        "{through_the_index:?}"
    );
}
