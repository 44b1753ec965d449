//! Hostile values and hostile neighbours, against the built binary: numbers no upstream
//! should send (`retry-after: 1e20`, a reset in the year 300000) must never panic a
//! request or a job worker — the client gets its answer or an Anthropic error, the proxy
//! stays up, the job workers go on; and a job is its submitter's alone: another key, or
//! none, finds nothing, while the same key in another header form is the same owner.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pai_e2e::anthropic;
use pai_e2e::binary::Running;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::client;
use pai_e2e::mock::{MockUpstream, Reply};
use serde_json::{json, Value};

fn start(upstream: &MockUpstream) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = ConfigBuilder::new(dir.path())
        .claude(&upstream.url())
        .everywhere(&["claude"])
        .write(dir.path());
    let running = Running::start(&path, &dir.path().join("data"), &[]);
    (running, dir)
}

fn body(text: &str, stream: bool) -> Value {
    json!({"model": "claude-sonnet-5-5", "max_tokens": 100, "stream": stream,
        "messages": [{"role": "user", "content": text}]})
}

async fn send(running: &Running, body: &Value) -> (u16, String) {
    let response = client()
        .post(running.url("/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn absurd(text: &str) -> Vec<(String, String)> {
    let (retry_after, reset) = match text {
        "ok-1e20" | "503-1e20" => ("1e20", "99999999999999999"),
        "429-1e13" => ("1e13", "-5"),
        _ => ("inf", "NaN"),
    };
    vec![
        ("retry-after".to_owned(), retry_after.to_owned()),
        (
            "anthropic-ratelimit-unified-reset".to_owned(),
            reset.to_owned(),
        ),
        (
            "anthropic-ratelimit-unified-5h-reset".to_owned(),
            reset.to_owned(),
        ),
        (
            "anthropic-ratelimit-unified-5h-utilization".to_owned(),
            "1e300".to_owned(),
        ),
    ]
}

fn reply(request: &pai_e2e::mock::Recorded) -> Reply {
    let body = request.json();
    let text = body["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let headers = absurd(&text);
    if text.starts_with("429") {
        return Reply::status(
            429,
            &[],
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
        )
        .with_headers(headers);
    }
    if text.starts_with("503") {
        // Without a utilization: one over 100 % would make the quota critical, and jobs
        // wait that out.
        let headers = headers
            .into_iter()
            .filter(|(k, _)| !k.contains("utilization"));
        return Reply::status(
            503,
            &[],
            json!({"type": "error", "error": {"type": "api_error", "message": "down"}}),
        )
        .with_headers(headers.collect());
    }
    if text == "job ok" {
        return Reply::json(anthropic::text_message("claude-sonnet-5-5", "job done"));
    }
    pai_e2e::mock::anthropic_reply(request, "fine").with_headers(headers)
}

#[tokio::test]
async fn absurd_retry_after_and_resets_never_break_an_answer() {
    let upstream = MockUpstream::start(reply).await;
    let (running, _dir) = start(&upstream);
    for stream in [false, true] {
        let (status, text) = send(&running, &body("ok-1e20", stream)).await;
        assert_eq!(status, 200, "{text}");
        if stream {
            assert!(text.contains("event: message_stop"), "{text}");
        } else {
            assert!(text.contains("fine"), "{text}");
        }
    }
    let (status, text) = send(&running, &body("429-1e13", false)).await;
    assert_eq!(status, 429, "the client gets the 429 as it came: {text}");
    let health = pai_e2e::http::get_json(&running.url("/health")).await;
    assert_eq!(health["status"], "ok", "{health}");
    // The block that 429 set lies within the bound, not 300 000 years ahead.
    let until = health["quota"]["rate_limited_until"].as_str().unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(until).unwrap();
    assert!(
        until < chrono::Utc::now() + chrono::Duration::days(401),
        "{until}"
    );
}

#[tokio::test]
async fn a_job_with_an_absurd_retry_after_leaves_the_workers_running() {
    let upstream = MockUpstream::start(reply).await;
    let (running, _dir) = start(&upstream);
    let mut ids = Vec::new();
    // 503s, not 429s: a 429 makes the quota critical, and jobs wait that out.
    for text in ["503-1e20", "503-inf", "job ok"] {
        let accepted: Value = client()
            .post(running.url("/v1/queue/messages"))
            .header("x-api-key", "sk-ant-test")
            .json(&body(text, false))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(accepted["id"].as_str().unwrap().to_owned());
    }
    let job = |id: &str, wait: u32| {
        let url = running.url(&format!("/v1/queue/{id}?wait={wait}"));
        async move {
            client()
                .get(url)
                .header("x-api-key", "sk-ant-test")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let done = job(&ids[2], 20).await;
    assert_eq!(done["status"], "done", "the next job still runs: {done}");
    // The workers took them first, and are through with them.
    for id in &ids[..2] {
        let refused = job(id, 0).await;
        assert_ne!(refused["status"], "running", "{refused}");
    }
}

async fn submit(running: &Running, header: (&str, &str)) -> String {
    let accepted: Value = client()
        .post(running.url("/v1/queue/messages"))
        .header(header.0, header.1)
        .json(&body("job ok", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    accepted["id"].as_str().unwrap().to_owned()
}

async fn status(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_job_is_its_submitters_alone_whichever_header_carries_the_key() {
    let upstream = MockUpstream::start(reply).await;
    let (running, _dir) = start(&upstream);
    let mine = submit(&running, ("x-api-key", "sk-ant-mine")).await;
    let theirs = submit(&running, ("x-api-key", "sk-ant-theirs")).await;
    let url = |id: &str| running.url(&format!("/v1/queue/{id}"));
    // Another key, or none: as if the job did not exist.
    for request in [
        client()
            .get(url(&mine))
            .header("x-api-key", "sk-ant-theirs"),
        client().get(url(&mine)),
        client().delete(url(&mine)),
        client()
            .delete(url(&mine))
            .header("x-api-key", "sk-ant-theirs"),
    ] {
        let (code, body) = status(request).await;
        assert_eq!(code, 404, "{body}");
        assert!(!body.to_string().contains("job ok"), "{body}");
    }
    // The same key as a bearer token (the Python SDK sends it so) is the same owner.
    let (code, job) = status(client().get(url(&mine)).bearer_auth("sk-ant-mine")).await;
    assert_eq!(code, 200, "{job}");
    let (_, list) = status(
        client()
            .get(running.url("/v1/queue"))
            .header("x-api-key", "sk-ant-mine"),
    )
    .await;
    let ids: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()], "the list is mine only, not {theirs}");
    let (_, none) = status(client().get(running.url("/v1/queue"))).await;
    assert_eq!(none["jobs"], json!([]));
}
