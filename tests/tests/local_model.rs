//! A real OpenAI-compatible server, not a mock: llama.cpp's server with SmolLM2-135M,
//! reached through the proxy both as an `openai` provider (translated) and as an
//! `anthropic` provider (its own `/v1/messages`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pai_e2e::config::ConfigBuilder;
use pai_e2e::llama::LlamaServer;
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};

/// Claude (unreachable here), and llama.cpp twice: as `llama` (OpenAI-compatible,
/// translated, the loaded model) and as `llama-native` (its own `/v1/messages`).
fn config(llama: &str, dir: &std::path::Path) -> String {
    ConfigBuilder::new(dir)
        .claude("http://127.0.0.1:9")
        .openai("llama", &format!("{llama}/v1"), |p| {
            p.model = Some("auto".to_owned())
        })
        .anthropic("llama-native", llama, |p| {
            p.model = Some("smollm2".to_owned())
        })
        .matrix(&[
            ("normal", [&["llama"], &["llama-native"], &["llama"]]),
            ("caution", [&["llama"], &["llama-native"], &["llama"]]),
            ("warning", [&["llama"], &["llama-native"], &["llama"]]),
            ("critical", [&["llama"], &["llama-native"], &["llama"]]),
        ])
        .toml()
}

/// Event names of an SSE body, in order.
fn events(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(str::to_owned)
        .collect()
}

/// The text of a streamed message.
fn streamed_text(body: &str) -> String {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["type"] == "content_block_delta")
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_answers_through_both_provider_modes() {
    let llama = LlamaServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&llama.url(), dir.path());
    let proxy = TestProxy::start_with(&text, dir).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    for (complexity, route) in [("simple", "llama"), ("medium", "llama-native")] {
        let request = |stream: bool| {
            client
                .post(proxy.url("/v1/messages"))
                .header("x-api-key", "sk-ant-never-sent-to-llama")
                .header("x-pai-complexity", complexity)
                .json(&json!({"model": "claude-sonnet-5", "max_tokens": 12, "stream": stream,
                    "system": [{"type": "text", "text": "You are brief.", "cache_control": {"type": "ephemeral"}}],
                    "messages": [{"role": "user", "content": "Say hello."}]}))
                .send()
        };
        let response = request(false).await.unwrap();
        assert_eq!(response.status(), 200, "{route}");
        assert_eq!(response.headers()["x-pai-route"], route);
        let message: Value = response.json().await.unwrap();
        assert_eq!(message["type"], "message", "{route}: {message}");
        assert_eq!(message["role"], "assistant");
        let text = message["content"][0]["text"].as_str().unwrap_or("");
        assert!(
            !text.trim().is_empty(),
            "{route} answered nothing: {message}"
        );
        assert!(
            ["end_turn", "max_tokens"].contains(&message["stop_reason"].as_str().unwrap()),
            "{message}"
        );
        assert!(message["usage"]["output_tokens"].as_u64().unwrap() > 0);

        let response = request(true).await.unwrap();
        assert_eq!(response.status(), 200, "{route} stream");
        let body = response.text().await.unwrap();
        let names = events(&body);
        assert_eq!(
            names.first().map(String::as_str),
            Some("message_start"),
            "{route}: {body}"
        );
        assert_eq!(
            names.last().map(String::as_str),
            Some("message_stop"),
            "{route}: {body}"
        );
        assert!(names.iter().any(|n| n == "message_delta"));
        assert!(
            !streamed_text(&body).trim().is_empty(),
            "{route} streamed nothing: {body}"
        );
    }

    // count_tokens: estimated locally for the OpenAI route, never 0.
    let counted: Value = client
        .post(proxy.url("/v1/messages/count_tokens"))
        .header("x-pai-complexity", "simple")
        .json(&json!({"model": "claude-sonnet-5", "messages": [{"role": "user", "content": "Say hello."}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(counted["input_tokens"].as_u64().unwrap() > 0);

    // The health check found the loaded model behind model = "auto".
    let health: Value = client
        .get(proxy.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let llama_health = health["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "llama")
        .unwrap()
        .clone();
    assert!(
        llama_health["models"]["loaded"].is_string(),
        "{llama_health}"
    );
}

/// A session's turns as Claude Code sends them: its attribution line first in the system
/// prompt, different every request (`cch`), then the same long prompt.
fn turn(cch: &str, question: &str) -> Value {
    json!({"model": "claude-opus-5-5", "max_tokens": 8, "stream": false,
        "system": [
            {"type": "text", "text": format!("x-anthropic-billing-header: cc_version=2.1.332.0b8; cc_entrypoint=cli; cch={cch};")},
            {"type": "text", "text": "You are a careful assistant. ".repeat(40), "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [{"role": "user", "content": question}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_reuses_its_prompt_cache_across_a_sessions_turns() {
    let llama = LlamaServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&llama.url(), dir.path());
    let proxy = TestProxy::start_with(&text, dir).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut cached = Vec::new();
    for (cch, question) in [("2efee", "Say one word."), ("9a1c3", "Say another word.")] {
        let answer: Value = client
            .post(proxy.url("/v1/messages"))
            .header("x-pai-complexity", "simple")
            .json(&turn(cch, question))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        cached.push(
            answer["usage"]["cache_read_input_tokens"]
                .as_u64()
                .unwrap_or(0),
        );
    }
    // The system prompt is byte-identical from the first token: llama.cpp reads it from
    // its cache on the second turn (with the attribution line first, nothing matched).
    assert!(cached[1] > 100, "cached tokens per turn: {cached:?}");
}
