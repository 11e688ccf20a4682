use adloop_money::MinorUnits;
use campaign_sim::{Scenario, World};

const LATE_REPORTING_SCENARIO: &str = r#"
name = "late"
currency = "USD"
days = 10
decision_interval_hours = 6
total_daily_budget = 100000

[conversion_delay]
components = [{ share = 1.0, min_hours = 48.0, max_hours = 72.0 }]

[[ads]]
name = "converter"
ctr = 0.05
conversion_rate = 0.2
value_per_conversion = 5000
cpm = 1000
"#;

#[test]
fn conversions_are_invisible_until_their_reporting_lag_has_passed() {
    let scenario = Scenario::from_toml(LATE_REPORTING_SCENARIO).unwrap();
    let mut world = World::new(&scenario, 11);
    let mut conversions_happened = 0;
    // 48 hours: plenty of conversions happen, none may be reported yet.
    for _ in 0..8 {
        conversions_happened += world.advance().conversions;
        assert_eq!(
            world.observation().ads[0].conversions,
            0,
            "reported at hour {}",
            world.hour()
        );
        assert_eq!(world.observation().ads[0].conversion_value, MinorUnits::ZERO);
    }
    assert!(conversions_happened > 100, "{conversions_happened}");
    // By hour 48 + 72 + 6, every conversion from the first 48 hours has arrived.
    for _ in 0..13 {
        world.advance();
    }
    assert!(world.observation().ads[0].conversions >= conversions_happened);
}

#[test]
fn reported_conversions_never_exceed_those_that_happened() {
    let scenario = crate::load_scenario("delayed-conversions");
    let mut world = World::new(&scenario, 5);
    let mut happened_conversions = 0;
    let mut happened_value = MinorUnits::ZERO;
    for _ in 0..(30 * 4) {
        let outcome = world.advance();
        happened_conversions += outcome.conversions;
        happened_value += outcome.conversion_value;
        let reported_conversions: u64 = world.observation().ads.iter().map(|ad| ad.conversions).sum();
        let reported_value: MinorUnits = world.observation().ads.iter().map(|ad| ad.conversion_value).sum();
        assert!(reported_conversions <= happened_conversions);
        assert!(reported_value <= happened_value);
    }
    let reported_conversions: u64 = world.observation().ads.iter().map(|ad| ad.conversions).sum();
    assert!(
        reported_conversions < happened_conversions,
        "with a 7-day tail some conversions are still unreported at the end"
    );
}

#[test]
fn the_trailing_windows_credit_conversions_to_their_clicks_not_to_the_report() {
    // Every conversion is reported 100–110 h after its click: longer than the 72-hour window, so the window
    // (the clicks of the last 72 hours and their conversions reported so far) never holds one, although the
    // lifetime counters fill up. Credited by report time, the window would hold the late arrivals. The 7-day
    // window holds the conversions of its clicks older than 110 hours.
    let scenario_text = LATE_REPORTING_SCENARIO.replace(
        "min_hours = 48.0, max_hours = 72.0",
        "min_hours = 100.0, max_hours = 110.0",
    );
    let scenario = Scenario::from_toml(&scenario_text).unwrap();
    let mut world = World::new(&scenario, 11);
    for _ in 0..(10 * 4) {
        world.advance();
        let ad = &world.observation().ads[0];
        assert_eq!(ad.last_72_hours.conversions, 0, "at hour {}", world.hour());
        assert!(ad.last_72_hours.clicks > 0);
    }
    let ad = &world.observation().ads[0];
    assert!(ad.conversions > 100, "lifetime conversions are reported");
    let (week, three_days) = (&ad.last_7_days, &ad.last_72_hours);
    assert!(week.conversions > 0 && week.conversions < ad.conversions, "{week:?}");
    assert!(
        week.impressions > 2 * three_days.impressions && week.impressions < ad.impressions,
        "seven days of delivery out of ten: {week:?} {three_days:?}"
    );
}

#[test]
fn daily_insights_credit_conversions_to_their_day_and_grow_as_reports_arrive() {
    let scenario = Scenario::from_toml(LATE_REPORTING_SCENARIO).unwrap();
    let mut world = World::new(&scenario, 11);
    let day_zero_conversions = |world: &World| {
        world.observation().ads[0]
            .daily
            .iter()
            .find(|insights| insights.day == 0)
            .map(|insights| insights.conversions)
    };
    // Day 0's clicks are in, its conversions (48–72 h late) are not.
    for _ in 0..4 {
        world.advance();
    }
    assert_eq!(day_zero_conversions(&world), Some(0));
    let mut counts = Vec::new();
    for _ in 0..16 {
        world.advance();
        counts.push(day_zero_conversions(&world).unwrap());
    }
    assert!(counts.windows(2).all(|pair| pair[0] <= pair[1]), "{counts:?}");
    assert!(counts[0] < *counts.last().unwrap(), "{counts:?}");
    let observed = &world.observation().ads[0];
    // Every reported conversion sits on a day within the window (10 days < four weeks).
    let by_day: u64 = observed.daily.iter().map(|insights| insights.conversions).sum();
    assert_eq!(by_day, observed.conversions);
    let clicks_by_day: u64 = observed.daily.iter().map(|insights| insights.clicks).sum();
    assert_eq!(clicks_by_day, observed.clicks);
}

#[test]
fn the_late_reporting_worlds_schedule_is_learned_from_its_observations() {
    let path = format!("{}/../../scenarios/late-reporting.toml", env!("CARGO_MANIFEST_DIR"));
    let scenario = Scenario::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    let truth = scenario.conversion_delay.as_reporting_delay();
    let config = adloop_allocator::AllocatorConfig::default();
    let mut world = World::new(&scenario, 3);
    let mut estimates = campaign_sim::policy::AccountDelayEstimates::default();
    for _ in 0..30 {
        world.advance();
        estimates.record(world.observation());
    }
    let schedules = estimates.schedules(&config);
    let learned = schedules.values().next().unwrap();
    for age_hours in [24.0, 48.0, 96.0, 168.0, 240.0, 336.0] {
        let (estimated, true_share) = (learned.reported_share_at(age_hours), truth.reported_share_at(age_hours));
        assert!(
            (estimated - true_share).abs() < 0.05,
            "at {age_hours} h: learned {estimated:.3}, true {true_share:.3}"
        );
    }
    assert!(
        (config.reporting_delay.reported_share_at(168.0) - truth.reported_share_at(168.0)).abs() > 0.4,
        "the default schedule is far from this world's"
    );
}
