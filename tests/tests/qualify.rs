//! `pai-orchestrator qualify`: the exam that tells whether a provider can drive Claude
//! Code's tools, run by the binary against a capable mock and a real small model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pai_e2e::binary::binary_path;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::llama::LlamaServer;
use pai_e2e::mock::{MockUpstream, Reply};
use serde_json::{json, Value};

/// A tool-capable model: calls get_weather when offered it, then reads the result.
async fn capable_model() -> MockUpstream {
    MockUpstream::start(|req| {
        if req.uri.ends_with("/models") {
            return Reply::json(json!({"data": [{"id": "capable"}]}));
        }
        let body = req.json();
        let messages = body["messages"].as_array().unwrap();
        let last = messages.last().unwrap();
        let message = if last["role"] == "tool" {
            json!({"role": "assistant", "content": format!("It is {}.", last["content"].as_str().unwrap())})
        } else if body["tools"].is_array() {
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_w", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})
        } else {
            json!({"role": "assistant", "content": "READY"})
        };
        Reply::json(json!({"id": "c", "object": "chat.completion", "model": "capable",
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2}}))
    })
    .await
}

/// Anthropic's API and the `candidate` under examination (`model = "auto"`), with the
/// context window it declares, if any.
fn config(url: &str, context_window: Option<u32>) -> String {
    let dir = std::env::temp_dir();
    ConfigBuilder::new(&dir)
        .anthropic("claude", "https://api.anthropic.com", |_| {})
        .openai("candidate", &format!("{url}/v1"), |p| {
            p.model = Some("auto".to_owned());
            p.context_window = context_window;
        })
        .matrix(&[
            ("normal", [&["candidate"], &["claude"], &["claude"]]),
            ("caution", [&["candidate"], &["claude"], &["claude"]]),
            ("warning", [&["candidate"], &["candidate"], &["candidate"]]),
            ("critical", [&["candidate"], &["candidate"], &["queue"]]),
        ])
        .toml()
}

async fn run_qualify(config_text: &str) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_text).unwrap();
    let run = |json: bool| {
        let mut command = tokio::process::Command::new(binary_path());
        command
            .args(["qualify", "candidate", "--config"])
            .arg(&path)
            .arg("--data-dir")
            .arg(dir.path().join("data"));
        if json {
            command.arg("--json");
        }
        command.output()
    };
    let output = run(true).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let readable = run(false).await.unwrap();
    (report, String::from_utf8(readable.stdout).unwrap())
}

#[tokio::test]
async fn a_tool_capable_model_with_a_large_context_is_fit_for_agentic_work() {
    let model = capable_model().await;
    let (report, text) = run_qualify(&config(&model.url(), Some(131_072))).await;
    assert_eq!(report["verdict"], "agentic", "{report}");
    assert_eq!(report["model"], "auto");
    let checks: Vec<(&str, bool)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["passed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        checks,
        [
            ("chat", true),
            ("tool call", true),
            ("tool result", true),
            ("context", true)
        ]
    );
    assert!(
        text.starts_with("candidate (auto): fit for agentic work"),
        "{text}"
    );
}

#[tokio::test]
async fn a_small_context_makes_a_capable_model_chat_only() {
    let model = capable_model().await;
    let (report, _) = run_qualify(&config(&model.url(), Some(8192))).await;
    assert_eq!(report["verdict"], "chat-only");
    assert!(report["reason"]
        .as_str()
        .unwrap()
        .contains("context: 8192 tokens"));
}

#[tokio::test]
async fn an_unreachable_provider_is_unfit() {
    let (report, _) = run_qualify(&config("http://127.0.0.1:9", None)).await;
    assert_eq!(report["verdict"], "unfit");
    assert!(
        report["reason"].as_str().unwrap().contains("unreachable"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_135m_model_that_cannot_call_tools_is_chat_only() {
    let llama = LlamaServer::start().await;
    let (report, text) = run_qualify(&config(&llama.url(), None)).await;
    assert_eq!(report["verdict"], "chat-only", "{text}");
    assert_eq!(report["checks"][0]["passed"], true, "{text}");
    assert_eq!(report["checks"][1]["passed"], false, "{text}");
}
