//! Claude Code as users run it today (2.1.332, the Claude 5.5 generation), through the
//! default tiers, against a mock of Anthropic's API that refuses what the real one
//! refuses (tests/src/claude_api.rs): the user's model reaches Anthropic as asked, a
//! capped Opus week steps down to Sonnet 5.5 with no 400, a conversation that visited the
//! local model comes back to Opus 5.5 with no 400, and WebSearch and auto mode stay on
//! Claude while ordinary work follows the matrix. Requests are Claude Code's own,
//! recorded (tests/fixtures/claude-code-2.1.332-*.json); the CLI itself runs too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pai_e2e::claude_api::ClaudeApi;
use pai_e2e::clients::run_claude;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::client;
use pai_e2e::mock::{MockUpstream, Reply};
use pai_e2e::openai::agent_reply;
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let path = pai_e2e::binary::repo_root().join(format!(
        "tests/fixtures/claude-code-2.1.332-{name}-request.json"
    ));
    serde_json::from_str::<Value>(&std::fs::read_to_string(path).unwrap()).unwrap()["body"].clone()
}

struct Rig {
    claude: ClaudeApi,
    local: MockUpstream,
    percent: Arc<AtomicU64>,
    _dashboard: MockUpstream,
    proxy: TestProxy,
}

/// The seed's matrix, the default tiers of today, the model list read from Anthropic,
/// and a dashboard whose reading the test sets.
async fn rig() -> Rig {
    let claude = ClaudeApi::start().await;
    let local = MockUpstream::start(|req| agent_reply(req, "local answer")).await;
    let percent = Arc::new(AtomicU64::new(10));
    let reading = percent.clone();
    let dashboard = MockUpstream::start(move |_| {
        Reply::json(json!({"usage_percent": reading.load(Ordering::SeqCst)}))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = ConfigBuilder::seed(&claude.url(), &local.url(), &local.url(), dir.path())
        .provider_set(
            "claude",
            json!({"discover_models": true, "tiers": {"haiku": "claude-haiku-5-5",
                "sonnet": "claude-sonnet-5-5", "opus": "claude-opus-5-5", "fable": "claude-fable-5-2"}}),
        )
        .dashboard(&dashboard.url())
        .toml();
    let proxy = TestProxy::start_with(&text, dir).await;
    Rig {
        claude,
        local,
        percent,
        _dashboard: dashboard,
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

    async fn send(&self, body: &Value) -> (u16, reqwest::header::HeaderMap, String) {
        let response = client()
            .post(self.proxy.url("/v1/messages?beta=true"))
            .header("x-api-key", "sk-ant-test")
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    }

    fn last_to_claude(&self) -> Value {
        self.claude.messages().last().unwrap().json()
    }
}

/// Claude Code's main-loop request asking `prompt`, without streaming, on `model`.
fn main_loop(model: &str, prompt: &str) -> Value {
    let mut body = fixture("main");
    body["model"] = json!(model);
    body["stream"] = json!(false);
    let messages = body["messages"].as_array_mut().unwrap();
    let first_user = &mut messages[0]["content"];
    let blocks = first_user.as_array_mut().unwrap();
    let last = blocks.len() - 1;
    blocks[last]["text"] = json!(prompt);
    body
}

#[tokio::test]
async fn in_the_normal_state_the_users_model_reaches_anthropic_as_asked() {
    let rig = rig().await;
    rig.state(10, "normal").await;
    for model in ["claude-opus-5-5", "claude-fable-5-2"] {
        for prompt in ["say hi", "design the architecture of a plugin system"] {
            let (status, headers, text) = rig.send(&main_loop(model, prompt)).await;
            assert_eq!(status, 200, "{text}");
            assert_eq!(rig.last_to_claude()["model"], model, "{prompt}");
            assert!(headers.get("x-pai-model-change").is_none(), "{headers:?}");
        }
    }
    // A Sonnet session's complex work goes up to the Opus tier, and says so.
    let (status, headers, _) = rig
        .send(&main_loop(
            "claude-sonnet-5-5",
            "design the architecture of a plugin system",
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(rig.last_to_claude()["model"], "claude-opus-5-5");
    let change = headers["x-pai-model-change"].to_str().unwrap();
    assert!(
        change.starts_with("Sonnet 5.5 -> Opus 5.5: complex work goes to claude:opus"),
        "{change}"
    );
    // Claude Code's own recorded request, streamed as it sends it: byte for byte.
    let (status, _, text) = rig.send(&fixture("main")).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("answered by claude-opus-5-5"));
    let sent = rig.claude.messages().last().unwrap().body.clone();
    assert_eq!(
        sent,
        serde_json::to_vec(&fixture("main")).unwrap(),
        "unchanged bytes"
    );
}

#[tokio::test]
async fn a_capped_opus_week_steps_down_to_sonnet_5_5_with_no_400() {
    let rig = rig().await;
    rig.state(10, "normal").await;
    // Turn one, on Opus 5.5: its answer carries a thinking block Opus signed.
    let mut body = main_loop(
        "claude-opus-5-5",
        "design the architecture of a plugin system",
    );
    let (status, _, text) = rig.send(&body).await;
    assert_eq!(status, 200, "{text}");
    let first: Value = serde_json::from_str(&text).unwrap();
    let signed = first["content"][0].clone();
    assert_eq!(signed["type"], "thinking");

    // The Opus week runs out; the conversation goes on in a tool loop.
    rig.claude.knobs.cap("opus");
    let messages = body["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": [signed,
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]}));
    messages.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "src\nREADME.md"}]}));
    let (status, headers, text) = rig.send(&body).await;
    assert_eq!(status, 200, "the user never sees a 400 or the 429: {text}");
    assert_eq!(headers["x-pai-model"], "claude-sonnet-5-5");
    let change = headers["x-pai-model-change"].to_str().unwrap();
    assert!(change.starts_with("Opus 5.5 -> Sonnet 5.5"), "{change}");
    let sent = rig.last_to_claude();
    assert_eq!(sent["model"], "claude-sonnet-5-5");
    assert_eq!(
        sent["thinking"]["type"], "adaptive",
        "thinking stays on: 5.5 refuses it off"
    );
    assert!(
        !sent.to_string().contains("sig:claude-opus-5-5"),
        "Opus's block is not Sonnet's"
    );
    assert!(text.contains("answered by claude-sonnet-5-5"));

    // The next turn goes to Sonnet at once: Opus is skipped, not asked again.
    let asked = rig.claude.messages().len();
    let (status, _, _) = rig.send(&body).await;
    assert_eq!(status, 200);
    assert_eq!(rig.claude.messages().len(), asked + 1);
    // And the status line's session record says what changed.
}

#[tokio::test]
async fn a_conversation_that_visited_the_local_model_comes_back_to_claude_with_no_400() {
    let rig = rig().await;
    rig.state(10, "normal").await;
    // A tool call the local model made (no thinking block, an id of its own).
    let local_turn = |model: &str| {
        let mut body = main_loop(model, "design the architecture of a plugin system");
        let messages = body["messages"].as_array_mut().unwrap();
        messages.push(json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "local reasoning", "signature": ""},
            {"type": "tool_use", "id": "call_local_1", "name": "Bash", "input": {"command": "ls"}}]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_local_1", "content": "src"}]}));
        body
    };
    let (status, _, text) = rig.send(&local_turn("claude-opus-5-5")).await;
    assert_eq!(status, 200, "{text}");
    let sent = rig.last_to_claude();
    assert_eq!(sent["model"], "claude-opus-5-5");
    assert_eq!(sent["thinking"]["type"], "adaptive");
    assert!(
        !sent.to_string().contains("local reasoning"),
        "the unsigned block is dropped"
    );
    // An older model still accepts thinking off for such a turn: it gets that instead.
    let mut older = local_turn("claude-opus-4-8");
    older.as_object_mut().unwrap().remove("output_config");
    let (status, _, text) = rig.send(&older).await;
    assert_eq!(status, 200, "{text}");
    assert!(rig.last_to_claude().get("thinking").is_none());
}

#[tokio::test]
async fn in_warning_web_search_and_auto_mode_stay_on_claude_and_other_work_goes_local() {
    let rig = rig().await;
    rig.state(80, "warning").await;
    for (name, what) in [("websearch", "WebSearch"), ("auto-mode", "auto mode")] {
        let mut body = fixture(name);
        body["stream"] = json!(false);
        let (status, headers, text) = rig.send(&body).await;
        assert_eq!(status, 200, "{what}: {text}");
        let route = headers["x-pai-route"].to_str().unwrap();
        assert!(route.starts_with("claude"), "{what} went to {route}");
        let sent = rig.last_to_claude();
        assert_eq!(
            sent["tools"], body["tools"],
            "{what}: its tools reach Anthropic whole"
        );
    }
    let local_before = rig.local.requests().len();
    let (status, headers, text) = rig.send(&main_loop("claude-opus-5-5", "say hi")).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["x-pai-route"], "local");
    let local = rig.local.requests();
    assert_eq!(local.len(), local_before + 1);
    let sent = local.last().unwrap().json();
    let system = sent["messages"][0]["content"].as_str().unwrap();
    assert!(
        !system.contains("x-anthropic-billing-header"),
        "the attribution line stays with Anthropic"
    );
    let tools: Vec<&str> = sent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(!tools.contains(&"DeferredToolPlaceholder"), "{tools:?}");
}

#[tokio::test]
async fn claude_code_itself_works_through_the_default_tiers() {
    let rig = rig().await;
    rig.state(10, "normal").await;
    let output = run_claude(&format!("http://{}", rig.proxy.addr()), "say hi", &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["is_error"], false, "{result}");
    let main = rig
        .claude
        .messages()
        .into_iter()
        .map(|r| r.json())
        .find(|b| b["tools"].as_array().is_some_and(|t| t.len() > 5))
        .expect("Claude Code's main-loop request");
    assert_eq!(
        main["model"], "claude-opus-5-5",
        "Claude Code's default model, as it asked"
    );
}

#[tokio::test]
async fn what_claude_code_sends_that_is_new_goes_to_anthropic_unchanged_and_is_reported() {
    let rig = rig().await;
    rig.state(10, "normal").await;
    assert_eq!(rig.proxy.health().await["unknown_features"], json!([]));
    let mut body = main_loop("claude-opus-5-5", "say hi");
    body["stream"] = json!(false);
    body["memory_palace"] = json!({"rooms": 3});
    let response = client()
        .post(rig.proxy.url("/v1/messages?beta=true"))
        .header("x-api-key", "sk-ant-test")
        .header("user-agent", "claude-cli/2.1.400 (external, cli)")
        .header(
            "anthropic-beta",
            "claude-code-20250219,time-travel-2027-01-01",
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = rig.claude.messages().pop().unwrap();
    assert_eq!(
        sent.json()["memory_palace"],
        json!({"rooms": 3}),
        "Anthropic gets it unchanged"
    );
    assert_eq!(
        sent.header("anthropic-beta"),
        Some("claude-code-20250219,time-travel-2027-01-01")
    );
    let unknown = rig.proxy.health().await["unknown_features"].clone();
    let named: Vec<String> = unknown
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["kind"].as_str().unwrap(),
                f["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        named,
        ["field memory_palace", "beta time-travel-2027-01-01"]
    );
    assert_eq!(unknown[0]["client"], "claude-cli/2.1.400 (external, cli)");
}

#[tokio::test]
async fn with_claude_out_of_reach_a_web_search_is_answered_without_it_and_says_so() {
    let rig = rig().await;
    rig.state(10, "normal").await;
    rig.claude.knobs.run_out();
    let mut body = fixture("websearch");
    body["stream"] = json!(false);
    body["metadata"] = json!({});
    let (status, headers, text) = rig.send(&body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["x-pai-route"], "local");
    let degraded = headers["x-pai-degraded"].to_str().unwrap();
    assert!(
        degraded.starts_with("a server tool only Anthropic runs"),
        "{degraded}"
    );
    assert!(degraded.contains("429"), "and why: {degraded}");
    let adjusted = headers["x-pai-adjusted"].to_str().unwrap();
    assert!(
        adjusted.contains("web_search_20250305 omitted"),
        "{adjusted}"
    );
    let sent = rig.local.requests().pop().unwrap().json();
    assert!(
        sent.get("tools")
            .is_none_or(|t| t.as_array().unwrap().is_empty()),
        "{sent}"
    );
}

#[tokio::test]
async fn in_caution_a_simple_main_loop_task_goes_local_and_a_complex_one_stays_on_claude() {
    let rig = rig().await;
    rig.state(60, "caution").await;
    let (status, headers, text) = rig
        .send(&main_loop("claude-opus-5-5", "Summarize the README"))
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["x-pai-complexity"], "simple");
    assert_eq!(headers["x-pai-route"], "local");
    let (_, headers, _) = rig
        .send(&main_loop(
            "claude-opus-5-5",
            "design the architecture of a plugin system",
        ))
        .await;
    assert_eq!(headers["x-pai-complexity"], "complex");
    assert_eq!(headers["x-pai-route"], "claude:sonnet");
}
