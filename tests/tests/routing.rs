//! Routing end to end: a mock Anthropic upstream, two mock OpenAI-compatible servers, a
//! mock dashboard, and real clients (the Anthropic Python SDK, Claude Code).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pai_e2e::clients::{run_claude, run_python};
use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::{client, get_json};
use pai_e2e::mock::{anthropic_reply, MockUpstream, Recorded, Reply};
use pai_e2e::openai::agent_reply;
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};

const FALLBACK_KEY: &str = "fallback-own-key-123";

struct Rig {
    claude: MockUpstream,
    local: MockUpstream,
    fallback: MockUpstream,
    proxy: TestProxy,
}

async fn rig(
    claude: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    dashboard: Option<&MockUpstream>,
) -> Rig {
    let claude = MockUpstream::start(claude).await;
    let local = MockUpstream::start(|req| agent_reply(req, "Hello from the local model")).await;
    let fallback = MockUpstream::start(|req| agent_reply(req, "Hello from the fallback")).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ConfigBuilder::seed(&claude.url(), &local.url(), &fallback.url(), dir.path());
    if let Some(dashboard) = dashboard {
        config = config.dashboard(&dashboard.url());
    }
    let text = config.toml();
    let proxy =
        TestProxy::start_with_env(&text, dir, &[("PAI_TEST_FALLBACK_KEY", FALLBACK_KEY)]).await;
    Rig {
        claude,
        local,
        fallback,
        proxy,
    }
}

fn chat_requests(mock: &MockUpstream) -> Vec<Recorded> {
    mock.requests()
        .into_iter()
        .filter(|r| r.uri.ends_with("/chat/completions"))
        .collect()
}

#[tokio::test]
async fn the_anthropic_sdk_streams_a_tool_round_trip_from_an_openai_backend() {
    let rig = rig(|req| anthropic_reply(req, "claude"), None).await;
    rig.proxy.set_mode("local-only").await;
    let output = run_python("sdk_tools.py", &[&format!("http://{}", rig.proxy.addr())]).await;
    assert!(
        output.status.success(),
        "sdk_tools.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["first"]["stop_reason"], "tool_use");
    assert_eq!(out["first"]["tool_name"], "Bash");
    assert_eq!(
        out["first"]["tool_input"],
        json!({"command": "echo pai-local-ok", "description": "Print a marker"})
    );
    assert_eq!(out["first"]["tool_id"], "call_mock_1");
    assert_eq!(out["second"]["text"], "The command printed pai-local-ok.");
    assert_eq!(out["second"]["stop_reason"], "end_turn");
    assert_eq!(out["plain"]["text"], "Hello from the local model");
    assert_eq!(out["plain"]["stop_reason"], "end_turn");
    assert!(
        out["count"].as_u64().unwrap() > 0,
        "count_tokens is never 0"
    );

    // What the OpenAI-compatible server received: translated, and no client key.
    let seen = chat_requests(&rig.local);
    assert_eq!(seen.len(), 3);
    assert!(rig.claude.requests().is_empty());
    for request in &seen {
        assert_eq!(request.header("x-api-key"), None);
        assert_eq!(request.header("authorization"), None);
        assert!(!String::from_utf8_lossy(&request.body).contains("sk-ant-client-key"));
    }
    let first = seen[0].json();
    assert_eq!(first["model"], "local-model");
    assert_eq!(first["stream"], true);
    assert_eq!(first["stream_options"]["include_usage"], true);
    assert_eq!(first["tools"][0]["function"]["name"], "Bash");
    let follow_up = seen[1].json();
    let messages = follow_up["messages"].as_array().unwrap();
    assert_eq!(messages[1]["tool_calls"][0]["id"], "call_mock_1");
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "call_mock_1", "content": "pai-local-ok"})
    );
}

#[tokio::test]
async fn claude_code_completes_a_bash_round_trip_on_a_local_model() {
    let rig = rig(|req| anthropic_reply(req, "claude"), None).await;
    rig.proxy.set_mode("local-only").await;
    let output = run_claude(
        &format!("http://{}", rig.proxy.addr()),
        "run the marker command with Bash",
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
        result["result"], "The command printed pai-local-ok.",
        "{result}"
    );
    assert!(rig.claude.requests().is_empty(), "nothing went to Claude");
    let tool_turn = chat_requests(&rig.local)
        .into_iter()
        .find(|r| {
            r.json()["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["role"] == "tool")
        })
        .expect("the tool result reached the local model");
    let body = tool_turn.json();
    let tool = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()
        .clone();
    assert_eq!(tool["tool_call_id"], "call_mock_1");
    assert!(tool["content"].as_str().unwrap().contains("pai-local-ok"));
}

async fn dashboard(value: Arc<AtomicU64>) -> MockUpstream {
    MockUpstream::start(move |_| {
        Reply::json(json!({"usage_percent": value.load(Ordering::SeqCst)}))
    })
    .await
}

async fn send(proxy: &TestProxy, model: &str, prompt: &str) -> reqwest::Response {
    client()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-ant-client-key")
        .json(&json!({"model": model, "max_tokens": 100,
            "messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_seed_routing_table_holds_as_the_quota_moves() {
    let value = Arc::new(AtomicU64::new(10));
    let dash = dashboard(value.clone()).await;
    let rig = rig(|req| anthropic_reply(req, "claude answer"), Some(&dash)).await;
    let mut quota = rig.proxy.follow_quota().await;
    let requests = [
        (
            "claude-haiku-4-5-20251001",
            "write a title for this chat",
            "simple",
        ),
        ("claude-sonnet-5", "fix the failing test", "medium"),
        (
            "claude-opus-4-8",
            "design the architecture of the plugin system",
            "complex",
        ),
    ];
    let table = [
        (
            10,
            "normal",
            ["claude:haiku", "claude:sonnet", "claude:opus"],
        ),
        (60, "caution", ["local", "claude:sonnet", "claude:sonnet"]),
        (80, "warning", ["local", "local", "local"]),
        // Complex work in critical waits for the quota (max_wait_secs = 2 here), then local.
        (95, "critical", ["local", "local", "local"]),
    ];
    for (percent, state, routes) in table {
        value.store(percent, Ordering::SeqCst);
        quota
            .wait_for(state, |s| {
                s["state"] == state && s["percent"] == percent as f64
            })
            .await;
        for ((model, prompt, complexity), route) in requests.iter().zip(routes) {
            let (claude_before, local_before) =
                (rig.claude.requests().len(), chat_requests(&rig.local).len());
            let response = send(&rig.proxy, model, prompt).await;
            assert_eq!(response.status(), 200);
            let headers = response.headers().clone();
            assert_eq!(headers["x-pai-route"], route, "{percent}% {complexity}");
            assert_eq!(headers["x-pai-complexity"], *complexity);
            assert_eq!(headers["x-pai-quota-state"], state);
            let body: Value = response.json().await.unwrap();
            if route.starts_with("claude") {
                assert_eq!(rig.claude.requests().len(), claude_before + 1);
                let sent = rig.claude.requests().last().unwrap().json();
                let tier_model = match route {
                    "claude:haiku" => "claude-haiku-4-5-20251001",
                    "claude:sonnet" => "claude-sonnet-5",
                    _ => "claude-opus-4-8",
                };
                assert_eq!(sent["model"], tier_model);
                assert_eq!(body["content"][0]["text"], "claude answer");
            } else {
                assert_eq!(chat_requests(&rig.local).len(), local_before + 1);
                assert_eq!(body["content"][0]["text"], "Hello from the local model");
            }
        }
    }
}

#[tokio::test]
async fn anthropic_overloaded_fails_over_to_the_fallback_with_its_own_key() {
    let rig = rig(
        |_| {
            Reply::status(
                529,
                &[],
                json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
            )
        },
        None,
    )
    .await;
    let response = send(&rig.proxy, "claude-sonnet-5", "fix the failing test").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-pai-route"], "fallback");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "Hello from the fallback");
    assert_eq!(rig.claude.requests().len(), 1);
    let seen = &chat_requests(&rig.fallback)[0];
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {FALLBACK_KEY}").as_str())
    );
    assert_eq!(seen.header("x-api-key"), None);
    assert!(!String::from_utf8_lossy(&seen.body).contains("sk-ant-client-key"));
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures_and_closes_after_recovery() {
    let healthy = Arc::new(AtomicU64::new(0));
    let flag = healthy.clone();
    let rig = rig(
        move |req| {
            if flag.load(Ordering::SeqCst) == 1 {
                anthropic_reply(req, "claude is back")
            } else {
                Reply::status(
                    500,
                    &[],
                    json!({"type":"error","error":{"type":"api_error","message":"boom"}}),
                )
            }
        },
        None,
    )
    .await;
    // breaker_failures = 2: two failures open it; the third request skips Claude.
    for _ in 0..3 {
        let response = send(&rig.proxy, "claude-sonnet-5", "fix the failing test").await;
        assert_eq!(response.headers()["x-pai-route"], "fallback");
    }
    assert_eq!(
        rig.claude.requests().len(),
        2,
        "the open breaker kept Claude out"
    );
    let health: Value = get_json(&rig.proxy.url("/health")).await;
    assert_eq!(health["providers"][0]["breaker"], "open");

    healthy.store(1, Ordering::SeqCst);
    // The cool-down (1 s) is the behaviour under test: after it, one probe goes through.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = send(&rig.proxy, "claude-sonnet-5", "fix the failing test").await;
    assert_eq!(response.headers()["x-pai-route"], "claude:sonnet");
    let response = send(&rig.proxy, "claude-sonnet-5", "fix the failing test").await;
    assert_eq!(response.headers()["x-pai-route"], "claude:sonnet");
    assert_eq!(rig.claude.requests().len(), 4);
}

#[tokio::test]
async fn a_conversation_moves_from_a_local_model_back_to_claude_with_thinking_on() {
    let rig = rig(
        |req| {
            // Like Anthropic: thinking on + an assistant tool_use turn without a signed
            // thinking block is a 400.
            let body = req.json();
            let unsigned = body["messages"].as_array().unwrap().iter().any(|m| {
                m["role"] == "assistant"
                    && m["content"].as_array().is_some_and(|c| {
                        c.iter().any(|b| b["type"] == "tool_use") && c[0]["type"] != "thinking"
                    })
            });
            if body.get("thinking").is_some() && unsigned {
                return Reply::status(
                    400,
                    &[],
                    json!({"type":"error","error":{"type":"invalid_request_error",
                    "message":"messages.1.content.0.type: Expected `thinking`"}}),
                );
            }
            anthropic_reply(req, "claude continues")
        },
        None,
    )
    .await;
    let tools = json!([{"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]);
    // Turn 1 on the local model.
    rig.proxy.set_mode("local-only").await;
    let first: Value = client()
        .post(rig.proxy.url("/v1/messages"))
        .json(
            &json!({"model": "claude-opus-4-8", "max_tokens": 2000, "tools": tools,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "run the marker"}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["content"][0]["type"], "tool_use");
    // The next prompt back on Claude, thinking still on, with the local model's tool loop
    // in history (a tool result alone would continue on the model that asked for it).
    rig.proxy.set_mode("auto").await;
    let response = client()
        .post(rig.proxy.url("/v1/messages"))
        .header("x-api-key", "sk-ant-client-key")
        .json(&json!({"model": "claude-opus-4-8", "max_tokens": 2000, "tools": tools,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [
                {"role": "user", "content": "run the marker"},
                {"role": "assistant", "content": first["content"]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first["content"][0]["id"], "content": "pai-local-ok"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "The marker ran."}]},
                {"role": "user", "content": "now what does the output mean?"}
            ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["x-pai-route"]
        .to_str()
        .unwrap()
        .starts_with("claude"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "claude continues");
    let sent = rig.claude.requests().last().unwrap().json();
    assert!(
        sent.get("thinking").is_none(),
        "thinking was turned off for this request"
    );
    assert_eq!(
        sent["messages"][1]["content"][0]["id"],
        first["content"][0]["id"]
    );
}

#[tokio::test]
async fn lm_studio_auto_uses_the_loaded_model_and_its_context_length() {
    // LM Studio's own API: one model loaded, one not, and an embedding model.
    let lmstudio = MockUpstream::start(|req| {
        if req.uri == "/api/v0/models" {
            return Reply::json(json!({"object": "list", "data": [
                {"id": "text-embedding-nomic", "type": "embeddings", "state": "loaded", "max_context_length": 2048},
                {"id": "qwen3-coder-30b", "type": "llm", "state": "not-loaded", "max_context_length": 262144},
                {"id": "gemma-3-12b", "type": "vlm", "state": "loaded", "max_context_length": 131072, "loaded_context_length": 32768}
            ]}));
        }
        agent_reply(req, "from the loaded model")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[quota]\npoll_url = \"\"\nstate_file = \"{}\"\n[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:9\"\npass_client_credentials = true\n[[providers]]\nname = \"lmstudio\"\nkind = \"openai\"\nbase_url = \"{}/v1\"\nmodel = \"auto\"\n[routing]\nfallback = []\n[routing.matrix]\nnormal = {{ simple = [\"lmstudio\"], medium = [\"lmstudio\"], complex = [\"lmstudio\"] }}\ncaution = {{ simple = [\"lmstudio\"], medium = [\"lmstudio\"], complex = [\"lmstudio\"] }}\nwarning = {{ simple = [\"lmstudio\"], medium = [\"lmstudio\"], complex = [\"lmstudio\"] }}\ncritical = {{ simple = [\"lmstudio\"], medium = [\"lmstudio\"], complex = [\"lmstudio\"] }}\n",
        dir.path().join("q.json").display(),
        lmstudio.url()
    );
    let proxy = TestProxy::start_with(&text, dir).await;
    let response = send(&proxy, "claude-sonnet-5", "hello").await;
    assert_eq!(response.status(), 200);
    let sent = chat_requests(&lmstudio).last().unwrap().json();
    assert_eq!(
        sent["model"], "gemma-3-12b",
        "the loaded chat model, not the embedding one"
    );
    let health: Value = get_json(&proxy.url("/health")).await;
    let lm = &health["providers"][1];
    assert_eq!(lm["models"]["loaded"], "gemma-3-12b");
    assert_eq!(lm["context_window"], 32768, "the loaded context length");
    // A request larger than that context is refused by the provider with the reason.
    let big = "x".repeat(200_000);
    let response = send(&proxy, "claude-sonnet-5", &big).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("do not fit its 32768-token context"),
        "{body}"
    );
}

#[tokio::test]
async fn a_stale_tier_model_falls_back_to_the_model_claude_code_asked_for() {
    let rig = rig(
        |req| {
            if req.json()["model"] == "claude-opus-4-8" {
                Reply::status(404, &[], json!({"type":"error","error":{"type":"not_found_error","message":"model: claude-opus-4-8"}}))
            } else {
                anthropic_reply(req, "answered by the requested model")
            }
        },
        None,
    )
    .await;
    let response = client()
        .post(rig.proxy.url("/v1/messages"))
        .header("x-pai-complexity", "complex")
        // Sonnet asked, complex work: the Opus tier, whose id Anthropic does not know.
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["content"][0]["text"],
        "answered by the requested model"
    );
    let models: Vec<Value> = rig
        .claude
        .requests()
        .iter()
        .map(|r| r.json()["model"].clone())
        .collect();
    assert_eq!(
        models,
        [json!("claude-opus-4-8"), json!("claude-sonnet-4-5")]
    );
}
