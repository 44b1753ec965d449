//! The proxy in front of a mock Anthropic upstream: pass-through fidelity, streaming,
//! errors, bad input, concurrency. Real HTTP on loopback both sides.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use pai_e2e::anthropic;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::{client, get_json};
use pai_e2e::mock::{anthropic_reply, MockUpstream, Reply};
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

/// Upper bound for a step that should be immediate; a failure, never a synchronisation.
const LIMIT: Duration = Duration::from_secs(10);

fn messages_body(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-5",
        "max_tokens": 32000,
        "stream": stream,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "system", "content": "Context from the harness"},
            {"role": "user", "content": "say hi"}
        ],
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "output_config": {"effort": "high"},
        "some_future_field": {"kept": true}
    })
}

#[tokio::test]
async fn stream_passes_through_byte_exact() {
    let upstream =
        MockUpstream::anthropic("Hello from the mock upstream, streamed in pieces").await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let body = messages_body(true).to_string();
    let response = client()
        .post(proxy.url("/v1/messages?beta=true"))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let received = response.bytes().await.unwrap();
    let expected = anthropic::text_stream(
        "claude-sonnet-5",
        "Hello from the mock upstream, streamed in pieces",
    )
    .concat();
    assert_eq!(String::from_utf8_lossy(&received), expected);

    // The upstream got the body untouched, unknown fields included.
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, body.as_bytes());
    assert_eq!(seen[0].uri, "/v1/messages?beta=true");

    // The request log has a row with the model and the usage read from the stream.
    let logged = proxy.logged().await;
    assert_eq!(logged.len(), 1);
    let row = &logged[0];
    assert_eq!(row.model.as_deref(), Some("claude-sonnet-5"));
    // "say hi" is simple work: the Haiku tier, which keeps the client's higher model.
    assert_eq!(row.target.as_deref(), Some("claude:haiku"));
    assert_eq!(row.complexity.as_deref(), Some("simple"));
    assert_eq!(row.quota_state.as_deref(), Some("unknown"));
    assert!(row
        .route_reason
        .as_deref()
        .unwrap()
        .ends_with("-> claude:haiku"));
    assert_eq!(row.status, Some(200));
    assert_eq!(row.outcome, "ok");
    assert!(row.stream);
    assert_eq!(row.input_tokens, Some(25));
    assert_eq!(row.output_tokens, Some(9));
    assert_eq!(row.response_bytes, expected.len() as u64);
}

#[tokio::test]
async fn first_event_reaches_the_client_before_the_upstream_finishes() {
    let gate = Arc::new(Notify::new());
    let script_gate = gate.clone();
    let upstream = MockUpstream::start(move |_| Reply::Sse {
        headers: vec![],
        events: anthropic::text_stream("claude-sonnet-5", "one two three"),
        // The mock holds everything after the first event until the test says so.
        gates: vec![(1, script_gate.clone())],
        dropped: None,
        on_end: None,
    })
    .await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&messages_body(true))
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let first = tokio::time::timeout(LIMIT, stream.next())
        .await
        .expect("the first event was held back by the proxy")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("event: message_start"));
    gate.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(LIMIT, stream.next()).await.unwrap() {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&rest)
        .ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

#[tokio::test]
async fn client_hanging_up_cancels_the_upstream_request() {
    let gate = Arc::new(Notify::new());
    let (dropped_tx, mut dropped_rx) = mpsc::unbounded_channel();
    let script_gate = gate.clone();
    let upstream = MockUpstream::start(move |_| Reply::Sse {
        headers: vec![],
        events: anthropic::text_stream("claude-sonnet-5", "never finished"),
        gates: vec![(1, script_gate.clone())],
        dropped: Some(dropped_tx.clone()),
        on_end: None,
    })
    .await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .json(&messages_body(true))
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    tokio::time::timeout(LIMIT, dropped_rx.recv())
        .await
        .expect("the upstream stream was not cancelled when the client left");
    let logged = proxy.logged().await;
    assert_eq!(logged[0].outcome, "client_closed");
}

#[tokio::test]
async fn headers_and_query_are_forwarded_but_hop_by_hop_are_not() {
    let upstream = MockUpstream::anthropic("ok").await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let response = client()
        .post(proxy.url("/v1/messages?beta=true&x=1"))
        .header("authorization", "Bearer sk-ant-oat01-test")
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "oauth-2025-04-20,interleaved-thinking-2025-05-14",
        )
        .header("x-app", "cli")
        .header("x-claude-code-session-id", "abc")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-pai-complexity", "simple")
        .json(&messages_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["request-id"], "req_mock");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "ok");
    let seen = &upstream.requests()[0];
    assert_eq!(seen.uri, "/v1/messages?beta=true&x=1");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-ant-oat01-test")
    );
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("oauth-2025-04-20,interleaved-thinking-2025-05-14")
    );
    assert_eq!(seen.header("x-app"), Some("cli"));
    assert_eq!(seen.header("x-claude-code-session-id"), Some("abc"));
    assert_eq!(seen.header("proxy-authorization"), None);
    assert_eq!(seen.header("x-pai-complexity"), None);
    assert_eq!(
        seen.header("host"),
        Some(upstream.addr.to_string().as_str())
    );
}

#[tokio::test]
async fn upstream_errors_reach_the_client_unchanged() {
    let upstream = MockUpstream::start(|req| match req.header("x-test-case").unwrap_or("") {
        "401" => Reply::status(
            401,
            &[],
            json!({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}),
        ),
        "429" => Reply::status(
            429,
            &[
                ("retry-after", "17"),
                ("anthropic-ratelimit-unified-status", "rejected"),
                ("anthropic-ratelimit-unified-reset", "1764100000"),
            ],
            json!({"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your rate limit"}}),
        ),
        _ => Reply::status(
            529,
            &[],
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
        ),
    })
    .await;
    let proxy = TestProxy::start(&upstream.url()).await;
    // The 429 last: while it holds, the proxy does not ask Claude again.
    for (case, kind) in [
        ("401", "authentication_error"),
        ("529", "overloaded_error"),
        ("429", "rate_limit_error"),
    ] {
        let response = client()
            .post(proxy.url("/v1/messages"))
            .header("x-test-case", case)
            .json(&messages_body(false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_str(), case);
        if case == "429" {
            assert_eq!(response.headers()["retry-after"], "17");
            assert_eq!(
                response.headers()["anthropic-ratelimit-unified-status"],
                "rejected"
            );
        }
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], kind, "{case}");
    }
}

async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    (
        status,
        body["error"]["type"].as_str().unwrap().to_owned(),
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn bad_input_gets_anthropic_errors_and_never_reaches_the_upstream() {
    let upstream = MockUpstream::anthropic("unused").await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let c = client();

    let (status, kind, message) = error_of(
        c.post(proxy.url("/v1/messages"))
            .header("content-type", "application/json")
            .body("{\"model\": \"claude\", \"messages\": [")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));
    assert!(message.contains("not valid JSON"), "{message}");

    let (status, kind, message) = error_of(
        c.post(proxy.url("/v1/messages"))
            .json(&json!({"model": "claude-sonnet-5", "max_tokens": 10}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));
    assert!(message.contains("messages"), "{message}");

    let (status, kind, _) = error_of(
        c.post(proxy.url("/v1/messages/count_tokens"))
            .json(&json!({"model": "claude-sonnet-5"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));

    // 33 MiB, declared up front.
    let huge = vec![b' '; 33 << 20];
    let (status, kind, _) = error_of(
        c.post(proxy.url("/v1/messages"))
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, kind.as_str()), (413, "request_too_large"));

    // 33 MiB, chunked: no length declared, the limit is found while reading.
    let chunks = futures_util::stream::iter(
        (0..33).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1 << 20]))),
    );
    let (status, kind, _) = error_of(
        c.post(proxy.url("/v1/messages"))
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, kind.as_str()), (413, "request_too_large"));

    let (status, kind, _) = error_of(c.get(proxy.url("/nope")).send().await.unwrap()).await;
    assert_eq!((status, kind.as_str()), (404, "not_found_error"));

    assert!(upstream.requests().is_empty());
    let logged = proxy.logged().await;
    assert!(logged.iter().all(|r| r.outcome == "rejected"), "{logged:?}");
}

#[tokio::test]
async fn browser_origins_and_foreign_hosts_are_refused() {
    let upstream = MockUpstream::anthropic("unused").await;
    let proxy = TestProxy::start(&upstream.url()).await;
    // A drive-by page: text/plain simple request with the page's Origin.
    let (status, kind, message) = error_of(
        client()
            .post(proxy.url("/v1/messages"))
            .header("origin", "https://evil.example")
            .header("content-type", "text/plain")
            .body(messages_body(false).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, kind.as_str()), (403, "permission_error"));
    assert!(message.contains("evil.example"));
    // DNS rebinding: the page's own host name pointing at 127.0.0.1.
    let (status, kind, _) = error_of(
        client()
            .post(proxy.url("/v1/messages"))
            .header("host", "rebind.evil.example:8766")
            .json(&messages_body(false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, kind.as_str()), (403, "permission_error"));
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn an_allowed_origin_gets_through() {
    let upstream = MockUpstream::anthropic("hello").await;
    let dir = tempfile::tempdir().unwrap();
    let text = ConfigBuilder::claude_only(&upstream.url(), dir.path())
        .server(|s| s.allowed_origins = vec!["http://localhost:3000".to_owned()])
        .toml();
    let proxy = TestProxy::start_with(&text, dir).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .header("origin", "http://localhost:3000")
        .json(&messages_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn unreachable_upstream_is_a_502_naming_the_provider() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let proxy = TestProxy::start(&format!("http://127.0.0.1:{port}")).await;
    let (status, kind, message) = error_of(
        client()
            .post(proxy.url("/v1/messages"))
            .header("x-api-key", "sk-ant-never-shown")
            .json(&messages_body(false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, kind.as_str()), (502, "api_error"));
    assert!(
        message.contains("provider claude is unreachable"),
        "{message}"
    );
    assert!(!message.contains("sk-ant-never-shown"));
    let health: Value = get_json(&proxy.url("/health")).await;
    assert_eq!(health["providers"][0]["health"], "unhealthy");
}

#[tokio::test]
async fn probes_count_tokens_and_other_v1_paths() {
    let upstream = MockUpstream::start(|req| {
        if req.uri.starts_with("/v1/models") {
            Reply::json(
                json!({"data": [{"id": "claude-sonnet-5", "type": "model"}], "has_more": false}),
            )
        } else {
            anthropic_reply(req, "x")
        }
    })
    .await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let c = client();
    assert_eq!(c.head(proxy.url("/")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(proxy.url("/")).send().await.unwrap().status(), 200);
    let counted: Value = c
        .post(proxy.url("/v1/messages/count_tokens?beta=true"))
        .json(&json!({"model": "claude-sonnet-5", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counted["input_tokens"], 42);
    let models: Value = c
        .get(proxy.url("/v1/models?limit=5"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "claude-sonnet-5");
    let uris: Vec<String> = upstream.requests().iter().map(|r| r.uri.clone()).collect();
    assert_eq!(
        uris,
        ["/v1/messages/count_tokens?beta=true", "/v1/models?limit=5"]
    );
}

#[tokio::test]
async fn health_reports_version_providers_and_quota() {
    let upstream = MockUpstream::anthropic("x").await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let health: Value = get_json(&proxy.url("/health")).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_secs"].is_u64());
    assert_eq!(health["listen"], proxy.addr().to_string());
    assert_eq!(health["providers"][0]["name"], "claude");
    assert_eq!(health["providers"][0]["kind"], "anthropic");
    assert_eq!(health["providers"][0]["health"], "unknown");
    assert_eq!(health["quota"]["state"], "unknown");
    assert!(health["quota"]["percent"].is_null());
}

#[tokio::test]
async fn a_local_anthropic_kind_provider_never_sees_the_client_key() {
    let upstream = MockUpstream::anthropic("local answer").await;
    let dir = tempfile::tempdir().unwrap();
    let text = ConfigBuilder::claude_only(&upstream.url(), dir.path())
        .provider_set("claude", json!({"pass_client_credentials": false}))
        .toml();
    let proxy = TestProxy::start_with(&text, dir).await;
    let response = client()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-ant-client-secret")
        .header("authorization", "Bearer sk-ant-oat01-client")
        .json(&messages_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = &upstream.requests()[0];
    assert_eq!(seen.header("x-api-key"), None);
    assert_eq!(seen.header("authorization"), None);
}

#[tokio::test]
async fn fifty_concurrent_streams_all_arrive_whole() {
    let upstream = MockUpstream::anthropic("concurrent streams arrive whole and in order").await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let expected = anthropic::text_stream(
        "claude-sonnet-5",
        "concurrent streams arrive whole and in order",
    )
    .concat();
    let c = client();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let c = c.clone();
            let url = proxy.url("/v1/messages?beta=true");
            tokio::spawn(async move {
                c.post(url)
                    .json(&messages_body(true))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), expected);
    }
    assert_eq!(upstream.requests().len(), 50);
    assert_eq!(proxy.logged().await.len(), 50);
}

#[tokio::test]
async fn a_stream_broken_by_the_upstream_ends_with_an_error_event() {
    // The mock answers with a raw TCP server that sends half a stream and closes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 65536];
        let _ = socket.read(&mut buf).await;
        let first = &anthropic::text_stream("m", "x")[0];
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{}\r\n",
            first.len(),
            first
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        // Close mid-body: no terminating chunk.
    });
    let proxy = TestProxy::start(&format!("http://{addr}")).await;
    let text = client()
        .post(proxy.url("/v1/messages"))
        .json(&messages_body(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(text.contains("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"provider claude:haiku broke off the stream\"}}"), "{text}");
}

#[tokio::test]
async fn every_stream_a_client_receives_opens_with_message_start() {
    // A Messages-API server (llama.cpp under load was seen to) that begins at the block.
    let upstream = MockUpstream::start(|_| {
        let mut events = anthropic::text_stream("smollm2", "hello there");
        events.remove(0);
        Reply::sse(events)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = pai_e2e::config::ConfigBuilder::new(dir.path())
        .claude("http://127.0.0.1:9")
        .anthropic("local", &upstream.url(), |p| {
            p.model = Some("smollm2".to_owned())
        })
        .everywhere(&["local"])
        .toml();
    let proxy = TestProxy::start_with(&text, dir).await;
    let body = client()
        .post(proxy.url("/v1/messages"))
        .json(&messages_body(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.starts_with("event: message_start\n"), "{body}");
    assert_eq!(body.matches("event: message_start").count(), 1);
    assert!(
        body.trim_end()
            .ends_with("data: {\"type\":\"message_stop\"}"),
        "{body}"
    );
}
