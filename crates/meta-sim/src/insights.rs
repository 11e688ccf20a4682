//! `GET /{id}/insights`: the world's delivered and reported numbers per day, shaped like Meta's insights
//! (counts as strings, spend in major units, conversions as `actions` / `action_values`).

use std::collections::BTreeMap;

use adloop_money::{Currency, MinorUnits};
use campaign_sim::{DailyAdStats, World};
use serde_json::{Map, Value, json};

use crate::dates::CivilDate;
use crate::graph_error::GraphError;
use crate::objects::{GraphObject, ObjectKind, ObjectRegistry};

const PURCHASE_ACTION_TYPES: &[&str] = &["offsite_conversion.fb_pixel_purchase", "purchase"];

const ALLOWED_FIELDS: &[&str] = &[
    "impressions",
    "clicks",
    "spend",
    "ctr",
    "cpm",
    "reach",
    "frequency",
    "actions",
    "action_values",
    "account_id",
    "account_currency",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "date_start",
    "date_stop",
];

const DEFAULT_FIELDS: &[&str] = &["impressions", "spend"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Account,
    Campaign,
    AdSet,
    Ad,
}

impl Level {
    fn parse(text: &str) -> Option<Level> {
        match text {
            "account" => Some(Level::Account),
            "campaign" => Some(Level::Campaign),
            "adset" => Some(Level::AdSet),
            "ad" => Some(Level::Ad),
            _ => None,
        }
    }

    fn of_object(kind: ObjectKind) -> Level {
        match kind {
            ObjectKind::AdAccount => Level::Account,
            ObjectKind::Campaign => Level::Campaign,
            ObjectKind::AdSet => Level::AdSet,
            ObjectKind::Ad => Level::Ad,
        }
    }
}

/// How rows split the date range: one row for it all, a row per N days, or a row per calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Increment {
    AllDays,
    Days(i64),
    Monthly,
}

/// Rows per page unless `limit` says otherwise, and the most a page may hold.
const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 5000;

/// Which page of rows a request wants: `limit` rows after the `after` cursor.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    page_size: usize,
    first_row: usize,
}

impl PageRequest {
    /// How many of `total_rows` rows this page holds.
    pub fn rows_of(&self, total_rows: usize) -> usize {
        let first = self.first_row.min(total_rows);
        (first + self.page_size).min(total_rows) - first
    }
}

/// Parses `limit` (default 25, at most 5000) and `after`.
pub fn parse_page_request(params: &BTreeMap<String, String>) -> Result<PageRequest, GraphError> {
    let page_size = match params.get("limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => match text.parse::<usize>() {
            Ok(size @ 1..=MAX_PAGE_SIZE) => size,
            _ => {
                return Err(GraphError::invalid_parameter(format!(
                    "param limit must be a number from 1 to {MAX_PAGE_SIZE}; got `{text}`"
                )));
            }
        },
    };
    let first_row = match params.get("after") {
        None => 0,
        Some(cursor) => row_of_cursor(cursor)
            .map(|row| row + 1)
            .ok_or_else(|| GraphError::invalid_parameter(format!("param after is not a valid cursor: `{cursor}`")))?,
    };
    Ok(PageRequest { page_size, first_row })
}

/// What the request asks for, parsed and checked.
pub struct InsightsQuery {
    fields: Vec<String>,
    level: Level,
    first_day: i64,
    last_day: i64,
    increment: Increment,
    pub page: PageRequest,
    /// `action_attribution_windows` asked for explicitly: each action then carries one value per window.
    attribution_windows: Vec<String>,
    /// Effective statuses to keep, from `filtering` on `ad.effective_status` (etc.); `None`: the default,
    /// which leaves deleted and archived ads out of an ad account's insights.
    status_filter: Option<StatusFilter>,
}

/// A `filtering` rule on an effective status: `{"field": "ad.effective_status", "operator": "IN", "value": [...]}`.
#[derive(Debug, Clone)]
struct StatusFilter {
    object_kind: ObjectKind,
    statuses: Vec<String>,
}

/// Parses `fields`, `level`, `time_range`, `date_preset` (default `last_30d`), `time_increment`, `limit`,
/// `after` and `filtering` against the simulation's calendar.
pub fn parse_insights_query(
    params: &BTreeMap<String, String>,
    object: &GraphObject,
    start_date: CivilDate,
    today_index: i64,
) -> Result<InsightsQuery, GraphError> {
    let fields: Vec<String> = match params.get("fields") {
        Some(list) => list
            .split(',')
            .map(|field| field.trim().to_owned())
            .filter(|field| !field.is_empty())
            .collect(),
        None => DEFAULT_FIELDS.iter().map(|field| (*field).to_owned()).collect(),
    };
    for field in &fields {
        if !ALLOWED_FIELDS.contains(&field.as_str()) {
            return Err(GraphError::invalid_parameter(format!(
                "{field} is not valid for fields param. please check https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ for all valid values"
            )));
        }
    }
    let object_level = Level::of_object(object.kind);
    let level = match params.get("level") {
        Some(text) => Level::parse(text).ok_or_else(|| {
            GraphError::invalid_parameter(format!(
                "param level must be one of account, campaign, adset, ad; got `{text}`"
            ))
        })?,
        None => object_level,
    };
    let (first_day, last_day) = match params.get("time_range") {
        Some(time_range) => parse_time_range(time_range, start_date)?,
        None => preset_days(
            params.get("date_preset").map_or("last_30d", String::as_str),
            start_date,
            today_index,
        )?,
    };
    let increment = match params.get("time_increment").map(String::as_str) {
        None | Some("all_days") => Increment::AllDays,
        Some("monthly") => Increment::Monthly,
        Some(text) => match text.parse::<i64>() {
            Ok(days @ 1..=90) => Increment::Days(days),
            _ => {
                return Err(GraphError::invalid_parameter(format!(
                    "param time_increment must be all_days, monthly or a number of days from 1 to 90; got `{text}`"
                )));
            }
        },
    };
    let page = parse_page_request(params)?;
    let attribution_windows = parse_attribution_windows(params)?;
    if let Some(report_time) = params.get("action_report_time")
        && !matches!(report_time.as_str(), "impression" | "conversion" | "mixed")
    {
        return Err(GraphError::invalid_parameter(format!(
            "param action_report_time must be impression, conversion or mixed; got `{report_time}`"
        )));
    }
    let status_filter = match params.get("filtering") {
        None => None,
        Some(text) => parse_status_filter(text)?,
    };
    Ok(InsightsQuery {
        fields,
        level,
        first_day,
        last_day,
        increment,
        page,
        attribution_windows,
        status_filter,
    })
}

/// Meta's attribution windows; without the parameter Meta uses 7d_click and 1d_view and reports one value.
const ATTRIBUTION_WINDOWS: &[&str] = &[
    "1d_view",
    "7d_view",
    "28d_view",
    "1d_click",
    "7d_click",
    "28d_click",
    "dda",
    "default",
];

/// `action_attribution_windows` as a JSON array (`["7d_click","1d_view"]`) or a comma list.
fn parse_attribution_windows(params: &BTreeMap<String, String>) -> Result<Vec<String>, GraphError> {
    let Some(text) = params.get("action_attribution_windows") else {
        return Ok(Vec::new());
    };
    let windows: Vec<String> = match serde_json::from_str::<Vec<String>>(text) {
        Ok(windows) => windows,
        Err(_) => text.split(',').map(|window| window.trim().to_owned()).collect(),
    };
    for window in &windows {
        if !ATTRIBUTION_WINDOWS.contains(&window.as_str()) {
            return Err(GraphError::invalid_parameter(format!(
                "param action_attribution_windows: `{window}` must be one of {}",
                ATTRIBUTION_WINDOWS.join(", ")
            )));
        }
    }
    Ok(windows)
}

/// An action entry with one value per requested attribution window. Every simulated conversion follows a
/// click within the step it happens in (only its reporting lags), so click windows and `dda` count them all
/// and view windows count none.
fn action_entry(action_type: &str, value: String, attribution_windows: &[String]) -> Value {
    let mut entry = Map::new();
    entry.insert("action_type".into(), json!(action_type));
    entry.insert("value".into(), json!(value.clone()));
    for window in attribution_windows {
        let window_value = if window.ends_with("_view") {
            "0".to_owned()
        } else {
            value.clone()
        };
        if window != "default" {
            entry.insert(window.clone(), json!(window_value));
        }
    }
    Value::Object(entry)
}

/// The day indexes a `date_preset` covers (day 0 is the simulation's first day; today is still running).
fn preset_days(preset: &str, start_date: CivilDate, today_index: i64) -> Result<(i64, i64), GraphError> {
    let today = start_date.plus_days(today_index);
    let first_of_month = |date: CivilDate| CivilDate { day: 1, ..date };
    let days = match preset {
        "maximum" => (0, today_index),
        "today" => (today_index, today_index),
        "yesterday" => (today_index - 1, today_index - 1),
        "last_3d" => (today_index - 3, today_index - 1),
        "last_7d" => (today_index - 7, today_index - 1),
        "last_14d" => (today_index - 14, today_index - 1),
        "last_28d" => (today_index - 28, today_index - 1),
        "last_30d" => (today_index - 30, today_index - 1),
        "last_90d" => (today_index - 90, today_index - 1),
        "this_month" => (first_of_month(today).days_since(start_date), today_index),
        "last_month" => {
            let last_day_of_previous_month = first_of_month(today).plus_days(-1);
            (
                first_of_month(last_day_of_previous_month).days_since(start_date),
                last_day_of_previous_month.days_since(start_date),
            )
        }
        "lifetime" => {
            return Err(GraphError::invalid_parameter(
                "date_preset lifetime is no longer supported; use maximum",
            ));
        }
        other => {
            return Err(GraphError::invalid_parameter(format!(
                "date_preset `{other}` is not supported"
            )));
        }
    };
    Ok(days)
}

fn parse_status_filter(text: &str) -> Result<Option<StatusFilter>, GraphError> {
    let invalid = |why: &str| GraphError::invalid_parameter(format!("param filtering {why}"));
    let rules: Vec<Value> =
        serde_json::from_str(text).map_err(|_| invalid("must be a JSON array of {field, operator, value}"))?;
    let mut status_filter = None;
    for rule in rules {
        let field = rule.get("field").and_then(Value::as_str).unwrap_or("");
        let object_kind = match field {
            "ad.effective_status" => ObjectKind::Ad,
            "adset.effective_status" => ObjectKind::AdSet,
            "campaign.effective_status" => ObjectKind::Campaign,
            _ => {
                return Err(invalid(&format!(
                    "on `{field}` is not supported here (use *.effective_status)"
                )));
            }
        };
        if rule.get("operator").and_then(Value::as_str) != Some("IN") {
            return Err(invalid("supports the IN operator"));
        }
        let statuses: Vec<String> = rule
            .get("value")
            .and_then(Value::as_array)
            .map(|values| values.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .ok_or_else(|| invalid("value must be an array of statuses"))?;
        status_filter = Some(StatusFilter { object_kind, statuses });
    }
    Ok(status_filter)
}

/// Cursors are opaque to clients: the row number, base64-encoded.
fn cursor_of_row(row: usize) -> String {
    base64_encode(format!("row:{row}").as_bytes())
}

fn row_of_cursor(cursor: &str) -> Option<usize> {
    let decoded = base64_decode(cursor)?;
    std::str::from_utf8(&decoded).ok()?.strip_prefix("row:")?.parse().ok()
}

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64_encode(bytes: &[u8]) -> String {
    let mut encoded = String::new();
    for chunk in bytes.chunks(3) {
        let packed = chunk.iter().enumerate().fold(0_u32, |packed, (index, byte)| {
            packed | u32::from(*byte) << (16 - 8 * index)
        });
        for position in 0..=chunk.len() {
            encoded.push(BASE64_ALPHABET[(packed >> (18 - 6 * position) & 63) as usize] as char);
        }
    }
    encoded
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let values: Vec<u32> = text
        .bytes()
        .map(|byte| {
            BASE64_ALPHABET
                .iter()
                .position(|known| *known == byte)
                .map(|index| index as u32)
        })
        .collect::<Option<_>>()?;
    let mut decoded = Vec::new();
    for chunk in values.chunks(4) {
        if chunk.len() < 2 {
            return None;
        }
        let packed = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |packed, (index, value)| packed | value << (18 - 6 * index));
        for position in 0..chunk.len() - 1 {
            decoded.push((packed >> (16 - 8 * position) & 255) as u8);
        }
    }
    Some(decoded)
}

/// One page of rows with Meta's paging: cursors of the first and last row, and `next` (and `previous`) links
/// while there are more. No paging at all when there are no rows.
pub fn page_of_rows(rows: Vec<Value>, page: PageRequest, link: &str, params: &BTreeMap<String, String>) -> Value {
    let total = rows.len();
    let first = page.first_row.min(total);
    let last = (first + page.page_size).min(total);
    let page_rows: Vec<Value> = rows.into_iter().skip(first).take(last - first).collect();
    if page_rows.is_empty() {
        return json!({ "data": [] });
    }
    let link_with = |cursor_name: &str, cursor: &str| {
        let query_string: Vec<String> = params
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "after" | "before" | "access_token" | "appsecret_proof"))
            .map(|(name, value)| format!("{name}={}", percent_encode(value)))
            .chain(std::iter::once(format!("{cursor_name}={cursor}")))
            .collect();
        format!("{link}?{}", query_string.join("&"))
    };
    let after = cursor_of_row(last - 1);
    let before = cursor_of_row(first);
    let mut paging = json!({ "cursors": { "before": before, "after": after } });
    if last < total {
        paging["next"] = json!(link_with("after", &after));
    }
    if first > 0 {
        paging["previous"] = json!(link_with("before", &before));
    }
    json!({ "data": page_rows, "paging": paging })
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Whether an ad's data belongs in the answer: as `filtering` says, else (for an ad account) not when the ad
/// or a parent is deleted or archived, as Meta leaves those out by default.
fn ad_is_included(query: &InsightsQuery, object: &GraphObject, ad: &GraphObject, registry: &ObjectRegistry) -> bool {
    let status_of = |kind: ObjectKind| -> Option<&'static str> {
        let id = match kind {
            ObjectKind::Ad => Some(&ad.id),
            ObjectKind::AdSet => ad.ad_set_id.as_ref(),
            ObjectKind::Campaign => ad.campaign_id.as_ref(),
            ObjectKind::AdAccount => None,
        }?;
        registry.get(id).map(|found| registry.effective_status(found))
    };
    match &query.status_filter {
        Some(filter) => {
            status_of(filter.object_kind).is_some_and(|status| filter.statuses.iter().any(|wanted| wanted == status))
        }
        None if object.kind == ObjectKind::AdAccount => {
            !matches!(status_of(ObjectKind::Ad), Some("DELETED" | "ARCHIVED"))
        }
        None => true,
    }
}

/// The day windows rows cover.
fn day_windows(query: &InsightsQuery, first_day: i64, last_day: i64, start_date: CivilDate) -> Vec<(i64, i64)> {
    if first_day > last_day {
        return Vec::new();
    }
    match query.increment {
        Increment::AllDays => vec![(first_day, last_day)],
        Increment::Days(length) => (first_day..=last_day)
            .step_by(length as usize)
            .map(|window_first| (window_first, (window_first + length - 1).min(last_day)))
            .collect(),
        Increment::Monthly => {
            let mut windows = Vec::new();
            let mut window_first = first_day;
            while window_first <= last_day {
                let date = start_date.plus_days(window_first);
                let next_month = if date.month == 12 {
                    CivilDate {
                        year: date.year + 1,
                        month: 1,
                        day: 1,
                    }
                } else {
                    CivilDate {
                        month: date.month + 1,
                        day: 1,
                        ..date
                    }
                };
                let window_last = (next_month.days_since(start_date) - 1).min(last_day);
                windows.push((window_first, window_last));
                window_first = window_last + 1;
            }
            windows
        }
    }
}

fn parse_time_range(text: &str, start_date: CivilDate) -> Result<(i64, i64), GraphError> {
    let invalid = || {
        GraphError::invalid_parameter("param time_range must be {\"since\":\"YYYY-MM-DD\",\"until\":\"YYYY-MM-DD\"}")
    };
    let range: Value = serde_json::from_str(text).map_err(|_| invalid())?;
    let since = range
        .get("since")
        .and_then(Value::as_str)
        .and_then(CivilDate::parse)
        .ok_or_else(invalid)?;
    let until = range
        .get("until")
        .and_then(Value::as_str)
        .and_then(CivilDate::parse)
        .ok_or_else(invalid)?;
    if until < since {
        return Err(GraphError::invalid_parameter(
            "time_range until must not be before since",
        ));
    }
    Ok((since.days_since(start_date), until.days_since(start_date)))
}

#[derive(Default, Clone, Copy)]
struct Totals {
    impressions: u64,
    clicks: u64,
    spend: i64,
    conversions: u64,
    conversion_value: i64,
    reach: f64,
}

fn add_day(totals: &mut Totals, stats: &DailyAdStats) {
    totals.impressions += stats.impressions;
    totals.clicks += stats.clicks;
    totals.spend += stats.spend.get();
    totals.conversions += stats.conversions;
    totals.conversion_value += stats.conversion_value.get();
}

fn money_string(minor_units: i64, currency: Currency) -> String {
    let decimals = usize::from(currency.minor_unit_exponent());
    format!("{:.decimals$}", MinorUnits(minor_units).to_major(currency))
}

/// Every row for the object, one per level entity and time window. Rows without delivery are left out, as Meta
/// does. [`page_of_rows`] pages them.
pub fn insights_rows(
    query: &InsightsQuery,
    object: &GraphObject,
    registry: &ObjectRegistry,
    world: &World,
    currency: Currency,
    start_date: CivilDate,
) -> Vec<Value> {
    let today_index = i64::from(world.hour() / 24);
    let first_day = query.first_day.max(0);
    let last_day = query.last_day.min(today_index);

    // Group the object's ads by the entity of the requested level.
    let mut groups: BTreeMap<String, Vec<&GraphObject>> = BTreeMap::new();
    for ad in registry.ads_under(object) {
        if !ad_is_included(query, object, ad, registry) {
            continue;
        }
        let key = match query.level {
            Level::Account => ad.account_id.clone(),
            Level::Campaign => ad.campaign_id.clone().unwrap_or_default(),
            Level::AdSet => ad.ad_set_id.clone().unwrap_or_default(),
            Level::Ad => ad.id.clone(),
        };
        groups.entry(key).or_default().push(ad);
    }

    let windows = day_windows(query, first_day, last_day, start_date);

    let mut rows = Vec::new();
    for (group_key, ads) in &groups {
        for &(window_first, window_last) in &windows {
            let mut totals = Totals::default();
            for ad in ads {
                let Some(truth_index) = ad.truth_index else { continue };
                let mut ad_totals = Totals::default();
                for stats in world
                    .daily_stats(truth_index)
                    .iter()
                    .enumerate()
                    .filter(|(day, _)| (window_first..=window_last).contains(&(*day as i64)))
                    .map(|(_, stats)| stats)
                {
                    add_day(&mut ad_totals, stats);
                }
                let audience_size = world.truths()[truth_index].audience_size;
                ad_totals.reach = audience_size * (1.0 - (-(ad_totals.impressions as f64) / audience_size).exp());
                totals.impressions += ad_totals.impressions;
                totals.clicks += ad_totals.clicks;
                totals.spend += ad_totals.spend;
                totals.conversions += ad_totals.conversions;
                totals.conversion_value += ad_totals.conversion_value;
                totals.reach += ad_totals.reach;
            }
            if totals.impressions == 0 && totals.conversions == 0 {
                continue;
            }
            let first_ad = ads[0];
            rows.push(render_row(
                query,
                group_key,
                first_ad,
                registry,
                totals,
                currency,
                start_date.plus_days(window_first),
                start_date.plus_days(window_last),
            ));
        }
    }
    rows
}

#[allow(clippy::too_many_arguments)]
fn render_row(
    query: &InsightsQuery,
    group_key: &str,
    representative_ad: &GraphObject,
    registry: &ObjectRegistry,
    totals: Totals,
    currency: Currency,
    date_start: CivilDate,
    date_stop: CivilDate,
) -> Value {
    let (fields, level, attribution_windows) = (&query.fields, query.level, query.attribution_windows.as_slice());
    let mut row = Map::new();
    let name_of = |id: Option<&String>| {
        id.and_then(|id| registry.get(id))
            .map(|object| object.name.clone())
            .unwrap_or_default()
    };
    for field in fields {
        let value = match field.as_str() {
            "impressions" => json!(totals.impressions.to_string()),
            "clicks" => json!(totals.clicks.to_string()),
            "spend" => json!(money_string(totals.spend, currency)),
            "account_currency" => json!(currency.code()),
            "ctr" => {
                let ctr = if totals.impressions > 0 {
                    totals.clicks as f64 / totals.impressions as f64 * 100.0
                } else {
                    0.0
                };
                json!(format!("{ctr:.6}"))
            }
            "cpm" => {
                let cpm = if totals.impressions > 0 {
                    MinorUnits(totals.spend).to_major(currency) / totals.impressions as f64 * 1000.0
                } else {
                    0.0
                };
                json!(format!("{cpm:.6}"))
            }
            "reach" => json!((totals.reach.round() as u64).to_string()),
            "frequency" => {
                let frequency = if totals.reach > 0.0 {
                    totals.impressions as f64 / totals.reach
                } else {
                    0.0
                };
                json!(format!("{frequency:.6}"))
            }
            "actions" => {
                if totals.conversions == 0 {
                    continue;
                }
                json!(
                    PURCHASE_ACTION_TYPES
                        .iter()
                        .map(|action_type| action_entry(
                            action_type,
                            totals.conversions.to_string(),
                            attribution_windows
                        ))
                        .collect::<Vec<_>>()
                )
            }
            "action_values" => {
                if totals.conversions == 0 {
                    continue;
                }
                json!(
                    PURCHASE_ACTION_TYPES
                        .iter()
                        .map(|action_type| action_entry(
                            action_type,
                            money_string(totals.conversion_value, currency),
                            attribution_windows
                        ))
                        .collect::<Vec<_>>()
                )
            }
            "account_id" => json!(representative_ad.account_id.trim_start_matches("act_")),
            "campaign_id" if level != Level::Account => json!(representative_ad.campaign_id),
            "campaign_name" if level != Level::Account => json!(name_of(representative_ad.campaign_id.as_ref())),
            "adset_id" if matches!(level, Level::AdSet | Level::Ad) => json!(representative_ad.ad_set_id),
            "adset_name" if matches!(level, Level::AdSet | Level::Ad) => {
                json!(name_of(representative_ad.ad_set_id.as_ref()))
            }
            "ad_id" if level == Level::Ad => json!(group_key),
            "ad_name" if level == Level::Ad => json!(representative_ad.name),
            _ => continue,
        };
        row.insert(field.clone(), value);
    }
    row.insert("date_start".into(), json!(date_start.to_string()));
    row.insert("date_stop".into(), json!(date_stop.to_string()));
    Value::Object(row)
}
