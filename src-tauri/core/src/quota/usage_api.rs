//! Opt-in source: Anthropic's OAuth usage endpoint, asked with the token Claude Code keeps
//! in `~/.claude/.credentials.json`. Read-only, rarely (5 minutes at least). It often
//! answers 429 (with `retry-after: 0`): that means "not now" — the poller backs off and
//! keeps the last good reading. The token is read for each call and never logged, stored
//! or sent elsewhere.
//!
//! Two shapes of answer, both read: the older one with a field per window (`five_hour`,
//! `seven_day`, `seven_day_opus`, …, `extra_usage`) and the newer `limits` array
//! (`session`, `weekly_all`, `weekly_scoped` with the model it scopes, and `spend`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::headers::OverageReport;
use super::{family_of, LimitStatus, QuotaMonitor, Reading, Source, Window};
use crate::config::UsageApiConfig;

#[derive(Deserialize)]
struct Credentials {
    #[serde(rename = "claudeAiOauth")]
    oauth: Option<OAuth>,
}

#[derive(Deserialize)]
struct OAuth {
    #[serde(rename = "accessToken")]
    access_token: String,
    /// Milliseconds since the epoch.
    #[serde(rename = "expiresAt")]
    expires_at: Option<i64>,
}

pub async fn poll(
    monitor: QuotaMonitor,
    http: crate::net::Http,
    config: UsageApiConfig,
    shutdown: CancellationToken,
) {
    let mut wait = Duration::ZERO;
    let mut pace = Pace::new(config.interval);
    let mut last_problem = String::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
        let outcome = fetch(&http, &config).await;
        if let Err(Problem::Other(problem)) = &outcome {
            if *problem != last_problem {
                tracing::warn!(%problem, "cannot read the quota from Anthropic's usage endpoint");
                last_problem = problem.clone();
            }
        } else {
            last_problem.clear();
        }
        let (next, observe) = pace.after(outcome);
        wait = next;
        if let Some((readings, overage)) = observe {
            monitor.observe(Source::UsageApi, &readings, overage);
        }
    }
}

/// How often to ask, and what stands meanwhile: a good answer is observed and kept; a
/// 429 ("not now", even with `retry-after: 0`) doubles the wait — up to 8 intervals — and
/// the last good readings stand again; other failures wait an interval.
struct Pace {
    interval: Duration,
    backoff: Duration,
    last_good: Vec<Reading>,
}

impl Pace {
    fn new(interval: Duration) -> Pace {
        Pace {
            interval,
            backoff: interval,
            last_good: Vec::new(),
        }
    }

    /// The wait before the next call, and what to observe now.
    fn after(&mut self, outcome: Result<Answer, Problem>) -> (Duration, Option<Answer>) {
        match outcome {
            Ok((readings, overage)) => {
                self.backoff = self.interval;
                self.last_good = readings.clone();
                (self.interval, Some((readings, overage)))
            }
            Err(Problem::RateLimited) => {
                self.backoff = (self.backoff * 2).min(self.interval * 8);
                tracing::info!(
                    retry_in_secs = self.backoff.as_secs(),
                    "usage endpoint rate-limited; backing off, keeping the last reading"
                );
                let kept = (!self.last_good.is_empty()).then(|| (self.last_good.clone(), None));
                (self.backoff, kept)
            }
            Err(Problem::Other(_)) => (self.interval, None),
        }
    }
}

enum Problem {
    RateLimited,
    Other(String),
}

type Answer = (Vec<Reading>, Option<OverageReport>);

async fn fetch(http: &crate::net::Http, config: &UsageApiConfig) -> Result<Answer, Problem> {
    let text = tokio::fs::read_to_string(&config.credentials_file)
        .await
        .map_err(|e| {
            Problem::Other(format!(
                "cannot read {}: {e}",
                config.credentials_file.display()
            ))
        })?;
    let credentials: Credentials = serde_json::from_str(&text).map_err(|_| {
        Problem::Other(format!(
            "{} is not Claude Code's credentials file",
            config.credentials_file.display()
        ))
    })?;
    let oauth = credentials.oauth.ok_or_else(|| {
        Problem::Other("no Claude subscription login in the credentials file".into())
    })?;
    if oauth
        .expires_at
        .is_some_and(|ms| ms <= Utc::now().timestamp_millis())
    {
        return Err(Problem::Other(
            "Claude Code's login token has expired; it refreshes when Claude Code runs".into(),
        ));
    }
    let bearer = crate::net::bearer(&oauth.access_token)
        .ok_or_else(|| Problem::Other("the stored token is not a valid header value".into()))?;
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, bearer);
    headers.insert(
        "anthropic-beta",
        http::HeaderValue::from_static("oauth-2025-04-20"),
    );
    let response = http
        .get(
            config.url.as_str(),
            headers,
            std::time::Duration::from_secs(10),
        )
        .await
        .map_err(|e| Problem::Other(format!("unreachable: {e}")))?;
    if response.status == http::StatusCode::TOO_MANY_REQUESTS {
        return Err(Problem::RateLimited);
    }
    if !response.status.is_success() {
        return Err(Problem::Other(format!(
            "answered HTTP {}",
            response.status.as_u16()
        )));
    }
    let usage: Value = response
        .json()
        .ok_or_else(|| Problem::Other("answered something unexpected".into()))?;
    Ok(parse(&usage))
}

/// Either shape of answer as readings, and what it says of extra usage.
pub fn parse(usage: &Value) -> Answer {
    if let Some(limits) = usage.get("limits").and_then(Value::as_array) {
        let readings = limits.iter().filter_map(limit_reading).collect();
        return (readings, usage.get("spend").and_then(spend));
    }
    let mut readings = Vec::new();
    if let Some(fields) = usage.as_object() {
        for (name, value) in fields {
            let (window, rest) = if let Some(rest) = name.strip_prefix("five_hour") {
                (Window::FiveHour, rest)
            } else if let Some(rest) = name.strip_prefix("seven_day") {
                (Window::SevenDay, rest)
            } else {
                continue;
            };
            let scope = rest.trim_start_matches('_');
            let Some(percent) = value.get("utilization").and_then(percent) else {
                continue;
            };
            readings.push(Reading {
                window,
                scope: (!scope.is_empty()).then(|| scope.to_owned()),
                percent,
                resets_at: value.get("resets_at").and_then(time),
                status: None,
            });
        }
    }
    (readings, usage.get("extra_usage").and_then(extra_usage))
}

fn percent(value: &Value) -> Option<f64> {
    value.as_f64().filter(|p| p.is_finite() && *p >= 0.0)
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `{kind: session | weekly_all | weekly_scoped, percent, severity, resets_at, scope, is_active}`.
fn limit_reading(limit: &Value) -> Option<Reading> {
    if limit.get("is_active").and_then(Value::as_bool) == Some(false) {
        return None;
    }
    let (window, scope) = match limit.get("kind")?.as_str()? {
        "session" => (Window::FiveHour, None),
        "weekly_all" => (Window::SevenDay, None),
        "weekly_scoped" => {
            let name = limit
                .pointer("/scope/model/display_name")
                .or_else(|| limit.get("group"))
                .and_then(Value::as_str)?;
            (Window::SevenDay, Some(family_of(name)))
        }
        _ => return None,
    };
    let status = match limit.get("severity").and_then(Value::as_str) {
        Some("exceeded" | "rejected" | "blocked") => Some(LimitStatus::Rejected),
        Some("warning") => Some(LimitStatus::AllowedWarning),
        Some(_) => Some(LimitStatus::Allowed),
        None => None,
    };
    Some(Reading {
        window,
        scope,
        percent: limit.get("percent").and_then(percent)?,
        resets_at: limit.get("resets_at").and_then(time),
        status,
    })
}

/// The older `extra_usage` block: enabled or not, how much of its limit is used.
fn extra_usage(block: &Value) -> Option<OverageReport> {
    let enabled = block.get("is_enabled").and_then(Value::as_bool)?;
    Some(OverageReport {
        in_use: false,
        status: (!enabled).then_some(LimitStatus::Rejected),
        percent: block.get("utilization").and_then(percent),
        resets_at: None,
        disabled_reason: (!enabled).then(|| "disabled".to_owned()),
    })
}

/// The newer `spend` block: whether extra usage is being spent, and how much of it.
fn spend(block: &Value) -> Option<OverageReport> {
    let in_use = block
        .get("in_use")
        .or_else(|| block.get("is_active"))
        .and_then(Value::as_bool)?;
    Some(OverageReport {
        in_use,
        status: None,
        percent: block.get("percent").and_then(percent),
        resets_at: block.get("resets_at").and_then(time),
        disabled_reason: block
            .get("disabled_reason")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(answer: &Answer) -> Vec<(Window, Option<String>, i64)> {
        answer
            .0
            .iter()
            .map(|r| (r.window, r.scope.clone(), r.percent.round() as i64))
            .collect()
    }

    #[test]
    fn a_429_backs_off_and_keeps_the_last_reading() {
        let minute = Duration::from_secs(60);
        let mut pace = Pace::new(minute);
        let good = parse(&json!({"five_hour": {"utilization": 42.0, "resets_at": null}}));
        let (wait, observed) = pace.after(Ok(good));
        assert_eq!(wait, minute);
        assert_eq!(observed.unwrap().0[0].percent, 42.0);
        // "Not now" (429, retry-after: 0), again and again: later each time, up to 8
        // intervals, and the last good reading stands meanwhile.
        let mut waits = Vec::new();
        for _ in 0..5 {
            let (wait, kept) = pace.after(Err(Problem::RateLimited));
            assert_eq!(kept.unwrap().0[0].percent, 42.0);
            waits.push(wait.as_secs() / 60);
        }
        assert_eq!(waits, [2, 4, 8, 8, 8]);
        // A good answer brings the pace back.
        let (wait, _) = pace.after(Ok(parse(&json!({}))));
        assert_eq!(wait, minute);
    }

    #[test]
    fn the_older_shape_with_a_field_per_window() {
        let answer = parse(&json!({
            "five_hour": {"utilization": 24.0, "resets_at": "2026-11-27T18:00:01.503Z"},
            "seven_day": {"utilization": 81.0, "resets_at": "2026-12-01T14:00:00Z"},
            "seven_day_opus": {"utilization": 100.0, "resets_at": "2026-12-01T14:00:00Z"},
            "seven_day_sonnet": null,
            "seven_day_oauth_apps": {"utilization": 2.0, "resets_at": null},
            "extra_usage": {"is_enabled": false, "monthly_limit": null, "used_credits": null, "utilization": null}
        }));
        assert_eq!(
            summary(&answer),
            [
                (Window::FiveHour, None, 24),
                (Window::SevenDay, None, 81),
                (Window::SevenDay, Some("opus".into()), 100),
                (Window::SevenDay, Some("oauth_apps".into()), 2),
            ]
        );
        assert!(!answer.1.unwrap().in_use);
    }

    #[test]
    fn the_newer_shape_with_a_limits_array() {
        let answer = parse(&json!({
            "limits": [
                {"kind": "session", "group": "all", "percent": 42, "severity": "normal", "resets_at": "2026-11-27T18:00:00Z", "is_active": true},
                {"kind": "weekly_all", "group": "all", "percent": 81.5, "severity": "warning", "resets_at": "2026-12-01T14:00:00Z", "is_active": true},
                {"kind": "weekly_scoped", "group": "opus", "percent": 100, "severity": "exceeded", "resets_at": "2026-12-01T14:00:00Z",
                 "scope": {"model": {"display_name": "Claude Opus 4.8"}}, "is_active": true},
                {"kind": "weekly_scoped", "percent": 10, "scope": {"model": {"display_name": "Sonnet"}}, "is_active": false}
            ],
            "spend": {"in_use": true, "percent": 12.5}
        }));
        assert_eq!(
            summary(&answer),
            [
                (Window::FiveHour, None, 42),
                (Window::SevenDay, None, 82),
                (Window::SevenDay, Some("opus".into()), 100),
            ]
        );
        assert_eq!(answer.0[2].status, Some(LimitStatus::Rejected));
        assert_eq!(answer.0[1].status, Some(LimitStatus::AllowedWarning));
        assert!(answer.1.unwrap().in_use);
    }
}
