//! Numbers from outside — headers, answers, files, requests — made into waits and times,
//! clamped first: a `retry-after: 1e20` or a reset in the year 300000 must never panic a
//! task, and nothing the proxy schedules lies further ahead than [`LONGEST`].
//!
//! The bottom layer: imports nothing of the crate.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest wait, or the furthest time ahead, anything from outside can set.
pub const LONGEST: Duration = Duration::from_secs(400 * 24 * 3600);

/// `secs` seconds as a wait, at most [`LONGEST`]; `None` for a negative number or one
/// that is not a number at all.
pub fn secs(secs: f64) -> Option<Duration> {
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(secs.min(LONGEST.as_secs_f64())))
}

/// `now` plus `wait` (at most [`LONGEST`]).
pub fn after(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    let wait = chrono::Duration::from_std(wait.min(LONGEST)).unwrap_or_default();
    now.checked_add_signed(wait).unwrap_or(now)
}

/// Seconds since the epoch as a time, kept within [`LONGEST`] of `now` either way.
pub fn epoch(secs: f64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !secs.is_finite() {
        return None;
    }
    let span = LONGEST.as_secs_f64();
    let now_secs = now.timestamp() as f64;
    let secs = secs.clamp(now_secs - span, now_secs + span);
    DateTime::from_timestamp(secs as i64, 0)
}

/// A time from outside, kept within [`LONGEST`] of `now` either way.
pub fn time(at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let span = chrono::Duration::from_std(LONGEST).unwrap_or_default();
    match (now.checked_sub_signed(span), now.checked_add_signed(span)) {
        (Some(earliest), Some(latest)) => at.clamp(earliest, latest),
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_numbers_become_the_longest_wait_not_a_panic() {
        let now = Utc::now();
        assert_eq!(secs(1e20), Some(LONGEST));
        assert_eq!(secs(f64::INFINITY), Some(LONGEST));
        assert_eq!(secs(-1.0), None);
        assert_eq!(secs(f64::NAN), None);
        assert_eq!(secs(1.5), Some(Duration::from_millis(1500)));
        assert_eq!(after(now, Duration::MAX), after(now, LONGEST));
        assert!(epoch(1e300, now).unwrap() <= after(now, LONGEST));
        assert_eq!(epoch(f64::NAN, now), None);
        assert!(time(DateTime::<Utc>::MAX_UTC, now) <= after(now, LONGEST));
    }
}
