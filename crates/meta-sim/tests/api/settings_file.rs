//! Per-account tokens and start-up faults come from a settings file (ADLOOP_CONFIG_FILE).

use serde_json::json;

use crate::helpers::*;

const SETTINGS_FILE: &str = r#"
[[access.account_tokens]]
token = "other-account-token"
ad_account_ids = ["act_999999999"]
pixel_ids = []

[[access.account_tokens]]
token = "this-account-token"
ad_account_ids = ["act_100000001"]
pixel_ids = ["100000000000001"]

[faults]
seed = 3
rules = [{ endpoint = "insights", probability = 1.0, fault = { kind = "graph_error", code = 1, http_status = 500 } }]
latency = []
"#;

#[tokio::test]
async fn tokens_are_scoped_to_their_ad_accounts_and_startup_faults_apply() {
    let directory = tempfile::tempdir().unwrap();
    let settings_path = directory.path().join("meta-sim.toml");
    std::fs::write(&settings_path, SETTINGS_FILE).unwrap();
    let sim = spawn_meta_sim(&[("ADLOOP_CONFIG_FILE", settings_path.to_str().unwrap())]).await;

    let (status, _) = sim
        .get(&format!("{VERSION}/{FIRST_AD_SET}?access_token=this-account-token"))
        .await;
    assert_eq!(status, 200);
    let (_, body) = sim
        .get(&format!("{VERSION}/{FIRST_AD_SET}?access_token=other-account-token"))
        .await;
    assert_eq!(
        error_code(&body).0,
        190,
        "a token for another account may not read this one"
    );
    let (_, body) = sim
        .post_json(
            &format!("{VERSION}/{PIXEL_ID}/events"),
            &json!({"data": [], "access_token": "other-account-token"}),
        )
        .await;
    assert_eq!(error_code(&body).0, 190, "nor send events to a pixel it was not given");

    let (status, body) = sim
        .get(&format!(
            "{VERSION}/{FIRST_AD_SET}/insights?access_token=this-account-token"
        ))
        .await;
    assert_eq!(
        (status, error_code(&body).0),
        (500, 1),
        "the configured fault hits insights"
    );
    assert_eq!(body["error"]["is_transient"], true);
}
