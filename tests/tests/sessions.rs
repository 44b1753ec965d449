//! A Claude Code session as the proxy follows it: a tool loop finishes on the target
//! that started it, even when the quota moves in between; a session's work does not flip
//! between Claude and the local model on one request's classification; every switch is
//! counted in `/api/stats`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pai_e2e::anthropic;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::client;
use pai_e2e::mock::{MockUpstream, Reply};
use pai_e2e::openai::agent_reply;
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};

const SESSION: &str = "4f1c2d3e-0000-4000-8000-000000000001";

struct Rig {
    percent: Arc<AtomicU64>,
    _dashboard: MockUpstream,
    claude: MockUpstream,
    local: MockUpstream,
    proxy: TestProxy,
}

/// Claude answers every fresh prompt with a Bash tool call, and a tool result with text.
async fn rig() -> Rig {
    let claude = MockUpstream::start(|req| {
        let body = req.json();
        let answering = body["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .to_string();
        if answering.contains("tool_result") {
            return pai_e2e::mock::anthropic_reply(req, "done on claude");
        }
        Reply::sse(anthropic::bash_tool_use_stream(
            body["model"].as_str().unwrap(),
            "ls",
        ))
    })
    .await;
    let local = MockUpstream::start(|req| agent_reply(req, "done locally")).await;
    let percent = Arc::new(AtomicU64::new(60));
    let reading = percent.clone();
    let dashboard = MockUpstream::start(move |_| {
        Reply::json(json!({"usage_percent": reading.load(Ordering::SeqCst)}))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = ConfigBuilder::seed(&claude.url(), &local.url(), &local.url(), dir.path())
        .dashboard(&dashboard.url())
        .toml();
    let proxy = TestProxy::start_with(&text, dir).await;
    Rig {
        percent,
        _dashboard: dashboard,
        claude,
        local,
        proxy,
    }
}

impl Rig {
    async fn state(&self, percent: u64, state: &str) {
        self.percent.store(percent, Ordering::SeqCst);
        self.proxy
            .wait_quota(state, |q| {
                q["state"] == state && q["percent"] == percent as f64
            })
            .await;
    }

    async fn send(&self, messages: &Value) -> (String, String) {
        let response = client()
            .post(self.proxy.url("/v1/messages?beta=true"))
            .header("x-api-key", "sk-ant-test")
            .header("x-claude-code-session-id", SESSION)
            .json(
                &json!({"model": "claude-opus-5-5", "max_tokens": 1000, "stream": true,
                "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
                "messages": messages}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let route = response.headers()["x-pai-route"]
            .to_str()
            .unwrap()
            .to_owned();
        (route, response.text().await.unwrap())
    }
}

fn prompt(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[tokio::test]
async fn a_tool_loop_finishes_where_it_began_even_when_the_quota_moves() {
    let rig = rig().await;
    rig.state(60, "caution").await;
    let mut messages = vec![prompt("fix the failing test in tests/test_api.py")];
    let (route, text) = rig.send(&json!(messages)).await;
    assert_eq!(route, "claude:sonnet", "caution: medium work on Sonnet");
    assert!(text.contains("toolu_mock_01"));

    // The quota reaches warning (everything local) while the tool runs.
    rig.state(80, "warning").await;
    messages.push(json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_mock_01", "name": "Bash", "input": {"command": "ls"}}]}));
    messages.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_mock_01", "content": "tests/test_api.py"}]}));
    let local_before = rig.local.requests().len();
    let (route, text) = rig.send(&json!(messages)).await;
    assert_eq!(
        route, "claude:sonnet",
        "the tool result goes back to the model that asked for it"
    );
    assert!(text.contains("done"), "{text}");
    assert_eq!(rig.local.requests().len(), local_before);

    // A new prompt is new work: warning sends it local, and that is a switch.
    let (route, _) = rig.send(&json!([prompt("summarize the README")])).await;
    assert_eq!(route, "local");
    let (_, stats) = rig.proxy.admin("GET", "/api/stats", None).await;
    let session = stats["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == SESSION)
        .unwrap();
    assert_eq!(session["requests"], 3);
    assert_eq!(session["switches"], 1, "{stats}");
    assert_eq!(stats["switches"], 1);
    assert!(rig.claude.requests().len() >= 2);
}

#[tokio::test]
async fn one_simpler_request_does_not_move_a_session_to_the_local_model() {
    let rig = rig().await;
    rig.state(60, "caution").await;
    let (route, _) = rig.send(&json!([prompt("fix the failing test")])).await;
    assert_eq!(route, "claude:sonnet");
    // One simple question in a medium session: it stays where it is.
    let (route, _) = rig
        .send(&json!([prompt("what does this function return?")]))
        .await;
    assert_eq!(
        route, "claude:sonnet",
        "classification noise does not switch the session"
    );
    // Asked again: the session's work is simple now, and the local model takes it.
    let (route, _) = rig
        .send(&json!([prompt("where is the config read?")]))
        .await;
    assert_eq!(route, "local");
}
