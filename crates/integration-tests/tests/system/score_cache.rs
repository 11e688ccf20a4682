//! ml-service's score cache and request limits, against the real Redis: failures are never cached, L2 hits
//! are verified, idle entries age out, the byte bound holds, and oversized or excess requests are refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use adloop_allocator::{AllocatorConfig, PreparedAllocation, ScoreDraws, draw, prepare};
use adloop_proto::ml::v1 as proto;
use adloop_test_support::{TestDatabase, redis_url};
use ml_service::score_cache::{CacheMetrics, CacheTier, ManualClock, ScoreCache, ScoreCacheSettings};

use crate::fixtures::{allocation_request, grpc_client, many_ads, three_ads};
use crate::helpers::spawn_ml_service_with;

fn settings() -> ScoreCacheSettings {
    let mut settings = ml_service::settings::shipped_score_cache_settings().unwrap();
    settings.verify_sample_rate = 0.0;
    settings
}

fn redis_pool() -> deadpool_redis::Pool {
    deadpool_redis::Config::from_url(redis_url())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap()
}

/// An account with a seed of its own, so no other test's cached draws can answer.
fn prepared_account(seed: u64) -> Arc<PreparedAllocation> {
    let mut request = adloop_proto::allocation::allocation_request(&allocation_request(three_ads(), 30_000)).unwrap();
    request.seed = seed;
    Arc::new(prepare(&request, &AllocatorConfig::default()).unwrap())
}

fn unique_seed() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0 | 1
}

#[tokio::test]
async fn a_failed_draw_computation_is_not_cached_and_the_next_request_computes_again() {
    let fail_next = Arc::new(AtomicBool::new(true));
    let fail_for_draws = Arc::clone(&fail_next);
    let cache = Arc::new(
        ScoreCache::builder(settings(), CacheMetrics::default())
            .draw_function(Arc::new(move |prepared: &PreparedAllocation, ad| {
                if fail_for_draws.swap(false, Ordering::SeqCst) {
                    panic!("injected failure in the draw computation");
                }
                draw(prepared, ad)
            }))
            .build(),
    );
    let prepared = prepared_account(unique_seed());
    assert!(cache.draws_for(&prepared).await.is_err(), "the failure is reported");

    let recovered = cache.draws_for(&prepared).await.unwrap();
    assert!(
        recovered.tiers.iter().all(|tier| *tier == CacheTier::Computed),
        "nothing of the failed computation was cached: {:?}",
        recovered.tiers
    );
    for (ad, draws) in prepared.ads.iter().zip(&recovered.draws) {
        assert_eq!(**draws, draw(&prepared, ad));
        assert_eq!(draws.draw_count(), prepared.draws_per_ad);
    }
    let again = cache.draws_for(&prepared).await.unwrap();
    assert!(again.tiers.iter().all(|tier| *tier == CacheTier::L1));
}

#[tokio::test]
async fn redis_hits_are_verified_and_a_wrong_entry_is_counted_stale() {
    let metrics = CacheMetrics::default();
    let mut verifying = settings();
    verifying.verify_sample_rate = 1.0;
    let prepared = prepared_account(unique_seed());

    // One replica computes and writes L2; Redis then holds wrong draws (right length) for the first ad.
    let writer = Arc::new(
        ScoreCache::builder(settings(), CacheMetrics::default())
            .redis(redis_pool())
            .build(),
    );
    writer.draws_for(&prepared).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut wrong = draw(&prepared, &prepared.ads[0]);
    wrong.roas.iter_mut().for_each(|value| *value *= 2.0);
    let wrong_bytes: Vec<u8> = wrong
        .ctr
        .iter()
        .chain(&wrong.roas)
        .flat_map(|value| value.to_le_bytes())
        .collect();
    let mut connection = redis_pool().get().await.unwrap();
    deadpool_redis::redis::cmd("SET")
        .arg(format!("adloop:draws:{}", prepared.ads[0].draws_key))
        .arg(wrong_bytes)
        .query_async::<()>(&mut connection)
        .await
        .unwrap();

    // A second replica reads every ad from L2 and verifies each hit (sample rate 1).
    let reader = Arc::new(
        ScoreCache::builder(verifying, metrics.clone())
            .redis(redis_pool())
            .build(),
    );
    let served = reader.draws_for(&prepared).await.unwrap();
    assert!(
        served.tiers.iter().all(|tier| *tier == CacheTier::L2),
        "{:?}",
        served.tiers
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(metrics.verified_hits.get(), prepared.ads.len() as u64);
    assert_eq!(metrics.stale_hits.get(), 1, "the tampered entry was caught");
}

#[tokio::test]
async fn entries_unused_for_the_idle_time_leave_l1_and_polled_ones_stay() {
    let clock = Arc::new(ManualClock::default());
    let settings = settings();
    let idle_millis = settings.idle_seconds * 1000;
    let cache = Arc::new(
        ScoreCache::builder(settings, CacheMetrics::default())
            .clock(clock.clone())
            .build(),
    );
    let polled = prepared_account(unique_seed());
    let forgotten = prepared_account(unique_seed());
    cache.draws_for(&polled).await.unwrap();
    cache.draws_for(&forgotten).await.unwrap();
    // Polled every fifth of the idle time, for three idle times: never idle, always a hit.
    for _ in 0..15 {
        clock.advance_millis(idle_millis / 5);
        let tiers = cache.draws_for(&polled).await.unwrap().tiers;
        assert!(tiers.iter().all(|tier| *tier == CacheTier::L1), "{tiers:?}");
    }
    let tiers = cache.draws_for(&forgotten).await.unwrap().tiers;
    assert!(tiers.iter().all(|tier| *tier == CacheTier::Computed), "{tiers:?}");
}

#[tokio::test]
async fn l1_stays_within_its_byte_bound() {
    let mut bounded = settings();
    bounded.l1_max_bytes = 2 * 1024 * 1024;
    let cache = Arc::new(ScoreCache::builder(bounded, CacheMetrics::default()).build());
    // 300 accounts of 3 ads at about 8.4 KiB each: 7 MiB offered to a 2 MiB bound.
    for _ in 0..300 {
        cache.draws_for(&prepared_account(unique_seed())).await.unwrap();
    }
    let held = cache.l1_weighted_bytes().await;
    assert!(held <= 2 * 1024 * 1024, "L1 holds {held} bytes");
    assert!(held >= 1024 * 1024, "L1 is used up to its bound, holds {held} bytes");
    let one_entry = ScoreDraws {
        ctr: vec![0.0; 1024],
        roas: vec![0.0; 1024],
    };
    assert_eq!(one_entry.size_in_bytes(), 8192);
}

#[tokio::test]
async fn more_ads_than_the_limit_is_invalid_argument_naming_the_setting() {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service_with(&database, &[("ADLOOP_ALLOCATOR__MAX_ADS_PER_REQUEST", "50")]).await;
    let mut client = grpc_client(&ml_service.base_url()).await;
    let status = client
        .allocate(allocation_request(many_ads(51), 1_000_000))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().starts_with("ads:") && status.message().contains("allocator.max_ads_per_request"),
        "{}",
        status.message()
    );
    let status = client
        .score(proto::ScoreRequest { ads: many_ads(51) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        client
            .allocate(allocation_request(many_ads(50), 1_000_000))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn allocations_beyond_running_and_waiting_are_refused_with_resource_exhausted() {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service_with(
        &database,
        &[
            ("ADLOOP_ALLOCATION_LIMITS__MAX_RUNNING", "1"),
            ("ADLOOP_ALLOCATION_LIMITS__MAX_WAITING", "0"),
        ],
    )
    .await;
    let base_url = ml_service.base_url();
    // Twelve 1,000-ad allocations at once, each with a new seed (nothing cached): one runs at a time and
    // none may wait, so most are refused at once; the one admitted is answered.
    let mut calls = Vec::new();
    for seed in 1..=12_u64 {
        let base_url = base_url.clone();
        calls.push(tokio::spawn(async move {
            let mut client = grpc_client(&base_url).await;
            let mut request = allocation_request(many_ads(1000), 10_000_000);
            request.seed = seed;
            client
                .allocate(request)
                .await
                .map(|_| ())
                .map_err(|status| status.code())
        }));
    }
    let mut answered = 0;
    let mut refused = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(()) => answered += 1,
            Err(tonic::Code::ResourceExhausted) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(answered >= 1 && refused >= 1, "answered {answered}, refused {refused}");
    let metrics = reqwest::get(format!("{base_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("adloop_ml_allocations_shed_total {refused}")),
        "{metrics}"
    );
}

/// The simulator's `adloop` policy and ml-service over gRPC must be one allocator: the same observation,
/// seed and settings give the same budgets (within one minor unit per ad), cached draws or not.
#[tokio::test]
async fn ml_service_allocates_exactly_as_the_simulators_adloop_policy() {
    let database = TestDatabase::create().await;
    let ml_service = spawn_ml_service_with(&database, &[]).await;
    let mut client = grpc_client(&ml_service.base_url()).await;
    let scenario_text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/many-ads-200.toml"
    ))
    .unwrap();
    let scenario = campaign_sim::Scenario::from_toml(&scenario_text).unwrap();
    let mut world = campaign_sim::World::new(&scenario, 17);
    let true_roas = vec![1.0; world.observation().ads.len()];
    let mut policy = campaign_sim::policy::built_in_policy("adloop", 17).unwrap();
    // The client estimates the account's reporting delays from the same observations, as the policy does.
    let mut account_delays = campaign_sim::policy::AccountDelayEstimates::default();
    for _day in 0..3 {
        for _ in 0..24 {
            world.advance();
        }
        let observation = world.observation().clone();
        let simulated = policy
            .decide(
                &observation,
                &campaign_sim::HiddenTruths {
                    true_roas: &true_roas,
                    true_rates: &[],
                    daily_auction_curves: &[],
                },
            )
            .unwrap();
        account_delays.record(&observation);
        let request = adloop_allocator::AllocationRequest {
            reporting_delays: account_delays.schedules(&adloop_allocator::AllocatorConfig::default()),
            ..campaign_sim::policy::allocation_request(&observation, 17, 0.5)
        };
        // Twice: the second answer comes from the score cache.
        for _ in 0..2 {
            let served = client
                .allocate(proto::AllocateRequest::from(&request))
                .await
                .unwrap()
                .into_inner();
            for (index, (recommendation, expected)) in served.recommendations.iter().zip(&simulated).enumerate() {
                let budget = recommendation.recommended_daily_budget.as_ref().unwrap().minor_units;
                assert!(
                    (budget - expected.get()).abs() <= 1,
                    "ad {index}: ml-service {budget}, simulator {}",
                    expected.get()
                );
            }
        }
    }
}
