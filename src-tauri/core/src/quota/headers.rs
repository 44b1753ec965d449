//! Quota readings from the rate-limit headers on Anthropic's responses: free, exact, and
//! fresh with every request that passes through the proxy.
//!
//! Two families: the subscription `anthropic-ratelimit-unified-*` headers (5h and 7d
//! utilization as 0–1 fractions) and the API-key `anthropic-ratelimit-*-{limit,remaining,
//! reset}` headers. Malformed values are skipped, never trusted.

use chrono::{DateTime, TimeZone, Utc};
use http::HeaderMap;

use super::{Reading, Window};

/// What one response's headers say.
#[derive(Debug, Default, PartialEq)]
pub struct HeaderReport {
    pub readings: Vec<Reading>,
    /// `anthropic-ratelimit-unified-status`: `allowed`, `allowed_warning` or `rejected`.
    pub unified_status: Option<String>,
    /// `anthropic-ratelimit-unified-representative-claim`, e.g. `five_hour`.
    pub representative_claim: Option<String>,
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn number(headers: &HeaderMap, name: &str) -> Option<f64> {
    text(headers, name)?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

fn epoch(headers: &HeaderMap, name: &str) -> Option<DateTime<Utc>> {
    let secs = text(headers, name)?.parse::<i64>().ok()?;
    Utc.timestamp_opt(secs, 0).single()
}

fn rfc3339(headers: &HeaderMap, name: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text(headers, name)?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn parse(headers: &HeaderMap) -> HeaderReport {
    let mut report = HeaderReport {
        unified_status: text(headers, "anthropic-ratelimit-unified-status").map(str::to_owned),
        representative_claim: text(headers, "anthropic-ratelimit-unified-representative-claim")
            .map(str::to_owned),
        ..HeaderReport::default()
    };
    for (window, key) in [(Window::FiveHour, "5h"), (Window::SevenDay, "7d")] {
        let utilization = number(
            headers,
            &format!("anthropic-ratelimit-unified-{key}-utilization"),
        );
        if let Some(fraction) = utilization {
            report.readings.push(Reading {
                window,
                percent: fraction * 100.0,
                resets_at: epoch(headers, &format!("anthropic-ratelimit-unified-{key}-reset")),
            });
        }
    }
    if let Some(reading) = api_key_reading(headers) {
        report.readings.push(reading);
    }
    report
}

/// The API-key limit closest to exhaustion: percent used = 1 − remaining/limit.
fn api_key_reading(headers: &HeaderMap) -> Option<Reading> {
    ["requests", "tokens", "input-tokens", "output-tokens"]
        .into_iter()
        .filter_map(|kind| {
            let limit = number(headers, &format!("anthropic-ratelimit-{kind}-limit"))?;
            let remaining = number(headers, &format!("anthropic-ratelimit-{kind}-remaining"))?;
            if limit <= 0.0 {
                return None;
            }
            Some(Reading {
                window: Window::ApiKey,
                percent: ((1.0 - remaining / limit) * 100.0).clamp(0.0, 100.0),
                resets_at: rfc3339(headers, &format!("anthropic-ratelimit-{kind}-reset")),
            })
        })
        .max_by(|a, b| a.percent.total_cmp(&b.percent))
}

/// Until when a 429 holds: `retry-after`, else the unified reset, else the latest reset of
/// an exhausted API-key limit, else a minute.
pub fn rate_limited_until(headers: &HeaderMap, now: DateTime<Utc>) -> DateTime<Utc> {
    if let Some(value) = text(headers, "retry-after") {
        if let Ok(secs) = value.parse::<f64>() {
            if secs.is_finite() && secs >= 0.0 {
                return now + chrono::Duration::milliseconds((secs * 1000.0) as i64);
            }
        }
        if let Ok(date) = DateTime::parse_from_rfc2822(value) {
            return date.with_timezone(&Utc);
        }
    }
    if let Some(reset) = epoch(headers, "anthropic-ratelimit-unified-reset") {
        return reset;
    }
    let exhausted_reset = ["requests", "tokens", "input-tokens", "output-tokens"]
        .into_iter()
        .filter(|kind| {
            number(headers, &format!("anthropic-ratelimit-{kind}-remaining")) == Some(0.0)
        })
        .filter_map(|kind| rfc3339(headers, &format!("anthropic-ratelimit-{kind}-reset")))
        .max();
    exhausted_reset.unwrap_or(now + chrono::Duration::seconds(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    /// As captured from a Max subscription's response.
    const UNIFIED: &[(&str, &str)] = &[
        ("anthropic-ratelimit-unified-status", "allowed_warning"),
        ("anthropic-ratelimit-unified-reset", "1764100800"),
        (
            "anthropic-ratelimit-unified-representative-claim",
            "five_hour",
        ),
        ("anthropic-ratelimit-unified-5h-status", "allowed_warning"),
        ("anthropic-ratelimit-unified-5h-utilization", "0.91"),
        ("anthropic-ratelimit-unified-5h-reset", "1764100800"),
        ("anthropic-ratelimit-unified-7d-status", "allowed"),
        ("anthropic-ratelimit-unified-7d-utilization", "0.37"),
        ("anthropic-ratelimit-unified-7d-reset", "1764547200"),
        ("anthropic-ratelimit-unified-fallback-percentage", "0.5"),
    ];

    /// As documented for API keys.
    const API_KEY: &[(&str, &str)] = &[
        ("anthropic-ratelimit-requests-limit", "4000"),
        ("anthropic-ratelimit-requests-remaining", "3999"),
        ("anthropic-ratelimit-requests-reset", "2026-11-25T18:00:01Z"),
        ("anthropic-ratelimit-input-tokens-limit", "400000"),
        ("anthropic-ratelimit-input-tokens-remaining", "100000"),
        (
            "anthropic-ratelimit-input-tokens-reset",
            "2026-11-25T18:00:30Z",
        ),
        ("anthropic-ratelimit-output-tokens-limit", "80000"),
        ("anthropic-ratelimit-output-tokens-remaining", "80000"),
        (
            "anthropic-ratelimit-output-tokens-reset",
            "2026-11-25T18:00:00Z",
        ),
    ];

    #[test]
    fn unified_headers_give_both_windows() {
        let report = parse(&headers(UNIFIED));
        assert_eq!(report.unified_status.as_deref(), Some("allowed_warning"));
        assert_eq!(report.representative_claim.as_deref(), Some("five_hour"));
        assert_eq!(report.readings.len(), 2);
        assert_eq!(report.readings[0].window, Window::FiveHour);
        assert!((report.readings[0].percent - 91.0).abs() < 1e-9);
        assert_eq!(
            report.readings[0].resets_at.unwrap().timestamp(),
            1764100800
        );
        assert_eq!(report.readings[1].window, Window::SevenDay);
        assert!((report.readings[1].percent - 37.0).abs() < 1e-9);
    }

    #[test]
    fn api_key_headers_give_the_worst_limit() {
        let report = parse(&headers(API_KEY));
        assert_eq!(report.readings.len(), 1);
        let reading = &report.readings[0];
        assert_eq!(reading.window, Window::ApiKey);
        assert!((reading.percent - 75.0).abs() < 1e-9);
        assert_eq!(
            reading.resets_at.unwrap().to_rfc3339(),
            "2026-11-25T18:00:30+00:00"
        );
    }

    #[test]
    fn missing_malformed_and_overflowing_values() {
        assert_eq!(parse(&HeaderMap::new()), HeaderReport::default());
        let report = parse(&headers(&[
            ("anthropic-ratelimit-unified-5h-utilization", "lots"),
            ("anthropic-ratelimit-unified-7d-utilization", "-0.2"),
            ("anthropic-ratelimit-requests-limit", "0"),
            ("anthropic-ratelimit-requests-remaining", "0"),
        ]));
        assert!(report.readings.is_empty());
        // Over the limit: utilization above 1 is kept as is.
        let report = parse(&headers(&[
            ("anthropic-ratelimit-unified-5h-utilization", "1.07"),
            ("anthropic-ratelimit-unified-5h-reset", "not a time"),
        ]));
        assert!((report.readings[0].percent - 107.0).abs() < 1e-9);
        assert_eq!(report.readings[0].resets_at, None);
    }

    #[test]
    fn a_429_holds_until_its_reset() {
        let now = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
        let until = rate_limited_until(&headers(&[("retry-after", "17")]), now);
        assert_eq!((until - now).num_seconds(), 17);
        let until = rate_limited_until(
            &headers(&[("anthropic-ratelimit-unified-reset", "1764003600")]),
            now,
        );
        assert_eq!(until.timestamp(), 1_764_003_600);
        let until = rate_limited_until(
            &headers(&[
                ("anthropic-ratelimit-tokens-remaining", "0"),
                ("anthropic-ratelimit-tokens-reset", "2025-11-24T17:00:00Z"),
            ]),
            now,
        );
        assert_eq!(until.to_rfc3339(), "2025-11-24T17:00:00+00:00");
        assert_eq!(
            (rate_limited_until(&HeaderMap::new(), now) - now).num_seconds(),
            60
        );
    }
}
