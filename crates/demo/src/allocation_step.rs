//! The run's allocation: read the simulated account through meta-sim's Graph API (insights and, in one
//! batch, every ad set's budget), ask the gateway for an allocation, and show it.

use std::collections::HashMap;

use adloop_money::{Currency, GraphAmount, MinorUnits, Money};
use serde_json::{Value, json};

use crate::report::StepOutcome;
use crate::steps::ServiceEndpoints;

const ACCOUNT_ID: &str = "act_100000001";
const GRAPH_VERSION: &str = "v25.0";

/// Major-unit decimal strings (as insights report money) to the currency's minor units.
fn minor_units(text: Option<&str>, currency: Currency) -> i64 {
    text.and_then(|text| text.parse::<f64>().ok())
        .map(|major| MinorUnits::from_major_rounded(major, currency).get())
        .unwrap_or(0)
}

fn money(minor_units: i64, currency: Currency) -> Money {
    Money {
        amount: MinorUnits(minor_units),
        currency,
    }
}

/// The ad account's currency, as the Graph API reports it.
async fn account_currency(http: &reqwest::Client, endpoints: &ServiceEndpoints) -> Result<Currency, String> {
    let account = graph_get(http, endpoints, &format!("{ACCOUNT_ID}?fields=currency")).await?;
    let code = account["currency"].as_str().unwrap_or_default();
    Currency::parse(code).map_err(|error| error.to_string())
}

fn purchases(row: &Value, field: &str) -> Option<String> {
    row[field]
        .as_array()?
        .iter()
        .find(|action| action["action_type"] == "purchase")
        .and_then(|action| action["value"].as_str())
        .map(str::to_owned)
}

async fn graph_get(
    http: &reqwest::Client,
    endpoints: &ServiceEndpoints,
    path_and_query: &str,
) -> Result<Value, String> {
    let url = format!("{}/{GRAPH_VERSION}/{path_and_query}", endpoints.meta_sim_url);
    let response = http
        .get(url)
        .query(&[("access_token", endpoints.meta_sim_token.as_str())])
        .send()
        .await
        .map_err(crate::request_failure)?;
    let status = response.status();
    let body: Value = response.json().await.map_err(crate::request_failure)?;
    if !status.is_success() {
        return Err(format!("meta-sim answered {status}: {body}"));
    }
    Ok(body)
}

/// Every row of an insights query, page by page (Meta pages insights, 25 rows by default).
async fn insights_rows(
    http: &reqwest::Client,
    endpoints: &ServiceEndpoints,
    path_and_query: &str,
) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page_query = match &after {
            Some(cursor) => format!("{path_and_query}&after={cursor}"),
            None => path_and_query.to_owned(),
        };
        let page = graph_get(http, endpoints, &page_query).await?;
        rows.extend(page["data"].as_array().cloned().unwrap_or_default());
        match (
            page["paging"]["next"].as_str(),
            page["paging"]["cursors"]["after"].as_str(),
        ) {
            (Some(_), Some(cursor)) => after = Some(cursor.to_owned()),
            _ => return Ok(rows),
        }
    }
}

/// Each ad set's daily budget in the currency's minor units, read in one Graph batch (the Graph API writes
/// budgets in Meta's units for the currency).
async fn ad_set_budgets(
    http: &reqwest::Client,
    endpoints: &ServiceEndpoints,
    ad_set_ids: &[String],
    currency: Currency,
) -> Result<HashMap<String, i64>, String> {
    let operations: Vec<Value> = ad_set_ids
        .iter()
        .map(|id| json!({"method": "GET", "relative_url": format!("{id}?fields=daily_budget")}))
        .collect();
    let response = http
        .post(format!("{}/{GRAPH_VERSION}/", endpoints.meta_sim_url))
        .form(&[
            ("access_token", endpoints.meta_sim_token.as_str()),
            ("batch", &Value::Array(operations).to_string()),
        ])
        .send()
        .await
        .map_err(crate::request_failure)?;
    let results: Value = response.json().await.map_err(crate::request_failure)?;
    let mut budgets = HashMap::new();
    for (id, result) in ad_set_ids.iter().zip(results.as_array().into_iter().flatten()) {
        let body: Value = serde_json::from_str(result["body"].as_str().unwrap_or("{}")).unwrap_or_default();
        let graph_budget = body["daily_budget"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .unwrap_or(0);
        budgets.insert(id.clone(), GraphAmount(graph_budget).to_minor_units(currency).get());
    }
    Ok(budgets)
}

async fn build_allocation_request(
    http: &reqwest::Client,
    endpoints: &ServiceEndpoints,
) -> Result<(Value, usize, Currency), String> {
    let currency = account_currency(http, endpoints).await?;
    let fields = "ad_id,adset_id,campaign_id,ad_name,impressions,clicks,spend,actions,action_values";
    let rows = insights_rows(
        http,
        endpoints,
        &format!("{ACCOUNT_ID}/insights?level=ad&fields={fields}&date_preset=maximum"),
    )
    .await?;
    let recent_rows = insights_rows(
        http,
        endpoints,
        &format!("{ACCOUNT_ID}/insights?level=ad&fields={fields}&date_preset=last_3d"),
    )
    .await?;
    let clock = crate::steps::meta_sim_clock(http, endpoints).await?;
    let simulated_hour = clock["simulated_hour"].as_f64().unwrap_or(24.0);
    if rows.is_empty() {
        return Err("the simulated account has no delivery yet".into());
    }
    let recent_by_ad: HashMap<String, Value> = recent_rows
        .iter()
        .filter_map(|row| row["ad_id"].as_str().map(|ad_id| (ad_id.to_owned(), row.clone())))
        .collect();
    let ad_set_ids: Vec<String> = rows
        .iter()
        .filter_map(|row| row["adset_id"].as_str().map(str::to_owned))
        .collect();
    let budgets = ad_set_budgets(http, endpoints, &ad_set_ids, currency).await?;
    let count = |row: &Value, field: &str| {
        row[field]
            .as_str()
            .and_then(|text| text.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let ads: Vec<Value> = rows
        .iter()
        .map(|row| {
            let ad_id = row["ad_id"].as_str().unwrap_or_default().to_owned();
            let ad_set_id = row["adset_id"].as_str().unwrap_or_default().to_owned();
            let recent_row = recent_by_ad.get(&ad_id).cloned().unwrap_or(json!({}));
            json!({
                "account_id": ACCOUNT_ID,
                "campaign_id": row["campaign_id"].as_str().unwrap_or_default(),
                "ad_set_id": ad_set_id,
                "ad_id": ad_id,
                "impressions": count(row, "impressions"),
                "clicks": count(row, "clicks"),
                "conversions": purchases(row, "actions").and_then(|text| text.parse::<i64>().ok()).unwrap_or(0),
                "spend": minor_units(row["spend"].as_str(), currency),
                "conversion_value": minor_units(purchases(row, "action_values").as_deref(), currency),
                "age_hours": simulated_hour,
                "current_daily_budget": budgets.get(&ad_set_id).copied().unwrap_or(0),
                "recent": {
                    "hours": 72.0_f64.min(simulated_hour.max(1.0)),
                    "impressions": count(&recent_row, "impressions"),
                    "clicks": count(&recent_row, "clicks"),
                    "spend": minor_units(recent_row["spend"].as_str(), currency),
                    "conversions": purchases(&recent_row, "actions").and_then(|text| text.parse::<i64>().ok()).unwrap_or(0),
                    "conversion_value": minor_units(purchases(&recent_row, "action_values").as_deref(), currency),
                }
            })
        })
        .collect();
    let total: i64 = budgets.values().sum();
    Ok((
        // At most ±20% per step: what the executor's guardrails allow by default.
        json!({"currency": currency.code(), "total_daily_budget": total, "ads": ads,
               "constraints": {"max_change_fraction": 0.2}}),
        rows.len(),
        currency,
    ))
}

/// The allocation the run obtained, for the executor step.
pub struct ObtainedAllocation {
    pub recommendations: Vec<Value>,
    /// The ad states the allocation was asked for (lifetime delivery per ad, from insights).
    pub ad_states: Vec<Value>,
    pub currency: Currency,
}

pub async fn allocate_simulated_account(
    http: &reqwest::Client,
    endpoints: &ServiceEndpoints,
) -> (StepOutcome, Option<ObtainedAllocation>) {
    let step_name = "allocation (gateway → ml-service)";
    let (request, ad_count, currency) = match build_allocation_request(http, endpoints).await {
        Ok(built) => built,
        Err(error) => {
            let outcome = StepOutcome::failed(step_name, format!("cannot read the simulated account: {error}"));
            return (outcome, None);
        }
    };
    let response = match http
        .post(format!("{}/v1/allocations", endpoints.gateway_url))
        .bearer_auth(&endpoints.api_key)
        .json(&request)
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => {
            let outcome = StepOutcome::failed(
                step_name,
                format!("no answer from the gateway: {}", crate::request_failure(error)),
            );
            return (outcome, None);
        }
    };
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        return (
            StepOutcome::failed(step_name, format!("gateway answered {status}: {answer}")),
            None,
        );
    }
    let recommendations = answer["recommendations"].as_array().cloned().unwrap_or_default();
    let total: i64 = recommendations
        .iter()
        .filter_map(|entry| entry["recommended_daily_budget"].as_i64())
        .sum();
    let mut lines = vec![format!(
        "{ad_count} ads, {} a day re-split (total kept exactly: {})",
        money(total, currency),
        total == request["total_daily_budget"].as_i64().unwrap_or(-1)
    )];
    let mut ranked = recommendations.clone();
    ranked.sort_by(|left, right| {
        right["probability_best"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&left["probability_best"].as_f64().unwrap_or(0.0))
    });
    for entry in ranked.iter().take(3) {
        lines.push(format!(
            "    ad {}: {} → {}, P(best) {:.2}, ROAS {:.2}, {}",
            entry["ad_id"].as_str().unwrap_or("?"),
            money(entry["current_daily_budget"].as_i64().unwrap_or(0), currency),
            money(entry["recommended_daily_budget"].as_i64().unwrap_or(0), currency),
            entry["probability_best"].as_f64().unwrap_or(0.0),
            entry["roas"]["mean"].as_f64().unwrap_or(0.0),
            entry["decision"].as_str().unwrap_or("?"),
        ));
    }
    let obtained = ObtainedAllocation {
        recommendations,
        ad_states: request["ads"].as_array().cloned().unwrap_or_default(),
        currency,
    };
    (StepOutcome::passed(step_name, lines.join("\n")), Some(obtained))
}
