//! Opt-in source: Anthropic's OAuth usage endpoint, asked with the token Claude Code keeps
//! in `~/.claude/.credentials.json`. Read-only, rarely (5 minutes at least), backing off on
//! 429. The token is read for each call and never logged, stored or sent elsewhere.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{QuotaMonitor, Reading, Source, Window};
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

#[derive(Deserialize)]
struct Usage {
    five_hour: Option<WindowUsage>,
    seven_day: Option<WindowUsage>,
}

#[derive(Deserialize)]
struct WindowUsage {
    /// 0–100 here (not a fraction as in the headers).
    utilization: Option<f64>,
    resets_at: Option<DateTime<Utc>>,
}

pub async fn poll(
    monitor: QuotaMonitor,
    http: reqwest::Client,
    config: UsageApiConfig,
    shutdown: CancellationToken,
) {
    let mut wait = std::time::Duration::ZERO;
    let mut last_problem = String::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
        wait = config.interval;
        match fetch(&http, &config).await {
            Ok(readings) => {
                last_problem.clear();
                monitor.observe(Source::UsageApi, &readings);
            }
            Err(Problem::RateLimited) => {
                wait = (wait * 2).min(std::time::Duration::from_secs(3600));
                tracing::info!(
                    retry_in_secs = wait.as_secs(),
                    "usage endpoint rate-limited; backing off"
                );
            }
            Err(Problem::Other(problem)) => {
                if problem != last_problem {
                    tracing::warn!(%problem, "cannot read the quota from Anthropic's usage endpoint");
                    last_problem = problem;
                }
            }
        }
    }
}

enum Problem {
    RateLimited,
    Other(String),
}

async fn fetch(http: &reqwest::Client, config: &UsageApiConfig) -> Result<Vec<Reading>, Problem> {
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
    let mut bearer =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", oauth.access_token))
            .map_err(|_| Problem::Other("the stored token is not a valid header value".into()))?;
    bearer.set_sensitive(true);
    let response = http
        .get(config.url.clone())
        .header(reqwest::header::AUTHORIZATION, bearer)
        .header("anthropic-beta", "oauth-2025-04-20")
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| Problem::Other(format!("unreachable: {}", crate::net::root_cause(&e))))?;
    if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(Problem::RateLimited);
    }
    if !response.status().is_success() {
        return Err(Problem::Other(format!(
            "answered HTTP {}",
            response.status().as_u16()
        )));
    }
    let usage: Usage = response
        .json()
        .await
        .map_err(|_| Problem::Other("answered something unexpected".into()))?;
    Ok([
        (Window::FiveHour, usage.five_hour),
        (Window::SevenDay, usage.seven_day),
    ]
    .into_iter()
    .filter_map(|(window, w)| {
        let w = w?;
        let percent = w.utilization.filter(|p| p.is_finite() && *p >= 0.0)?;
        Some(Reading {
            window,
            percent,
            resets_at: w.resets_at,
        })
    })
    .collect())
}
