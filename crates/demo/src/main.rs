use adloop_demo::report::render_report;
use adloop_demo::steps::{ServiceEndpoints, run_all_steps};
use anyhow::Context as _;

fn required_variable(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .with_context(|| format!("{name} is not set: source .data/dev.env (scripts/services up writes it)"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoints = ServiceEndpoints {
        gateway_url: required_variable("ADLOOP_GATEWAY_URL")?,
        ml_service_url: format!("http://{}", required_variable("ADLOOP_ML_GRPC_ADDR")?),
        relay_url: required_variable("ADLOOP_RELAY_URL")?,
        meta_sim_url: required_variable("ADLOOP_META_SIM_URL")?,
        meta_sim_token: required_variable("ADLOOP_META_SIM_TOKEN")?,
        api_key: required_variable("ADLOOP_DEV_API_KEY")?,
        dev_pixel_id: required_variable("ADLOOP_DEV_PIXEL_ID")?,
        dev_ingest_token: required_variable("ADLOOP_DEV_INGEST_TOKEN")?,
    };
    let outcomes = run_all_steps(&endpoints).await;
    print!("{}", render_report(&outcomes));
    if outcomes.iter().any(|outcome| !outcome.passed) {
        anyhow::bail!("the run failed");
    }
    Ok(())
}
