//! The quota monitor in the running core: a mock dashboard whose value the test changes,
//! a mock Anthropic upstream that sends rate-limit headers and 429s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::{client, get_json};
use pai_e2e::mock::{anthropic_reply, MockUpstream, Reply};
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Upper bound for a change to show; a failure when passed, never a synchronisation.
const LIMIT: Duration = Duration::from_secs(10);

/// A dashboard answering `{"usage_percent": <value>}`; each poll is reported on `polls`.
async fn dashboard(value: Arc<AtomicU64>, polls: mpsc::UnboundedSender<()>) -> MockUpstream {
    MockUpstream::start(move |_| {
        let _ = polls.send(());
        match value.load(Ordering::SeqCst) {
            u64::MAX => Reply::status(500, &[], json!({"error": "down"})),
            v => Reply::json(json!({"usage_percent": v as f64, "other": "ignored"})),
        }
    })
    .await
}

fn with_dashboard(upstream: &str, dashboard: &str, dir: &std::path::Path) -> String {
    ConfigBuilder::claude_only(upstream, dir)
        .dashboard(dashboard)
        .toml()
}

#[tokio::test]
async fn the_state_follows_the_dashboard_and_the_state_file_matches_health() {
    let value = Arc::new(AtomicU64::new(30));
    let (polls, _polled) = mpsc::unbounded_channel();
    let dash = dashboard(value.clone(), polls).await;
    let upstream = MockUpstream::anthropic("x").await;
    let dir = tempfile::tempdir().unwrap();
    let text = with_dashboard(&upstream.url(), &dash.url(), dir.path());
    let proxy = TestProxy::start_with(&text, dir).await;
    let mut quota = proxy.follow_quota().await;

    let snapshot = quota.wait_for("normal", |s| s["state"] == "normal").await;
    assert_eq!(snapshot["percent"], 30.0);
    assert_eq!(snapshot["source"], "dashboard");
    assert_eq!(snapshot["window"], "dashboard");

    for (percent, state) in [
        (60, "caution"),
        (80, "warning"),
        (95, "critical"),
        // 88 is within the hysteresis below 90: still critical until it falls below 87.
        (86, "warning"),
    ] {
        value.store(percent, Ordering::SeqCst);
        let snapshot = quota
            .wait_for(state, |s| s["percent"] == percent as f64)
            .await;
        assert_eq!(snapshot["state"], state, "at {percent}%");
    }
    assert!(quota.current["reason"]
        .as_str()
        .unwrap()
        .starts_with("dashboard at 86% (warning ≥ 75%)"));

    let health: Value = get_json(&proxy.url("/health")).await;
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(proxy.dir.path().join("quota-state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(health["quota"]["state"], "warning");
    assert_eq!(file["state"], health["quota"]["state"]);
    assert_eq!(file["percent"], health["quota"]["percent"]);
    assert_eq!(file["reason"], health["quota"]["reason"]);
    assert_eq!(file["window"], "dashboard");

    // The history has a row per reading.
    proxy.daemon.flush_log().await;
    let conn = pai_core::store::open(&pai_core::store::database_path(&proxy.data_dir())).unwrap();
    let history =
        pai_core::store::quota_history(&conn, chrono::Utc::now() - chrono::Duration::hours(1))
            .unwrap();
    let percents: Vec<f64> = history.iter().map(|r| r.percent).collect();
    for p in [30.0, 60.0, 80.0, 95.0, 86.0] {
        assert!(percents.contains(&p), "{p} missing from {percents:?}");
    }
}

const UNIFIED_91: &[(&str, &str)] = &[
    ("anthropic-ratelimit-unified-status", "allowed_warning"),
    (
        "anthropic-ratelimit-unified-representative-claim",
        "five_hour",
    ),
    ("anthropic-ratelimit-unified-5h-status", "allowed_warning"),
    ("anthropic-ratelimit-unified-5h-utilization", "0.91"),
    ("anthropic-ratelimit-unified-5h-reset", "4102444800"),
    ("anthropic-ratelimit-unified-7d-status", "allowed"),
    ("anthropic-ratelimit-unified-7d-utilization", "0.42"),
    ("anthropic-ratelimit-unified-7d-reset", "4102444800"),
];

async fn send(proxy: &TestProxy, case: &str) -> u16 {
    client()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .header("x-test-case", case)
        .json(&json!({"model": "claude-sonnet-5", "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn quota_upstream() -> impl Fn(&pai_e2e::mock::Recorded) -> Reply + Send + Sync + 'static {
    |req| match req.header("x-test-case").unwrap_or("") {
        "unified" => {
            let mut reply = anthropic_reply(req, "ok");
            if let Reply::Json { headers, .. } = &mut reply {
                headers.extend(
                    UNIFIED_91
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                );
            }
            reply
        }
        "429" => Reply::status(
            429,
            &[
                ("retry-after", "1"),
                ("anthropic-ratelimit-unified-status", "rejected"),
            ],
            json!({"type":"error","error":{"type":"rate_limit_error","message":"limited"}}),
        ),
        _ => anthropic_reply(req, "ok"),
    }
}

#[tokio::test]
async fn rate_limit_headers_passing_through_set_the_state() {
    let upstream = MockUpstream::start(quota_upstream()).await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let mut quota = proxy.follow_quota().await;
    assert_eq!(quota.current["state"], "unknown");
    assert_eq!(send(&proxy, "unified").await, 200);
    let snapshot = quota
        .wait_for("critical", |s| s["state"] == "critical")
        .await;
    assert_eq!(snapshot["window"], "5h");
    assert_eq!(snapshot["source"], "headers");
    assert_eq!(snapshot["percent"], 91.0);
    assert_eq!(snapshot["readings"].as_array().unwrap().len(), 2);
    let reason = snapshot["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("5h window at 91% (critical ≥ 90%), resets"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_429_makes_it_critical_and_its_reset_brings_it_back() {
    let upstream = MockUpstream::start(quota_upstream()).await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let mut quota = proxy.follow_quota().await;
    assert_eq!(quota.current["state"], "unknown");
    assert_eq!(send(&proxy, "429").await, 429);
    // Announced as it happens: critical, then — retry-after: 1 — back as soon as the
    // reset passes.
    let snapshot = quota
        .wait_for("critical", |s| s["state"] == "critical")
        .await;
    assert!(snapshot["rate_limited_until"].is_string());
    assert!(
        snapshot["reason"].as_str().unwrap().contains("429"),
        "{snapshot}"
    );
    let snapshot = quota.next().await;
    assert_eq!(snapshot["state"], "unknown", "{snapshot}");
    assert_eq!(snapshot["rate_limited_until"], Value::Null);
}

/// Collects every log line of this test (current-thread runtime: all tasks log here).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_dashboard_that_is_down_is_logged_once_and_headers_still_work() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let value = Arc::new(AtomicU64::new(u64::MAX));
    let (polls, mut polled) = mpsc::unbounded_channel();
    let dash = dashboard(value.clone(), polls).await;
    let upstream = MockUpstream::start(quota_upstream()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = with_dashboard(&upstream.url(), &dash.url(), dir.path());
    let proxy = TestProxy::start_with(&text, dir).await;
    let mut quota = proxy.follow_quota().await;

    for _ in 0..3 {
        tokio::time::timeout(LIMIT, polled.recv()).await.unwrap();
    }
    assert_eq!(send(&proxy, "unified").await, 200);
    let snapshot = quota
        .wait_for("critical", |s| s["state"] == "critical")
        .await;
    assert_eq!(snapshot["window"], "5h");

    // The dashboard recovers: logged once more, and its reading joins.
    value.store(20, Ordering::SeqCst);
    quota
        .wait_for("with a dashboard reading", |s| {
            s["readings"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["window"] == "dashboard"))
        })
        .await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        log.matches("quota dashboard is unavailable").count(),
        1,
        "one warning per outage, not per poll:\n{log}"
    );
    assert_eq!(log.matches("quota dashboard is back").count(), 1, "{log}");
}

#[tokio::test]
async fn the_opt_in_usage_endpoint_is_read_with_claude_codes_token() {
    let usage = MockUpstream::start(|_| {
        Reply::json(json!({
            "five_hour": {"utilization": 64.0, "resets_at": "2099-01-01T00:00:00Z"},
            "seven_day": {"utilization": 12.5, "resets_at": "2099-01-05T00:00:00Z"},
            "seven_day_opus": null
        }))
    })
    .await;
    let upstream = MockUpstream::anthropic("x").await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials.json");
    std::fs::write(
        &credentials,
        json!({"claudeAiOauth": {"accessToken": "sk-ant-oat01-usage-token", "refreshToken": "r",
            "expiresAt": 4102444800000i64, "scopes": ["user:inference"]}})
        .to_string(),
    )
    .unwrap();
    let usage_url = format!("{}/api/oauth/usage", usage.url());
    let text = ConfigBuilder::claude_only(&upstream.url(), dir.path())
        .quota(|q| {
            q.usage_api = Some(true);
            q.usage_api_url = Some(usage_url);
            q.credentials_file = Some(credentials.display().to_string());
        })
        .toml();
    let proxy = TestProxy::start_with(&text, dir).await;
    let snapshot = proxy
        .wait_quota("caution", |s| s["state"] == "caution")
        .await;
    assert_eq!(snapshot["percent"], 64.0);
    assert_eq!(snapshot["source"], "usage_api");
    assert_eq!(snapshot["window"], "5h");
    let seen = &usage.requests()[0];
    assert_eq!(seen.uri, "/api/oauth/usage");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-ant-oat01-usage-token")
    );
    assert_eq!(seen.header("anthropic-beta"), Some("oauth-2025-04-20"));
}
