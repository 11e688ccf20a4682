use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn an_ad_set_reads_like_metas_with_budget_in_minor_units_as_a_string() {
    let sim = spawn_meta_sim(&[]).await;
    let (status, body) = sim
        .get(&format!(
            "{VERSION}/{FIRST_AD_SET}?fields=id,name,status,effective_status,daily_budget,campaign_id,account_id&access_token={TOKEN}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], FIRST_AD_SET);
    assert_eq!(body["status"], "ACTIVE");
    assert_eq!(body["effective_status"], "ACTIVE");
    assert_eq!(body["campaign_id"], CAMPAIGN);
    assert_eq!(body["account_id"], "100000001");
    // 1,000.00 USD split over ten ad sets.
    assert_eq!(body["daily_budget"], "10000");

    let (_, account) = sim
        .get(&format!("{VERSION}/{ACCOUNT}?fields=currency&access_token={TOKEN}"))
        .await;
    assert_eq!(account["currency"], "USD");
}

#[tokio::test]
async fn unknown_fields_objects_and_versions_get_metas_errors() {
    let sim = spawn_meta_sim(&[]).await;
    let (status, body) = sim
        .get(&format!(
            "{VERSION}/{FIRST_AD_SET}?fields=budget_magic&access_token={TOKEN}"
        ))
        .await;
    assert_eq!((status, error_code(&body)), (400, (100, None)));
    assert!(body["error"]["message"].as_str().unwrap().contains("budget_magic"));
    assert!(body["error"]["fbtrace_id"].as_str().unwrap().len() > 10);

    let (_, body) = sim.get(&format!("{VERSION}/999999?access_token={TOKEN}")).await;
    assert_eq!(error_code(&body), (100, Some(33)));

    let (_, body) = sim.get(&format!("v2.0/{FIRST_AD_SET}?access_token={TOKEN}")).await;
    assert_eq!(error_code(&body).0, 2635);
}

#[tokio::test]
async fn missing_or_wrong_tokens_get_190() {
    let sim = spawn_meta_sim(&[]).await;
    let (_, body) = sim.get(&format!("{VERSION}/{FIRST_AD_SET}")).await;
    assert_eq!(error_code(&body).0, 190);
    assert_eq!(body["error"]["type"], "OAuthException");
    let (_, body) = sim
        .get(&format!("{VERSION}/{FIRST_AD_SET}?access_token=not-a-token"))
        .await;
    assert_eq!(error_code(&body).0, 190);
    let (_, body) = sim
        .post_form(
            &format!("{VERSION}/{FIRST_AD_SET}"),
            &[("daily_budget", "20000"), ("access_token", "stolen")],
        )
        .await;
    assert_eq!(error_code(&body).0, 190);
    assert_eq!(sim.ad_set_budget(FIRST_AD_SET).await, 10000, "nothing changed");
}

#[tokio::test]
async fn a_budget_update_applies_and_is_recorded_in_the_history() {
    let sim = spawn_meta_sim(&[]).await;
    let (status, body) = sim.set_budget(FIRST_AD_SET, 25000).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    assert_eq!(sim.ad_set_budget(FIRST_AD_SET).await, 25000);

    let (_, state) = sim.get("_sim/state").await;
    let ad_set = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|object| object["id"] == FIRST_AD_SET)
        .unwrap();
    assert_eq!(ad_set["daily_budget"], 25000);
    assert_eq!(ad_set["history"][0]["field"], "daily_budget");
    assert_eq!(ad_set["history"][0]["old_value"], "10000");
    assert_eq!(ad_set["history"][0]["new_value"], "25000");
}

#[tokio::test]
async fn json_bodies_are_accepted_like_form_bodies() {
    let sim = spawn_meta_sim(&[]).await;
    let (status, _) = sim
        .post_json(
            &format!("{VERSION}/{FIRST_AD_SET}"),
            &json!({"daily_budget": 12345, "access_token": TOKEN}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(sim.ad_set_budget(FIRST_AD_SET).await, 12345);
}

#[tokio::test]
async fn validate_only_checks_without_applying() {
    let sim = spawn_meta_sim(&[]).await;
    let (status, body) = sim
        .post_form(
            &format!("{VERSION}/{FIRST_AD_SET}"),
            &[
                ("daily_budget", "30000"),
                ("execution_options", "[\"validate_only\"]"),
                ("access_token", TOKEN),
            ],
        )
        .await;
    assert_eq!((status, body["success"].clone()), (200, json!(true)));
    assert_eq!(sim.ad_set_budget(FIRST_AD_SET).await, 10000);

    let (_, body) = sim
        .post_form(
            &format!("{VERSION}/{FIRST_AD_SET}"),
            &[
                ("daily_budget", "5"),
                ("execution_options", "[\"validate_only\"]"),
                ("access_token", TOKEN),
            ],
        )
        .await;
    assert_eq!(
        error_code(&body),
        (100, Some(1_885_272)),
        "validation still rejects a budget below the minimum"
    );
}

#[tokio::test]
async fn budgets_below_the_account_minimum_and_malformed_budgets_are_rejected() {
    let sim = spawn_meta_sim(&[]).await;
    let (status, body) = sim.set_budget(FIRST_AD_SET, 50).await;
    assert_eq!((status, error_code(&body)), (400, (100, Some(1_885_272))));
    let (_, body) = sim
        .post_form(
            &format!("{VERSION}/{FIRST_AD_SET}"),
            &[("daily_budget", "12.50"), ("access_token", TOKEN)],
        )
        .await;
    assert_eq!(error_code(&body).0, 100);
    let (_, body) = sim
        .post_form(
            &format!("{VERSION}/{CAMPAIGN}"),
            &[("daily_budget", "50000"), ("access_token", TOKEN)],
        )
        .await;
    assert_eq!(
        error_code(&body).0,
        100,
        "ad set budgets are in use, the campaign has none"
    );
    assert_eq!(sim.ad_set_budget(FIRST_AD_SET).await, 10000);
}

#[tokio::test]
async fn a_fifth_budget_change_within_an_hour_is_refused_with_613_1487632() {
    let sim = spawn_meta_sim(&[]).await;
    for budget in [11000, 12000, 13000, 14000] {
        assert_eq!(sim.set_budget(FIRST_AD_SET, budget).await.0, 200);
    }
    let (status, body) = sim.set_budget(FIRST_AD_SET, 15000).await;
    assert_eq!((status, error_code(&body)), (400, (613, Some(1_487_632))));
    assert_eq!(sim.ad_set_budget(FIRST_AD_SET).await, 14000);
    // Re-sending the current value is not a change and is never refused.
    assert_eq!(sim.set_budget(FIRST_AD_SET, 14000).await.0, 200);
}

#[tokio::test]
async fn a_refused_budget_change_locks_the_ad_set_for_an_hour_from_the_refusal() {
    let sim = spawn_meta_sim(&[]).await;
    for budget in [11000, 12000, 13000, 14000] {
        assert_eq!(sim.set_budget(FIRST_AD_SET, budget).await.0, 200);
    }
    sim.advance_hours(0.5).await;
    let (_, body) = sim.set_budget(FIRST_AD_SET, 15000).await;
    assert_eq!(error_code(&body), (613, Some(1_487_632)), "{body}");
    // 1.1 h after the four changes they are out of the hour, but the lock from the refusal (0.5 h) holds.
    sim.advance_hours(0.6).await;
    let (_, body) = sim.set_budget(FIRST_AD_SET, 15000).await;
    assert_eq!(error_code(&body), (613, Some(1_487_632)), "{body}");
    assert!(
        body["error"]["error_user_msg"]
            .as_str()
            .unwrap()
            .contains("24 more minutes"),
        "{body}"
    );
    // Another ad set is not locked.
    assert_eq!(sim.set_budget("23851000000002", 15000).await.0, 200);
    sim.advance_hours(0.41).await;
    assert_eq!(
        sim.set_budget(FIRST_AD_SET, 15000).await.0,
        200,
        "the lock ends an hour after the refusal"
    );
    assert_eq!(sim.ad_set_budget(FIRST_AD_SET).await, 15000);
}

#[tokio::test]
async fn pausing_an_ad_set_stops_its_delivery_and_shows_in_the_ads_effective_status() {
    let sim = spawn_meta_sim(&[]).await;
    let (status, _) = sim
        .post_form(
            &format!("{VERSION}/{FIRST_AD_SET}"),
            &[("status", "PAUSED"), ("access_token", TOKEN)],
        )
        .await;
    assert_eq!(status, 200);
    let (_, ad) = sim
        .get(&format!(
            "{VERSION}/{FIRST_AD}?fields=status,effective_status&access_token={TOKEN}"
        ))
        .await;
    assert_eq!(
        (ad["status"].as_str(), ad["effective_status"].as_str()),
        (Some("ACTIVE"), Some("ADSET_PAUSED"))
    );

    sim.advance_hours(48.0).await;
    let (_, insights) = sim
        .get(&format!(
            "{VERSION}/{FIRST_AD_SET}/insights?fields=impressions&access_token={TOKEN}"
        ))
        .await;
    assert!(insights["data"].as_array().unwrap().is_empty(), "{insights}");

    let (_, campaign_rows) = sim
        .get(&format!(
            "{VERSION}/{CAMPAIGN}/insights?fields=impressions&level=adset&access_token={TOKEN}"
        ))
        .await;
    assert_eq!(
        campaign_rows["data"].as_array().unwrap().len(),
        9,
        "the other nine ad sets delivered"
    );

    let (_, body) = sim
        .post_form(
            &format!("{VERSION}/{FIRST_AD_SET}"),
            &[("status", "SLEEPING"), ("access_token", TOKEN)],
        )
        .await;
    assert_eq!(error_code(&body).0, 100);
}

#[tokio::test]
async fn budgets_drive_delivery_in_the_world() {
    let sim = spawn_meta_sim(&[]).await;
    sim.set_budget(FIRST_AD_SET, 100_000).await;
    sim.set_budget("23851000000002", 1_000).await;
    sim.advance_hours(24.0).await;
    let spend_of = |body: &serde_json::Value| body["data"][0]["spend"].as_str().unwrap().parse::<f64>().unwrap();
    let (_, rich) = sim
        .get(&format!(
            "{VERSION}/{FIRST_AD_SET}/insights?fields=spend&access_token={TOKEN}"
        ))
        .await;
    let (_, poor) = sim
        .get(&format!(
            "{VERSION}/23851000000002/insights?fields=spend&access_token={TOKEN}"
        ))
        .await;
    assert!(spend_of(&rich) > 800.0 && spend_of(&rich) <= 1250.0, "{rich}");
    assert!(spend_of(&poor) < 12.5, "{poor}");
}

#[tokio::test]
async fn paths_with_a_trailing_slash_are_served_as_the_sdks_send_them() {
    let sim = spawn_meta_sim(&[]).await;
    let (status, body) = sim
        .get(&format!("{VERSION}/{ACCOUNT}/?fields=currency&access_token={TOKEN}"))
        .await;
    assert_eq!((status, body["currency"].as_str()), (200, Some("USD")));
    let (status, _) = sim.get("no/such/path/at/all/").await;
    assert_eq!(status, 404);
}

/// Colombian pesos have cents in ISO 4217 but Meta budgets them in whole pesos (offset 1): meta-sim reads and
/// writes budgets in Meta's units, and the world spends what Meta would.
#[tokio::test]
async fn budgets_cross_the_graph_api_in_metas_units_for_the_currency() {
    let directory = tempfile::tempdir().unwrap();
    let scenario_path = directory.path().join("cop.toml");
    let usd_scenario = std::fs::read_to_string(format!(
        "{}/../../scenarios/stationary-10.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // 1,000,000.00 COP a day: 100,000 pesos per ad set, in ISO minor units (centavos).
    let cop_scenario = usd_scenario
        .replace("currency = \"USD\"", "currency = \"COP\"")
        .replace("total_daily_budget = 100000", "total_daily_budget = 100000000");
    std::fs::write(&scenario_path, cop_scenario).unwrap();
    let sim = spawn_meta_sim(&[("ADLOOP_WORLD__SCENARIO_PATH", scenario_path.to_str().unwrap())]).await;

    assert_eq!(
        sim.ad_set_budget(FIRST_AD_SET).await,
        100_000,
        "whole pesos, not centavos"
    );
    let (status, body) = sim.set_budget(FIRST_AD_SET, 150_000).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sim.ad_set_budget(FIRST_AD_SET).await, 150_000);
    let (_, state) = sim.get("_sim/state").await;
    let first_ad_set = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|object| object["id"] == FIRST_AD_SET)
        .unwrap()
        .clone();
    assert_eq!(
        first_ad_set["daily_budget"], 15_000_000,
        "the world holds ISO minor units: 150,000 pesos are 15,000,000 centavos"
    );
}

#[tokio::test]
async fn minimum_budgets_depend_on_the_currency_and_the_goal_and_a_too_low_budget_names_the_minimum() {
    let sim = spawn_meta_sim(&[]).await;
    let (status, body) = sim
        .get(&format!("{VERSION}/{ACCOUNT}/minimum_budgets?access_token={TOKEN}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"][0],
        json!({"currency": "USD", "min_daily_budget_imp": 100, "min_daily_budget_high_freq": 500,
               "min_daily_budget_low_freq": 4000, "min_daily_budget_video_views": 100})
    );
    // The simulated ad sets optimise for frequent events by default: at least 5.00 USD a day.
    let (_, body) = sim.set_budget(FIRST_AD_SET, 499).await;
    assert_eq!(error_code(&body), (100, Some(1_885_272)));
    assert_eq!(body["error"]["error_user_title"], "Budget Is Too Low");
    assert!(
        body["error"]["error_user_msg"]
            .as_str()
            .unwrap()
            .contains("at least $5.00"),
        "{body}"
    );
    assert_eq!(sim.set_budget(FIRST_AD_SET, 500).await.0, 200);

    let infrequent = spawn_meta_sim(&[("ADLOOP_GRAPH__AD_SET_BUDGET_GOAL", "low_frequency")]).await;
    let (_, body) = infrequent.set_budget(FIRST_AD_SET, 3999).await;
    assert_eq!(error_code(&body), (100, Some(1_885_272)), "{body}");
    assert_eq!(infrequent.set_budget(FIRST_AD_SET, 4000).await.0, 200);
}

async fn post_status(sim: &MetaSim, object_id: &str, status: &str) -> (u16, serde_json::Value) {
    sim.post_form(
        &format!("{VERSION}/{object_id}"),
        &[("status", status), ("access_token", TOKEN)],
    )
    .await
}

async fn effective_status(sim: &MetaSim, object_id: &str) -> serde_json::Value {
    let (_, object) = sim
        .get(&format!(
            "{VERSION}/{object_id}?fields=effective_status&access_token={TOKEN}"
        ))
        .await;
    object["effective_status"].clone()
}

#[tokio::test]
async fn an_archived_object_can_only_be_renamed_or_deleted_and_its_children_cannot_be_edited() {
    let sim = spawn_meta_sim(&[]).await;
    assert_eq!(post_status(&sim, FIRST_AD_SET, "ARCHIVED").await.0, 200);
    // The archived ad set refuses a budget or a return to ACTIVE, and takes a new name.
    let (_, body) = sim.set_budget(FIRST_AD_SET, 20000).await;
    assert_eq!(error_code(&body).0, 100);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("archived"),
        "{body}"
    );
    assert_eq!(error_code(&post_status(&sim, FIRST_AD_SET, "ACTIVE").await.1).0, 100);
    let (status, _) = sim
        .post_form(
            &format!("{VERSION}/{FIRST_AD_SET}"),
            &[("name", "retired"), ("access_token", TOKEN)],
        )
        .await;
    assert_eq!(status, 200);
    // Its ad reports the archive and refuses edits.
    assert_eq!(effective_status(&sim, FIRST_AD).await, "ARCHIVED");
    assert_eq!(error_code(&post_status(&sim, FIRST_AD, "PAUSED").await.1).0, 100);
    // Deleting the archived ad set is allowed; then its ad reports DELETED.
    assert_eq!(post_status(&sim, FIRST_AD_SET, "DELETED").await.0, 200);
    assert_eq!(effective_status(&sim, FIRST_AD).await, "DELETED");

    // A deleted campaign's ad sets report it too.
    assert_eq!(post_status(&sim, CAMPAIGN, "DELETED").await.0, 200);
    assert_eq!(effective_status(&sim, "23851000000002").await, "DELETED");
    let (_, body) = sim.set_budget("23851000000002", 20000).await;
    assert_eq!(error_code(&body).0, 100, "{body}");
}

#[tokio::test]
async fn an_account_lists_its_ads_a_page_at_a_time_without_archived_ones() {
    let sim = spawn_meta_sim(&[]).await;
    let list = |query: String| {
        let sim = &sim;
        async move {
            sim.get(&format!("{VERSION}/{ACCOUNT}/ads?{query}&access_token={TOKEN}"))
                .await
        }
    };
    let (status, first_page) = list("fields=id,adset_id,effective_status,created_time&limit=4".into()).await;
    assert_eq!(status, 200, "{first_page}");
    let rows = first_page["data"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["id"], FIRST_AD);
    assert_eq!(rows[0]["adset_id"], FIRST_AD_SET);
    assert_eq!(rows[0]["effective_status"], "ACTIVE");
    let created = rows[0]["created_time"].as_str().unwrap();
    assert!(created.ends_with("T00:00:00+0000"), "{created}");
    let after = first_page["paging"]["cursors"]["after"].as_str().unwrap();
    let (_, rest) = list(format!("fields=id&limit=100&after={after}")).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 6, "ten ads in all");
    assert!(rest["paging"].get("next").is_none(), "{rest}");

    sim.post_form(
        &format!("{VERSION}/{FIRST_AD}"),
        &[("status", "ARCHIVED"), ("access_token", TOKEN)],
    )
    .await;
    let (_, listed) = list("fields=id&limit=100".into()).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 9, "archived ads are left out");
    let (_, archived) = list("fields=id&effective_status=[\"ARCHIVED\"]".into()).await;
    assert_eq!(archived["data"][0]["id"], FIRST_AD, "{archived}");
    let (_, ad_sets) = sim
        .get(&format!(
            "{VERSION}/{ACCOUNT}/adsets?fields=daily_budget&limit=100&access_token={TOKEN}"
        ))
        .await;
    assert_eq!(ad_sets["data"].as_array().unwrap().len(), 10);
    assert_eq!(ad_sets["data"][0]["daily_budget"], "10000");
    let (status, refused) = list("effective_status=ACTIVE".into()).await;
    assert_eq!((status, error_code(&refused).0), (400, 100), "{refused}");
}

#[tokio::test]
async fn the_worlds_true_totals_match_insights_spend_and_count_conversions_not_yet_reported() {
    let sim = spawn_meta_sim(&[]).await;
    let (_, before) = sim.get("_sim/state").await;
    assert_eq!(before["world_totals"]["spend"], 0);
    sim.advance_hours(48.0).await;
    let (_, state) = sim.get("_sim/state").await;
    let totals = &state["world_totals"];
    let (_, insights) = sim
        .get(&format!(
            "{VERSION}/{ACCOUNT}/insights?fields=spend,action_values&date_preset=maximum&access_token={TOKEN}"
        ))
        .await;
    let reported_spend_cents = (insights["data"][0]["spend"].as_str().unwrap().parse::<f64>().unwrap() * 100.0).round();
    assert_eq!(
        totals["spend"].as_f64().unwrap(),
        reported_spend_cents,
        "{totals} {insights}"
    );
    let reported_value: f64 = insights["data"][0]["action_values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|action| action["action_type"] == "purchase")
        .map(|action| action["value"].as_str().unwrap().parse::<f64>().unwrap() * 100.0)
        .sum();
    let true_value = totals["conversion_value"].as_f64().unwrap();
    assert!(
        true_value > 0.0 && true_value >= reported_value.round(),
        "{totals} {insights}"
    );
}

#[tokio::test]
async fn an_ads_creative_features_come_as_its_ad_labels() {
    let scenario = format!("{}/../../scenarios/creative-signals.toml", env!("CARGO_MANIFEST_DIR"));
    let sim = spawn_meta_sim(&[("ADLOOP_WORLD__SCENARIO_PATH", scenario.as_str())]).await;
    // A week in, several creatives have launched.
    sim.advance_hours(24.0 * 7.0).await;
    let (status, ads) = sim
        .get(&format!(
            "{VERSION}/{ACCOUNT}/ads?fields=id,adlabels&limit=100&access_token={TOKEN}"
        ))
        .await;
    assert_eq!(status, 200, "{ads}");
    let label_names: Vec<String> = ads["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|ad| ad["adlabels"].as_array().cloned().unwrap_or_default())
        .map(|label| label["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!label_names.is_empty(), "{ads}");
    let known = [
        "feature:face_first_frame",
        "feature:price_in_copy",
        "feature:bold_hook",
        "feature:stock_footage",
    ];
    assert!(
        label_names.iter().all(|name| known.contains(&name.as_str())),
        "{label_names:?}"
    );
    // stationary-10's ads have no features, so no labels.
    let plain = spawn_meta_sim(&[]).await;
    let (_, ad) = plain
        .get(&format!("{VERSION}/{FIRST_AD}?fields=adlabels&access_token={TOKEN}"))
        .await;
    assert_eq!(ad["adlabels"], serde_json::json!([]));
}
