//! Calendar dates for insights and Graph object times: the shared calendar (`adloop_service_kit::calendar`)
//! and the Graph API's time format.

pub use adloop_service_kit::calendar::{CivilDate, civil_from_days, days_from_civil};

/// A Unix time as the Graph API writes object times (`created_time`): `2026-12-01T06:00:00+0000`.
pub fn graph_time(unix_seconds: i64) -> String {
    let date = civil_from_days(unix_seconds.div_euclid(86_400));
    let second_of_day = unix_seconds.rem_euclid(86_400);
    format!(
        "{date}T{:02}:{:02}:{:02}+0000",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_times_are_utc_with_metas_offset_suffix() {
        assert_eq!(graph_time(0), "1970-01-01T00:00:00+0000");
        assert_eq!(graph_time(1_796_103_723), "2026-12-01T05:42:03+0000");
    }
}
