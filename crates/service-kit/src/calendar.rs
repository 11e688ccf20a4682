//! Calendar dates (`YYYY-MM-DD`) without a date library: days since 1970-01-01 ↔ civil dates in the proleptic
//! Gregorian calendar (the usual era-based algorithm). meta-sim's insights, the gateway's reading of Graph
//! object times and the relay's date checks share it.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CivilDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

pub fn days_from_civil(date: CivilDate) -> i64 {
    let year = i64::from(date.year) - i64::from(date.month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(date.month);
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(date.day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

pub fn civil_from_days(days_since_epoch: i64) -> CivilDate {
    let shifted = days_since_epoch + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    CivilDate {
        year: year as i32,
        month,
        day,
    }
}

impl CivilDate {
    /// Parses `YYYY-MM-DD`, rejecting impossible dates.
    pub fn parse(text: &str) -> Option<CivilDate> {
        let mut parts = text.split('-');
        let year: i32 = parts.next()?.parse().ok()?;
        let month: u32 = parts.next()?.parse().ok()?;
        let day: u32 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || text.len() != 10 {
            return None;
        }
        let date = CivilDate { year, month, day };
        (civil_from_days(days_from_civil(date)) == date).then_some(date)
    }

    pub fn plus_days(self, days: i64) -> CivilDate {
        civil_from_days(days_from_civil(self) + days)
    }

    pub fn days_since(self, earlier: CivilDate) -> i64 {
        days_from_civil(self) - days_from_civil(earlier)
    }
}

impl std::fmt::Display for CivilDate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_leap_years_and_the_epoch() {
        assert_eq!(
            days_from_civil(CivilDate {
                year: 1970,
                month: 1,
                day: 1
            }),
            0
        );
        assert_eq!(
            CivilDate::parse("2024-02-29").unwrap().plus_days(1).to_string(),
            "2024-03-01"
        );
        assert_eq!(
            CivilDate::parse("2026-12-31").unwrap().plus_days(1).to_string(),
            "2027-01-01"
        );
        assert!(CivilDate::parse("2026-02-29").is_none());
        assert!(CivilDate::parse("2026-1-05").is_none());
        for days in -1000..100_000 {
            assert_eq!(days_from_civil(civil_from_days(days)), days);
        }
    }
}
