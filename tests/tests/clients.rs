//! Real clients through the built binary: the official Anthropic Python SDK and Claude
//! Code itself, against a mock Anthropic upstream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pai_e2e::anthropic;
use pai_e2e::binary::Running;
use pai_e2e::clients::{run_claude, run_python};
use pai_e2e::mock::{anthropic_reply, MockUpstream, Recorded, Reply};
use serde_json::{json, Value};

async fn start_proxy(upstream: &MockUpstream) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        pai_e2e::config::ConfigBuilder::claude_only(&upstream.url(), dir.path()).toml(),
    )
    .unwrap();
    let running = Running::start(&config, &dir.path().join("data"), &[]);
    (running, dir)
}

fn last_user_text(req: &Recorded) -> String {
    let body = req.json();
    let last = body["messages"].as_array().and_then(|m| m.last()).cloned();
    match last.map(|m| m["content"].clone()) {
        Some(Value::String(s)) => s,
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

#[tokio::test]
async fn anthropic_python_sdk_through_the_binary() {
    let upstream = MockUpstream::start(|req| {
        if last_user_text(req) == "rate limit me" {
            return Reply::status(
                429,
                &[("retry-after", "30")],
                json!({"type":"error","error":{"type":"rate_limit_error","message":"rate limited"}}),
            );
        }
        anthropic_reply(req, "Hi there, from the mock upstream!")
    })
    .await;
    let (running, _dir) = start_proxy(&upstream).await;
    let output = run_python("sdk_client.py", &[&format!("http://{}", running.addr)]).await;
    assert!(
        output.status.success(),
        "sdk_client.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["plain"]["text"], "Hi there, from the mock upstream!");
    assert_eq!(out["plain"]["stop_reason"], "end_turn");
    assert_eq!(out["plain"]["usage"]["output"], 9);
    assert_eq!(out["stream"]["text"], "Hi there, from the mock upstream!");
    assert_eq!(out["stream"]["stop_reason"], "end_turn");
    // The signature went through byte for byte, unusual characters included.
    assert_eq!(
        out["stream"]["thinking_signature"],
        "EqQBCkYIARgCIkD+/sig==\u{2028}ÿ"
    );
    let events: Vec<&str> = out["stream"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
    assert!(events.contains(&"message_delta"));
    assert_eq!(out["count_tokens"], 42);
    assert_eq!(out["rate_limited"]["status"], 429);
    assert_eq!(out["rate_limited"]["type"], "rate_limit_error");

    let seen = upstream.requests();
    // The SDK's own headers and its key went through.
    assert!(seen.iter().all(|r| r.header("anthropic-version").is_some()));
    assert!(seen
        .iter()
        .all(|r| r.header("x-api-key") == Some("sk-ant-test")
            || r.header("authorization") == Some("Bearer sk-ant-test")));
    assert!(seen
        .iter()
        .any(|r| r.uri.starts_with("/v1/messages/count_tokens")));
}

fn is_main_request(req: &Recorded) -> bool {
    req.uri.starts_with("/v1/messages?") || req.uri == "/v1/messages"
}

#[tokio::test]
async fn claude_code_answers_through_the_proxy() {
    let upstream = MockUpstream::start(|req| anthropic_reply(req, "Hi! PAI proxy reply.")).await;
    let (running, _dir) = start_proxy(&upstream).await;
    let output = run_claude(&format!("http://{}", running.addr), "say hi", &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "claude failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(result["result"], "Hi! PAI proxy reply.");

    let seen = upstream.requests();
    let main: Vec<&Recorded> = seen.iter().filter(|r| is_main_request(r)).collect();
    assert!(!main.is_empty(), "no Messages request reached the upstream");
    let body = main.last().unwrap().json();
    assert!(
        body["tools"].as_array().is_some_and(|t| t.len() > 5),
        "Claude Code sends its tools"
    );
    assert_eq!(
        main.last().unwrap().header("x-api-key"),
        Some("sk-ant-test")
    );
    assert!(main
        .last()
        .unwrap()
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("claude-cli/")));
}

#[tokio::test]
async fn claude_code_completes_a_bash_tool_round_trip() {
    let upstream = MockUpstream::start(|req| {
        if !is_main_request(req) || req.json()["stream"] != true {
            return anthropic_reply(req, "ok");
        }
        let body = req.json();
        let tool_result = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_array())
            .and_then(|blocks| blocks.iter().find(|b| b["type"] == "tool_result"))
            .cloned();
        match tool_result {
            Some(result) => {
                let text = result.to_string();
                let answer = if text.contains("pai-tool-ok") {
                    "The command printed pai-tool-ok."
                } else {
                    "The tool result was missing."
                };
                Reply::sse(anthropic::text_stream("claude-sonnet-5", answer))
            }
            None => Reply::sse(anthropic::bash_tool_use_stream(
                "claude-sonnet-5",
                "echo pai-tool-ok",
            )),
        }
    })
    .await;
    let (running, _dir) = start_proxy(&upstream).await;
    let output = run_claude(
        &format!("http://{}", running.addr),
        "run echo pai-tool-ok",
        &["--allowedTools", "Bash"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "claude failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        result["result"], "The command printed pai-tool-ok.",
        "{result}"
    );
    let seen = upstream.requests();
    let follow_up = seen
        .iter()
        .filter(|r| is_main_request(r))
        .find(|r| String::from_utf8_lossy(&r.body).contains("\"tool_result\""))
        .expect("the tool_result follow-up reached the upstream");
    assert!(String::from_utf8_lossy(&follow_up.body).contains("toolu_mock_01"));
}
