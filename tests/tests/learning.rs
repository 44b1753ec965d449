//! Learning from constraints: a local model whose answers do not work — tool calls Claude
//! Code cannot run — fails over where nothing reached the client yet, and is taken off
//! that kind of work with the evidence (`/api/stats`, the event the settings page and
//! the tray's notification follow), while other work still goes to it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::client;
use pai_e2e::mock::{MockUpstream, Recorded, Reply};
use pai_e2e::openai::{agent_reply, tool_call_stream};
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};

const FALLBACK_KEY: &str = "fallback-key";

/// A local model that, asked to act, calls a tool the request did not offer.
fn confused_local(req: &Recorded) -> Reply {
    let body = req.json();
    if req.uri.ends_with("/models") || body["tools"].is_null() {
        return agent_reply(req, "a plain answer");
    }
    if body["stream"] == true {
        return Reply::sse(tool_call_stream("Shell", &json!({"cmd": "ls"})));
    }
    Reply::json(
        json!({"id": "chatcmpl-x", "object": "chat.completion", "model": "local-model",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
        "content": null, "tool_calls": [{"id": "call_x", "type": "function",
        "function": {"name": "Shell", "arguments": "{\"cmd\":\"ls\"}"}}]}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 7}}),
    )
}

async fn rig() -> (TestProxy, MockUpstream, MockUpstream, MockUpstream) {
    let claude = MockUpstream::anthropic("claude").await;
    let local = MockUpstream::start(confused_local).await;
    let fallback = MockUpstream::start(|req| agent_reply(req, "from the fallback")).await;
    let percent = Arc::new(AtomicU64::new(80));
    let dashboard = MockUpstream::start(move |_| {
        Reply::json(json!({"usage_percent": percent.load(Ordering::SeqCst)}))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = ConfigBuilder::seed(&claude.url(), &local.url(), &fallback.url(), dir.path())
        .dashboard(&dashboard.url())
        .toml();
    let proxy =
        TestProxy::start_with_env(&text, dir, &[("PAI_TEST_FALLBACK_KEY", FALLBACK_KEY)]).await;
    proxy
        .wait_quota("warning", |q| q["state"] == "warning")
        .await;
    (proxy, local, fallback, dashboard)
}

fn ask(prompt: &str, stream: bool) -> Value {
    json!({"model": "claude-opus-5-5", "max_tokens": 500, "stream": stream,
        "tools": [{"name": "Bash", "input_schema": {"type": "object",
            "properties": {"command": {"type": "string"}}, "required": ["command"]}}],
        "messages": [{"role": "user", "content": prompt}]})
}

async fn send(proxy: &TestProxy, body: &Value) -> reqwest::Response {
    client()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tool_call_that_cannot_run_fails_over_before_the_client_sees_it() {
    let (proxy, _local, fallback, _dashboard) = rig().await;
    let response = send(&proxy, &ask("fix the failing test", false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-pai-route"], "fallback");
    let skipped = response.headers()["x-pai-skipped"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        skipped.contains("local: its answer cannot be used: it called \"Shell\", a tool the request does not offer"),
        "{skipped}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "from the fallback");
    assert_eq!(
        fallback
            .requests()
            .iter()
            .filter(|r| r.uri.ends_with("/chat/completions"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_local_model_whose_tool_calls_do_not_work_is_taken_off_that_work_with_the_evidence() {
    let (proxy, _local, _fallback, _dashboard) = rig().await;
    let mut events = proxy.events().await;
    // Streams: once the first event is out there is no failing over; the answers are
    // judged when they have passed.
    for _ in 0..4 {
        let response = send(&proxy, &ask("fix the failing test", true)).await;
        assert_eq!(response.headers()["x-pai-route"], "local");
        assert!(response.text().await.unwrap().contains("Shell"));
    }
    let event = events
        .next_where("a demotion", |e| e["type"] == "demoted")
        .await;
    let why = event["demotion"]["why"].as_str().unwrap();
    assert_eq!(
        why,
        "local taken off medium work: 4 of its last 4 answers had invalid tool calls"
    );
    let (_, stats) = proxy.admin("GET", "/api/stats", None).await;
    let row = stats["live"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["provider"] == "local" && r["complexity"] == "medium")
        .unwrap()
        .clone();
    assert_eq!(row["recent_flawed"], 4);
    assert_eq!(row["quality_demotion"], why);
    // Medium work goes to the fallback now; simple work still goes local.
    let medium = send(&proxy, &ask("fix the failing test", true)).await;
    assert_eq!(medium.headers()["x-pai-route"], "fallback");
    let simple = send(&proxy, &ask("summarize the README", false)).await;
    assert_eq!(
        simple.headers()["x-pai-route"],
        "fallback",
        "the non-stream call fails over"
    );
    let plain = send(
        &proxy,
        &json!({"model": "claude-opus-5-5", "max_tokens": 50,
        "messages": [{"role": "user", "content": "summarize the README"}]}),
    )
    .await;
    assert_eq!(
        plain.headers()["x-pai-route"],
        "local",
        "simple work without tools stays local"
    );
}
