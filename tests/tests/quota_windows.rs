//! The quota as Claude's real limits are: several windows at once, caps scoped to one
//! model family, extra usage. A Max account whose Opus week is used up keeps working on
//! Sonnet — the official SDK and Claude Code's CLI see no error — while a session 429
//! still makes everything critical, and a `queue` target does not hold a client for a
//! reset hours away.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use pai_e2e::clients::{run_claude, run_python};
use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::client;
use pai_e2e::mock::{anthropic_reply, MockUpstream, Recorded, Reply};
use pai_e2e::openai::agent_reply;
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};

const FALLBACK_KEY: &str = "fallback-key";

/// The headers of a Max account in its normal range, with the Opus week used up until
/// `opus_until` (epoch seconds) while that lies ahead.
fn max_account_headers(opus_until: i64) -> Vec<(String, String)> {
    let now = chrono::Utc::now().timestamp();
    let week = (now + 5 * 86_400).to_string();
    let opus_capped = now < opus_until;
    let mut headers = vec![
        (
            "anthropic-ratelimit-unified-status",
            if opus_capped {
                "allowed_warning"
            } else {
                "allowed"
            }
            .to_owned(),
        ),
        (
            "anthropic-ratelimit-unified-5h-status",
            "allowed".to_owned(),
        ),
        (
            "anthropic-ratelimit-unified-5h-utilization",
            "0.20".to_owned(),
        ),
        (
            "anthropic-ratelimit-unified-5h-reset",
            (now + 3 * 3600).to_string(),
        ),
        (
            "anthropic-ratelimit-unified-7d-status",
            "allowed".to_owned(),
        ),
        (
            "anthropic-ratelimit-unified-7d-utilization",
            "0.40".to_owned(),
        ),
        ("anthropic-ratelimit-unified-7d-reset", week.clone()),
        (
            "anthropic-ratelimit-unified-7d-sonnet-status",
            "allowed".to_owned(),
        ),
        (
            "anthropic-ratelimit-unified-7d-sonnet-utilization",
            "0.10".to_owned(),
        ),
        ("anthropic-ratelimit-unified-7d-sonnet-reset", week),
    ];
    if opus_capped {
        headers.extend([
            (
                "anthropic-ratelimit-unified-7d-opus-status",
                "rejected".to_owned(),
            ),
            (
                "anthropic-ratelimit-unified-7d-opus-utilization",
                "1.0".to_owned(),
            ),
            (
                "anthropic-ratelimit-unified-7d-opus-reset",
                opus_until.to_string(),
            ),
        ]);
    }
    headers
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// Anthropic (a mock) for a Max account whose Opus week is used up until `opus_until`:
/// Opus gets a 429 naming that window, every other model answers.
fn capped_anthropic(opus_until: Arc<AtomicI64>) -> impl Fn(&Recorded) -> Reply + Send + Sync {
    move |request| {
        let until = opus_until.load(Ordering::SeqCst);
        let mut headers = max_account_headers(until);
        let model = request.json()["model"].as_str().unwrap_or("").to_owned();
        let now = chrono::Utc::now().timestamp();
        if model.contains("opus") && now < until {
            headers.push((
                "anthropic-ratelimit-unified-representative-claim".into(),
                "seven_day_opus".into(),
            ));
            headers.push(("retry-after".into(), (until - now).to_string()));
            return Reply::Json {
                status: 429,
                headers,
                body: json!({"type": "error", "error": {"type": "rate_limit_error",
                    "message": "This request would exceed your account's rate limit for Opus."}}),
            };
        }
        anthropic_reply(request, &format!("answered by {model}")).with_headers(headers)
    }
}

struct Rig {
    proxy: TestProxy,
    claude: MockUpstream,
    _local: MockUpstream,
}

async fn rig(
    claude: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    edit: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> Rig {
    let claude = MockUpstream::start(claude).await;
    let local = MockUpstream::start(|req| agent_reply(req, "local model answer")).await;
    let dir = tempfile::tempdir().unwrap();
    let text = edit(ConfigBuilder::seed(
        &claude.url(),
        &local.url(),
        &local.url(),
        dir.path(),
    ))
    .toml();
    let proxy =
        TestProxy::start_with_env(&text, dir, &[("PAI_TEST_FALLBACK_KEY", FALLBACK_KEY)]).await;
    Rig {
        proxy,
        claude,
        _local: local,
    }
}

async fn ask(
    proxy: &TestProxy,
    model: &str,
    prompt: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = client()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .json(&json!({"model": model, "max_tokens": 100,
            "messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

fn models_asked(mock: &MockUpstream) -> Vec<String> {
    mock.requests()
        .iter()
        .filter(|r| r.uri.starts_with("/v1/messages"))
        .map(|r| r.json()["model"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn with_the_opus_week_used_up_complex_work_goes_to_sonnet_until_its_reset() {
    let opus_until = Arc::new(AtomicI64::new(chrono::Utc::now().timestamp() + 3));
    let rig = rig(capped_anthropic(opus_until.clone()), |c| c).await;

    // The first Opus request meets the cap and fails over to Sonnet within the request.
    let (status, headers, answer) =
        ask(&rig.proxy, "claude-opus-4-8", "design the architecture").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(headers["x-pai-route"], "claude:sonnet");
    assert_eq!(answer["content"][0]["text"], "answered by claude-sonnet-5");
    assert_eq!(
        models_asked(&rig.claude),
        ["claude-opus-4-8", "claude-sonnet-5"]
    );

    // The state stays normal (the shared windows are fine); Opus is capped, with reason.
    let health = rig.proxy.health().await;
    let quota = &health["quota"];
    assert_eq!(quota["state"], "normal", "{quota}");
    assert_eq!(quota["caps"][0]["family"], "opus");
    let labels: Vec<&str> = quota["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"Opus week") && labels.contains(&"5h") && labels.contains(&"week"),
        "{labels:?}"
    );

    // From now on Opus is skipped, not tried: straight to Sonnet, with the reason.
    let (status, headers, _) = ask(&rig.proxy, "claude-opus-4-8", "refactor across files").await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-pai-route"], "claude:sonnet");
    let skipped = headers["x-pai-skipped"].to_str().unwrap();
    assert!(skipped.contains("claude:opus: Opus week"), "{skipped}");
    assert_eq!(models_asked(&rig.claude).len(), 3, "no second Opus request");
    // Simple work goes where it always went.
    let (_, headers, _) = ask(&rig.proxy, "claude-haiku-4-5-20251001", "write a title").await;
    assert_eq!(headers["x-pai-route"], "claude:haiku");

    // The cap lifts at its reset, and Opus is back.
    rig.proxy
        .wait_quota("the Opus cap lifted", |q| {
            q["caps"].as_array().is_some_and(|c| c.is_empty())
        })
        .await;
    let (status, headers, answer) =
        ask(&rig.proxy, "claude-opus-4-8", "design the architecture").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(headers["x-pai-route"], "claude:opus");
}

#[tokio::test]
async fn a_session_429_still_makes_everything_critical() {
    let rig = rig(
        |request: &Recorded| {
            if request.json()["messages"][0]["content"] == "hit the session limit" {
                return Reply::status(
                    429,
                    &[
                        ("anthropic-ratelimit-unified-status", "rejected"),
                        ("anthropic-ratelimit-unified-representative-claim", "five_hour"),
                        ("anthropic-ratelimit-unified-5h-status", "rejected"),
                        ("anthropic-ratelimit-unified-5h-utilization", "1.0"),
                        ("retry-after", "3600"),
                    ],
                    json!({"type": "error", "error": {"type": "rate_limit_error", "message": "session limit"}}),
                );
            }
            anthropic_reply(request, "claude")
        },
        |c| c,
    )
    .await;
    let (status, _, _) = ask(&rig.proxy, "claude-sonnet-5", "hit the session limit").await;
    assert_eq!(status, 200, "the fallback answered it");
    let quota = rig
        .proxy
        .wait_quota("critical", |q| q["state"] == "critical")
        .await;
    assert!(
        quota["caps"].as_array().unwrap().is_empty(),
        "not a family cap: {quota}"
    );
    // Medium work now follows the critical row: the local model.
    let (_, headers, _) = ask(&rig.proxy, "claude-sonnet-5", "fix the failing test").await;
    assert_eq!(headers["x-pai-route"], "local");
}

/// Anthropic (a mock) for an account whose included quota is gone: every answer says
/// extra usage is being spent.
fn overage_anthropic(request: &Recorded) -> Reply {
    anthropic_reply(request, "billed").with_headers(
        [
            ("anthropic-ratelimit-unified-status", "allowed"),
            (
                "anthropic-ratelimit-unified-representative-claim",
                "overage",
            ),
            ("anthropic-ratelimit-unified-overage-in-use", "true"),
            ("anthropic-ratelimit-unified-overage-status", "allowed"),
            ("anthropic-ratelimit-unified-overage-utilization", "0.12"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    )
}

#[tokio::test]
async fn extra_usage_routes_as_critical_unless_the_config_allows_it() {
    let billed = rig(overage_anthropic, |c| c).await;
    let (status, _, _) = ask(&billed.proxy, "claude-sonnet-5", "fix the failing test").await;
    assert_eq!(status, 200);
    let quota = billed
        .proxy
        .wait_quota("critical", |q| q["state"] == "critical")
        .await;
    assert!(
        quota["reason"].as_str().unwrap().contains("extra usage"),
        "{quota}"
    );
    assert_eq!(quota["overage"]["in_use"], true);
    let (_, headers, _) = ask(&billed.proxy, "claude-sonnet-5", "fix the failing test").await;
    assert_eq!(
        headers["x-pai-route"], "local",
        "no billed Claude while not allowed"
    );

    let allowed = rig(overage_anthropic, |c| {
        c.quota(|q| q.allow_extra_usage = Some(true))
    })
    .await;
    ask(&allowed.proxy, "claude-sonnet-5", "fix the failing test").await;
    let quota = allowed
        .proxy
        .wait_quota("extra usage seen", |q| q["overage"]["in_use"] == true)
        .await;
    assert_ne!(quota["state"], "critical", "{quota}");
    let (_, headers, _) = ask(&allowed.proxy, "claude-sonnet-5", "fix the failing test").await;
    assert_eq!(headers["x-pai-route"], "claude:sonnet");
}

#[tokio::test]
async fn a_queue_target_does_not_hold_a_client_for_a_reset_hours_away() {
    let dashboard = MockUpstream::start(|_| {
        let resets_at = (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339();
        Reply::json(json!({"usage_percent": 95, "resets_at": resets_at}))
    })
    .await;
    let dashboard_url = dashboard.url();
    let rig = rig(
        |req: &Recorded| anthropic_reply(req, "claude"),
        move |c| {
            c.dashboard(&dashboard_url)
                .queue(|q| q.max_wait_secs = Some(300))
        },
    )
    .await;
    rig.proxy
        .wait_quota("critical", |q| q["state"] == "critical")
        .await;
    // Complex work in critical: [queue, local]. The quota is back in hours, not within
    // max_wait_secs: the local model answers now, and says why it did not wait.
    let (status, headers, answer) =
        ask(&rig.proxy, "claude-opus-4-8", "design the architecture").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(headers["x-pai-route"], "local");
    let skipped = headers["x-pai-skipped"].to_str().unwrap();
    assert!(skipped.contains("longer than max_wait_secs"), "{skipped}");
    assert_eq!(rig.proxy.health().await["queue_waiting"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_and_claude_code_keep_working_on_sonnet_with_the_opus_cap_hit() {
    let opus_until = Arc::new(AtomicI64::new(chrono::Utc::now().timestamp() + 3 * 86_400));
    let rig = rig(capped_anthropic(opus_until), |c| c).await;
    let base = format!("http://{}", rig.proxy.addr());

    let output = run_python("sdk_capped.py", &[&base]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["errors"], json!([]), "{seen}");
    assert_eq!(seen["answers"].as_array().unwrap().len(), 6);
    for answer in seen["answers"].as_array().unwrap() {
        assert_eq!(answer["model"], "claude-sonnet-5", "{seen}");
        assert_eq!(answer["stop_reason"], "end_turn");
    }

    let output = run_claude(
        &base,
        "design the architecture of a plugin system",
        &["--model", "claude-opus-4-8"],
    )
    .await;
    assert!(
        output.status.success(),
        "claude failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["is_error"], false, "{result}");
    assert!(
        result["result"]
            .as_str()
            .unwrap()
            .contains("answered by claude-sonnet-5"),
        "{result}"
    );
}
