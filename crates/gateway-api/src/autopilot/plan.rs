//! A cycle's decisions, pure: the account as read → the allocation request; the allocation → the ad
//! changes (ad-set budgets and pauses) with reasons and confidence; the changes → queue rows under
//! idempotency keys of the cycle, so a rerun of the cycle enqueues nothing twice.

use std::collections::BTreeMap;

use adloop_allocator::{
    AdIds, AdInput, AdStatus, AllocationConstraints, AllocationRequest, DeliveryHistory, RecentWindow,
};
use adloop_money::{Currency, MinorUnits};
use serde::Serialize;

use super::account_reader::{AccountSnapshot, Delivery, ObservedAd};
use super::account_settings::AutopilotMode;
use crate::executor::change::{ChangeRequest, NewAdChange, TargetStatus};

/// What the allocator said of one ad, as the plan needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocatedAd {
    pub ad_id: String,
    pub recommended_daily_budget: MinorUnits,
    pub probability_best: f64,
    pub is_kill: bool,
    pub reason: String,
}

/// One change the cycle wants.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PlannedAction {
    SetAdSetBudget {
        campaign_id: String,
        ad_set_id: String,
        from: i64,
        to: i64,
    },
    PauseAd {
        campaign_id: String,
        ad_set_id: String,
        ad_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedChange {
    #[serde(flatten)]
    pub action: PlannedAction,
    pub reason: String,
    pub confidence: f64,
}

/// How the cycle asks for its allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AllocationTerms {
    pub total_daily_budget: MinorUnits,
    /// The executor's largest change per step for the account, so the allocator plans what the guardrails
    /// will let through.
    pub max_change_fraction: f64,
    /// The draws' seed: the cycle slot, so a rerun of a cycle draws the same allocation.
    pub seed: u64,
}

/// The ads a cycle allocates across: the active ads whose ad set has a daily budget.
pub fn allocatable_ads(snapshot: &AccountSnapshot) -> Vec<&ObservedAd> {
    snapshot
        .ads
        .iter()
        .filter(|ad| ad.ad_set_daily_budget.is_some_and(|budget| budget.get() > 0))
        .collect()
}

/// The sum of the allocatable ads' ad-set budgets (each ad set once).
pub fn current_total(snapshot: &AccountSnapshot) -> MinorUnits {
    let mut by_ad_set: BTreeMap<&str, i64> = BTreeMap::new();
    for ad in allocatable_ads(snapshot) {
        by_ad_set.insert(&ad.ad_set_id, ad.ad_set_daily_budget.map_or(0, MinorUnits::get));
    }
    MinorUnits(by_ad_set.values().sum())
}

/// Active ads per ad set: an ad set's budget is split evenly across them for the allocator, and their
/// recommendations are summed back into it.
fn ads_per_ad_set<'a>(ads: &[&'a ObservedAd]) -> BTreeMap<&'a str, i64> {
    let mut counts = BTreeMap::new();
    for ad in ads {
        *counts.entry(ad.ad_set_id.as_str()).or_insert(0) += 1;
    }
    counts
}

/// The recent window's delivery, never more than the lifetime's: the two are separate insights reads, and
/// delivery that arrives between them would otherwise put more in the window than in the ad's whole life (the
/// allocator refuses such an ad).
fn within_lifetime(recent: Delivery, lifetime: Delivery) -> Delivery {
    let impressions = recent.impressions.min(lifetime.impressions);
    Delivery {
        impressions,
        clicks: recent.clicks.min(lifetime.clicks).min(impressions),
        spend: recent.spend.min(lifetime.spend),
        conversions: recent.conversions.min(lifetime.conversions),
        conversion_value: recent.conversion_value.min(lifetime.conversion_value),
    }
}

/// The windows an ad's trend is read on: once the ad is older than the settled window, that window with the
/// recent one inside it (so a change of the last days is still seen soon); before, the recent window alone,
/// shortened to the ad's age (a day-old ad's window is its one day).
fn trend_windows(ad: &ObservedAd, age_hours: f64, snapshot: &AccountSnapshot) -> (RecentWindow, Option<RecentWindow>) {
    if let (Some(hours), Some(settled)) = (snapshot.settled_window_hours, ad.settled)
        && age_hours > hours
    {
        let settled = within_lifetime(settled, ad.lifetime);
        let latest = recent_window(within_lifetime(ad.recent, settled), snapshot.recent_window_hours);
        return (recent_window(settled, hours), Some(latest));
    }
    let recent = recent_window(
        within_lifetime(ad.recent, ad.lifetime),
        snapshot.recent_window_hours.min(age_hours.max(1.0)),
    );
    (recent, None)
}

fn recent_window(recent: Delivery, hours: f64) -> RecentWindow {
    RecentWindow {
        hours,
        impressions: recent.impressions,
        clicks: recent.clicks,
        spend: recent.spend,
        conversions: recent.conversions,
        conversion_value: recent.conversion_value,
    }
}

/// The allocation request for the account as read at `clock_unix`.
pub fn allocation_request(
    account_id: &str,
    snapshot: &AccountSnapshot,
    clock_unix: i64,
    terms: AllocationTerms,
) -> AllocationRequest {
    let ads = allocatable_ads(snapshot);
    let sharing = ads_per_ad_set(&ads);
    let inputs = ads
        .iter()
        .map(|ad| {
            let ad_set_budget = ad.ad_set_daily_budget.map_or(0, MinorUnits::get);
            let sharing_ads = sharing.get(ad.ad_set_id.as_str()).copied().unwrap_or(1).max(1);
            let age_hours = ad
                .created_unix
                .map_or(0.0, |created| ((clock_unix - created) as f64 / 3600.0).max(0.0));
            let (recent, latest) = trend_windows(ad, age_hours, snapshot);
            AdInput {
                ids: AdIds {
                    account_id: account_id.to_owned(),
                    campaign_id: ad.campaign_id.clone(),
                    ad_set_id: ad.ad_set_id.clone(),
                    ad_id: ad.ad_id.clone(),
                },
                impressions: ad.lifetime.impressions,
                clicks: ad.lifetime.clicks.min(ad.lifetime.impressions),
                conversions: ad.lifetime.conversions,
                spend: ad.lifetime.spend,
                conversion_value: ad.lifetime.conversion_value,
                age_hours,
                current_daily_budget: MinorUnits(ad_set_budget / sharing_ads),
                status: AdStatus::Active,
                creative_features: ad.creative_features.clone(),
                creative_dna_score: None,
                priors: Vec::new(),
                recent: Some(recent),
                latest,
                frequency: ad.lifetime_frequency,
                delivery_curve: None,
                weekday_ctr_multiplier: None,
            }
        })
        .collect();
    AllocationRequest {
        ads: inputs,
        total_daily_budget: terms.total_daily_budget,
        currency: snapshot.currency,
        constraints: AllocationConstraints {
            per_ad_floor: snapshot.minimum_daily_budget,
            per_ad_cap: MinorUnits::ZERO,
            max_change_fraction: terms.max_change_fraction,
        },
        seed: terms.seed.max(1),
        reporting_delays: Default::default(),
    }
}

/// What each allocatable ad's reports say about its delivery, in the order of [`allocation_request`]'s ads.
pub fn delivery_histories(snapshot: &AccountSnapshot) -> Vec<DeliveryHistory> {
    allocatable_ads(snapshot)
        .iter()
        .map(|ad| DeliveryHistory {
            days: ad.daily.clone(),
            lifetime_impressions: ad.lifetime.impressions,
            frequency: ad.lifetime_frequency.unwrap_or(1.0),
        })
        .collect()
}

/// The changes an allocation asks for: each ad set's budget set to the sum of its ads' recommendations
/// when that differs from what it has; an ad the allocator kills, or leaves without budget because the
/// minimum budget cannot be given to every ad, is paused (an ad set cannot go below the minimum).
pub fn plan_changes(snapshot: &AccountSnapshot, allocated: &[AllocatedAd]) -> Vec<PlannedChange> {
    let ads = allocatable_ads(snapshot);
    let by_ad_id: BTreeMap<&str, &AllocatedAd> = allocated.iter().map(|ad| (ad.ad_id.as_str(), ad)).collect();
    let mut pauses = Vec::new();
    // Per ad set: its campaign, current budget, the recommended sum, and the best ad's reason.
    let mut ad_sets: BTreeMap<&str, (&str, i64, i64, Option<&AllocatedAd>)> = BTreeMap::new();
    for ad in &ads {
        let Some(allocation) = by_ad_id.get(ad.ad_id.as_str()) else {
            continue;
        };
        let entry = ad_sets.entry(&ad.ad_set_id).or_insert((
            &ad.campaign_id,
            ad.ad_set_daily_budget.map_or(0, MinorUnits::get),
            0,
            None,
        ));
        if allocation.is_kill || allocation.recommended_daily_budget.get() == 0 {
            pauses.push(PlannedChange {
                action: PlannedAction::PauseAd {
                    campaign_id: ad.campaign_id.clone(),
                    ad_set_id: ad.ad_set_id.clone(),
                    ad_id: ad.ad_id.clone(),
                },
                reason: allocation.reason.clone(),
                confidence: (1.0 - allocation.probability_best).clamp(0.0, 1.0),
            });
            continue;
        }
        entry.2 += allocation.recommended_daily_budget.get();
        if entry
            .3
            .is_none_or(|best| allocation.probability_best > best.probability_best)
        {
            entry.3 = Some(allocation);
        }
    }
    let budget_changes = ad_sets
        .into_iter()
        .filter_map(|(ad_set_id, (campaign_id, from, to, best_ad))| {
            let best_ad = best_ad?;
            (to != from).then(|| PlannedChange {
                action: PlannedAction::SetAdSetBudget {
                    campaign_id: campaign_id.to_owned(),
                    ad_set_id: ad_set_id.to_owned(),
                    from,
                    to,
                },
                reason: best_ad.reason.clone(),
                confidence: best_ad.probability_best.clamp(0.0, 1.0),
            })
        });
    // Budgets first: the executor's rate of budget edits per ad set is the tighter limit.
    budget_changes.chain(pauses).collect()
}

/// Where queued changes come from, as their `source` column and the audit show it.
pub const AUTOPILOT_SOURCE: &str = "autopilot";

/// Queue rows for a planned cycle (`mode` live or approval). Each key names the account, the cycle slot,
/// the object and the field, so a rerun of the cycle finds its changes instead of adding them again.
pub fn queue_rows(
    tenant_id: &str,
    account_id: &str,
    cycle_slot: i64,
    currency: Currency,
    mode: AutopilotMode,
    planned: &[PlannedChange],
) -> Vec<NewAdChange> {
    planned
        .iter()
        .map(|change| {
            let (campaign_id, ad_set_id, ad_id, object_id, request, old_budget) = match &change.action {
                PlannedAction::SetAdSetBudget {
                    campaign_id,
                    ad_set_id,
                    from,
                    to,
                } => (
                    campaign_id,
                    ad_set_id,
                    None,
                    ad_set_id.clone(),
                    ChangeRequest::BudgetSet {
                        currency,
                        amount: MinorUnits(*to),
                    },
                    Some(MinorUnits(*from)),
                ),
                PlannedAction::PauseAd {
                    campaign_id,
                    ad_set_id,
                    ad_id,
                } => (
                    campaign_id,
                    ad_set_id,
                    Some(ad_id.clone()),
                    ad_id.clone(),
                    ChangeRequest::Status {
                        status: TargetStatus::Paused,
                    },
                    None,
                ),
            };
            NewAdChange {
                tenant_id: tenant_id.to_owned(),
                ad_account_id: account_id.to_owned(),
                campaign_id: Some(campaign_id.clone()).filter(|id| !id.is_empty()),
                ad_set_id: Some(ad_set_id.clone()),
                ad_id,
                idempotency_key: format!("autopilot/{account_id}/{cycle_slot}/{object_id}/{}", request.field()),
                object_id,
                old_status: matches!(request, ChangeRequest::Status { .. }).then(|| "ACTIVE".to_owned()),
                request,
                old_budget,
                reason: change.reason.clone(),
                confidence: Some(change.confidence),
                source: AUTOPILOT_SOURCE.to_owned(),
                priority: 0,
                delay_seconds: 0.0,
                max_attempts: 5,
                needs_approval: mode == AutopilotMode::Approval,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn observed(ad: &str, ad_set: &str, budget: i64) -> ObservedAd {
        ObservedAd {
            ad_id: ad.into(),
            ad_set_id: ad_set.into(),
            campaign_id: "c1".into(),
            created_unix: Some(1_000_000),
            ad_set_daily_budget: Some(MinorUnits(budget)),
            creative_features: BTreeMap::from([("testimonial".to_owned(), 1.0)]),
            lifetime: Delivery {
                impressions: 10_000,
                clicks: 200,
                spend: MinorUnits(5_000),
                conversions: 4,
                conversion_value: MinorUnits(20_000),
            },
            recent: Delivery::default(),
            settled: None,
            lifetime_frequency: None,
            daily: Vec::new(),
        }
    }

    fn snapshot(ads: Vec<ObservedAd>) -> AccountSnapshot {
        AccountSnapshot {
            currency: usd(),
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

    fn allocated(ad: &str, budget: i64, probability_best: f64, is_kill: bool) -> AllocatedAd {
        AllocatedAd {
            ad_id: ad.into(),
            recommended_daily_budget: MinorUnits(budget),
            probability_best,
            is_kill,
            reason: format!("reason for {ad}"),
        }
    }

    #[test]
    fn the_request_splits_shared_ad_set_budgets_and_ages_ads_on_the_autopilot_clock() {
        let mut lifetime_budget_ad = observed("a4", "s4", 0);
        lifetime_budget_ad.ad_set_daily_budget = None;
        let account = snapshot(vec![
            observed("a1", "s1", 3_000),
            observed("a2", "s2", 2_000),
            observed("a3", "s2", 2_000),
            lifetime_budget_ad,
        ]);
        assert_eq!(current_total(&account), MinorUnits(5_000), "each ad set once");
        let terms = AllocationTerms {
            total_daily_budget: MinorUnits(5_000),
            max_change_fraction: 0.2,
            seed: 7,
        };
        let request = allocation_request("act_1", &account, 1_000_000 + 36 * 3600, terms);
        let budgets: Vec<(String, i64)> = request
            .ads
            .iter()
            .map(|ad| (ad.ids.ad_id.clone(), ad.current_daily_budget.get()))
            .collect();
        assert_eq!(
            budgets,
            vec![("a1".into(), 3_000), ("a2".into(), 1_000), ("a3".into(), 1_000)],
            "the ad without a daily budget is not allocated; two ads share s2's"
        );
        assert_eq!(request.ads[0].age_hours, 36.0);
        assert_eq!(
            request.ads[0].creative_features["testimonial"], 1.0,
            "the learners' priors key on them"
        );
        assert_eq!(
            request.ads[0].recent.as_ref().unwrap().hours,
            36.0,
            "no older than the ad"
        );
        assert_eq!(request.constraints.per_ad_floor, MinorUnits(100));
        assert_eq!(request.constraints.max_change_fraction, 0.2);
        assert_eq!(request.seed, 7);
    }

    #[test]
    fn delivery_read_between_the_lifetime_and_recent_reads_never_puts_more_in_the_window_than_in_the_life() {
        let mut young = observed("a1", "s1", 3_000);
        // The recent read came a moment after the lifetime read: a few more impressions, a click and a
        // conversion arrived in between.
        young.recent = Delivery {
            impressions: 10_040,
            clicks: 201,
            spend: MinorUnits(5_020),
            conversions: 5,
            conversion_value: MinorUnits(25_000),
        };
        let terms = AllocationTerms {
            total_daily_budget: MinorUnits(3_000),
            max_change_fraction: 0.2,
            seed: 7,
        };
        let request = allocation_request("act_1", &snapshot(vec![young]), 1_000_000 + 36 * 3600, terms);
        let recent = request.ads[0].recent.unwrap();
        assert_eq!(
            (
                recent.impressions,
                recent.clicks,
                recent.spend,
                recent.conversions,
                recent.conversion_value
            ),
            (10_000, 200, MinorUnits(5_000), 4, MinorUnits(20_000))
        );
        adloop_allocator::validate_request(&request).expect("the allocator takes it");
    }

    #[test]
    fn an_ad_older_than_the_settled_window_is_read_on_it_a_younger_one_on_the_recent_window() {
        let week = Delivery {
            impressions: 7_000,
            clicks: 140,
            spend: MinorUnits(3_500),
            conversions: 3,
            conversion_value: MinorUnits(15_000),
        };
        let three_days = Delivery {
            impressions: 3_000,
            clicks: 60,
            spend: MinorUnits(1_500),
            conversions: 1,
            conversion_value: MinorUnits(5_000),
        };
        let mut settled_ad = observed("a1", "s1", 3_000);
        settled_ad.created_unix = Some(1_000_000 - 10 * 86_400);
        let mut young_ad = observed("a2", "s2", 3_000);
        young_ad.created_unix = Some(1_000_000 - 5 * 86_400);
        for ad in [&mut settled_ad, &mut young_ad] {
            ad.recent = three_days;
            ad.settled = Some(week);
        }
        let terms = AllocationTerms {
            total_daily_budget: MinorUnits(6_000),
            max_change_fraction: 0.2,
            seed: 7,
        };
        let mut account = snapshot(vec![settled_ad, young_ad]);
        account.settled_window_hours = Some(168.0);
        let request = allocation_request("act_1", &account, 1_000_000, terms);
        let windows: Vec<(f64, u64)> = request
            .ads
            .iter()
            .map(|ad| {
                let window = ad.recent.unwrap();
                (window.hours, window.impressions)
            })
            .collect();
        assert_eq!(windows, vec![(168.0, 7_000), (72.0, 3_000)]);
        let latest: Vec<Option<(f64, u64)>> = request
            .ads
            .iter()
            .map(|ad| ad.latest.map(|window| (window.hours, window.impressions)))
            .collect();
        assert_eq!(
            latest,
            vec![Some((72.0, 3_000)), None],
            "the settled ad also carries its last 3 days, so a change in them is still seen soon"
        );
        adloop_allocator::validate_request(&request).expect("the allocator takes it");

        account.settled_window_hours = None;
        let request = allocation_request("act_1", &account, 1_000_000, terms);
        assert_eq!(
            request.ads[0].recent.unwrap().hours,
            72.0,
            "without a settled window every ad is read on the recent one"
        );
    }

    #[test]
    fn budgets_are_set_per_ad_set_and_killed_or_unfunded_ads_are_paused() {
        let account = snapshot(vec![
            observed("a1", "s1", 3_000),
            observed("a2", "s2", 2_000),
            observed("a3", "s2", 2_000),
            observed("a4", "s4", 1_000),
            observed("a5", "s5", 500),
        ]);
        let planned = plan_changes(
            &account,
            &[
                allocated("a1", 3_000, 0.1, false),
                allocated("a2", 2_500, 0.6, false),
                allocated("a3", 1_000, 0.3, false),
                allocated("a4", 0, 0.0, true),
                allocated("a5", 0, 0.0, false),
            ],
        );
        let actions: Vec<&PlannedAction> = planned.iter().map(|change| &change.action).collect();
        assert_eq!(
            actions,
            vec![
                &PlannedAction::SetAdSetBudget {
                    campaign_id: "c1".into(),
                    ad_set_id: "s2".into(),
                    from: 2_000,
                    to: 3_500
                },
                &PlannedAction::PauseAd {
                    campaign_id: "c1".into(),
                    ad_set_id: "s4".into(),
                    ad_id: "a4".into()
                },
                &PlannedAction::PauseAd {
                    campaign_id: "c1".into(),
                    ad_set_id: "s5".into(),
                    ad_id: "a5".into()
                },
            ],
            "s1 keeps its budget: no write"
        );
        assert_eq!(planned[0].reason, "reason for a2", "the ad set's best ad explains it");
        assert_eq!(planned[0].confidence, 0.6);
        assert_eq!(
            planned[1].confidence, 1.0,
            "a kill is as sure as the ad is unlikely to be best"
        );
    }

    #[test]
    fn queue_rows_carry_keys_of_the_cycle_and_the_mode_decides_approval() {
        let planned = vec![
            PlannedChange {
                action: PlannedAction::SetAdSetBudget {
                    campaign_id: "c1".into(),
                    ad_set_id: "s2".into(),
                    from: 2_000,
                    to: 3_500,
                },
                reason: "r".into(),
                confidence: 0.6,
            },
            PlannedChange {
                action: PlannedAction::PauseAd {
                    campaign_id: "c1".into(),
                    ad_set_id: "s4".into(),
                    ad_id: "a4".into(),
                },
                reason: "k".into(),
                confidence: 1.0,
            },
        ];
        let live = queue_rows("t", "act_1", 42, usd(), AutopilotMode::Live, &planned);
        assert_eq!(live[0].idempotency_key, "autopilot/act_1/42/s2/budget");
        assert_eq!(live[0].object_id, "s2");
        assert_eq!(
            live[0].request,
            ChangeRequest::BudgetSet {
                currency: usd(),
                amount: MinorUnits(3_500)
            }
        );
        assert_eq!(live[0].old_budget, Some(MinorUnits(2_000)));
        assert_eq!(live[1].idempotency_key, "autopilot/act_1/42/a4/status");
        assert_eq!(
            (live[1].object_id.as_str(), live[1].ad_id.as_deref()),
            ("a4", Some("a4"))
        );
        assert!(
            live.iter()
                .all(|row| !row.needs_approval && row.source == AUTOPILOT_SOURCE)
        );
        let held = queue_rows("t", "act_1", 42, usd(), AutopilotMode::Approval, &planned);
        assert!(held.iter().all(|row| row.needs_approval));
        let next_cycle = queue_rows("t", "act_1", 43, usd(), AutopilotMode::Live, &planned);
        assert_ne!(next_cycle[0].idempotency_key, live[0].idempotency_key);
    }
}
