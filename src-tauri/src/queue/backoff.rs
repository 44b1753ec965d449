//! Retry delays: exponential backoff with full jitter, honouring `retry-after`.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            attempts: 3,
        }
    }
}

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
pub fn retry_after(headers: &axum::http::HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (date.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "12".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
