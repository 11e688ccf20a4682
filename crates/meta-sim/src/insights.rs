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

/// What the request asks for, parsed and checked.
pub struct InsightsQuery {
    fields: Vec<String>,
    level: Level,
    first_day: i64,
    last_day: i64,
    daily_rows: bool,
}

/// Parses `fields`, `level`, `time_range`, `date_preset` and `time_increment` against the simulation's calendar.
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
    let (first_day, last_day) = if let Some(time_range) = params.get("time_range") {
        parse_time_range(time_range, start_date)?
    } else {
        match params.get("date_preset").map(String::as_str).unwrap_or("maximum") {
            "maximum" | "lifetime" => (0, today_index),
            "today" => (today_index, today_index),
            "yesterday" => (today_index - 1, today_index - 1),
            "last_3d" => (today_index - 3, today_index - 1),
            "last_7d" => (today_index - 7, today_index - 1),
            "last_14d" => (today_index - 14, today_index - 1),
            "last_30d" => (today_index - 30, today_index - 1),
            other => {
                return Err(GraphError::invalid_parameter(format!(
                    "date_preset `{other}` is not supported"
                )));
            }
        }
    };
    let daily_rows = match params.get("time_increment").map(String::as_str) {
        None | Some("all_days") => false,
        Some("1") => true,
        Some(other) => {
            return Err(GraphError::invalid_parameter(format!(
                "time_increment `{other}` is not supported (use 1 or all_days)"
            )));
        }
    };
    Ok(InsightsQuery {
        fields,
        level,
        first_day,
        last_day,
        daily_rows,
    })
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

/// Rows for the object, one per level entity (and per day with `time_increment=1`). Rows without delivery are
/// left out, as Meta does.
pub fn insights_rows(
    query: &InsightsQuery,
    object: &GraphObject,
    registry: &ObjectRegistry,
    world: &World,
    currency: Currency,
    start_date: CivilDate,
) -> Value {
    let today_index = i64::from(world.hour() / 24);
    let first_day = query.first_day.max(0);
    let last_day = query.last_day.min(today_index);

    // Group the object's ads by the entity of the requested level.
    let mut groups: BTreeMap<String, Vec<&GraphObject>> = BTreeMap::new();
    for ad in registry.ads_under(object) {
        let key = match query.level {
            Level::Account => ad.account_id.clone(),
            Level::Campaign => ad.campaign_id.clone().unwrap_or_default(),
            Level::AdSet => ad.ad_set_id.clone().unwrap_or_default(),
            Level::Ad => ad.id.clone(),
        };
        groups.entry(key).or_default().push(ad);
    }

    let day_windows: Vec<(i64, i64)> = if query.daily_rows {
        (first_day..=last_day).map(|day| (day, day)).collect()
    } else if first_day <= last_day {
        vec![(first_day, last_day)]
    } else {
        Vec::new()
    };

    let mut rows = Vec::new();
    for (group_key, ads) in &groups {
        for &(window_first, window_last) in &day_windows {
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
                &query.fields,
                query.level,
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
    json!({ "data": rows, "paging": { "cursors": { "before": "MAZDZD", "after": "MAZDZD" } } })
}

#[allow(clippy::too_many_arguments)]
fn render_row(
    fields: &[String],
    level: Level,
    group_key: &str,
    representative_ad: &GraphObject,
    registry: &ObjectRegistry,
    totals: Totals,
    currency: Currency,
    date_start: CivilDate,
    date_stop: CivilDate,
) -> Value {
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
                        .map(|action_type| json!({"action_type": action_type, "value": totals.conversions.to_string()}))
                        .collect::<Vec<_>>()
                )
            }
            "action_values" => {
                if totals.conversions == 0 {
                    continue;
                }
                json!(PURCHASE_ACTION_TYPES
                    .iter()
                    .map(|action_type| json!({"action_type": action_type, "value": money_string(totals.conversion_value, currency)}))
                    .collect::<Vec<_>>())
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
