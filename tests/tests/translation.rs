//! What reaches a local model through the OpenAI-compatible translation, end to end: a
//! screenshot in the history is counted as an image (the session still fits a 32k
//! window) and reaches a vision model as an image; Claude Code's title chore asks for
//! its JSON schema; the model's reasoning comes back as thinking when it was asked for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::client;
use pai_e2e::mock::{MockUpstream, Reply};
use pai_e2e::openai::agent_reply;
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};

async fn local_only(local: &MockUpstream, context: u32) -> TestProxy {
    let dir = tempfile::tempdir().unwrap();
    let text = ConfigBuilder::new(dir.path())
        .claude("http://127.0.0.1:9")
        .openai("local", &format!("{}/v1", local.url()), |p| {
            p.model = Some("qwen-vl".to_owned());
            p.context_window = Some(context);
        })
        .everywhere(&["local"])
        .toml();
    TestProxy::start_with(&text, dir).await
}

fn screenshot() -> String {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend_from_slice(&1440u32.to_be_bytes());
    png.extend_from_slice(&900u32.to_be_bytes());
    png.resize(300_000, 1);
    base64::engine::general_purpose::STANDARD.encode(png)
}

/// The latest chat request the local server received.
fn last_chat(local: &MockUpstream) -> Value {
    local
        .requests()
        .into_iter()
        .rfind(|r| r.uri.ends_with("/chat/completions"))
        .unwrap()
        .json()
}

async fn send(proxy: &TestProxy, body: &Value) -> (u16, Value) {
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_screenshot_in_the_history_still_fits_and_reaches_a_vision_model_as_an_image() {
    let local = MockUpstream::start(|req| agent_reply(req, "I see the window")).await;
    let proxy = local_only(&local, 32_768).await;
    let data = screenshot();
    let body = json!({"model": "claude-opus-5-5", "max_tokens": 200,
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "what does the screenshot show?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/s.png"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}]}]}]});
    let (status, answer) = send(&proxy, &body).await;
    assert_eq!(
        status, 200,
        "a 300 KB screenshot is ~1,700 tokens, not ~88k: {answer}"
    );
    let sent = last_chat(&local);
    let messages = sent["messages"].as_array().unwrap();
    let tool = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert!(tool["content"]
        .as_str()
        .unwrap()
        .contains("see the next message"));
    let image = messages
        .iter()
        .filter(|m| m["role"] == "user")
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .find(|p| p["type"] == "image_url")
        .expect("the image follows the tool result");
    assert!(image["image_url"]["url"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,iVBOR"));
}

#[tokio::test]
async fn the_title_chore_asks_for_its_schema_and_reasoning_comes_back_as_thinking() {
    let local = MockUpstream::start(|req| {
        let body = req.json();
        let text = if body["response_format"]["type"] == "json_schema" {
            "{\"title\": \"README summary\"}"
        } else {
            "plain"
        };
        Reply::json(
            json!({"id": "c1", "object": "chat.completion", "model": "qwen",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                "content": text, "reasoning_content": "The session is about the README."}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 8,
                "prompt_tokens_details": {"cached_tokens": 32}}}),
        )
    })
    .await;
    let proxy = local_only(&local, 200_000).await;
    let path =
        pai_e2e::binary::repo_root().join("tests/fixtures/claude-code-2.1.332-title-request.json");
    let mut title: Value = serde_json::from_str::<Value>(&std::fs::read_to_string(path).unwrap())
        .unwrap()["body"]
        .clone();
    title["stream"] = json!(false);
    let (status, answer) = send(&proxy, &title).await;
    assert_eq!(status, 200, "{answer}");
    let sent = last_chat(&local);
    assert_eq!(
        sent["response_format"]["json_schema"]["schema"]["required"],
        json!(["title"])
    );
    assert_eq!(
        answer["content"],
        json!([{"type": "text", "text": "{\"title\": \"README summary\"}"}]),
        "no thinking was asked"
    );
    assert_eq!(answer["usage"]["cache_read_input_tokens"], 32);
    assert_eq!(answer["usage"]["input_tokens"], 8);

    let mut thinking = title.clone();
    thinking["thinking"] = json!({"type": "adaptive"});
    let (_, answer) = send(&proxy, &thinking).await;
    assert_eq!(
        answer["content"][0],
        json!({"type": "thinking", "thinking": "The session is about the README.", "signature": ""})
    );
}
