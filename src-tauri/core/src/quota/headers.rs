//! Quota readings from the rate-limit headers on Anthropic's responses: free, exact, and
//! fresh with every request that passes through the proxy.
//!
//! Subscriptions send `anthropic-ratelimit-unified-<window>-{utilization,reset,status}`
//! for every window that applies: `5h` and `7d` shared by all models, and windows scoped
//! to one model family beside them (`7d-sonnet`, `7d-opus`, `7d_oi`). Accounts in extra
//! usage send `-overage-*` instead, with `representative-claim: overage`. API keys send
//! `anthropic-ratelimit-*-{limit,remaining,reset}`. Malformed values are skipped, never
//! trusted. A 429 is scoped by what it says: the claim, the window whose status is
//! `rejected`, and the model that was asked.

use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::{family_of, LimitStatus, Reading, Window};

const UNIFIED: &str = "anthropic-ratelimit-unified-";

/// What one response's headers say.
#[derive(Debug, Default, PartialEq)]
pub struct HeaderReport {
    pub readings: Vec<Reading>,
    /// `anthropic-ratelimit-unified-status`.
    pub unified_status: Option<LimitStatus>,
    /// `anthropic-ratelimit-unified-representative-claim`, e.g. `five_hour`, `overage`.
    pub representative_claim: Option<String>,
    pub overage: Option<OverageReport>,
}

/// The `-overage-*` headers of an account in extra usage.
#[derive(Debug, Default, PartialEq)]
pub struct OverageReport {
    pub in_use: bool,
    pub status: Option<LimitStatus>,
    pub percent: Option<f64>,
    pub resets_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
}

/// What a refusal (a 429, or `status: rejected`) blocks.
#[derive(Debug, PartialEq)]
pub struct Rejection {
    /// `None`: every model; `Some("opus")`: that family only.
    pub scope: Option<String>,
    pub until: DateTime<Utc>,
    /// The window it names, when it names one.
    pub window: Option<Window>,
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
    let secs = text(headers, name)?.parse::<f64>().ok()?;
    crate::bounded::epoch(secs, Utc::now())
}

fn rfc3339(headers: &HeaderMap, name: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text(headers, name)?)
        .ok()
        .map(|t| crate::bounded::time(t.with_timezone(&Utc), Utc::now()))
}

fn status(headers: &HeaderMap, name: &str) -> Option<LimitStatus> {
    text(headers, name)?.parse().ok()
}

/// A unified window's key (`5h`, `7d`, `7d-opus`, `7d_oi`) as a window and its scope.
fn window_of(key: &str) -> Option<(Window, Option<String>)> {
    let (head, rest) = match key.find(['-', '_']) {
        Some(at) => (&key[..at], Some(&key[at + 1..])),
        None => (key, None),
    };
    let window = match head {
        "5h" => Window::FiveHour,
        "7d" => Window::SevenDay,
        _ => return None,
    };
    let scope = rest
        .filter(|r| !r.is_empty())
        .map(|r| r.to_ascii_lowercase());
    Some((window, scope))
}

/// A claim (`five_hour`, `seven_day`, `seven_day_opus`) as a window and its scope.
fn claim_window(claim: &str) -> Option<(Window, Option<String>)> {
    let (window, rest) = if let Some(rest) = claim.strip_prefix("five_hour") {
        (Window::FiveHour, rest)
    } else if let Some(rest) = claim.strip_prefix("seven_day") {
        (Window::SevenDay, rest)
    } else {
        return None;
    };
    let scope = rest.trim_start_matches('_');
    Some((
        window,
        (!scope.is_empty()).then(|| scope.to_ascii_lowercase()),
    ))
}

pub fn parse(headers: &HeaderMap) -> HeaderReport {
    let mut report = HeaderReport {
        unified_status: status(headers, "anthropic-ratelimit-unified-status"),
        representative_claim: text(headers, "anthropic-ratelimit-unified-representative-claim")
            .map(str::to_owned),
        ..HeaderReport::default()
    };
    let mut keys: Vec<&str> = headers
        .keys()
        .filter_map(|name| {
            let rest = name.as_str().strip_prefix(UNIFIED)?;
            ["-utilization", "-status", "-reset"]
                .iter()
                .find_map(|suffix| rest.strip_suffix(suffix))
        })
        .filter(|key| window_of(key).is_some())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let Some((window, scope)) = window_of(key) else {
            continue;
        };
        let limit = status(headers, &format!("{UNIFIED}{key}-status"));
        let utilization = number(headers, &format!("{UNIFIED}{key}-utilization"));
        let percent = match (utilization, limit) {
            (Some(fraction), _) => fraction * 100.0,
            // A window said to be used up, without its utilization: full.
            (None, Some(LimitStatus::Rejected)) => 100.0,
            (None, _) => continue,
        };
        report.readings.push(Reading {
            window,
            scope,
            percent,
            resets_at: epoch(headers, &format!("{UNIFIED}{key}-reset")),
            status: limit,
        });
    }
    let overage_in_use = text(headers, "anthropic-ratelimit-unified-overage-in-use")
        .map(|v| v.eq_ignore_ascii_case("true"));
    let overage_status = status(headers, "anthropic-ratelimit-unified-overage-status");
    if overage_in_use.is_some()
        || overage_status.is_some()
        || report.representative_claim.as_deref() == Some("overage")
    {
        report.overage = Some(OverageReport {
            in_use: overage_in_use
                .unwrap_or(report.representative_claim.as_deref() == Some("overage")),
            status: overage_status,
            percent: number(headers, "anthropic-ratelimit-unified-overage-utilization")
                .map(|fraction| fraction * 100.0),
            resets_at: epoch(headers, "anthropic-ratelimit-unified-overage-reset"),
            disabled_reason: text(
                headers,
                "anthropic-ratelimit-unified-overage-disabled-reason",
            )
            .map(str::to_owned),
        });
    }
    if let Some(reading) = api_key_reading(headers) {
        report.readings.push(reading);
    }
    report
}

/// What a refusal blocks: the window the claim names, else one whose status is
/// `rejected` (a scoped one first: it is the narrower), else every model. A scope that
/// does not cover the model asked (a window named for a model we cannot tell) blocks the
/// family of the model asked, which is what was refused.
pub fn rejection(
    report: &HeaderReport,
    headers: &HeaderMap,
    model: Option<&str>,
    now: DateTime<Utc>,
) -> Rejection {
    let claimed = report
        .representative_claim
        .as_deref()
        .and_then(claim_window);
    let rejected = || {
        let mut refused: Vec<&Reading> = report
            .readings
            .iter()
            .filter(|r| r.status == Some(LimitStatus::Rejected))
            .collect();
        refused.sort_by_key(|r| r.scope.is_none());
        refused.first().map(|r| (r.window, r.scope.clone()))
    };
    let (window, scope) = match claimed.or_else(rejected) {
        Some((window, scope)) => (Some(window), scope),
        None => (None, None),
    };
    let scope = match (scope, model) {
        (Some(family), Some(model)) if !super::covers(Some(&family), model) => {
            Some(family_of(model))
        }
        (scope, _) => scope,
    };
    let window_reset = report
        .readings
        .iter()
        .find(|r| Some(r.window) == window && r.scope == scope)
        .and_then(|r| r.resets_at);
    Rejection {
        until: window_reset.unwrap_or_else(|| rate_limited_until(headers, now)),
        scope,
        window,
    }
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
            Some(Reading::shared(
                Window::ApiKey,
                ((1.0 - remaining / limit) * 100.0).clamp(0.0, 100.0),
                rfc3339(headers, &format!("anthropic-ratelimit-{kind}-reset")),
            ))
        })
        .max_by(|a, b| a.percent.total_cmp(&b.percent))
}

/// Until when a 429 holds: `retry-after`, else the unified reset, else the latest reset of
/// an exhausted API-key limit, else a minute.
pub fn rate_limited_until(headers: &HeaderMap, now: DateTime<Utc>) -> DateTime<Utc> {
    if let Some(value) = text(headers, "retry-after") {
        if let Some(wait) = value.parse::<f64>().ok().and_then(crate::bounded::secs) {
            return crate::bounded::after(now, wait);
        }
        if let Ok(date) = DateTime::parse_from_rfc2822(value) {
            return crate::bounded::time(date.with_timezone(&Utc), now);
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
    exhausted_reset
        .unwrap_or_else(|| crate::bounded::after(now, std::time::Duration::from_secs(60)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
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
        assert_eq!(report.unified_status, Some(LimitStatus::AllowedWarning));
        assert_eq!(report.representative_claim.as_deref(), Some("five_hour"));
        assert_eq!(report.readings.len(), 2);
        assert_eq!(report.readings[0].window, Window::FiveHour);
        assert_eq!(report.readings[0].status, Some(LimitStatus::AllowedWarning));
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

    /// A Max account's response with the Opus weekly cap used up, as captured: the shared
    /// windows beside the scoped ones.
    const MAX_OPUS_CAPPED: &[(&str, &str)] = &[
        ("anthropic-ratelimit-unified-status", "rejected"),
        (
            "anthropic-ratelimit-unified-representative-claim",
            "seven_day_opus",
        ),
        ("anthropic-ratelimit-unified-reset", "1764547200"),
        ("anthropic-ratelimit-unified-5h-status", "allowed"),
        ("anthropic-ratelimit-unified-5h-utilization", "0.42"),
        ("anthropic-ratelimit-unified-5h-reset", "1764100800"),
        ("anthropic-ratelimit-unified-7d-status", "allowed_warning"),
        ("anthropic-ratelimit-unified-7d-utilization", "0.81"),
        ("anthropic-ratelimit-unified-7d-reset", "1764547200"),
        ("anthropic-ratelimit-unified-7d-sonnet-status", "allowed"),
        ("anthropic-ratelimit-unified-7d-sonnet-utilization", "0.30"),
        ("anthropic-ratelimit-unified-7d-sonnet-reset", "1764547200"),
        ("anthropic-ratelimit-unified-7d-opus-status", "rejected"),
        ("anthropic-ratelimit-unified-7d-opus-utilization", "1.0"),
        ("anthropic-ratelimit-unified-7d-opus-reset", "1764460800"),
        ("anthropic-ratelimit-unified-7d_oi-status", "allowed"),
        ("anthropic-ratelimit-unified-7d_oi-utilization", "0.05"),
        ("retry-after", "86400"),
    ];

    #[test]
    fn scoped_windows_are_read_beside_the_shared_ones() {
        let report = parse(&headers(MAX_OPUS_CAPPED));
        let found: Vec<(Window, Option<&str>, i64)> = report
            .readings
            .iter()
            .map(|r| (r.window, r.scope.as_deref(), r.percent.round() as i64))
            .collect();
        assert_eq!(
            found,
            [
                (Window::FiveHour, None, 42),
                (Window::SevenDay, None, 81),
                (Window::SevenDay, Some("opus"), 100),
                (Window::SevenDay, Some("sonnet"), 30),
                (Window::SevenDay, Some("oi"), 5),
            ]
        );
        let opus = &report.readings[2];
        assert_eq!(opus.status, Some(LimitStatus::Rejected));
        assert_eq!(opus.resets_at.unwrap().timestamp(), 1_764_460_800);
    }

    #[test]
    fn a_429_is_scoped_by_what_it_says() {
        let now = Utc.timestamp_opt(1_764_000_000, 0).unwrap();
        // The claim names the Opus week: Opus only, until that window's reset.
        let h = headers(MAX_OPUS_CAPPED);
        let refused = rejection(&parse(&h), &h, Some("claude-opus-4-8"), now);
        assert_eq!(refused.scope.as_deref(), Some("opus"));
        assert_eq!(refused.until.timestamp(), 1_764_460_800);
        // No claim, but a scoped window rejected: that family.
        let h = headers(&[
            ("anthropic-ratelimit-unified-7d-sonnet-status", "rejected"),
            ("anthropic-ratelimit-unified-7d-sonnet-reset", "1764003600"),
            ("anthropic-ratelimit-unified-5h-status", "allowed"),
        ]);
        let refused = rejection(&parse(&h), &h, Some("claude-sonnet-5"), now);
        assert_eq!(refused.scope.as_deref(), Some("sonnet"));
        // A session 429: every model, until retry-after.
        let h = headers(&[
            (
                "anthropic-ratelimit-unified-representative-claim",
                "five_hour",
            ),
            ("anthropic-ratelimit-unified-5h-status", "rejected"),
            ("retry-after", "120"),
        ]);
        let refused = rejection(&parse(&h), &h, Some("claude-opus-4-8"), now);
        assert_eq!(refused.scope, None);
        assert_eq!((refused.until - now).num_seconds(), 120);
        // A window named for a model we cannot tell: the family of the model asked.
        let h = headers(&[
            (
                "anthropic-ratelimit-unified-representative-claim",
                "seven_day_oi",
            ),
            ("retry-after", "60"),
        ]);
        let refused = rejection(&parse(&h), &h, Some("claude-opus-4-8"), now);
        assert_eq!(refused.scope.as_deref(), Some("opus"));
        // Nothing said at all: everything, as before.
        let h = headers(&[("retry-after", "5")]);
        assert_eq!(
            rejection(&parse(&h), &h, Some("claude-opus-4-8"), now).scope,
            None
        );
    }

    #[test]
    fn an_account_in_extra_usage() {
        let report = parse(&headers(&[
            ("anthropic-ratelimit-unified-status", "allowed"),
            (
                "anthropic-ratelimit-unified-representative-claim",
                "overage",
            ),
            ("anthropic-ratelimit-unified-overage-in-use", "true"),
            (
                "anthropic-ratelimit-unified-overage-status",
                "allowed_warning",
            ),
            ("anthropic-ratelimit-unified-overage-utilization", "0.6"),
            ("anthropic-ratelimit-unified-overage-spent", "12.00"),
            ("anthropic-ratelimit-unified-overage-limit", "20.00"),
            ("anthropic-ratelimit-unified-overage-reset", "1764547200"),
            ("anthropic-ratelimit-unified-fallback-percentage", "0.5"),
        ]));
        assert!(report.readings.is_empty(), "no 5h/7d headers in overage");
        let overage = report.overage.unwrap();
        assert!(overage.in_use);
        assert_eq!(overage.status, Some(LimitStatus::AllowedWarning));
        assert!((overage.percent.unwrap() - 60.0).abs() < 1e-9);
        let report = parse(&headers(&[
            ("anthropic-ratelimit-unified-overage-status", "rejected"),
            (
                "anthropic-ratelimit-unified-overage-disabled-reason",
                "out_of_credits",
            ),
            ("anthropic-ratelimit-unified-overage-in-use", "false"),
        ]));
        let overage = report.overage.unwrap();
        assert!(!overage.in_use);
        assert_eq!(overage.disabled_reason.as_deref(), Some("out_of_credits"));
    }
}
