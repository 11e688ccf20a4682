//! The Graph objects meta-sim serves (ad accounts, campaigns, ad sets, ads), their statuses and the history
//! of every change. Budgets live in the world (they drive delivery); statuses live here and decide whether
//! the world delivers.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    AdAccount,
    Campaign,
    AdSet,
    Ad,
}

impl ObjectKind {
    /// The node type name Meta uses in error messages.
    pub fn node_type(self) -> &'static str {
        match self {
            ObjectKind::AdAccount => "AdAccount",
            ObjectKind::Campaign => "Campaign",
            ObjectKind::AdSet => "AdSet",
            ObjectKind::Ad => "Ad",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ObjectStatus {
    Active,
    Paused,
    Archived,
    Deleted,
}

impl ObjectStatus {
    pub fn parse(text: &str) -> Option<ObjectStatus> {
        match text {
            "ACTIVE" => Some(ObjectStatus::Active),
            "PAUSED" => Some(ObjectStatus::Paused),
            "ARCHIVED" => Some(ObjectStatus::Archived),
            "DELETED" => Some(ObjectStatus::Deleted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectStatus::Active => "ACTIVE",
            ObjectStatus::Paused => "PAUSED",
            ObjectStatus::Archived => "ARCHIVED",
            ObjectStatus::Deleted => "DELETED",
        }
    }
}

/// One change to an object, for `/_sim/state`.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRecord {
    /// Simulated time, hours since the start.
    pub simulated_hour: f64,
    pub field: String,
    pub old_value: String,
    pub new_value: String,
    /// `api`, `batch` or `scenario`.
    pub source: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct GraphObject {
    pub id: String,
    pub kind: ObjectKind,
    pub name: String,
    pub account_id: String,
    pub campaign_id: Option<String>,
    pub ad_set_id: Option<String>,
    /// The world's ad behind an ad set or ad.
    #[serde(skip)]
    pub truth_index: Option<usize>,
    pub status: ObjectStatus,
    pub history: Vec<ChangeRecord>,
    /// Simulated seconds of each accepted budget change (ad sets), for the 4-changes-per-hour rule.
    #[serde(skip)]
    pub budget_change_seconds: Vec<f64>,
    /// After a refused 5th change within an hour, budget changes are refused until this simulated second.
    #[serde(skip)]
    pub budget_locked_until_seconds: Option<f64>,
}

/// One launched ad as the world names it.
pub struct LaunchedAd<'a> {
    pub truth_index: usize,
    pub account_id: &'a str,
    pub campaign_id: &'a str,
    pub ad_set_id: &'a str,
    pub ad_id: &'a str,
    pub name: &'a str,
}

#[derive(Debug, Default)]
pub struct ObjectRegistry {
    objects: BTreeMap<String, GraphObject>,
    /// Delivering ads per ad account (rate limits scale with them), counted in one pass when first asked
    /// and forgotten on a launch or when `statuses_changed` says so.
    delivering_ads_by_account: Option<HashMap<String, u64>>,
}

fn new_object(id: &str, kind: ObjectKind, name: String, account_id: &str) -> GraphObject {
    GraphObject {
        id: id.to_owned(),
        kind,
        name,
        account_id: account_id.to_owned(),
        campaign_id: None,
        ad_set_id: None,
        truth_index: None,
        status: ObjectStatus::Active,
        history: Vec::new(),
        budget_change_seconds: Vec::new(),
        budget_locked_until_seconds: None,
    }
}

impl ObjectRegistry {
    pub fn get(&self, id: &str) -> Option<&GraphObject> {
        self.objects.get(id)
    }

    /// An object to change; a caller that changes a status calls `statuses_changed` afterwards.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut GraphObject> {
        self.objects.get_mut(id)
    }

    /// Some status changed: which ads deliver must be counted again.
    pub fn statuses_changed(&mut self) {
        self.delivering_ads_by_account = None;
    }

    /// Ads of `account_id` that may deliver (their own and their parents' statuses are active).
    pub fn delivering_ads_in_account(&mut self, account_id: &str) -> u64 {
        if self.delivering_ads_by_account.is_none() {
            let mut counts: HashMap<String, u64> = HashMap::new();
            for ad in self.objects.values().filter(|object| object.kind == ObjectKind::Ad) {
                if self.effective_status(ad) == "ACTIVE" {
                    *counts.entry(ad.account_id.clone()).or_default() += 1;
                }
            }
            self.delivering_ads_by_account = Some(counts);
        }
        self.delivering_ads_by_account
            .as_ref()
            .and_then(|counts| counts.get(account_id).copied())
            .unwrap_or(0)
    }

    pub fn all(&self) -> impl Iterator<Item = &GraphObject> {
        self.objects.values()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.objects.contains_key(id)
    }

    /// Creates the objects of a newly launched ad (and its account and campaign on first sight).
    pub fn register_launched_ad(&mut self, launched: &LaunchedAd<'_>) {
        if self.objects.contains_key(launched.ad_id) {
            return;
        }
        self.delivering_ads_by_account = None;
        self.objects.entry(launched.account_id.to_owned()).or_insert_with(|| {
            let account_number = launched.account_id.trim_start_matches("act_");
            new_object(
                launched.account_id,
                ObjectKind::AdAccount,
                format!("Account {account_number}"),
                launched.account_id,
            )
        });
        self.objects.entry(launched.campaign_id.to_owned()).or_insert_with(|| {
            let mut campaign = new_object(
                launched.campaign_id,
                ObjectKind::Campaign,
                format!("Campaign {}", launched.campaign_id),
                launched.account_id,
            );
            campaign.campaign_id = Some(launched.campaign_id.to_owned());
            campaign
        });
        let mut ad_set = new_object(
            launched.ad_set_id,
            ObjectKind::AdSet,
            format!("{} ad set", launched.name),
            launched.account_id,
        );
        ad_set.campaign_id = Some(launched.campaign_id.to_owned());
        ad_set.ad_set_id = Some(launched.ad_set_id.to_owned());
        ad_set.truth_index = Some(launched.truth_index);
        self.objects.insert(launched.ad_set_id.to_owned(), ad_set);

        let mut ad = new_object(
            launched.ad_id,
            ObjectKind::Ad,
            launched.name.to_owned(),
            launched.account_id,
        );
        ad.campaign_id = Some(launched.campaign_id.to_owned());
        ad.ad_set_id = Some(launched.ad_set_id.to_owned());
        ad.truth_index = Some(launched.truth_index);
        self.objects.insert(launched.ad_id.to_owned(), ad);
    }

    /// Meta's `effective_status`: the object's own status, unless a parent is not active.
    pub fn effective_status(&self, object: &GraphObject) -> &'static str {
        let parent_status = |parent_id: &Option<String>| {
            parent_id
                .as_ref()
                .filter(|parent_id| **parent_id != object.id)
                .and_then(|parent_id| self.objects.get(parent_id))
                .map(|parent| parent.status)
        };
        let campaign = parent_status(&object.campaign_id);
        let ad_set = if object.kind == ObjectKind::Ad {
            parent_status(&object.ad_set_id)
        } else {
            None
        };
        let own_or_a_parents =
            |status: ObjectStatus| object.status == status || campaign == Some(status) || ad_set == Some(status);
        // A deleted or archived ancestor outranks the object's own pause: it can never deliver again.
        if own_or_a_parents(ObjectStatus::Deleted) {
            return "DELETED";
        }
        if own_or_a_parents(ObjectStatus::Archived) {
            return "ARCHIVED";
        }
        if object.status == ObjectStatus::Paused {
            return "PAUSED";
        }
        if campaign == Some(ObjectStatus::Paused) {
            return "CAMPAIGN_PAUSED";
        }
        if ad_set == Some(ObjectStatus::Paused) {
            return "ADSET_PAUSED";
        }
        "ACTIVE"
    }

    /// Whether the ad behind `ad_id` may deliver: its campaign, ad set and itself all active.
    pub fn ad_may_deliver(&self, ad_id: &str) -> bool {
        self.objects
            .get(ad_id)
            .is_some_and(|ad| self.effective_status(ad) == "ACTIVE")
    }

    /// The ads under an object (itself for an ad).
    pub fn ads_under(&self, object: &GraphObject) -> Vec<&GraphObject> {
        self.objects
            .values()
            .filter(|candidate| candidate.kind == ObjectKind::Ad)
            .filter(|ad| match object.kind {
                ObjectKind::AdAccount => ad.account_id == object.id,
                ObjectKind::Campaign => ad.campaign_id.as_deref() == Some(object.id.as_str()),
                ObjectKind::AdSet => ad.ad_set_id.as_deref() == Some(object.id.as_str()),
                ObjectKind::Ad => ad.id == object.id,
            })
            .collect()
    }
}
