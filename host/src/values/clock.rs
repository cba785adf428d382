//! Time. The gateway reads the time from a [`Clock`] it is given, never from
//! the system directly: production runs on the system clock, and tests move
//! an adjustable clock forward instead of waiting for time to pass. Times are
//! milliseconds since the Unix epoch (`_ms`), shown as RFC 3339 in UTC.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

/// Where the time comes from: the system clock, or (for tests) the system
/// clock moved forward by however much `advance` added.
#[derive(Clone, Default)]
pub struct Clock {
    /// How far an adjustable clock runs ahead of the system clock, and the
    /// way sleepers learn that it moved. `None`: the system clock.
    ahead_ms: Option<Arc<watch::Sender<i64>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { ahead_ms: None }
    }

    /// A clock that runs with the system clock and that [`Clock::advance`]
    /// moves forward (tests).
    pub fn adjustable() -> Clock {
        Clock { ahead_ms: Some(Arc::new(watch::channel(0).0)) }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        let ahead_ms = self.ahead_ms.as_ref().map_or(0, |ahead| *ahead.borrow());
        system_now_ms().saturating_add(ahead_ms)
    }

    /// Moves an adjustable clock `ms` forward and wakes whoever sleeps on it.
    ///
    /// # Panics
    /// On the system clock, which no one may move.
    pub fn advance(&self, ms: i64) {
        let ahead = self.ahead_ms.as_ref().expect("only an adjustable clock can be moved");
        assert!(ms >= 0, "a clock only moves forward");
        ahead.send_modify(|ahead_ms| *ahead_ms = ahead_ms.saturating_add(ms));
    }

    /// Waits until `ms` have passed on this clock, counted from the call:
    /// as the system clock runs, or sooner when an adjustable clock is
    /// moved past the end.
    pub fn sleep_ms(&self, ms: u64) -> impl Future<Output = ()> + Send + 'static {
        let clock = self.clone();
        let until_ms = self.now_ms().saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
        let moved = self.ahead_ms.as_ref().map(|ahead| ahead.subscribe());
        async move {
            let Some(mut moved) = moved else {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                return;
            };
            loop {
                let left_ms = until_ms.saturating_sub(clock.now_ms());
                let Ok(left_ms) = u64::try_from(left_ms) else { return };
                if left_ms == 0 {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(left_ms)) => {}
                    // The sender lives as long as the clock: no error can come.
                    _ = moved.changed() => {}
                }
            }
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ahead_ms {
            None => f.write_str("Clock::system"),
            Some(ahead) => write!(f, "Clock::adjustable(+{} ms)", *ahead.borrow()),
        }
    }
}

/// The system clock, for what must not move with a test clock (ids).
pub fn system_now_ms() -> i64 {
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

/// A timestamp as the API shows it: RFC 3339 in UTC (see [`rfc3339`]).
pub fn serialize_rfc3339<S: serde::Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(*ms))
}

/// An optional timestamp as the API shows it: RFC 3339, or `null`.
pub fn serialize_rfc3339_opt<S: serde::Serializer>(ms: &Option<i64>, serializer: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => serializer.serialize_str(&rfc3339(*ms)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_778_315_400_120), "2026-05-09T08:30:00.120Z");
        assert_eq!(format_compact(1_778_315_400_000), "20260509083000");
    }

    #[tokio::test]
    async fn an_adjustable_clock_moves_forward_and_wakes_its_sleepers() {
        let clock = Clock::adjustable();
        let before = clock.now_ms();
        let sleeper = tokio::spawn(clock.sleep_ms(3_600_000));
        clock.advance(3_600_000);
        tokio::time::timeout(Duration::from_secs(30), sleeper).await.expect("woken by the move").unwrap();
        assert!(clock.now_ms() >= before + 3_600_000);
    }
}
