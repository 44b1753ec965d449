//! The dashboard source: `GET poll_url` every interval; a JSON pointer names the percent,
//! another (optional) when its window resets. A dashboard that is down is logged once
//! per outage, not at every poll.

use std::time::Duration;

use http::HeaderMap;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::net::Http;

use super::{QuotaMonitor, Reading, Source, Window};

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("answered something that is not JSON")]
    NotJson,
    #[error("has no number at {0} (expected 0-100)")]
    NoNumber(String),
}

/// Where the dashboard is and how to read it.
pub struct Dashboard {
    pub url: Url,
    pub usage_pointer: String,
    pub reset_pointer: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
}

pub async fn poll(
    monitor: QuotaMonitor,
    http: Http,
    dashboard: Dashboard,
    shutdown: CancellationToken,
) {
    let url = dashboard.url.clone();
    let mut ticks = tokio::time::interval(dashboard.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut down = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match fetch(&http, &dashboard).await {
            Ok(reading) => {
                if down {
                    tracing::info!(%url, "quota dashboard is back");
                    down = false;
                }
                monitor.observe(Source::Dashboard, &[reading], None);
            }
            Err(error) => {
                if !down {
                    tracing::warn!(%url, %error, "quota dashboard is unavailable; its reading goes stale (logged once until it is back)");
                    down = true;
                }
            }
        }
    }
}

async fn fetch(http: &Http, dashboard: &Dashboard) -> Result<Reading, DashboardError> {
    let response = http
        .get(dashboard.url.as_str(), HeaderMap::new(), dashboard.timeout)
        .await
        .map_err(|e| DashboardError::Unreachable(e.to_string()))?;
    if !response.status.is_success() {
        return Err(DashboardError::Status(response.status.as_u16()));
    }
    let json: serde_json::Value = response.json().ok_or(DashboardError::NotJson)?;
    let pointer = &dashboard.usage_pointer;
    let percent =
        percent_at(&json, pointer).ok_or_else(|| DashboardError::NoNumber(pointer.to_owned()))?;
    let resets_at = dashboard
        .reset_pointer
        .as_deref()
        .and_then(|pointer| time_at(&json, pointer));
    Ok(Reading::shared(Window::Dashboard, percent, resets_at))
}

/// The time at `pointer`: RFC 3339 text, or seconds since the epoch.
pub fn time_at(json: &serde_json::Value, pointer: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    match json.pointer(pointer)? {
        serde_json::Value::String(text) => chrono::DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc)),
        serde_json::Value::Number(n) => chrono::DateTime::from_timestamp(
            n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
            0,
        ),
        _ => None,
    }
}

/// The number at `pointer`: a JSON number or a numeric string, 0 or more.
pub fn percent_at(json: &serde_json::Value, pointer: &str) -> Option<f64> {
    let value = json.pointer(pointer)?;
    let number = match value {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().trim_end_matches('%').parse().ok()?,
        _ => return None,
    };
    (number.is_finite() && number >= 0.0).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_percent_at_the_pointer() {
        let body = json!({"usage_percent": 63.5, "nested": {"pct": "71%"}, "bad": "x", "neg": -1});
        assert_eq!(percent_at(&body, "/usage_percent"), Some(63.5));
        assert_eq!(percent_at(&body, "/nested/pct"), Some(71.0));
        assert_eq!(percent_at(&body, "/bad"), None);
        assert_eq!(percent_at(&body, "/neg"), None);
        assert_eq!(percent_at(&body, "/missing"), None);
    }

    #[test]
    fn reads_the_reset_as_text_or_epoch_seconds() {
        let body = json!({"a": "2026-11-27T18:00:00Z", "b": 1795802400, "c": "soon"});
        assert_eq!(time_at(&body, "/a").unwrap().timestamp(), 1_795_802_400);
        assert_eq!(time_at(&body, "/b").unwrap().timestamp(), 1_795_802_400);
        assert_eq!(time_at(&body, "/c"), None);
    }
}
