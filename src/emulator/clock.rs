//! Dropbox timestamps (`%Y-%m-%dT%H:%M:%SZ`, UTC, no fractional seconds) without a date crate.
//!
//! The civil-date conversions are Howard Hinnant's `days_from_civil` / `civil_from_days`
//! algorithms, exact over the whole proleptic Gregorian calendar.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now. A clock set before 1970 reads as the epoch.
pub fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

/// Formats seconds since the epoch the way Dropbox writes `server_modified`.
pub fn format_timestamp(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// Parses a Dropbox timestamp; anything else (fractions, offsets, out-of-range fields) is `None`.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'Z';
    if !shape_ok {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let field = text.get(range)?;
        if field.bytes().all(|b| b.is_ascii_digit()) { field.parse().ok() } else { None }
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let days = days_from_civil(year, month, day);
    let valid = (1..=12).contains(&month)
        && day >= 1
        && civil_from_days(days) == (year, month, day)
        && hour < 24
        && minute < 60
        && second < 60;
    valid.then_some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_and_dropbox_example_format_as_dropbox_writes_them() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(1_431_445_838), "2015-05-12T15:50:38Z");
        assert_eq!(format_timestamp(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn timestamps_round_trip_and_malformed_ones_are_refused() {
        for seconds in [0, 1_431_445_838, 951_782_400, 4_102_444_799, 1_798_761_599] {
            assert_eq!(parse_timestamp(&format_timestamp(seconds)), Some(seconds));
        }
        for bad in [
            "2015-05-12T15:50:38.5Z",
            "2015-05-12 15:50:38Z",
            "2015-02-30T00:00:00Z",
            "2015-13-01T00:00:00Z",
            "2015-05-12T24:00:00Z",
            "2015-05-12T15:50:38+00:00",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }
}
