//! The dashboard source: `GET poll_url` every interval; a JSON pointer names the percent.
//! A dashboard that is down is logged once per outage, not at every poll.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use url::Url;

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

pub async fn poll(
    monitor: QuotaMonitor,
    http: reqwest::Client,
    url: Url,
    pointer: String,
    interval: Duration,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut down = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match fetch(&http, &url, &pointer, timeout).await {
            Ok(percent) => {
                if down {
                    tracing::info!(%url, "quota dashboard is back");
                    down = false;
                }
                monitor.observe(
                    Source::Dashboard,
                    &[Reading {
                        window: Window::Dashboard,
                        percent,
                        resets_at: None,
                    }],
                );
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

async fn fetch(
    http: &reqwest::Client,
    url: &Url,
    pointer: &str,
    timeout: Duration,
) -> Result<f64, DashboardError> {
    let response = http
        .get(url.clone())
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| DashboardError::Unreachable(crate::net::root_cause(&e)))?;
    if !response.status().is_success() {
        return Err(DashboardError::Status(response.status().as_u16()));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| DashboardError::Unreachable(crate::net::root_cause(&e)))?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| DashboardError::NotJson)?;
    percent_at(&json, pointer).ok_or_else(|| DashboardError::NoNumber(pointer.to_owned()))
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
}
