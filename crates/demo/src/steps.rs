//! The steps of the run. Each returns an outcome instead of failing fast, so the report shows everything.

use std::time::Instant;

use crate::report::StepOutcome;

/// A trace id the run sends to the gateway and expects to see again in ml-service.
pub const DEMO_TRACE_ID: &str = "ad100b5e0000000000000000000000a1";

pub struct ServiceEndpoints {
    pub gateway_url: String,
    pub ml_service_url: String,
    pub relay_url: String,
    pub meta_sim_url: String,
    pub meta_sim_token: String,
    /// The gateway's API key for the dev tenant.
    pub api_key: String,
    /// The dev pixel (meta-sim knows it) and the relay's ingest token for it.
    pub dev_pixel_id: String,
    pub dev_ingest_token: String,
}

/// The simulated account's delivery so far, read through meta-sim's Graph API as any Meta client would.
pub async fn read_simulated_account_insights(http: &reqwest::Client, endpoints: &ServiceEndpoints) -> StepOutcome {
    let step_name = "meta-sim account insights";
    let url = format!(
        "{}/v25.0/act_100000001/insights?fields=impressions,clicks,spend,account_currency,actions&date_preset=maximum",
        endpoints.meta_sim_url
    );
    let request = http
        .get(url)
        .query(&[("access_token", endpoints.meta_sim_token.as_str())]);
    let body: serde_json::Value = match request.send().await {
        Ok(response) if response.status().is_success() => match response.json().await {
            Ok(body) => body,
            Err(error) => {
                return StepOutcome::failed(
                    step_name,
                    format!("unreadable insights: {}", crate::request_failure(error)),
                );
            }
        },
        Ok(response) => return StepOutcome::failed(step_name, format!("meta-sim answered {}", response.status())),
        Err(error) => {
            return StepOutcome::failed(
                step_name,
                format!("no answer from meta-sim: {}", crate::request_failure(error)),
            );
        }
    };
    let row = &body["data"][0];
    let purchases = row["actions"]
        .as_array()
        .and_then(|actions| actions.iter().find(|action| action["action_type"] == "purchase"))
        .and_then(|action| action["value"].as_str())
        .unwrap_or("0");
    match (row["impressions"].as_str(), row["spend"].as_str()) {
        (Some(impressions), Some(spend)) => StepOutcome::passed(
            step_name,
            format!(
                "{impressions} impressions, {} clicks, {spend} {} spent, {purchases} purchases reported ({} to {})",
                row["clicks"].as_str().unwrap_or("0"),
                row["account_currency"].as_str().unwrap_or("?"),
                row["date_start"].as_str().unwrap_or("?"),
                row["date_stop"].as_str().unwrap_or("?"),
            ),
        ),
        _ => StepOutcome::failed(step_name, format!("no delivery in the simulated account: {body}")),
    }
}

/// meta-sim's clock report (`/_sim/clock`: simulated hour, `now_unix`, date).
pub async fn meta_sim_clock(http: &reqwest::Client, endpoints: &ServiceEndpoints) -> Result<serde_json::Value, String> {
    crate::autopilot_client::meta_sim_get(http, &endpoints.meta_sim_url, "_sim/clock").await
}

pub async fn check_readiness(http: &reqwest::Client, service_name: &str, base_url: &str) -> StepOutcome {
    let step_name = format!("{service_name} ready");
    let response = match http.get(format!("{base_url}/readyz")).send().await {
        Ok(response) => response,
        Err(error) => {
            return StepOutcome::failed(
                step_name,
                format!("no answer from {base_url}: {}", crate::request_failure(error)),
            );
        }
    };
    let status = response.status();
    let report: serde_json::Value = match response.json().await {
        Ok(report) => report,
        Err(error) => {
            return StepOutcome::failed(
                step_name,
                format!("unreadable readiness report: {}", crate::request_failure(error)),
            );
        }
    };
    let checks = report["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .map(|check| {
                    format!(
                        "{} {}",
                        check["name"].as_str().unwrap_or("?"),
                        check["status"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let detail = format!(
        "v{} at {base_url} ({checks})",
        report["version"].as_str().unwrap_or("?")
    );
    if status.is_success() && report["ready"] == true {
        StepOutcome::passed(step_name, detail)
    } else {
        StepOutcome::failed(step_name, detail)
    }
}

pub async fn call_ml_service_through_gateway(http: &reqwest::Client, gateway_url: &str, api_key: &str) -> StepOutcome {
    let step_name = "gateway → ml-service (gRPC)";
    let started_at = Instant::now();
    let response = http
        .get(format!("{gateway_url}/v1/ml/service-info"))
        .bearer_auth(api_key)
        .header("traceparent", format!("00-{DEMO_TRACE_ID}-00000000000000a1-01"))
        .send()
        .await;
    let elapsed_ms = started_at.elapsed().as_secs_f64() * 1000.0;
    let response = match response {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => return StepOutcome::failed(step_name, format!("gateway answered {}", response.status())),
        Err(error) => {
            return StepOutcome::failed(
                step_name,
                format!("no answer from the gateway: {}", crate::request_failure(error)),
            );
        }
    };
    let body: serde_json::Value = match response.json().await {
        Ok(body) => body,
        Err(error) => {
            return StepOutcome::failed(
                step_name,
                format!("unreadable answer: {}", crate::request_failure(error)),
            );
        }
    };
    let ml_trace_id = body["ml_service"]["trace_id"].as_str().unwrap_or("");
    let detail = format!(
        "ml-service v{} answered in {elapsed_ms:.1} ms; trace {DEMO_TRACE_ID} {}",
        body["ml_service"]["version"].as_str().unwrap_or("?"),
        if ml_trace_id == DEMO_TRACE_ID {
            "carried into ml-service"
        } else {
            "LOST on the way"
        },
    );
    if ml_trace_id == DEMO_TRACE_ID {
        StepOutcome::passed(step_name, detail)
    } else {
        StepOutcome::failed(step_name, detail)
    }
}

pub async fn run_all_steps(endpoints: &ServiceEndpoints) -> Vec<StepOutcome> {
    let http = reqwest::Client::new();
    let mut steps = vec![
        check_readiness(&http, "meta-sim", &endpoints.meta_sim_url).await,
        read_simulated_account_insights(&http, endpoints).await,
        check_readiness(&http, "ml-service", &endpoints.ml_service_url).await,
        check_readiness(&http, "gateway-api", &endpoints.gateway_url).await,
        check_readiness(&http, "capi-relay", &endpoints.relay_url).await,
        call_ml_service_through_gateway(&http, &endpoints.gateway_url, &endpoints.api_key).await,
    ];
    let (allocation_outcome, allocation) = crate::allocation_step::allocate_simulated_account(&http, endpoints).await;
    steps.push(allocation_outcome);
    steps.push(crate::executor_step::apply_through_executor(&http, endpoints, allocation.as_ref()).await);
    let ad_ids: Vec<String> = allocation
        .as_ref()
        .map(|allocation| {
            allocation
                .recommendations
                .iter()
                .filter_map(|entry| entry["ad_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let ad_states = allocation
        .as_ref()
        .map(|allocation| allocation.ad_states.clone())
        .unwrap_or_default();
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    steps.push(crate::learning_step::teach_the_learner(&http, endpoints, &ad_states, run_id).await);
    steps.push(crate::relay_step::send_conversions_through_relay(&http, endpoints, &ad_ids).await);
    steps.push(crate::autopilot_step::run_autopilot_for_simulated_days(&http, endpoints).await);
    steps
}
