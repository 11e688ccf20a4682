//! Allocation requests for the tests, built as the allocator's types and sent through the one shared
//! conversion to the contract (`adloop_proto::allocation`).

use std::collections::BTreeMap;

use adloop_allocator::{AdIds, AdInput, AdStatus, AllocationConstraints, AllocationRequest, RecentWindow};
use adloop_money::{Currency, MinorUnits};
use adloop_proto::ml::v1 as proto;
use adloop_proto::ml::v1::ml_service_client::MlServiceClient;

fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

/// A ten-day-old ad with 30% of its delivery in the last 72 hours and a 100.00 budget.
pub fn ad_input(ad_id: &str, impressions: u64, clicks: u64, conversions: u64, value_cents: i64) -> AdInput {
    AdInput {
        ids: AdIds {
            account_id: "act_1".into(),
            campaign_id: "c1".into(),
            ad_set_id: format!("set-{ad_id}"),
            ad_id: ad_id.into(),
        },
        impressions,
        clicks,
        conversions,
        spend: MinorUnits(100_000),
        conversion_value: MinorUnits(value_cents),
        age_hours: 240.0,
        current_daily_budget: MinorUnits(10_000),
        status: AdStatus::Active,
        creative_features: BTreeMap::new(),
        creative_dna_score: None,
        priors: Vec::new(),
        recent: Some(RecentWindow {
            hours: 72.0,
            impressions: impressions * 3 / 10,
            clicks: clicks * 3 / 10,
            spend: MinorUnits(30_000),
            conversions: conversions * 3 / 10,
            conversion_value: MinorUnits(value_cents * 3 / 10),
        }),
        latest: None,
        frequency: None,
        delivery_curve: None,
        weekday_ctr_multiplier: None,
    }
}

pub fn ad_state(ad_id: &str, impressions: i64, clicks: i64, conversions: i64, value_cents: i64) -> proto::AdState {
    let ad = ad_input(
        ad_id,
        impressions as u64,
        clicks as u64,
        conversions as u64,
        value_cents,
    );
    adloop_proto::allocation::ad_state(&ad, usd())
}

/// An Allocate request in USD with a 1.00 floor, no cap and the ±50% change limit.
pub fn allocation_request(ads: Vec<proto::AdState>, total: i64) -> proto::AllocateRequest {
    let request = AllocationRequest {
        ads: Vec::new(),
        total_daily_budget: MinorUnits(total),
        currency: usd(),
        constraints: AllocationConstraints {
            per_ad_floor: MinorUnits(100),
            per_ad_cap: MinorUnits::ZERO,
            max_change_fraction: 0.5,
        },
        seed: 0,
        reporting_delays: Default::default(),
    };
    proto::AllocateRequest {
        ads,
        ..proto::AllocateRequest::from(&request)
    }
}

pub fn three_ads() -> Vec<proto::AdState> {
    vec![
        ad_state("winner", 100_000, 2_000, 100, 500_000),
        ad_state("middle", 100_000, 1_500, 60, 300_000),
        ad_state("loser", 100_000, 1_000, 20, 100_000),
    ]
}

/// `count` ads with CTRs from 1% to 2% and values rising with the index.
pub fn many_ads(count: usize) -> Vec<proto::AdState> {
    (0..count as i64)
        .map(|index| {
            ad_state(
                &format!("ad-{index}"),
                100_000,
                1_000 + 1_000 * index / count as i64,
                20 + index % 50,
                100_000 + 1_000 * index,
            )
        })
        .collect()
}

pub async fn grpc_client(base_url: &str) -> MlServiceClient<tonic::transport::Channel> {
    MlServiceClient::new(
        tonic::transport::Endpoint::from_shared(base_url.to_owned())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
    .max_decoding_message_size(64 * 1024 * 1024)
}

/// Turns pattern sharing on for each of `accounts` (the cross-learner's opt-in).
pub async fn share_patterns(client: &mut MlServiceClient<tonic::transport::Channel>, accounts: &[&str]) {
    for account in accounts {
        client
            .set_pattern_sharing(proto::SetPatternSharingRequest {
                account_id: (*account).to_owned(),
                shares: true,
            })
            .await
            .unwrap();
    }
}
