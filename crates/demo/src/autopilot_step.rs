//! The run's autopilot: turned on for the simulated account, then a cycle per simulated day (meta-sim's
//! clock moved a day at a time), each read from the gateway's run record and its changes followed to their
//! end in the executor; turned off again at the end, so the account is left as it was.

use serde_json::Value;

use crate::autopilot_client::{DAY_SECONDS, GatewayTenant, advance_simulated_hours, last_error, meta_sim_now_unix};
use crate::report::StepOutcome;
use crate::steps::ServiceEndpoints;

const ACCOUNT_ID: &str = "act_100000001";
const SIMULATED_DAYS: usize = 3;

async fn run_days(http: &reqwest::Client, endpoints: &ServiceEndpoints) -> Result<(Vec<String>, usize, bool), String> {
    let tenant = GatewayTenant {
        http,
        gateway_url: &endpoints.gateway_url,
        api_key: &endpoints.api_key,
    };
    let meta_sim_url = endpoints.meta_sim_url.as_str();
    // meta-sim's world starts afresh with every `make up`, while the gateway remembers the cycles of
    // earlier runs: move the new world past the last cycle already run, so this run's cycles are new.
    let last_slot = tenant
        .runs(ACCOUNT_ID)
        .await?
        .first()
        .and_then(|run| run["cycle_slot"].as_i64());
    let mut now_unix = meta_sim_now_unix(http, meta_sim_url).await?;
    if let Some(last_slot) = last_slot.filter(|slot| *slot >= now_unix / DAY_SECONDS) {
        let seconds_to_next_slot = (last_slot + 1) * DAY_SECONDS - now_unix;
        advance_simulated_hours(http, meta_sim_url, seconds_to_next_slot as f64 / 3600.0 + 0.01).await?;
        now_unix = meta_sim_now_unix(http, meta_sim_url).await?;
    }
    let first_slot = now_unix / DAY_SECONDS;
    tenant.set_autopilot(ACCOUNT_ID, true).await?;
    let mut lines = Vec::new();
    let mut applied_in_all = 0;
    let mut every_cycle_completed = true;
    for day in 0..SIMULATED_DAYS as i64 {
        if day > 0 {
            advance_simulated_hours(http, meta_sim_url, 24.0).await?;
        }
        let run = &tenant.wait_for_cycle(ACCOUNT_ID, first_slot + day).await?;
        every_cycle_completed &= run["state"] == "completed";
        let changes = tenant.follow_changes(run).await?;
        let applied = changes.iter().filter(|change| change["state"] == "completed").count();
        let refused: Vec<&Value> = changes.iter().filter(|change| change["state"] == "discarded").collect();
        applied_in_all += applied;
        let mut line = format!(
            "    cycle {} ({}): read {} ads, planned {}, enqueued {} → applied {}, refused {}",
            run["cycle_slot"],
            run["state"].as_str().unwrap_or("?"),
            run["ads_read"],
            run["changes_planned"],
            run["changes_enqueued"],
            applied,
            refused.len(),
        );
        if let Some(first) = refused.first() {
            line.push_str(&format!(" (e.g. {})", last_error(first)));
        }
        if let Some(error) = run["error"].as_str() {
            line.push_str(&format!("; error: {error}"));
        }
        lines.push(line);
    }
    tenant.set_autopilot(ACCOUNT_ID, false).await?;
    Ok((lines, applied_in_all, every_cycle_completed))
}

pub async fn run_autopilot_for_simulated_days(http: &reqwest::Client, endpoints: &ServiceEndpoints) -> StepOutcome {
    let step_name = "autopilot (a cycle per simulated day)";
    match run_days(http, endpoints).await {
        Ok((lines, applied, every_cycle_completed)) => {
            let detail = format!(
                "{SIMULATED_DAYS} simulated days, {applied} changes applied in meta-sim\n{}",
                lines.join("\n")
            );
            if every_cycle_completed && applied > 0 {
                StepOutcome::passed(step_name, detail)
            } else {
                StepOutcome::failed(step_name, detail)
            }
        }
        Err(error) => StepOutcome::failed(step_name, error),
    }
}
