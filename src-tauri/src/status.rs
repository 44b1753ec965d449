//! `pai-orchestrator status`: asks the running proxy's `/health` and prints it.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use pai_core::quota::tracker::clock;
use pai_server::HealthResponse;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("PAI Orchestrator is not running at http://{addr} ({reason})")]
    NotRunning { addr: SocketAddr, reason: String },
    #[error("http://{addr}/health answered something unexpected: {reason}")]
    BadAnswer { addr: SocketAddr, reason: String },
}

pub async fn fetch(addr: SocketAddr) -> Result<(HealthResponse, String), StatusError> {
    fetch_path(addr, "/health", Duration::from_secs(3)).await
}

/// `GET path` (`/health` with its query) within `timeout`.
pub async fn fetch_path(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(HealthResponse, String), StatusError> {
    let client = pai_core::net::Http::new();
    let url = format!("http://{addr}{path}");
    let response = client
        .get(&url, http::HeaderMap::new(), timeout)
        .await
        .map_err(|e| StatusError::NotRunning {
            addr,
            reason: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&response.body).into_owned();
    let health = serde_json::from_str(&text).map_err(|e| StatusError::BadAnswer {
        addr,
        reason: e.to_string(),
    })?;
    Ok((health, text))
}

/// The health report in a few readable lines.
pub fn render(health: &HealthResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "PAI Orchestrator {} — {} at http://{} (up {}s)",
        health.version, health.status, health.listen, health.uptime_secs
    );
    let quota = &health.quota;
    let _ = writeln!(out, "Quota: {} — {}", quota.state.name(), quota.reason);
    if let Some(rate) = quota.burn_rate {
        let _ = write!(out, "  burning {rate:.1}%/h");
        match quota.projected_exhaustion {
            Some(when) if quota.exhausts_before_reset => {
                let _ = write!(out, "; runs out ~{} (before its reset)", clock(when));
            }
            Some(when) => {
                let _ = write!(out, "; would run out ~{}, after its reset", clock(when));
            }
            None => {}
        }
        out.push('\n');
    }
    for window in &quota.windows {
        let _ = write!(out, "  {:<12} {:>5.1}%", window.label, window.percent);
        if let Some(reset) = window.resets_at {
            let _ = write!(out, "  resets {}", clock(reset));
        }
        if let Some(rate) = window.burn_rate {
            let _ = write!(out, "  {rate:.1}%/h");
        }
        out.push('\n');
    }
    for cap in &quota.caps {
        let _ = writeln!(out, "  capped: {} — its targets are skipped", cap.reason);
    }
    if let Some(overage) = &quota.overage {
        let spending = if overage.in_use {
            "being spent"
        } else {
            "not in use"
        };
        let allowed = if overage.allowed_by_config {
            "allowed"
        } else {
            "not allowed ([quota] allow_extra_usage = false)"
        };
        let _ = writeln!(out, "  extra usage: {spending}; {allowed}");
    }
    let _ = writeln!(out, "Providers:");
    for p in &health.providers {
        let health = serde_json::to_value(p.health)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = write!(
            out,
            "  {:<12} {:<10} {:<10} {}",
            p.name, p.kind, health, p.base_url
        );
        if let Some(error) = &p.last_error {
            let _ = write!(out, " ({error})");
        }
        out.push('\n');
    }
    out
}
