use crate::helpers::*;

#[tokio::test]
async fn daily_insights_report_delivery_and_conversions_per_day_like_meta() {
    let sim = spawn_meta_sim(&[]).await;
    sim.advance_hours(24.0 * 5.0).await;
    let time_range = r#"{"since":"2026-11-02","until":"2026-11-04"}"#;
    let (status, body) = sim
        .get(&format!(
            "{VERSION}/{FIRST_AD_SET}/insights?fields=impressions,clicks,spend,ctr,frequency,actions,action_values\
             &time_range={time_range}&time_increment=1&access_token={TOKEN}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let rows = body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{body}");
    assert_eq!(rows[0]["date_start"], "2026-11-02");
    assert_eq!(rows[2]["date_stop"], "2026-11-04");
    for row in rows {
        let impressions: u64 = row["impressions"].as_str().unwrap().parse().unwrap();
        let clicks: u64 = row["clicks"].as_str().unwrap().parse().unwrap();
        assert!(impressions > 5_000 && clicks > 0 && clicks < impressions, "{row}");
        let spend: f64 = row["spend"].as_str().unwrap().parse().unwrap();
        assert!(
            spend > 50.0 && spend <= 125.0,
            "about 100.00 USD a day, at most 25% over: {row}"
        );
        assert!(row["ctr"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);
        assert!(row["frequency"].as_str().unwrap().parse::<f64>().unwrap() >= 1.0);
    }
    let purchases: u64 = rows
        .iter()
        .filter_map(|row| row["actions"].as_array())
        .flatten()
        .filter(|action| action["action_type"] == "offsite_conversion.fb_pixel_purchase")
        .map(|action| action["value"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(
        purchases > 0,
        "conversions reported by day 5 are credited to their days: {body}"
    );
}

#[tokio::test]
async fn late_conversions_appear_in_past_days_as_they_are_reported() {
    let sim = spawn_meta_sim(&[]).await;
    let first_day = r#"{"since":"2026-11-02","until":"2026-11-02"}"#;
    let purchases_on_first_day = |body: serde_json::Value| -> u64 {
        body["data"][0]["actions"]
            .as_array()
            .map(|actions| actions[0]["value"].as_str().unwrap().parse().unwrap())
            .unwrap_or(0)
    };
    let query = format!("{VERSION}/{CAMPAIGN}/insights?fields=actions&time_range={first_day}&access_token={TOKEN}");
    sim.advance_hours(24.0).await;
    let reported_after_one_day = purchases_on_first_day(sim.get(&query).await.1);
    sim.advance_hours(24.0 * 7.0).await;
    let reported_after_eight_days = purchases_on_first_day(sim.get(&query).await.1);
    assert!(
        reported_after_eight_days > reported_after_one_day,
        "{reported_after_one_day} then {reported_after_eight_days}"
    );
}

#[tokio::test]
async fn account_insights_break_down_by_level_and_reject_unknown_fields() {
    let sim = spawn_meta_sim(&[]).await;
    sim.advance_hours(24.0).await;
    let (_, body) = sim
        .get(&format!(
            "{VERSION}/{ACCOUNT}/insights?fields=adset_id,spend&level=adset&access_token={TOKEN}"
        ))
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 10, "{body}");
    assert!(body["data"][0]["adset_id"].as_str().is_some());

    let (status, body) = sim
        .get(&format!(
            "{VERSION}/{ACCOUNT}/insights?fields=spend,roas_magic&access_token={TOKEN}"
        ))
        .await;
    assert_eq!((status, error_code(&body).0), (400, 100));
    let (_, body) = sim
        .get(&format!(
            "{VERSION}/{ACCOUNT}/insights?time_range=yesterday&access_token={TOKEN}"
        ))
        .await;
    assert_eq!(error_code(&body).0, 100);
}
