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

async fn insights(sim: &MetaSim, object_id: &str, query: &str) -> (u16, serde_json::Value) {
    sim.get(&format!("{VERSION}/{object_id}/insights?{query}&access_token={TOKEN}"))
        .await
}

#[tokio::test]
async fn insights_page_with_cursors_and_a_next_link_until_the_last_page() {
    let sim = spawn_meta_sim(&[]).await;
    sim.advance_hours(24.0 * 3.0).await;
    let mut ad_ids = Vec::new();
    let mut query = "level=ad&fields=ad_id,impressions&date_preset=maximum&limit=4".to_owned();
    let mut pages = 0;
    loop {
        let (status, body) = insights(&sim, ACCOUNT, &query).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for row in body["data"].as_array().unwrap() {
            ad_ids.push(row["ad_id"].as_str().unwrap().to_owned());
        }
        let Some(next) = body["paging"]["next"].as_str() else {
            assert!(body["paging"]["cursors"]["after"].is_string(), "{body}");
            break;
        };
        assert!(next.starts_with("http://") && next.contains("after="), "{next}");
        let after = body["paging"]["cursors"]["after"].as_str().unwrap();
        query = format!("level=ad&fields=ad_id,impressions&date_preset=maximum&limit=4&after={after}");
    }
    assert_eq!(pages, 3, "10 ads in pages of 4");
    let mut distinct = ad_ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!((ad_ids.len(), distinct.len()), (10, 10), "every ad once: {ad_ids:?}");
    // The default page is 25 rows; a bad cursor is refused.
    let (_, body) = insights(&sim, ACCOUNT, "level=ad&date_preset=maximum").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 10);
    assert!(body["paging"].get("next").is_none());
    let (status, body) = insights(&sim, ACCOUNT, "level=ad&after=not-a-cursor").await;
    assert_eq!((status, error_code(&body).0), (400, 100));
}

#[tokio::test]
async fn date_presets_default_to_the_last_30_days_and_lifetime_is_refused() {
    let sim = spawn_meta_sim(&[]).await;
    // 2026-11-02 + 40 days = 2026-12-12 (today).
    sim.advance_hours(24.0 * 40.0 + 1.0).await;
    let range = |body: &serde_json::Value| {
        (
            body["data"][0]["date_start"].as_str().unwrap_or("").to_owned(),
            body["data"][0]["date_stop"].as_str().unwrap_or("").to_owned(),
        )
    };
    let fields = "fields=impressions,date_start,date_stop";
    let (_, body) = insights(&sim, FIRST_AD_SET, fields).await;
    assert_eq!(
        range(&body),
        ("2026-11-12".into(), "2026-12-11".into()),
        "last_30d by default: {body}"
    );
    for (preset, expected) in [
        ("last_28d", ("2026-11-14", "2026-12-11")),
        ("this_month", ("2026-12-01", "2026-12-12")),
        ("last_month", ("2026-11-02", "2026-11-30")),
        ("last_90d", ("2026-11-02", "2026-12-11")),
    ] {
        let (_, body) = insights(&sim, FIRST_AD_SET, &format!("{fields}&date_preset={preset}")).await;
        assert_eq!(range(&body), (expected.0.into(), expected.1.into()), "{preset}: {body}");
    }
    let (status, body) = insights(&sim, FIRST_AD_SET, "date_preset=lifetime").await;
    assert_eq!((status, error_code(&body).0), (400, 100));
    assert!(body["error"]["message"].as_str().unwrap().contains("maximum"), "{body}");
}

#[tokio::test]
async fn time_increments_split_rows_by_days_or_calendar_months() {
    let sim = spawn_meta_sim(&[]).await;
    sim.advance_hours(24.0 * 40.0 + 1.0).await;
    let rows_of = |body: &serde_json::Value| -> Vec<(String, String)> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row["date_start"].as_str().unwrap().to_owned(),
                    row["date_stop"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let time_range = r#"{"since":"2026-11-02","until":"2026-11-18"}"#;
    let (_, body) = insights(
        &sim,
        FIRST_AD_SET,
        &format!("fields=impressions&time_range={time_range}&time_increment=7"),
    )
    .await;
    assert_eq!(
        rows_of(&body),
        vec![
            ("2026-11-02".into(), "2026-11-08".into()),
            ("2026-11-09".into(), "2026-11-15".into()),
            ("2026-11-16".into(), "2026-11-18".into())
        ]
    );
    let (_, body) = insights(
        &sim,
        FIRST_AD_SET,
        "fields=impressions&date_preset=maximum&time_increment=monthly",
    )
    .await;
    assert_eq!(
        rows_of(&body),
        vec![
            ("2026-11-02".into(), "2026-11-30".into()),
            ("2026-12-01".into(), "2026-12-12".into())
        ]
    );
    let (status, _) = insights(&sim, FIRST_AD_SET, "time_increment=91").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn deleted_ads_leave_account_insights_unless_filtered_in() {
    let sim = spawn_meta_sim(&[]).await;
    sim.advance_hours(24.0 * 2.0).await;
    let (status, _) = sim
        .post_form(
            &format!("{VERSION}/{FIRST_AD}"),
            &[("status", "DELETED"), ("access_token", TOKEN)],
        )
        .await;
    assert_eq!(status, 200);
    let ads_in = |body: &serde_json::Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["ad_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let query = "level=ad&fields=ad_id,impressions&date_preset=maximum";
    let (_, body) = insights(&sim, ACCOUNT, query).await;
    assert_eq!(ads_in(&body).len(), 9, "{body}");
    assert!(!ads_in(&body).contains(&FIRST_AD.to_owned()));
    let filtering = r#"[{"field":"ad.effective_status","operator":"IN","value":["ACTIVE","DELETED"]}]"#;
    let (_, body) = insights(&sim, ACCOUNT, &format!("{query}&filtering={filtering}")).await;
    assert_eq!(ads_in(&body).len(), 10, "{body}");
    // The deleted ad's own insights still answer.
    let (_, body) = insights(&sim, FIRST_AD, "fields=impressions&date_preset=maximum").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_async_report_run_is_polled_until_complete_then_paged() {
    let sim = spawn_meta_sim(&[]).await;
    sim.advance_hours(24.0 * 3.0).await;
    let (status, body) = sim
        .post_form(
            &format!("{VERSION}/{ACCOUNT}/insights"),
            &[
                ("level", "ad"),
                ("fields", "ad_id,impressions"),
                ("date_preset", "maximum"),
                ("access_token", TOKEN),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let run_id = body["report_run_id"].as_str().unwrap().to_owned();

    // Before completion the rows are refused.
    let (status, _) = insights(&sim, &run_id, "limit=4").await;
    assert_eq!(status, 400);
    let mut statuses = Vec::new();
    loop {
        let (_, run) = sim.get(&format!("{VERSION}/{run_id}?access_token={TOKEN}")).await;
        statuses.push(run["async_status"].as_str().unwrap().to_owned());
        if run["async_status"] == "Job Completed" {
            assert_eq!(run["async_percent_completion"], 100);
            break;
        }
        assert!(statuses.len() < 10, "{statuses:?}");
    }
    assert_eq!(statuses, ["Job Not Started", "Job Running", "Job Completed"]);

    let (_, first_page) = insights(&sim, &run_id, "limit=4").await;
    assert_eq!(first_page["data"].as_array().unwrap().len(), 4);
    let after = first_page["paging"]["cursors"]["after"].as_str().unwrap();
    let (_, second_page) = insights(&sim, &run_id, &format!("limit=100&after={after}")).await;
    assert_eq!(second_page["data"].as_array().unwrap().len(), 6, "the other six ads");
}

#[tokio::test]
async fn attribution_windows_give_each_action_a_value_per_window() {
    let sim = spawn_meta_sim(&[]).await;
    sim.advance_hours(24.0 * 6.0).await;
    let (status, body) = insights(
        &sim,
        ACCOUNT,
        r#"fields=actions&date_preset=maximum&action_attribution_windows=["7d_click","1d_view"]&action_report_time=conversion"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let purchase = body["data"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|action| action["action_type"] == "offsite_conversion.fb_pixel_purchase")
        .unwrap()
        .clone();
    assert_eq!(purchase["7d_click"], purchase["value"], "{purchase}");
    assert_eq!(
        purchase["1d_view"], "0",
        "the simulated world has no view-through conversions"
    );
    let (status, _) = insights(&sim, ACCOUNT, "fields=actions&action_attribution_windows=3d_click").await;
    assert_eq!(status, 400);
    let (status, _) = insights(&sim, ACCOUNT, "fields=actions&action_report_time=whenever").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_synchronous_page_too_large_is_refused_as_meta_refuses_it_and_a_smaller_page_passes() {
    let sim = spawn_meta_sim(&[("ADLOOP_GRAPH__INSIGHTS_MAX_ROWS_PER_PAGE", "20")]).await;
    sim.advance_hours(24.0 * 3.0).await;
    // Ten ads by day over three days: 30 rows.
    let by_day = "level=ad&fields=ad_id,impressions,spend&date_preset=maximum&time_increment=1";
    let (status, body) = insights(&sim, ACCOUNT, &format!("{by_day}&limit=100")).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], 1, "{body}");
    assert_eq!(
        body["error"]["message"],
        "Please reduce the amount of data you're asking for, then retry your request"
    );
    let (status, body) = insights(&sim, ACCOUNT, &format!("{by_day}&limit=15")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 15);
    // The ten ads' lifetimes fit in one page.
    let (status, _) = insights(&sim, ACCOUNT, "level=ad&fields=ad_id&date_preset=maximum&limit=100").await;
    assert_eq!(status, 200);
}
