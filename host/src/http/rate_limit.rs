//! Per-key rate limits: each API key may make `[rate_limits]` requests a
//! minute (300 for live keys, 10 for test keys by default, as the API
//! promises), with bursts up to that many. Past it, `429
//! RATE_LIMIT_EXCEEDED` with `Retry-After`.
//!
//! The rule is GCRA (a token bucket kept as one number per key): each
//! request pushes the key's "theoretical arrival time" one interval
//! (`60 s / limit`) further; a request is refused while that time is more
//! than a minute's worth of burst ahead of now. Time is counted in
//! `1 / limit` milliseconds, so every limit is exact in integers.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::RateLimitSettings;
use crate::values::mode::Mode;

/// Keys tracked before idle ones are forgotten (an idle key's entry says
/// nothing an absent one does not).
const TRACKED_KEYS_MAX: usize = 100_000;
const MINUTE_MS: i128 = 60_000;

pub struct RateLimiter {
    settings: RateLimitSettings,
    /// Theoretical arrival time per key id, in `1 / limit` milliseconds.
    arrival_by_key: Mutex<HashMap<String, i128>>,
}

/// A refusal: how long to wait before the next request is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub per_minute: u32,
    pub retry_after_s: u64,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> RateLimiter {
        RateLimiter { settings, arrival_by_key: Mutex::default() }
    }

    /// Counts one request by `key_id` (of `mode`) at `now_ms`, or refuses it.
    pub fn check(&self, key_id: &str, mode: Mode, now_ms: i64) -> Result<(), Limited> {
        let per_minute = match mode {
            Mode::Live => self.settings.live_per_minute,
            Mode::Test => self.settings.test_per_minute,
        };
        if per_minute == 0 {
            return Ok(());
        }
        let limit = i128::from(per_minute);
        let now = i128::from(now_ms) * limit;
        // One request's worth of time, and how far ahead the bucket may run.
        let interval = MINUTE_MS;
        let burst = MINUTE_MS * (limit - 1);
        let mut arrivals = self.arrival_by_key.lock().expect("the rate limiter's lock is never held across a panic");
        let arrival = arrivals.get(key_id).copied().unwrap_or(now).max(now);
        let wait = arrival - burst - now;
        if wait > 0 {
            // `wait` is in 1/limit ms: whole seconds, rounded up.
            let wait_ms = (wait + limit - 1) / limit;
            let retry_after_s = u64::try_from((wait_ms + 999) / 1_000).unwrap_or(u64::MAX).max(1);
            return Err(Limited { per_minute, retry_after_s });
        }
        if arrivals.len() >= TRACKED_KEYS_MAX && !arrivals.contains_key(key_id) {
            arrivals.retain(|_, at| *at > now);
        }
        arrivals.insert(key_id.to_string(), arrival + interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(test_per_minute: u32) -> RateLimiter {
        RateLimiter::new(RateLimitSettings { live_per_minute: 300, test_per_minute })
    }

    #[test]
    fn a_burst_of_the_limit_passes_then_one_request_per_interval() {
        let limiter = limiter(10);
        for _ in 0..10 {
            assert_eq!(limiter.check("k", Mode::Test, 1_000_000), Ok(()));
        }
        let refused = limiter.check("k", Mode::Test, 1_000_000).unwrap_err();
        assert_eq!(refused, Limited { per_minute: 10, retry_after_s: 6 });
        // Another key is counted on its own.
        assert_eq!(limiter.check("other", Mode::Test, 1_000_000), Ok(()));
        // One interval (6 s) later, exactly one more.
        assert_eq!(limiter.check("k", Mode::Test, 1_005_999).unwrap_err().retry_after_s, 1);
        assert_eq!(limiter.check("k", Mode::Test, 1_006_000), Ok(()));
        assert!(limiter.check("k", Mode::Test, 1_006_000).is_err());
        // After a quiet minute the whole burst is back.
        for _ in 0..10 {
            assert_eq!(limiter.check("k", Mode::Test, 1_200_000), Ok(()));
        }
    }

    #[test]
    fn refusals_do_not_push_the_wait_further() {
        let limiter = limiter(1);
        assert_eq!(limiter.check("k", Mode::Test, 0), Ok(()));
        for _ in 0..100 {
            assert_eq!(limiter.check("k", Mode::Test, 30_000).unwrap_err().retry_after_s, 30);
        }
        assert_eq!(limiter.check("k", Mode::Test, 60_000), Ok(()));
    }

    #[test]
    fn limits_that_do_not_divide_a_minute_stay_exact() {
        // 7 a minute: over ten minutes exactly 70 (+ the first burst of 7).
        let limiter = limiter(7);
        let mut accepted = 0;
        for ms in (0..=600_000).step_by(100) {
            while limiter.check("k", Mode::Test, ms).is_ok() {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 7 + 70);
    }

    #[test]
    fn zero_means_no_limit_and_modes_have_their_own() {
        let limiter = RateLimiter::new(RateLimitSettings { live_per_minute: 0, test_per_minute: 1 });
        for _ in 0..1_000 {
            assert_eq!(limiter.check("live", Mode::Live, 0), Ok(()));
        }
        assert_eq!(limiter.check("test", Mode::Test, 0), Ok(()));
        assert!(limiter.check("test", Mode::Test, 0).is_err());
    }
}
