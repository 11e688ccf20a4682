use adloop_config::EnvironmentVariables;
use meta_sim::settings::MetaSimSettings;
use meta_sim::startup::Application;
use serde_json::Value;

pub const TOKEN: &str = "meta-sim-dev-token";
pub const VERSION: &str = "v25.0";
pub const PIXEL_ID: &str = "100000000000001";
/// The first ad of the stationary-10 scenario and its ad set, campaign and account.
pub const FIRST_AD_SET: &str = "23851000000001";
pub const FIRST_AD: &str = "23852000000001";
pub const CAMPAIGN: &str = "23850000000001";
pub const ACCOUNT: &str = "act_100000001";

pub struct MetaSim {
    pub base_url: String,
    pub http: reqwest::Client,
}

/// meta-sim on port 0 with a manual clock starting 2026-11-02 (a Monday), plus any overrides.
pub async fn spawn_meta_sim(overrides: &[(&str, &str)]) -> MetaSim {
    let scenario_path = format!("{}/../../scenarios/stationary-10.toml", env!("CARGO_MANIFEST_DIR"));
    let mut variables: Vec<(String, String)> = vec![
        ("ADLOOP_SERVER__PORT".into(), "0".into()),
        ("ADLOOP_WORLD__SCENARIO_PATH".into(), scenario_path),
        ("ADLOOP_WORLD__START_DATE".into(), "2026-11-02".into()),
        ("ADLOOP_CLOCK__MODE".into(), "manual".into()),
    ];
    for (key, value) in overrides {
        variables.push(((*key).into(), (*value).into()));
    }
    let settings = MetaSimSettings::load(&EnvironmentVariables::from_pairs(variables)).unwrap();
    let application = Application::build(settings).await.unwrap();
    let base_url = format!("http://{}", application.local_address());
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    MetaSim {
        base_url,
        http: reqwest::Client::new(),
    }
}

impl MetaSim {
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/{path_and_query}", self.base_url))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_with_headers(&self, path_and_query: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = self
            .http
            .get(format!("{}/{path_and_query}", self.base_url))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/{path}", self.base_url))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/{path}", self.base_url))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn advance_hours(&self, hours: f64) -> Value {
        self.post_json("_sim/clock", &serde_json::json!({ "advance_hours": hours }))
            .await
            .1
    }

    pub async fn ad_set_budget(&self, ad_set_id: &str) -> i64 {
        let (_, body) = self
            .get(&format!(
                "{VERSION}/{ad_set_id}?fields=daily_budget&access_token={TOKEN}"
            ))
            .await;
        body["daily_budget"].as_str().unwrap().parse().unwrap()
    }

    pub async fn set_budget(&self, ad_set_id: &str, budget: i64) -> (u16, Value) {
        self.post_form(
            &format!("{VERSION}/{ad_set_id}"),
            &[("daily_budget", &budget.to_string()), ("access_token", TOKEN)],
        )
        .await
    }
}

pub fn error_code(body: &Value) -> (u64, Option<u64>) {
    (
        body["error"]["code"].as_u64().unwrap_or(0),
        body["error"]["error_subcode"].as_u64(),
    )
}
