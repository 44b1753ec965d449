//! Retry delays: exponential backoff with full jitter, honouring `retry-after`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Backoff;

impl Backoff {
    /// The wait before retry number `retry` (1 = first retry): a random time up to
    /// `min(cap, base * 2^(retry-1))` ("full jitter"), but never less than the upstream's
    /// `retry-after`. `unit` is a random number in [0, 1).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.cap);
        let jittered = exp.mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(after) => jittered.max(after),
            None => jittered,
        }
    }
}

/// A random number in [0, 1) for jitter.
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// `retry-after` in seconds (or an HTTP date) from response headers.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return crate::bounded::secs(secs);
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let now = chrono::Utc::now();
    (crate::bounded::time(date.with_timezone(&chrono::Utc), now) - now)
        .to_std()
        .ok()
}

/// When to retry a job after its `attempt`-th failure, or `None` when it has had all its
/// attempts. `now` and `unit` (jitter) are parameters so this is tested without waiting.
pub fn retry_at(
    backoff: &Backoff,
    attempts_allowed: u32,
    attempt: u32,
    retry_after: Option<Duration>,
    now: DateTime<Utc>,
    unit: f64,
) -> Option<DateTime<Utc>> {
    if attempt >= attempts_allowed {
        return None;
    }
    let delay = backoff.delay(attempt, retry_after, unit);
    Some(crate::bounded::after(now, delay))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn exponential_capped_jittered_and_retry_after_wins() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
            attempts: 5,
        };
        // The ceiling doubles, then caps.
        assert_eq!(
            b.delay(1, None, 0.999_999),
            Duration::from_nanos(99_999_900)
        );
        assert_eq!(b.delay(3, None, 0.5), Duration::from_millis(200));
        assert_eq!(b.delay(10, None, 0.5), Duration::from_millis(500));
        // Full jitter: anywhere from zero.
        assert_eq!(b.delay(4, None, 0.0), Duration::ZERO);
        // retry-after is a floor.
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(7)), 0.3),
            Duration::from_secs(7)
        );
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn retry_after_headers() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "12".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retries_honour_retry_after_and_stop_after_the_last_attempt() {
        let now = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
        let backoff = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            attempts: 3,
        };
        let at = retry_at(&backoff, 5, 1, Some(Duration::from_secs(30)), now, 0.1).unwrap();
        assert_eq!((at - now).num_seconds(), 30, "retry-after is a floor");
        let at = retry_at(&backoff, 5, 3, None, now, 0.5).unwrap();
        assert_eq!((at - now).num_milliseconds(), 2000, "half of 1s * 2^2");
        assert_eq!(retry_at(&backoff, 5, 5, None, now, 0.5), None);
    }
}
