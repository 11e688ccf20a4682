//! Reads an ad account through the Graph API as a cycle needs it: its currency and minimum budget, its ads
//! with their ad sets' budgets and their creative features (ad labels `feature:<name>`, the platform's tags),
//! each ad's delivery (lifetime and recent) from insights, and the account's conversions by day over the last
//! four weeks (how they mature between cycles is how the account's reporting delays are learned). Parsing is pure
//! (`parse_*`), the requests are paged and bounded.

use std::collections::{BTreeMap, HashMap};

use adloop_allocator::{DailyConversionReport, DailyDelivery};
use adloop_money::{Currency, GraphAmount, MinorUnits};
use adloop_service_kit::calendar::{CivilDate, civil_from_days, days_from_civil};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::executor::graph_client::{GraphClient, GraphClientError};

/// The action type whose count and value are the account's conversions and revenue.
pub const CONVERSION_ACTION_TYPE: &str = "purchase";
/// Rows per page (Meta allows up to 5,000 for insights; 500 keeps each answer small).
const PAGE_SIZE: usize = 500;
/// Meta refuses an insights page it finds too large (code 1, "Please reduce the amount of data you're asking
/// for"); the page is asked again at half the size, down to this many rows.
const SMALLEST_PAGE_SIZE: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum AccountReadError {
    #[error(transparent)]
    Graph(#[from] GraphClientError),
    #[error("the Graph API refused GET {path}: code {code:?}, {message}")]
    Refused {
        path: String,
        code: Option<u32>,
        message: String,
    },
    #[error("unexpected Graph answer for {what}")]
    Malformed { what: String },
    #[error("the account has more than {max} active ads (autopilot.max_ads_per_account)")]
    TooManyAds { max: usize },
}

/// Delivery and reported conversions over some days.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Delivery {
    pub impressions: u64,
    pub clicks: u64,
    pub spend: MinorUnits,
    pub conversions: u64,
    pub conversion_value: MinorUnits,
}

/// One delivering ad and what the cycle knows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedAd {
    pub ad_id: String,
    pub ad_set_id: String,
    pub campaign_id: String,
    /// When the ad was created, Unix seconds.
    pub created_unix: Option<i64>,
    /// Its ad set's daily budget; `None` when the ad set has none (a lifetime or campaign budget).
    pub ad_set_daily_budget: Option<MinorUnits>,
    /// The creative's features, from its ad labels.
    pub creative_features: BTreeMap<String, f64>,
    pub lifetime: Delivery,
    /// Its delivery over the snapshot's recent window.
    pub recent: Delivery,
    /// Its delivery over the snapshot's settled window, when the cycle reads one.
    pub settled: Option<Delivery>,
    /// Lifetime impressions per person reached (insights' `frequency`), when reported.
    pub lifetime_frequency: Option<f64>,
    /// Its spend and impressions on each finished day of the snapshot's delivery-curve days (empty when the
    /// cycle does not read them), for how its CPM rises with its daily volume.
    pub daily: Vec<DailyDelivery>,
}

/// The insights windows a cycle reads besides the lifetime, in whole days before today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryWindows {
    /// The recent window (3: the three days before today).
    pub recent_days: u32,
    /// The longer window an ad with enough history is read on instead (7), if any.
    pub settled_days: Option<u32>,
    /// The finished days each ad's delivery is read by day for its delivery curve (28), if any.
    pub daily_delivery_days: Option<u32>,
}

/// A trailing window as insights can read it: whole days of the account's calendar, from `since` through today
/// (today as far as it has run), so it ends now, as the allocator reads a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrailingWindow {
    pub since: CivilDate,
    pub until: CivilDate,
    /// Hours from the start of `since` to now.
    pub hours: f64,
}

impl TrailingWindow {
    /// The `whole_days` before today and today so far, on the calendar of an account `timezone_offset_hours`
    /// ahead of UTC, at `clock_unix`. Meta's `last_Nd` presets end at yesterday's close: today's delivery, the
    /// newest, would fall outside the window and count as older evidence.
    pub fn ending_now(clock_unix: i64, timezone_offset_hours: f64, whole_days: u32) -> TrailingWindow {
        let local_seconds = clock_unix + (timezone_offset_hours * 3600.0).round() as i64;
        let today = civil_from_days(local_seconds.div_euclid(86_400));
        let hours_today = local_seconds.rem_euclid(86_400) as f64 / 3600.0;
        TrailingWindow {
            since: today.plus_days(-i64::from(whole_days)),
            until: today,
            hours: f64::from(whole_days) * 24.0 + hours_today,
        }
    }

    /// The `whole_days` finished days before today on the account's calendar (today, still under way, left
    /// out: its CPM is of a part of a day).
    pub fn finished_days(clock_unix: i64, timezone_offset_hours: f64, whole_days: u32) -> TrailingWindow {
        let ending_now = TrailingWindow::ending_now(clock_unix, timezone_offset_hours, whole_days);
        TrailingWindow {
            until: ending_now.until.plus_days(-1),
            hours: f64::from(whole_days) * 24.0,
            ..ending_now
        }
    }

    fn time_range(&self) -> String {
        format!(r#"{{"since":"{}","until":"{}"}}"#, self.since, self.until)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccountSnapshot {
    pub currency: Currency,
    /// The smallest daily budget an ad set of this account may have.
    pub minimum_daily_budget: MinorUnits,
    /// The account's active ads (effective status ACTIVE), in the Graph API's order.
    pub ads: Vec<ObservedAd>,
    /// The account's conversions per day over the last 28 days (yesterday the newest), each credited to its
    /// click's day and counted as far as reported now; days are the account's, counted from 1970-01-01.
    pub daily_conversions: Vec<DailyConversionReport>,
    /// Hours the account's time zone is ahead of UTC (Meta's `timezone_offset_hours_utc`): its days start
    /// this much earlier than UTC days.
    pub timezone_offset_hours: f64,
    /// Hours the recent window covers up to now, and the settled window's when it was read.
    pub recent_window_hours: f64,
    pub settled_window_hours: Option<f64>,
    /// Why each ad's days could not be read this cycle (the cycle allocates without delivery curves).
    pub daily_delivery_unread: Option<String>,
    /// Each ad's days as this cycle read them from Meta, for later cycles of the same day to reuse; `None` when
    /// the days were not read (reused, not wanted, or refused).
    pub daily_delivery_read: Option<DailyDeliveryByAd>,
}

/// Each ad's days over one range of the account's finished days, by ad id: what one cycle read and later
/// cycles reuse until another day finishes (a finished day's figures are what the curves are fitted on; the
/// range names the days, so a new day, or another number of days, reads afresh).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DailyDeliveryByAd {
    /// The insights `time_range` the days were read over.
    pub time_range: String,
    pub by_ad: HashMap<String, Vec<DailyDelivery>>,
}

/// A Graph count (`"1234"`; Meta writes numbers in insights as strings).
fn parse_count(value: &Value) -> u64 {
    match value {
        Value::String(text) => text.parse().unwrap_or(0),
        Value::Number(number) => number.as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// Insights money (`"12.34"`, major units) in minor units of `currency`.
fn parse_major_amount(value: &Value, currency: Currency) -> MinorUnits {
    let major = match value {
        Value::String(text) => text.parse::<f64>().unwrap_or(0.0),
        Value::Number(number) => number.as_f64().unwrap_or(0.0),
        _ => 0.0,
    };
    MinorUnits::from_major_rounded(major.max(0.0), currency)
}

/// The `value` of the conversion action in an `actions` or `action_values` list.
fn conversion_action_value(actions: &Value) -> Option<&Value> {
    actions
        .as_array()?
        .iter()
        .find(|action| action["action_type"] == CONVERSION_ACTION_TYPE)
        .map(|action| &action["value"])
}

/// One insights row (fields impressions, clicks, spend, actions, action_values).
pub fn parse_delivery(row: &Value, currency: Currency) -> Delivery {
    Delivery {
        impressions: parse_count(&row["impressions"]),
        clicks: parse_count(&row["clicks"]),
        spend: parse_major_amount(&row["spend"], currency),
        conversions: conversion_action_value(&row["actions"]).map_or(0, parse_count),
        conversion_value: conversion_action_value(&row["action_values"])
            .map_or(MinorUnits::ZERO, |value| parse_major_amount(value, currency)),
    }
}

/// The label prefix that marks a creative feature: `feature:testimonial` (1), `feature:duration=0.5`.
const FEATURE_LABEL_PREFIX: &str = "feature:";
/// Features read from one ad's labels at most (the learner bounds what one event carries too).
const MAX_FEATURES_PER_AD: usize = 64;

/// An ad's creative features from its `adlabels` (`[{"id", "name"}]`): labels named `feature:<name>` are 1,
/// `feature:<name>=<number>` that number; other labels, and numbers that do not parse, are not features.
pub fn features_from_labels(labels: &Value) -> BTreeMap<String, f64> {
    labels
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|label| label["name"].as_str()?.strip_prefix(FEATURE_LABEL_PREFIX))
        .filter_map(|feature| match feature.split_once('=') {
            Some((name, value)) => Some((
                name.to_owned(),
                value.parse::<f64>().ok().filter(|value| value.is_finite())?,
            )),
            None => Some((feature.to_owned(), 1.0)),
        })
        .filter(|(name, _)| !name.is_empty())
        .take(MAX_FEATURES_PER_AD)
        .collect()
}

/// A Graph object time (`2026-12-01T05:42:03+0000`, or `-0800` and other offsets) as Unix seconds.
pub fn parse_graph_time(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 24 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let offset_sign = match bytes[19] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset_seconds = offset_sign * (number(20..22)? * 3600 + number(22..24)? * 60);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let date = CivilDate {
        year: i32::try_from(year).ok()?,
        month: u32::try_from(month).ok()?,
        day: u32::try_from(day).ok()?,
    };
    Some(days_from_civil(date) * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds)
}

/// Whether Meta refused a read because its answer would be too large (code 1, "Please reduce the amount of
/// data you're asking for, then retry your request"): a smaller page may pass.
fn asks_for_less_data(code: Option<u32>, message: &str) -> bool {
    code == Some(1) && message.to_ascii_lowercase().contains("reduce the amount of data")
}

/// Every row of a paged Graph read, following `paging.cursors.after` while `paging.next` is given, up to
/// `max_rows`; `None` when there are more. Each page's rows are parsed by `parse_row` as they arrive (a row it
/// cannot read is left out), so what the read holds is what the cycle keeps, not Meta's JSON. A page Meta finds
/// too large is asked again at half the size.
async fn read_all_pages<Row>(
    graph: &GraphClient,
    path: &str,
    params: &[(&str, String)],
    max_rows: usize,
    mut parse_row: impl FnMut(&Value) -> Option<Row>,
) -> Result<Option<Vec<Row>>, AccountReadError> {
    let mut rows = Vec::new();
    let mut rows_read = 0_usize;
    let mut after: Option<String> = None;
    let mut page_size = PAGE_SIZE;
    loop {
        let mut page_params = params.to_vec();
        page_params.push(("limit", page_size.to_string()));
        if let Some(cursor) = &after {
            page_params.push(("after", cursor.clone()));
        }
        let answer = graph.get_with_query(path, &page_params).await?;
        if !answer.is_success() {
            let (code, _) = answer.error_code();
            if asks_for_less_data(code, &answer.error_message()) && page_size > SMALLEST_PAGE_SIZE {
                page_size = (page_size / 2).max(SMALLEST_PAGE_SIZE);
                tracing::info!(
                    path,
                    page_size,
                    "graph: the page was too large for Meta; asking again for fewer rows"
                );
                continue;
            }
            return Err(AccountReadError::Refused {
                path: path.to_owned(),
                code: answer.error_code().0,
                message: answer.error_message(),
            });
        }
        let Some(page_rows) = answer.body["data"].as_array() else {
            return Err(AccountReadError::Malformed { what: path.to_owned() });
        };
        rows_read += page_rows.len();
        if rows_read > max_rows {
            return Ok(None);
        }
        rows.extend(page_rows.iter().filter_map(&mut parse_row));
        let next_cursor = answer.body["paging"]["cursors"]["after"].as_str();
        match (answer.body["paging"].get("next"), next_cursor) {
            (Some(_), Some(cursor)) if !page_rows.is_empty() => after = Some(cursor.to_owned()),
            _ => return Ok(Some(rows)),
        }
    }
}

/// Each ad's delivery over `period` (the insights parameter that names the days, `date_preset` or
/// `time_range`, and its value) and its frequency over it, by ad id.
async fn delivery_by_ad(
    graph: &GraphClient,
    account_id: &str,
    period: (&str, String),
    currency: Currency,
    max_ads: usize,
) -> Result<HashMap<String, (Delivery, Option<f64>)>, AccountReadError> {
    let params = [
        ("level", "ad".to_owned()),
        (
            "fields",
            "ad_id,impressions,clicks,spend,actions,action_values,frequency".to_owned(),
        ),
        period,
    ];
    // Insights also carry ads that are no longer active; allow for them beyond the active ones.
    let rows = read_all_pages(graph, &format!("{account_id}/insights"), &params, max_ads * 4, |row| {
        Some((
            row["ad_id"].as_str()?.to_owned(),
            (parse_delivery(row, currency), parse_frequency(&row["frequency"])),
        ))
    })
    .await?
    .ok_or(AccountReadError::TooManyAds { max: max_ads })?;
    Ok(rows.into_iter().collect())
}

/// Insights' `frequency` (impressions per person reached, a decimal string): `None` when missing or not a
/// number of at least 1.
pub fn parse_frequency(value: &Value) -> Option<f64> {
    let frequency = match value {
        Value::String(text) => text.trim().parse::<f64>().ok()?,
        Value::Number(number) => number.as_f64()?,
        _ => return None,
    };
    (frequency.is_finite() && frequency >= 1.0).then_some(frequency)
}

/// One row of ad-level insights with `time_increment=1`: its ad, its day (`date_start`, the account's calendar
/// date, as days since 1970-01-01) and that day's spend, impressions and clicks; `None` without an ad or a
/// readable date.
pub fn parse_daily_delivery(row: &Value, currency: Currency) -> Option<(String, DailyDelivery)> {
    let delivery = parse_delivery(row, currency);
    let date = CivilDate::parse(row["date_start"].as_str()?)?;
    Some((
        row["ad_id"].as_str()?.to_owned(),
        DailyDelivery {
            day: u32::try_from(days_from_civil(date)).ok()?,
            spend: delivery.spend,
            impressions: delivery.impressions,
            clicks: delivery.clicks,
        },
    ))
}

/// Each ad's spend and impressions per day over `days` finished days (a row per ad and day that delivered),
/// by ad id.
async fn daily_delivery_by_ad(
    graph: &GraphClient,
    account_id: &str,
    days: TrailingWindow,
    currency: Currency,
    max_ads: usize,
    day_count: u32,
) -> Result<HashMap<String, Vec<DailyDelivery>>, AccountReadError> {
    let params = [
        ("level", "ad".to_owned()),
        ("fields", "ad_id,impressions,clicks,spend".to_owned()),
        ("time_increment", "1".to_owned()),
        ("time_range", days.time_range()),
    ];
    // A row per ad and day; ads no longer active may have rows too.
    let max_rows = max_ads.saturating_mul(day_count as usize).saturating_mul(2);
    let rows = read_all_pages(graph, &format!("{account_id}/insights"), &params, max_rows, |row| {
        parse_daily_delivery(row, currency)
    })
    .await?
    .ok_or(AccountReadError::TooManyAds { max: max_ads })?;
    let mut by_ad: HashMap<String, Vec<DailyDelivery>> = HashMap::new();
    for (ad_id, day) in rows {
        by_ad.entry(ad_id).or_default().push(day);
    }
    Ok(by_ad)
}

/// Days of conversions read for the reporting-delay estimate: Meta's `last_28d`, the longest attribution
/// window Meta has offered.
const DAILY_CONVERSIONS_PRESET: &str = "last_28d";

/// One row of account-level insights with `time_increment=1`: its day (`date_start`, `YYYY-MM-DD`) and its
/// conversions; `None` for a row without a readable date.
pub fn parse_daily_conversions(row: &Value) -> Option<DailyConversionReport> {
    let date = CivilDate::parse(row["date_start"].as_str()?)?;
    Some(DailyConversionReport {
        day: u32::try_from(days_from_civil(date)).ok()?,
        conversions: conversion_action_value(&row["actions"]).map_or(0, parse_count),
    })
}

/// The account's conversions by day over [`DAILY_CONVERSIONS_PRESET`].
async fn daily_conversions(
    graph: &GraphClient,
    account_id: &str,
) -> Result<Vec<DailyConversionReport>, AccountReadError> {
    let params = [
        ("level", "account".to_owned()),
        ("fields", "actions".to_owned()),
        ("time_increment", "1".to_owned()),
        ("date_preset", DAILY_CONVERSIONS_PRESET.to_owned()),
    ];
    // 28 rows; a bound well above it guards against an answer that never ends.
    read_all_pages(
        graph,
        &format!("{account_id}/insights"),
        &params,
        100,
        parse_daily_conversions,
    )
    .await?
    .ok_or_else(|| AccountReadError::Malformed {
        what: format!("{account_id} daily insights (more than 100 rows)"),
    })
}

/// An active ad as the account's ad list gives it.
struct ListedAd {
    ad_id: String,
    ad_set_id: String,
    campaign_id: String,
    created_unix: Option<i64>,
    creative_features: BTreeMap<String, f64>,
}

/// One row of the account's `ads` edge; `None` without an id or an ad set.
fn parse_listed_ad(row: &Value) -> Option<ListedAd> {
    Some(ListedAd {
        ad_id: row["id"].as_str()?.to_owned(),
        ad_set_id: row["adset_id"].as_str()?.to_owned(),
        campaign_id: row["campaign_id"].as_str().unwrap_or_default().to_owned(),
        created_unix: row["created_time"].as_str().and_then(parse_graph_time),
        creative_features: features_from_labels(&row["adlabels"]),
    })
}

/// The account as a cycle needs it at `clock_unix`, each ad's delivery read over its lifetime and over
/// `windows` ending now. Each ad's days come from `known_days` when an earlier cycle read the same finished days.
pub async fn read_account(
    graph: &GraphClient,
    account_id: &str,
    windows: DeliveryWindows,
    clock_unix: i64,
    max_ads: usize,
    known_days: Option<DailyDeliveryByAd>,
) -> Result<AccountSnapshot, AccountReadError> {
    let account = graph
        .get(account_id, "currency,min_daily_budget,timezone_offset_hours_utc")
        .await?;
    if !account.is_success() {
        return Err(AccountReadError::Refused {
            path: account_id.to_owned(),
            code: account.error_code().0,
            message: account.error_message(),
        });
    }
    let currency = account.body["currency"]
        .as_str()
        .and_then(|code| Currency::parse(code).ok())
        .ok_or_else(|| AccountReadError::Malformed {
            what: format!("{account_id} currency"),
        })?;
    let minimum_daily_budget =
        GraphAmount(parse_count(&account.body["min_daily_budget"]) as i64).to_minor_units(currency);
    let active_only = ("effective_status", r#"["ACTIVE"]"#.to_owned());
    let listed_ads = read_all_pages(
        graph,
        &format!("{account_id}/ads"),
        &[
            ("fields", "id,adset_id,campaign_id,created_time,adlabels".to_owned()),
            active_only.clone(),
        ],
        max_ads,
        parse_listed_ad,
    )
    .await?
    .ok_or(AccountReadError::TooManyAds { max: max_ads })?;
    let budgets: HashMap<String, MinorUnits> = read_all_pages(
        graph,
        &format!("{account_id}/adsets"),
        &[("fields", "id,daily_budget".to_owned()), active_only.clone()],
        max_ads,
        |row| {
            let graph_amount = parse_count(&row["daily_budget"]);
            (graph_amount > 0).then_some((
                row["id"].as_str()?.to_owned(),
                GraphAmount(graph_amount as i64).to_minor_units(currency),
            ))
        },
    )
    .await?
    .ok_or(AccountReadError::TooManyAds { max: max_ads })?
    .into_iter()
    .collect();
    let timezone_offset_hours = parse_timezone_offset_hours(&account.body["timezone_offset_hours_utc"]);
    let recent_window = TrailingWindow::ending_now(clock_unix, timezone_offset_hours, windows.recent_days);
    let settled_window = windows
        .settled_days
        .map(|days| TrailingWindow::ending_now(clock_unix, timezone_offset_hours, days));
    let lifetime = delivery_by_ad(
        graph,
        account_id,
        ("date_preset", "maximum".to_owned()),
        currency,
        max_ads,
    )
    .await?;
    let recent = delivery_by_ad(
        graph,
        account_id,
        ("time_range", recent_window.time_range()),
        currency,
        max_ads,
    )
    .await?;
    let settled = match &settled_window {
        Some(window) => Some(
            delivery_by_ad(
                graph,
                account_id,
                ("time_range", window.time_range()),
                currency,
                max_ads,
            )
            .await?,
        ),
        None => None,
    };
    let daily_conversions = daily_conversions(graph, account_id).await?;
    // The days serve the delivery curves and the weekday rhythms only: a cycle whose days cannot be read
    // allocates without them.
    // With the time range when the days were read from Meta this cycle.
    let (mut daily_delivery, read_time_range, daily_delivery_unread) = match windows.daily_delivery_days {
        Some(days) => {
            let finished_days = TrailingWindow::finished_days(clock_unix, timezone_offset_hours, days);
            let time_range = finished_days.time_range();
            match known_days.filter(|known| known.time_range == time_range) {
                Some(known) => (known.by_ad, None, None),
                None => match daily_delivery_by_ad(graph, account_id, finished_days, currency, max_ads, days).await {
                    Ok(by_ad) => (by_ad, Some(time_range), None),
                    Err(error) => {
                        tracing::warn!(%error, account_id, "autopilot: each ad's days could not be read; no delivery curves this cycle");
                        (HashMap::new(), None, Some(error.to_string()))
                    }
                },
            }
        }
        None => (HashMap::new(), None, None),
    };
    // Days read this cycle are kept whole for later cycles (so each ad gets a copy); reused days are handed
    // to the ads as they are.
    let keep_days_for_later = read_time_range.is_some();
    let ads = listed_ads
        .into_iter()
        .map(|listed| ObservedAd {
            ad_set_daily_budget: budgets.get(&listed.ad_set_id).copied(),
            lifetime: lifetime
                .get(&listed.ad_id)
                .map(|(delivery, _)| *delivery)
                .unwrap_or_default(),
            lifetime_frequency: lifetime.get(&listed.ad_id).and_then(|(_, frequency)| *frequency),
            recent: recent
                .get(&listed.ad_id)
                .map(|(delivery, _)| *delivery)
                .unwrap_or_default(),
            settled: settled.as_ref().map(|settled| {
                settled
                    .get(&listed.ad_id)
                    .map(|(delivery, _)| *delivery)
                    .unwrap_or_default()
            }),
            daily: if keep_days_for_later {
                daily_delivery.get(&listed.ad_id).cloned()
            } else {
                daily_delivery.remove(&listed.ad_id)
            }
            .unwrap_or_default(),
            campaign_id: listed.campaign_id,
            created_unix: listed.created_unix,
            creative_features: listed.creative_features,
            ad_set_id: listed.ad_set_id,
            ad_id: listed.ad_id,
        })
        .collect();
    Ok(AccountSnapshot {
        currency,
        minimum_daily_budget,
        ads,
        daily_conversions,
        timezone_offset_hours,
        recent_window_hours: recent_window.hours,
        settled_window_hours: settled_window.map(|window| window.hours),
        daily_delivery_unread,
        daily_delivery_read: read_time_range.map(|time_range| DailyDeliveryByAd {
            time_range,
            by_ad: daily_delivery,
        }),
    })
}

/// `timezone_offset_hours_utc` (a number, e.g. -8 or 5.5; Meta may write it as a string); 0 when missing or
/// outside the world's offsets (−12 to +14 hours).
pub fn parse_timezone_offset_hours(value: &Value) -> f64 {
    let hours = match value {
        Value::Number(number) => number.as_f64().unwrap_or(0.0),
        Value::String(text) => text.trim().parse::<f64>().unwrap_or(0.0),
        _ => 0.0,
    };
    if (-12.0..=14.0).contains(&hours) { hours } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_trailing_window_runs_from_whole_days_of_the_accounts_calendar_to_now() {
        let date = |text: &str| CivilDate::parse(text).unwrap();
        // 2026-12-04 15:30 UTC.
        let clock = days_from_civil(date("2026-12-04")) * 86_400 + 15 * 3600 + 1800;
        let utc = TrailingWindow::ending_now(clock, 0.0, 3);
        assert_eq!(
            (utc.since, utc.until, utc.hours),
            (date("2026-12-01"), date("2026-12-04"), 87.5)
        );
        // Los Angeles (−8): 07:30 the same day, so today holds 7.5 hours.
        let behind = TrailingWindow::ending_now(clock, -8.0, 3);
        assert_eq!(
            (behind.since, behind.until, behind.hours),
            (date("2026-12-01"), date("2026-12-04"), 79.5)
        );
        // India (+5.5): 21:00.
        assert_eq!(TrailingWindow::ending_now(clock, 5.5, 7).hours, 7.0 * 24.0 + 21.0);
        // At 03:00 UTC it is still the day before in Los Angeles.
        let early = TrailingWindow::ending_now(clock - 12 * 3600 - 1800, -8.0, 3);
        assert_eq!(
            (early.since, early.until, early.hours),
            (date("2026-11-30"), date("2026-12-03"), 91.0)
        );
        assert_eq!(early.time_range(), r#"{"since":"2026-11-30","until":"2026-12-03"}"#);
    }

    #[test]
    fn feature_labels_become_creative_features_and_other_labels_do_not() {
        let labels = json!([
            {"id": "1", "name": "feature:testimonial"},
            {"id": "2", "name": "feature:duration=0.5"},
            {"id": "3", "name": "summer sale"},
            {"id": "4", "name": "feature:broken=abc"},
            {"id": "5", "name": "feature:"},
        ]);
        let features = features_from_labels(&labels);
        assert_eq!(
            features,
            BTreeMap::from([("duration".to_owned(), 0.5), ("testimonial".to_owned(), 1.0)])
        );
        assert!(features_from_labels(&json!(null)).is_empty());
    }

    #[test]
    fn a_daily_insights_row_becomes_its_days_conversions() {
        let row = json!({
            "date_start": "2026-12-01",
            "date_stop": "2026-12-01",
            "actions": [{"action_type": "link_click", "value": "40"}, {"action_type": "purchase", "value": "7"}],
        });
        let report = parse_daily_conversions(&row).unwrap();
        assert_eq!(report.conversions, 7);
        assert_eq!(
            i64::from(report.day) * 86_400,
            parse_graph_time("2026-12-01T00:00:00+0000").unwrap()
        );
        let without_purchases = json!({"date_start": "2026-12-02", "date_stop": "2026-12-02"});
        assert_eq!(parse_daily_conversions(&without_purchases).unwrap().conversions, 0);
        assert_eq!(parse_daily_conversions(&json!({"actions": []})), None);
    }

    #[test]
    fn an_accounts_time_zone_offset_is_read_tolerantly() {
        assert_eq!(parse_timezone_offset_hours(&json!(-8)), -8.0);
        assert_eq!(parse_timezone_offset_hours(&json!(5.5)), 5.5);
        assert_eq!(parse_timezone_offset_hours(&json!("9")), 9.0);
        assert_eq!(parse_timezone_offset_hours(&json!(null)), 0.0);
        assert_eq!(parse_timezone_offset_hours(&json!(40)), 0.0);
    }

    #[test]
    fn graph_times_with_any_offset_become_unix_seconds() {
        assert_eq!(parse_graph_time("1970-01-01T00:00:00+0000"), Some(0));
        assert_eq!(parse_graph_time("2026-12-01T05:42:03+0000"), Some(1_796_103_723));
        // Eight hours behind UTC is eight hours later in Unix time.
        assert_eq!(parse_graph_time("2026-11-30T21:42:03-0800"), Some(1_796_103_723));
        assert_eq!(parse_graph_time("2024-02-29T00:00:00+0000"), Some(1_709_164_800));
        for malformed in ["", "2026-12-01", "2026-13-01T00:00:00+0000", "2026-12-01T00:00:00Z"] {
            assert_eq!(parse_graph_time(malformed), None, "{malformed}");
        }
    }

    #[test]
    fn finished_days_end_yesterday_on_the_accounts_calendar() {
        let date = |text: &str| CivilDate::parse(text).unwrap();
        let clock = days_from_civil(date("2026-12-04")) * 86_400 + 15 * 3600 + 1800;
        let days = TrailingWindow::finished_days(clock, 0.0, 28);
        assert_eq!((days.since, days.until), (date("2026-11-06"), date("2026-12-03")));
        // Tokyo (+9) is already on 5 December.
        let ahead = TrailingWindow::finished_days(clock, 9.0, 28);
        assert_eq!((ahead.since, ahead.until), (date("2026-11-07"), date("2026-12-04")));
    }

    #[test]
    fn only_metas_too_much_data_refusal_asks_for_a_smaller_page() {
        let message = "Please reduce the amount of data you're asking for, then retry your request";
        assert!(asks_for_less_data(Some(1), message));
        assert!(!asks_for_less_data(Some(1), "An unknown error occurred"));
        assert!(!asks_for_less_data(Some(100), message));
        assert!(!asks_for_less_data(None, message));
    }

    #[test]
    fn frequency_and_daily_rows_are_read_from_insights() {
        assert_eq!(parse_frequency(&json!("2.385012")), Some(2.385012));
        assert_eq!(parse_frequency(&json!(1.5)), Some(1.5));
        for unreadable in [json!(null), json!("n/a"), json!("0.4"), json!("NaN")] {
            assert_eq!(parse_frequency(&unreadable), None, "{unreadable}");
        }
        let usd = Currency::parse("USD").unwrap();
        let row = json!({
            "ad_id": "a1", "impressions": "52768", "clicks": "611", "spend": "561.45", "date_start": "2026-12-01"
        });
        assert_eq!(
            parse_daily_delivery(&row, usd),
            Some((
                "a1".to_owned(),
                DailyDelivery {
                    // 2026-12-01 is day 20,788 since 1970-01-01.
                    day: 20_788,
                    spend: MinorUnits(56_145),
                    impressions: 52_768,
                    clicks: 611,
                }
            ))
        );
        assert_eq!(parse_daily_delivery(&json!({"impressions": "10"}), usd), None);
        assert_eq!(
            parse_daily_delivery(&json!({"ad_id": "a1", "impressions": "10"}), usd),
            None,
            "a row without its date cannot be placed on a weekday"
        );
    }

    #[test]
    fn an_insights_row_becomes_delivery_in_minor_units_of_the_account_currency() {
        let row = json!({
            "impressions": "12000", "clicks": "240", "spend": "123.45",
            "actions": [{"action_type": "link_click", "value": "240"}, {"action_type": "purchase", "value": "7"}],
            "action_values": [{"action_type": "purchase", "value": "456.7"}],
        });
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(
            parse_delivery(&row, usd),
            Delivery {
                impressions: 12_000,
                clicks: 240,
                spend: MinorUnits(12_345),
                conversions: 7,
                conversion_value: MinorUnits(45_670),
            }
        );
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(
            parse_delivery(&row, jpy).spend,
            MinorUnits(123),
            "JPY has no minor unit"
        );
        assert_eq!(
            parse_delivery(&json!({}), usd),
            Delivery::default(),
            "a row without data is no delivery"
        );
    }
}
