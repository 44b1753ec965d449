//! When Claude refuses, as the user sees it, against the built binary. The moment the
//! seed's first success criterion is about — the quota runs out while the proxy does not
//! know it yet: the first 429 of a session is answered by the local model (the 429 itself
//! says the state is critical, so that very request is routed again for it), and a
//! restart during the block (SIGKILL) keeps it. When nothing can take a request, Claude
//! Code is told at once, in words, instead of retrying a 502 for minutes; and the routing
//! headers name only what was passed over before the target that answered.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pai_e2e::binary::Running;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::client;
use pai_e2e::mock::{MockUpstream, Reply};
use pai_e2e::openai::agent_reply;
use serde_json::{json, Value};

/// Anthropic with the 5-hour window used up: a 429 that names it, resetting in an hour.
async fn claude_out_of_quota() -> MockUpstream {
    MockUpstream::start(|_| {
        let reset = (chrono::Utc::now() + chrono::Duration::hours(1))
            .timestamp()
            .to_string();
        Reply::status(
            429,
            &[
                ("retry-after", "3600"),
                ("anthropic-ratelimit-unified-status", "rejected"),
                ("anthropic-ratelimit-unified-5h-status", "rejected"),
                ("anthropic-ratelimit-unified-5h-utilization", "1.0"),
                ("anthropic-ratelimit-unified-representative-claim", "five_hour"),
                ("anthropic-ratelimit-unified-reset", &reset),
                ("anthropic-ratelimit-unified-5h-reset", &reset),
            ],
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "This request would exceed your account's rate limit."}}),
        )
    })
    .await
}

fn request(stream: bool) -> Value {
    json!({"model": "claude-opus-5-5", "max_tokens": 1000, "stream": stream,
        "thinking": {"type": "adaptive"},
        "messages": [{"role": "user", "content": "Design the architecture of a new plugin system"}]})
}

async fn send(running: &Running, body: &Value) -> reqwest::Response {
    client()
        .post(running.url("/v1/messages?beta=true"))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_first_429_is_answered_by_the_local_model_and_a_restart_keeps_the_block() {
    let claude = claude_out_of_quota().await;
    let local = MockUpstream::start(|req| agent_reply(req, "answered locally")).await;
    let fallback = MockUpstream::start(|req| agent_reply(req, "fallback")).await;
    let dir = tempfile::tempdir().unwrap();
    // The seed's matrix; the fallback has no key, as on a new user's machine.
    let config = ConfigBuilder::seed(&claude.url(), &local.url(), &fallback.url(), dir.path())
        .write(dir.path());
    let data = dir.path().join("data");
    let mut running = Running::start(&config, &data, &[]);

    let response = send(&running, &request(true)).await;
    assert_eq!(response.status(), 200, "the user never sees the 429");
    assert_eq!(response.headers()["x-pai-route"], "local");
    assert_eq!(
        response.headers()["x-pai-quota-state"],
        "critical",
        "routed for what the 429 said"
    );
    let skipped = response.headers()["x-pai-skipped"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        skipped.contains("claude:opus: answered HTTP 429"),
        "{skipped}"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("locally") && text.contains("message_stop"),
        "{text}"
    );
    assert_eq!(
        claude.requests().len(),
        1,
        "Claude is asked once, not again"
    );

    let health = pai_e2e::http::get_json(&running.url("/health")).await;
    assert_eq!(health["quota"]["state"], "critical", "{health}");

    // Killed mid-block, started again: the block is still known.
    running.child.kill().unwrap();
    running.child.wait().unwrap();
    let running = Running::start(&config, &data, &[]);
    let health = pai_e2e::http::get_json(&running.url("/health")).await;
    assert_eq!(health["quota"]["state"], "critical", "{health}");
    assert!(
        health["quota"]["rate_limited_until"].is_string(),
        "{health}"
    );
    let response = send(&running, &request(false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-pai-route"], "local");
    assert_eq!(response.headers()["x-pai-quota-state"], "critical");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "answered locally", "{body}");
    assert_eq!(
        claude.requests().len(),
        1,
        "after the restart Claude is not asked"
    );
}

#[tokio::test]
async fn when_nothing_can_take_a_request_claude_code_is_told_at_once_and_why() {
    let claude = claude_out_of_quota().await;
    let local = MockUpstream::start(|req| agent_reply(req, "answered locally")).await;
    let fallback = MockUpstream::start(|req| agent_reply(req, "fallback")).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ConfigBuilder::seed(&claude.url(), &local.url(), &fallback.url(), dir.path())
        .provider_set("local", json!({"supports_tools": false}))
        .write(dir.path());
    let running = Running::start(&config, &dir.path().join("data"), &[]);
    let mut with_tools = request(false);
    with_tools["tools"] = json!([{"name": "Bash", "description": "Run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]);
    // The first learns that Claude is out; the second finds nothing that can take it.
    for _ in 0..2 {
        let response = send(&running, &with_tools).await;
        if response.headers().get("x-pai-route").is_some() {
            continue;
        }
        assert_eq!(response.status(), 502);
        assert_eq!(
            response.headers()["x-should-retry"],
            "false",
            "retrying cannot help: Claude Code should show it at once"
        );
        let body: Value = response.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        for said in [
            "queue: Claude's quota is critical until",
            "Anthropic answered 429",
            "local: cannot call tools",
            "fallback: no API key (set PAI_TEST_FALLBACK_KEY)",
        ] {
            assert!(message.contains(said), "{said:?} missing from {message}");
        }
        assert_eq!(
            message.matches("local:").count(),
            1,
            "each target once: {message}"
        );
        let (queue, fallback) = (
            message.find("queue:").unwrap(),
            message.find("fallback:").unwrap(),
        );
        assert!(queue < fallback, "in the order they were named: {message}");
        return;
    }
    panic!("the second request should have found no target");
}

#[tokio::test]
async fn an_answer_names_only_what_was_passed_over_before_it() {
    let claude =
        MockUpstream::start(|req| pai_e2e::mock::anthropic_reply(req, "from claude")).await;
    let local = MockUpstream::start(|req| agent_reply(req, "local")).await;
    let fallback = MockUpstream::start(|req| agent_reply(req, "fallback")).await;
    let dir = tempfile::tempdir().unwrap();
    // The fallback has no key: it is left out, but it comes after Claude.
    let config = ConfigBuilder::seed(&claude.url(), &local.url(), &fallback.url(), dir.path())
        .write(dir.path());
    let running = Running::start(&config, &dir.path().join("data"), &[]);
    let response = send(&running, &request(false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-pai-route"], "claude:opus");
    assert!(
        response.headers().get("x-pai-skipped").is_none(),
        "nothing came before claude:opus: {:?}",
        response.headers().get("x-pai-skipped")
    );
}
