//! A bounded soak: 200 requests against the built binary, mixing streams and plain
//! requests with cancellations, stalls, truncations, errors as first events and 529
//! bursts. Every client that stayed gets a complete answer or an Anthropic error; at the
//! end no connection or task is left behind, the breaker is closed again and `/health`
//! answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures_util::StreamExt;
use pai_e2e::anthropic;
use pai_e2e::binary::Running;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::faults::{Fault, FaultyUpstream, RawRequest};
use pai_e2e::http::{client, get_json};
use pai_e2e::mock::MockUpstream;
use pai_e2e::openai::agent_reply;
use serde_json::{json, Value};

const REQUESTS: usize = 200;
const AT_ONCE: usize = 16;

/// What the upstream does, chosen by the request (its text says its number).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Fine,
    /// The client gives up while the upstream holds the request.
    Cancelled,
    StallAfterFirstEvent,
    ClosedMidBody,
    ErrorFirst,
    Overloaded,
}

fn kind(n: usize) -> Kind {
    match n % 10 {
        0..=3 => Kind::Fine,
        4 => Kind::Cancelled,
        5 => Kind::StallAfterFirstEvent,
        6 => Kind::ClosedMidBody,
        7 => Kind::ErrorFirst,
        _ => Kind::Overloaded,
    }
}

fn number(request: &RawRequest) -> usize {
    request.json()["messages"][0]["content"]
        .as_str()
        .and_then(|t| t.strip_prefix("request "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn script(request: &RawRequest) -> Fault {
    let n = number(request);
    let stream = request.json()["stream"] == true;
    let events = anthropic::text_stream("claude-sonnet-5", &format!("answer {n}"));
    match (kind(n), stream) {
        (Kind::Fine, true) => Fault::sse(&events),
        (Kind::Fine, false) => Fault::json(
            200,
            &anthropic::text_message("claude-sonnet-5", &format!("answer {n}")),
        ),
        (Kind::Cancelled, _) => Fault::StallBeforeHeaders,
        (Kind::StallAfterFirstEvent, true) => Fault::StallAfterHeaders {
            content_type: "text/event-stream",
            events: events[..1].to_vec(),
        },
        (Kind::StallAfterFirstEvent, false) => Fault::StallAfterHeaders {
            content_type: "application/json",
            events: vec![],
        },
        (Kind::ClosedMidBody, true) => Fault::CloseMidBody {
            content_type: "text/event-stream",
            events: events[..3].to_vec(),
        },
        (Kind::ClosedMidBody, false) => Fault::CloseMidBody {
            content_type: "application/json",
            events: vec!["{\"id\": \"msg_cut".to_owned()],
        },
        (Kind::ErrorFirst, _) => Fault::sse(&["event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".to_owned()]),
        (Kind::Overloaded, _) => Fault::json(
            529,
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ),
    }
}

/// What one client got.
enum Got {
    Complete,
    AnthropicError,
    LeftEarly,
}

async fn one(base: String, n: usize) -> Got {
    let stream = !n.is_multiple_of(3);
    let body = json!({"model": "claude-sonnet-5", "max_tokens": 64, "stream": stream,
        "messages": [{"role": "user", "content": format!("request {n}")}]});
    let send = async {
        let response = client()
            .post(format!("{base}/v1/messages"))
            .header("x-api-key", "sk-ant-soak")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, text)
    };
    let patience = if kind(n) == Kind::Cancelled {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(30)
    };
    let Ok((status, text)) = tokio::time::timeout(patience, send).await else {
        assert_eq!(kind(n), Kind::Cancelled, "request {n} never ended");
        return Got::LeftEarly;
    };
    if stream && status.is_success() {
        let last = text.lines().rev().find_map(|l| l.strip_prefix("event: "));
        match last {
            Some("message_stop") => Got::Complete,
            Some("error") => Got::AnthropicError,
            other => panic!("request {n}: a stream that ended with {other:?}: {text}"),
        }
    } else {
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("request {n}: HTTP {status} with {text:?}"));
        if status.is_success() {
            assert_eq!(body["type"], "message", "request {n}: {body}");
            Got::Complete
        } else {
            assert_eq!(body["type"], "error", "request {n}: {body}");
            Got::AnthropicError
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_requests_through_every_fault_leave_nothing_behind() {
    let upstream = FaultyUpstream::start(script).await;
    let fallback = MockUpstream::start(|req| agent_reply(req, "the fallback answered")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = ConfigBuilder::new(dir.path())
        .claude(&upstream.url())
        .provider_set("claude", json!({"idle_timeout_secs": 1}))
        .openai("fallback", &format!("{}/v1", fallback.url()), |p| {
            p.model = Some("fallback-model".to_owned())
        })
        .everywhere(&["claude"])
        .fallback(&["fallback"])
        .routing(|r| {
            r.breaker_failures = Some(5);
            r.breaker_cooldown_secs = Some(1);
        })
        .write(dir.path());
    let running = Running::start(&path, &dir.path().join("data"), &[]);
    let base = running.url("");
    let resting_tasks = get_json(&running.url("/health")).await["tasks"]
        .as_u64()
        .unwrap();

    let outcomes: Vec<Got> = futures_util::stream::iter(0..REQUESTS)
        .map(|n| tokio::spawn(one(base.clone(), n)))
        .buffer_unordered(AT_ONCE)
        .map(Result::unwrap)
        .collect()
        .await;
    let complete = outcomes
        .iter()
        .filter(|g| matches!(g, Got::Complete))
        .count();
    let errors = outcomes
        .iter()
        .filter(|g| matches!(g, Got::AnthropicError))
        .count();
    let left = outcomes
        .iter()
        .filter(|g| matches!(g, Got::LeftEarly))
        .count();
    assert_eq!(complete + errors + left, REQUESTS);
    assert!(
        complete >= REQUESTS / 2,
        "{complete} complete, {errors} errors, {left} left"
    );

    // Nothing held upstream; the breaker closes on the next good request.
    upstream.wait_open_at_most(0).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let health = get_json(&running.url("/health")).await;
        let breaker = health["providers"][0]["breaker"].clone();
        if breaker == "closed" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{health}");
        // A good request (a multiple of ten is `Fine`) probes once the cool-down passed.
        let _ = one(base.clone(), 1000).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every client connection closed and every request's task ended (the health
    // request's own connection is the one left). Connections the proxy keeps open to the
    // fallback for reuse have a task each, at most one per request that was in flight at
    // once; a leak would grow with the number of faults (dozens here).
    let bound = resting_tasks + AT_ONCE as u64 + 2;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let health = get_json(&running.url("/health")).await;
        assert_eq!(health["status"], "ok");
        let (connections, tasks) = (
            health["connections"].as_u64().unwrap(),
            health["tasks"].as_u64().unwrap(),
        );
        if connections <= 1 && tasks <= bound {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "leaked: {connections} connections, {tasks} tasks (at rest: {resting_tasks}, bound {bound})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
