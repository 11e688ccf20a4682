//! What a cycle teaches ml-service's instant learner: each ad's impressions, clicks, matured clicks and
//! reported conversions since the account's previous cycle, read from insights' lifetime totals by the
//! learner library's `DeliveryFeed` (clicks count as conversion trials only once their conversions could have
//! been reported, on the account's reporting-delay schedule). The feed's memory is kept per account in
//! Postgres (`cycle_memory`); events carry ids of the cycle, so a rerun teaches nothing twice. Each event
//! carries its ad's creation time, and ml-service applies the first-week rule to it
//! (`learning.ctr_learning_max_ad_age_hours`), as it does for every client's events.

use std::collections::BTreeMap;

use adloop_allocator::ReportingDelay;
use adloop_learner::{DeliveryFeed, DeliveryTotals, EncodedFeatures, LearningUpdate};
use adloop_proto::ml::v1 as proto;

use super::account_reader::{AccountSnapshot, ObservedAd};

/// ml-service, not the feed, withholds an old ad's impressions and clicks (from the events' creation times).
const FEED_TEACHES_CTR_AT_ANY_AGE: f64 = f64::INFINITY;

/// The updates since the feed's last reading, from the snapshot's lifetime totals at `clock_unix`, clicks
/// maturing on the account's `reporting_delay`; every ad's impressions and clicks, whatever its age.
pub fn delivery_updates(
    feed: &mut DeliveryFeed,
    account_id: &str,
    snapshot: &AccountSnapshot,
    clock_unix: i64,
    reporting_delay: &ReportingDelay,
) -> Vec<LearningUpdate> {
    let totals = snapshot.ads.iter().map(|ad| DeliveryTotals {
        ad_id: ad.ad_id.clone(),
        account_id: account_id.to_owned(),
        // The events carry the raw features (below); ml-service encodes them.
        features: EncodedFeatures::default(),
        impressions: ad.lifetime.impressions,
        clicks: ad.lifetime.clicks.min(ad.lifetime.impressions),
        conversions: ad.lifetime.conversions,
        // Not read: the feed teaches at any age, and ml-service ages the ad from the event's creation time.
        age_hours: None,
    });
    feed.updates(
        totals,
        clock_unix as f64 / 3600.0,
        FEED_TEACHES_CTR_AT_ANY_AGE,
        |_account_id, age_hours| reporting_delay.reported_share_at(age_hours),
    )
}

/// The updates as `RecordEvent` events: ids name the account, the cycle slot and the ad; each carries the
/// ad's creative features and its creation time (0, unknown, where insights gave none).
pub fn learning_events(
    updates: &[LearningUpdate],
    snapshot: &AccountSnapshot,
    account_id: &str,
    cycle_slot: i64,
    clock_unix: i64,
    with_conversions: bool,
) -> Vec<proto::LearningEvent> {
    let ads_by_id: BTreeMap<&str, &ObservedAd> = snapshot.ads.iter().map(|ad| (ad.ad_id.as_str(), ad)).collect();
    let conversions_of = |update: &LearningUpdate| if with_conversions { update.conversions } else { 0.0 };
    updates
        .iter()
        .filter(|update| update.impressions + update.clicks + update.matured_clicks + conversions_of(update) > 0.0)
        .map(|update| {
            let ad = ads_by_id.get(update.ad_id.as_str());
            proto::LearningEvent {
                event_id: format!("autopilot/{account_id}/{cycle_slot}/{}", update.ad_id),
                ids: Some(proto::AdIds {
                    account_id: account_id.to_owned(),
                    ad_id: update.ad_id.clone(),
                    ..proto::AdIds::default()
                }),
                kind: proto::EventKind::Unspecified as i32,
                event_time_unix_seconds: clock_unix,
                creative_features: ad
                    .map(|ad| {
                        ad.creative_features
                            .iter()
                            .map(|(name, value)| (name.clone(), *value))
                            .collect()
                    })
                    .unwrap_or_default(),
                value: None,
                impressions: update.impressions,
                clicks: update.clicks,
                matured_clicks: update.matured_clicks,
                conversions: conversions_of(update),
                creative_embedding: Vec::new(),
                // A creation time after the cycle's own clock would read as a young ad anyway; it goes as
                // unknown, so that no impossible time can make ml-service refuse the cycle's whole batch.
                ad_created_unix_seconds: ad
                    .and_then(|ad| ad.created_unix)
                    .filter(|created_unix| (1..=clock_unix).contains(created_unix))
                    .unwrap_or(0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use adloop_money::{Currency, MinorUnits};

    use super::super::account_reader::{Delivery, ObservedAd};
    use super::*;

    fn delivered(conversions: f64) -> LearningUpdate {
        LearningUpdate {
            ad_id: "ad-1".into(),
            account_id: "act_1".into(),
            features: Default::default(),
            impressions: 1_000.0,
            clicks: 10.0,
            matured_clicks: 8.0,
            conversions,
        }
    }

    fn snapshot_of(ads: Vec<ObservedAd>) -> AccountSnapshot {
        AccountSnapshot {
            currency: Currency::parse("USD").unwrap(),
            minimum_daily_budget: MinorUnits(100),
            ads,
            daily_conversions: Vec::new(),
            timezone_offset_hours: 0.0,
            recent_window_hours: 72.0,
            settled_window_hours: None,
            daily_delivery_unread: None,
            daily_delivery_read: None,
        }
    }

    #[test]
    fn every_ads_delivery_goes_with_its_creation_time_for_ml_service_to_judge_its_age() {
        const CLOCK_UNIX: i64 = 1_000_000_000;
        let created = |ad_id: &str, created_unix: Option<i64>| ObservedAd {
            ad_id: ad_id.into(),
            ad_set_id: format!("set-{ad_id}"),
            campaign_id: "c1".into(),
            created_unix,
            ad_set_daily_budget: Some(MinorUnits(10_000)),
            creative_features: Default::default(),
            lifetime: Delivery {
                impressions: 10_000,
                clicks: 150,
                conversions: 3,
                ..Delivery::default()
            },
            recent: Delivery::default(),
            settled: None,
            lifetime_frequency: None,
            daily: Vec::new(),
        };
        let eight_days_ago = CLOCK_UNIX - 8 * 86_400;
        let snapshot = snapshot_of(vec![
            created("young", Some(CLOCK_UNIX - 6 * 86_400)),
            created("old", Some(eight_days_ago)),
            created("unknown", None),
            created("after the clock", Some(CLOCK_UNIX + 86_400)),
        ]);
        let updates = delivery_updates(
            &mut DeliveryFeed::default(),
            "act_1",
            &snapshot,
            CLOCK_UNIX,
            &ReportingDelay::default(),
        );
        let events = learning_events(&updates, &snapshot, "act_1", 5, CLOCK_UNIX, true);
        let event_of = |ad_id: &str| {
            let event = events
                .iter()
                .find(|event| event.ids.as_ref().unwrap().ad_id == ad_id)
                .unwrap();
            (event.impressions, event.clicks, event.ad_created_unix_seconds)
        };
        assert_eq!(
            event_of("old"),
            (10_000.0, 150.0, eight_days_ago),
            "ml-service withholds an old ad's clicks from its creation time, as for any client"
        );
        assert_eq!(event_of("young").2, CLOCK_UNIX - 6 * 86_400);
        assert_eq!(event_of("unknown").2, 0, "no creation time: sent as unknown");
        assert_eq!(
            event_of("after the clock").2,
            0,
            "an impossible creation time: sent as unknown"
        );
        assert!(events.iter().all(|event| event.event_time_unix_seconds == CLOCK_UNIX));
    }

    #[test]
    fn without_conversions_from_delivery_the_learner_gets_the_clicks_and_no_conversions() {
        let snapshot = snapshot_of(Vec::new());
        let with = learning_events(&[delivered(2.0)], &snapshot, "act_1", 5, 0, true);
        assert_eq!((with[0].conversions, with[0].matured_clicks), (2.0, 8.0));
        let without = learning_events(&[delivered(2.0)], &snapshot, "act_1", 5, 0, false);
        assert_eq!((without[0].conversions, without[0].matured_clicks), (0.0, 8.0));
        let only_conversions = LearningUpdate {
            impressions: 0.0,
            clicks: 0.0,
            matured_clicks: 0.0,
            ..delivered(1.0)
        };
        assert!(
            learning_events(&[only_conversions], &snapshot, "act_1", 5, 0, false).is_empty(),
            "nothing left to send"
        );
    }
}
