//! Faults as they happen on a user's machine, against the built binary: a client that
//! hangs up during a breaker's probe, cancelled and shared calls, upstreams that stall
//! after their headers or close mid-body, streams that begin with an error, slow and idle
//! clients, too many connections, oversized bodies, restarts, a data dir that cannot be
//! written. Whatever happens, the client gets a complete answer or an Anthropic error,
//! and the proxy lets go of what it held.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use pai_e2e::anthropic;
use pai_e2e::binary::Running;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::faults::{Fault, FaultyUpstream};
use pai_e2e::http::client;
use pai_e2e::mock::{MockUpstream, Reply};
use pai_e2e::openai::agent_reply;
use serde_json::{json, Value};

/// Upper bound for anything that should happen promptly.
const LIMIT: Duration = Duration::from_secs(15);

/// The binary with one Anthropic provider (`claude`, the client's key passes through),
/// an optional OpenAI-compatible `fallback`, and `extra` TOML appended to its sections.
struct Rig {
    running: Running,
    dir: tempfile::TempDir,
}

/// The config the tests start from: `claude` (the client's key passes through) for every
/// cell, and an OpenAI-compatible `fallback` after it when there is one.
fn base(claude: &str, fallback: Option<&str>, dir: &std::path::Path) -> ConfigBuilder {
    let config = ConfigBuilder::new(dir)
        .claude(claude)
        .everywhere(&["claude"]);
    match fallback {
        Some(url) => config
            .openai("fallback", &format!("{url}/v1"), |p| {
                p.model = Some("fallback-model".to_owned())
            })
            .fallback(&["fallback"]),
        None => config,
    }
}

impl Rig {
    fn start(
        claude: &str,
        fallback: Option<&str>,
        edit: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
    ) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let path = edit(base(claude, fallback, dir.path())).write(dir.path());
        let running = Running::start(&path, &dir.path().join("data"), &[]);
        Rig { running, dir }
    }

    fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    async fn health(&self) -> Value {
        pai_e2e::http::get_json(&self.url("/health")).await
    }

    fn messages(&self, body: &Value) -> reqwest::RequestBuilder {
        client()
            .post(self.url("/v1/messages"))
            .header("x-api-key", "sk-ant-test")
            .header("anthropic-version", "2023-06-01")
            .json(body)
    }
}

fn body(text: &str, stream: bool) -> Value {
    json!({"model": "claude-sonnet-5", "max_tokens": 100, "stream": stream,
        "messages": [{"role": "user", "content": text}]})
}

fn message(text: &str) -> Fault {
    Fault::json(200, &anthropic::text_message("claude-sonnet-5", text))
}

fn overloaded() -> Fault {
    Fault::json(
        529,
        &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )
}

/// Asserts an Anthropic error body and returns its type.
fn anthropic_error(body: &Value) -> String {
    assert_eq!(body["type"], "error", "{body}");
    assert!(body["error"]["message"].as_str().is_some(), "{body}");
    body["error"]["type"].as_str().unwrap().to_owned()
}

/// The event names of a streamed body, in order.
fn events(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(str::to_owned)
        .collect()
}

/// Polls `check` (every 50 ms, at most [`LIMIT`]) until it holds: for state only the
/// binary can show, through its API.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn breaker(health: &Value) -> String {
    health["providers"][0]["breaker"]
        .as_str()
        .unwrap()
        .to_owned()
}

// 1. A breaker never stays half-open.

#[tokio::test]
async fn a_probe_the_client_hangs_up_on_does_not_leave_the_breaker_half_open() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let mut upstream = FaultyUpstream::start(move |_| {
        match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 | 1 => overloaded(),
            2 => Fault::StallBeforeHeaders,
            _ => message("back again"),
        }
    })
    .await;
    let rig = Rig::start(&upstream.url(), None, |c| {
        c.routing(|r| {
            r.breaker_failures = Some(2);
            r.breaker_cooldown_secs = Some(1);
        })
        .queue(|q| {
            q.coalesce = Some(false);
        })
    });
    for n in 0..2 {
        let response = rig
            .messages(&body(&format!("burst {n}"), false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 529);
    }
    eventually("the breaker half-opens after its cool-down", || async {
        breaker(&rig.health().await) == "half_open"
    })
    .await;
    // The probe reaches the upstream, which holds it; the user presses Esc.
    let probe = tokio::spawn(rig.messages(&body("probe", false)).send());
    upstream.next_request().await;
    upstream.next_request().await;
    upstream.next_request().await;
    probe.abort();
    upstream.wait_open_at_most(0).await;
    // The next request probes again and closes the breaker.
    let response = rig.messages(&body("after", false)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["content"][0]["text"], "back again");
    assert_eq!(breaker(&rig.health().await), "closed");
}

// 2. Coalescing shares only identical requests, and lets go of cancelled ones.

#[tokio::test]
async fn cancelled_requests_release_their_upstream_connections() {
    let mut upstream = FaultyUpstream::start(|_| Fault::StallBeforeHeaders).await;
    let rig = Rig::start(&upstream.url(), None, |c| c);
    let clients: Vec<_> = (0..20)
        .map(|n| tokio::spawn(rig.messages(&body(&format!("question {n}"), false)).send()))
        .collect();
    for _ in 0..20 {
        upstream.next_request().await;
    }
    assert_eq!(upstream.open_connections(), 20);
    for client in &clients {
        client.abort();
    }
    upstream.wait_open_at_most(0).await;
}

#[tokio::test]
async fn a_later_identical_request_does_not_join_a_cancelled_call() {
    let first = std::sync::atomic::AtomicBool::new(true);
    let mut upstream = FaultyUpstream::start(move |_| {
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            Fault::StallBeforeHeaders
        } else {
            message("fresh answer")
        }
    })
    .await;
    let rig = Rig::start(&upstream.url(), None, |c| c);
    let cancelled = tokio::spawn(rig.messages(&body("same question", false)).send());
    upstream.next_request().await;
    cancelled.abort();
    upstream.wait_open_at_most(0).await;
    let response = tokio::time::timeout(LIMIT, rig.messages(&body("same question", false)).send())
        .await
        .expect("the request joined a dead call")
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["content"][0]["text"], "fresh answer");
}

#[tokio::test]
async fn requests_that_differ_in_a_header_are_not_shared() {
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let held = gate.clone();
    let upstream = MockUpstream::start(move |req| {
        let _ = arrived_tx.send(());
        let beta = req.header("anthropic-beta").unwrap_or("none").to_owned();
        Reply::Sse {
            headers: vec![],
            events: vec![
                anthropic::text_message("claude-sonnet-5", &format!("made for {beta}")).to_string(),
            ],
            gates: vec![(0, held.clone())],
            dropped: None,
            on_end: None,
        }
    })
    .await;
    let rig = Rig::start(&upstream.url(), None, |c| c);
    let ask = |beta: &str| {
        let request = rig
            .messages(&body("same body", false))
            .header("anthropic-beta", beta);
        tokio::spawn(async move { request.send().await.unwrap().json::<Value>().await.unwrap() })
    };
    let (a, b) = (ask("beta-A"), ask("beta-B"));
    for _ in 0..2 {
        tokio::time::timeout(LIMIT, arrived.recv())
            .await
            .unwrap()
            .unwrap();
    }
    gate.notify_waiters();
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a["content"][0]["text"], "made for beta-A");
    assert_eq!(b["content"][0]["text"], "made for beta-B");
    assert_eq!(upstream.requests().len(), 2);
}

// 3. No wait without a bound once an answer has begun.

fn first_event() -> String {
    anthropic::text_stream("claude-sonnet-5", "x")[0].clone()
}

#[tokio::test]
async fn a_stream_that_stalls_after_its_first_event_ends_with_an_error_event() {
    let upstream = FaultyUpstream::start(|_| Fault::StallAfterHeaders {
        content_type: "text/event-stream",
        events: vec![first_event()],
    })
    .await;
    let rig = Rig::start(&upstream.url(), None, |c| {
        c.provider_set("claude", json!({"idle_timeout_secs": 1}))
    });
    let response = rig.messages(&body("hello", true)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = tokio::time::timeout(LIMIT, response.text())
        .await
        .expect("the stream never ended")
        .unwrap();
    assert_eq!(events(&text), ["message_start", "error"], "{text}");
    assert!(text.contains("overloaded_error"), "{text}");
    upstream.wait_open_at_most(0).await;
}

#[tokio::test]
async fn a_non_streaming_answer_that_stalls_after_its_headers_fails_over_or_times_out() {
    let stall = || Fault::StallAfterHeaders {
        content_type: "application/json",
        events: vec![],
    };
    // Alone: a 504 in Anthropic's shape.
    let upstream = FaultyUpstream::start(move |_| stall()).await;
    let rig = Rig::start(&upstream.url(), None, |c| {
        c.provider_set("claude", json!({"idle_timeout_secs": 1}))
    });
    let response = tokio::time::timeout(LIMIT, rig.messages(&body("hello", false)).send())
        .await
        .expect("no answer")
        .unwrap();
    assert_eq!(response.status(), 504);
    anthropic_error(&response.json().await.unwrap());
    // With a fallback: its answer.
    let local = MockUpstream::start(|req| agent_reply(req, "from the fallback")).await;
    let rig = Rig::start(&upstream.url(), Some(&local.url()), |c| {
        c.provider_set("claude", json!({"idle_timeout_secs": 1}))
    });
    let response = rig.messages(&body("hello", false)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-pai-route"], "fallback");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["content"][0]["text"], "from the fallback");
}

#[tokio::test]
async fn stalled_jobs_end_at_their_deadline_and_healthy_ones_still_run() {
    let upstream = FaultyUpstream::start(|request| {
        if request.json()["messages"][0]["content"] == "stall" {
            Fault::StallAfterHeaders {
                content_type: "application/json",
                events: vec![],
            }
        } else {
            message("healthy job done")
        }
    })
    .await;
    let rig = Rig::start(&upstream.url(), None, |c| c);
    let deadline = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let mut ids = Vec::new();
    for text in ["stall", "stall", "healthy"] {
        let mut job = body(text, false);
        if text == "stall" {
            job["deadline"] = json!(deadline);
        }
        let accepted: Value = client()
            .post(rig.url("/v1/queue/messages"))
            .header("x-api-key", "sk-ant-test")
            .json(&job)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(accepted["id"].as_str().unwrap().to_owned());
    }
    for (id, expected) in ids.iter().zip(["failed", "failed", "done"]) {
        let job =
            pai_e2e::http::get_json_as(&rig.url(&format!("/v1/queue/{id}?wait=20")), "sk-ant-test")
                .await;
        assert_eq!(job["status"], expected, "{job}");
        if expected == "failed" {
            assert!(job["error"].as_str().unwrap().contains("deadline"), "{job}");
        }
    }
}

// 4. What is not a complete answer never looks like one.

#[tokio::test]
async fn an_anthropic_stream_closed_without_framing_ends_with_an_error_event() {
    let stream = anthropic::text_stream("claude-sonnet-5", "cut short here");
    let upstream = FaultyUpstream::start(move |_| Fault::CloseMidBody {
        content_type: "text/event-stream",
        events: stream[..4].to_vec(),
    })
    .await;
    let rig = Rig::start(&upstream.url(), None, |c| c);
    let text = rig
        .messages(&body("hello", true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let names = events(&text);
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("error"), "{text}");
    assert!(!names.iter().any(|n| n == "message_stop"));
}

#[tokio::test]
async fn an_empty_200_is_not_an_answer() {
    let upstream = FaultyUpstream::start(|_| Fault::Answer {
        status: 200,
        content_type: "application/json",
        body: String::new(),
    })
    .await;
    let rig = Rig::start(&upstream.url(), None, |c| c);
    let response = rig.messages(&body("hello", false)).send().await.unwrap();
    assert_eq!(response.status(), 502);
    let error: Value = response.json().await.unwrap();
    anthropic_error(&error);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("empty body"),
        "{error}"
    );
}

#[tokio::test]
async fn a_stream_whose_first_event_is_an_overload_error_fails_over() {
    let error_event = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".to_owned();
    let upstream =
        FaultyUpstream::start(move |_| Fault::sse(std::slice::from_ref(&error_event))).await;
    let local = MockUpstream::start(|req| agent_reply(req, "the fallback streamed this")).await;
    let rig = Rig::start(&upstream.url(), Some(&local.url()), |c| c);
    let response = rig.messages(&body("hello", true)).send().await.unwrap();
    assert_eq!(response.headers()["x-pai-route"], "fallback");
    let text = response.text().await.unwrap();
    assert_eq!(
        events(&text).last().map(String::as_str),
        Some("message_stop"),
        "{text}"
    );
    assert!(text.contains("streamed "), "{text}");
}

/// What a client gets (status, body) from an OpenAI-compatible upstream that breaks as
/// `fault` says — the only target, or followed by a `good` one.
async fn openai_case(fault: Fault, stream: bool, with_fallback: bool) -> (u16, String) {
    let broken = FaultyUpstream::start(move |request| {
        // Its health check answers; its completions break.
        if request.head.starts_with("GET ") {
            Fault::json(
                200,
                &json!({"object": "list", "data": [{"id": "local-model"}]}),
            )
        } else {
            fault.clone()
        }
    })
    .await;
    let good = MockUpstream::start(|req| agent_reply(req, "a real answer")).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ConfigBuilder::new(dir.path())
        .openai("local", &format!("{}/v1", broken.url()), |p| {
            p.model = Some("local-model".to_owned())
        })
        .everywhere(&["local"]);
    if with_fallback {
        config = config
            .openai("good", &format!("{}/v1", good.url()), |p| {
                p.model = Some("m".to_owned())
            })
            .fallback(&["good"]);
    }
    let text = config.toml();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let running = Running::start(&path, &dir.path().join("data"), &[]);
    let response = client()
        .post(running.url("/v1/messages"))
        .json(&body("hello", stream))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    // The servers stay up until the whole body is read.
    let text = response.text().await.unwrap();
    drop((running, broken, good, dir));
    (status, text)
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "local-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

#[tokio::test]
async fn openai_streams_that_are_not_complete_answers_end_in_error_events() {
    // Closed early, mid-answer: what came is relayed, then an error event.
    let cut = Fault::CloseMidBody {
        content_type: "text/event-stream",
        events: vec![chunk(
            json!({"role": "assistant", "content": "half an "}),
            None,
        )],
    };
    let (_, text) = openai_case(cut, true, false).await;
    let names = events(&text);
    assert!(text.contains("half an "), "{text}");
    assert_eq!(names.last().map(String::as_str), Some("error"), "{text}");
    assert!(!names.iter().any(|n| n == "message_stop"), "{text}");
    // No finish_reason and no [DONE], but framed properly: the same.
    let unfinished = Fault::sse(&[chunk(json!({"content": "no end"}), None)]);
    let (_, text) = openai_case(unfinished, true, false).await;
    assert_eq!(
        events(&text).last().map(String::as_str),
        Some("error"),
        "{text}"
    );
    // Garbage or nothing at all, before anything was sent: the fallback answers.
    for broken in [
        Fault::sse(&["<html>502 Bad Gateway</html>\n".to_owned()]),
        Fault::sse(&[]),
    ] {
        let (_, text) = openai_case(broken, true, true).await;
        assert!(text.contains("answer"), "{text}");
        assert_eq!(
            events(&text).last().map(String::as_str),
            Some("message_stop")
        );
    }
}

#[tokio::test]
async fn a_completion_without_choices_is_not_an_empty_success() {
    let empty = || {
        Fault::json(
            200,
            &json!({"id": "c", "object": "chat.completion", "choices": []}),
        )
    };
    let (status, text) = openai_case(empty(), false, false).await;
    assert_eq!(status, 502, "{text}");
    assert_eq!(
        anthropic_error(&serde_json::from_str(&text).unwrap()),
        "api_error"
    );
    let (status, text) = openai_case(empty(), false, true).await;
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["content"][0]["text"], "a real answer", "{answer}");
}

// 5. Client connections are bounded in time and number.

/// Reads until the proxy closes the connection (or `LIMIT` passes); returns what it sent.
async fn read_until_closed(socket: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(LIMIT, read).await.ok()?;
    Some(received)
}

#[tokio::test]
async fn a_client_dripping_its_headers_is_cut_off() {
    use tokio::io::AsyncWriteExt;
    let rig = Rig::start("http://127.0.0.1:9", None, |c| {
        c.server(|s| {
            s.idle_timeout_secs = Some(2);
        })
    });
    let mut socket = tokio::net::TcpStream::connect(rig.running.addr)
        .await
        .unwrap();
    socket
        .write_all(b"POST /v1/messages HTTP/1.1\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut cut = false;
    for n in 0..30 {
        // The client's own pace: one header line a second, never the blank line.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if socket
            .write_all(format!("x-slow-{n}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = true;
            break;
        }
        if read_until_closed_now(&mut socket).await {
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "the proxy waited {:?} for the headers",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Whether the peer has closed the connection (without waiting).
async fn read_until_closed_now(socket: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    matches!(
        tokio::time::timeout(Duration::from_millis(1), socket.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let rig = Rig::start("http://127.0.0.1:9", None, |c| {
        c.server(|s| {
            s.idle_timeout_secs = Some(1);
        })
    });
    let mut socket = tokio::net::TcpStream::connect(rig.running.addr)
        .await
        .unwrap();
    assert!(read_until_closed(&mut socket).await.is_some(), "held open");
    // So is one that sent a request and then nothing (keep-alive).
    let mut socket = tokio::net::TcpStream::connect(rig.running.addr)
        .await
        .unwrap();
    use tokio::io::AsyncWriteExt;
    socket
        .write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut socket).await.expect("held open");
    assert!(received.starts_with(b"HTTP/1.1 200"));
}

#[tokio::test]
async fn beyond_the_connection_cap_clients_get_a_503() {
    let rig = Rig::start("http://127.0.0.1:9", None, |c| {
        c.server(|s| {
            s.max_connections = Some(3);
            s.idle_timeout_secs = Some(30);
        })
    });
    // Connections are accepted in the order they arrive: a fourth comes after these.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            tokio::net::TcpStream::connect(rig.running.addr)
                .await
                .unwrap(),
        );
    }
    let response = client().get(rig.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        anthropic_error(&response.json().await.unwrap()),
        "overloaded_error"
    );
    held.pop();
    eventually("a slot frees up", || async {
        client()
            .get(rig.url("/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

#[tokio::test]
async fn flooded_near_its_open_file_limit_the_proxy_still_answers_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, base("http://127.0.0.1:9", None, dir.path()).toml()).unwrap();
    let running = Running::start_with_file_limit(&path, &dir.path().join("data"), 256);
    // More idle connections than the process has file descriptors.
    let mut flood = Vec::new();
    for _ in 0..300 {
        if let Ok(socket) = tokio::net::TcpStream::connect(running.addr).await {
            flood.push(socket);
        }
    }
    // Meanwhile a client gets a clear answer: 503 in Anthropic's shape, not a hang.
    eventually("a flooded proxy answers 503", || async {
        let Ok(Ok(response)) = tokio::time::timeout(
            Duration::from_secs(3),
            client().get(running.url("/health")).send(),
        )
        .await
        else {
            return false;
        };
        response.status() == 503
            && response
                .json::<Value>()
                .await
                .is_ok_and(|body| body["error"]["type"] == "overloaded_error")
    })
    .await;
    drop(flood);
    eventually("the proxy answers again", || async {
        client()
            .get(running.url("/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
}

// 6. Jobs recovered after a restart find their credentials; a refused key is final.

#[tokio::test]
async fn a_recovered_job_waits_for_its_clients_key_and_runs_with_it() {
    let upstream = MockUpstream::start(|req| pai_e2e::mock::anthropic_reply(req, "job done")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, base(&upstream.url(), None, dir.path()).toml()).unwrap();
    let data = dir.path().join("data");
    let mut running = Running::start(&path, &data, &[]);
    let mut job = body("a job for later", false);
    job["not_before"] = json!((chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339());
    let accepted: Value = client()
        .post(running.url("/v1/queue/messages"))
        .header("x-api-key", "sk-ant-the-users-key")
        .json(&job)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap().to_owned();
    running.child.kill().unwrap();
    running.child.wait().unwrap();
    let running = Running::start(&path, &data, &[]);
    let waiting = pai_e2e::http::get_json_as(
        &running.url(&format!("/v1/queue/{id}?wait=2")),
        "sk-ant-the-users-key",
    )
    .await;
    assert_eq!(waiting["status"], "queued", "{waiting}");
    assert!(
        waiting["waiting_for"]
            .as_str()
            .unwrap()
            .contains("credentials"),
        "{waiting}"
    );
    assert!(
        upstream.requests().is_empty(),
        "it never went out without its key"
    );
    // The client's next request carries the key — as a bearer token this time, as the
    // Python SDK sends it: the same key, so the job runs.
    let response = client()
        .post(running.url("/v1/messages"))
        .bearer_auth("sk-ant-the-users-key")
        .json(&body("hello", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let done = pai_e2e::http::get_json_as(
        &running.url(&format!("/v1/queue/{id}?wait=20")),
        "sk-ant-the-users-key",
    )
    .await;
    assert_eq!(done["status"], "done", "{done}");
    let sent = upstream.requests();
    let job_call = sent
        .iter()
        .find(|r| r.header("idempotency-key") == Some(id.as_str()))
        .unwrap();
    assert_eq!(
        job_call.header("authorization"),
        Some("Bearer sk-ant-the-users-key")
    );
    let raw = std::fs::read(data.join("pai-orchestrator.sqlite3")).unwrap();
    assert!(
        !raw.windows(10).any(|w| w == b"the-users-"),
        "the key is never stored"
    );
}

#[tokio::test]
async fn a_refused_key_fails_a_job_at_once() {
    let upstream = FaultyUpstream::start(|_| {
        Fault::json(
            401,
            &json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
        )
    })
    .await;
    let rig = Rig::start(&upstream.url(), None, |c| {
        c.queue(|q| {
            q.job_attempts = Some(5);
        })
    });
    let accepted: Value = client()
        .post(rig.url("/v1/queue/messages"))
        .header("x-api-key", "sk-ant-revoked")
        .json(&body("job", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap();
    let job = pai_e2e::http::get_json_as(
        &rig.url(&format!("/v1/queue/{id}?wait=20")),
        "sk-ant-revoked",
    )
    .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["attempts"], 1);
    assert!(job["error"].as_str().unwrap().contains("401"), "{job}");
    assert_eq!(upstream.requests().len(), 1, "a refused key is not retried");
}

// 7. An oversized body gets its 413, not a reset.

#[tokio::test]
async fn a_client_still_sending_an_oversized_body_reads_the_413() {
    let rig = Rig::start("http://127.0.0.1:9", None, |c| c);
    let huge = vec![b'x'; 33 << 20];
    let response = client()
        .post(rig.url("/v1/messages"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("the client saw a connection error instead of the answer");
    assert_eq!(response.status(), 413);
    assert_eq!(
        anthropic_error(&response.json().await.unwrap()),
        "request_too_large"
    );
}

// 8. What the proxy keeps on disk is the user's alone.

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An earlier version left everything readable by others.
    std::fs::create_dir_all(data.join("logs")).unwrap();
    for (path, m) in [(&data, 0o755), (&data.join("logs"), 0o755)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
    }
    let db = data.join("pai-orchestrator.sqlite3");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
        .unwrap();
    std::fs::write(data.join("logs/pai-orchestrator.2026-11-01.log"), "old\n").unwrap();
    for file in [&db, &data.join("logs/pai-orchestrator.2026-11-01.log")] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let path = dir.path().join("config.toml");
    std::fs::write(&path, base("http://127.0.0.1:9", None, dir.path()).toml()).unwrap();
    let running = Running::start(&path, &data, &[]);
    assert_eq!(
        client()
            .get(running.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("logs")), 0o700);
    for entry in std::fs::read_dir(&data)
        .unwrap()
        .chain(std::fs::read_dir(data.join("logs")).unwrap())
    {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(data.join("pai-orchestrator.sqlite3-wal").exists());
}

// 9. Every error has Anthropic's shape.

#[tokio::test]
async fn every_error_the_proxy_answers_has_anthropics_shape() {
    use tokio::io::AsyncWriteExt;
    let rig = Rig::start("http://127.0.0.1:9", None, |c| c);
    let token = std::fs::read_to_string(rig.dir.path().join("data/admin-token")).unwrap();
    let checks = [
        client().get(rig.url("/v1/queue?limit=abc")),
        client().get(rig.url("/v1/queue?status=sleeping")),
        client()
            .put(rig.url("/api/mode"))
            .bearer_auth(token.trim())
            .header("content-type", "application/json")
            .body("{not json"),
        client()
            .put(rig.url("/api/mode"))
            .bearer_auth(token.trim())
            .header("content-type", "application/json")
            .body("{\"moods\": 1}"),
        client().delete(rig.url("/health")),
        client().put(rig.url("/v1/messages")),
    ];
    for request in checks {
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(status.is_client_error(), "{status}");
        let text = response.text().await.unwrap();
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text:?}"));
        anthropic_error(&body);
    }
    // What hyper refuses by itself: a malformed request line, headers too large.
    for raw in [
        b"GARBAGE\r\n\r\n".to_vec(),
        format!(
            "GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: {}\r\n\r\n",
            "a".repeat(600_000)
        )
        .into_bytes(),
    ] {
        let mut socket = tokio::net::TcpStream::connect(rig.running.addr)
            .await
            .unwrap();
        let _ = socket.write_all(&raw).await;
        let received = read_until_closed(&mut socket).await.unwrap();
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with("HTTP/1.1 4"), "{text}");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        anthropic_error(&serde_json::from_str(body).unwrap_or_else(|_| panic!("{text}")));
    }
}

// 10. A data dir that cannot be written does not take the proxy down.

#[tokio::test]
async fn with_a_data_dir_that_cannot_be_written_the_proxy_still_serves() {
    let upstream =
        MockUpstream::start(|req| pai_e2e::mock::anthropic_reply(req, "still here")).await;
    let dir = tempfile::tempdir().unwrap();
    // A file where the data dir's parent should be: nothing can be created there (as
    // root too, where permissions would not stop it).
    std::fs::write(dir.path().join("blocked"), "a file").unwrap();
    let data = dir.path().join("blocked/data");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, base(&upstream.url(), None, dir.path()).toml()).unwrap();
    let running = Running::start(&path, &data, &[]);
    let health = pai_e2e::http::get_json(&running.url("/health")).await;
    assert_eq!(health["status"], "degraded", "{health}");
    let degraded = health["degraded"].to_string();
    assert!(degraded.contains("request log"), "{degraded}");
    assert!(degraded.contains("async jobs"), "{degraded}");
    let answer: Value = client()
        .post(running.url("/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .json(&body("hello", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["content"][0]["text"], "still here");
    let refused = client()
        .post(running.url("/v1/queue/messages"))
        .json(&body("job", false))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    anthropic_error(&refused.json().await.unwrap());
}
