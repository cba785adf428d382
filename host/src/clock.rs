//! Wall-clock time for records and responses.

use time::OffsetDateTime;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).expect("the clock is within i64 milliseconds of 1970")
}

/// RFC 3339 in UTC with exactly three fraction digits, e.g.
/// `2026-05-09T08:30:00.120Z`: every timestamp the API returns has the same
/// width, so clients parsing by position or comparing as text do not trip.
pub fn rfc3339(ms: i64) -> String {
    let t = to_datetime(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `YYYYMMDDHHMMSS` in UTC, for references.
pub fn format_compact(ms: i64) -> String {
    let t = to_datetime(ms);
    format!("{:04}{:02}{:02}{:02}{:02}{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// `3 Dec 2026 14:05 UTC`, for messages people read.
pub fn format_for_people(ms: i64) -> String {
    let t = to_datetime(ms);
    let month = &t.month().to_string()[..3];
    format!("{} {month} {:04} {:02}:{:02} UTC", t.day(), t.year(), t.hour(), t.minute())
}

fn to_datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("stored times are milliseconds within OffsetDateTime's range")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::rfc3339(1_778_315_400_120), "2026-05-09T08:30:00.120Z");
        assert_eq!(super::format_compact(1_778_315_400_000), "20260509083000");
    }
}
