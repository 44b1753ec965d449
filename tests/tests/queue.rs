//! The queue: complex work waits for the quota instead of failing, held streams stay
//! alive with pings, released requests leave by priority within the provider's limit,
//! identical requests share one upstream call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::mock::{anthropic_reply, MockUpstream, Recorded, Reply};
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};
use tokio::sync::Notify;

const LIMIT: Duration = Duration::from_secs(15);

/// Claude alone (two requests at a time), the dashboard polled every second, and a
/// matrix where everything waits for the quota when it is critical.
fn config(claude: &str, dashboard: &str, dir: &std::path::Path) -> ConfigBuilder {
    ConfigBuilder::new(dir)
        .claude(claude)
        .provider_set("claude", json!({"max_concurrent": 2}))
        .dashboard(dashboard)
        .queue(|q| q.ping_secs = Some(1))
        .matrix(&[
            (
                "normal",
                [&["claude:haiku"], &["claude:sonnet"], &["claude:opus"]],
            ),
            (
                "caution",
                [&["claude:haiku"], &["claude:sonnet"], &["claude:opus"]],
            ),
            (
                "warning",
                [&["claude:haiku"], &["claude:sonnet"], &["claude:opus"]],
            ),
            (
                "critical",
                [
                    &["queue", "claude:haiku"],
                    &["queue", "claude:sonnet"],
                    &["queue"],
                ],
            ),
        ])
}

struct Rig {
    proxy: TestProxy,
    claude: MockUpstream,
    quota: Arc<AtomicU64>,
    _dashboard: MockUpstream,
}

async fn rig(claude: MockUpstream, edit: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Rig {
    rig_resetting_in(claude, 60_000, edit).await
}

async fn rig_resetting_in(
    claude: MockUpstream,
    reset_in_ms: u32,
    edit: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> Rig {
    let quota = Arc::new(AtomicU64::new(95));
    let value = quota.clone();
    // The dashboard says when its window resets: a minute from now, always — soon enough
    // for a `queue` target to hold (max_wait_secs is 300 here unless a test says less).
    let reset_in = chrono::Duration::milliseconds(i64::from(reset_in_ms));
    let dashboard = MockUpstream::start(move |_| {
        let resets_at = (chrono::Utc::now() + reset_in).to_rfc3339();
        Reply::json(json!({"usage_percent": value.load(Ordering::SeqCst), "resets_at": resets_at}))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = edit(config(&claude.url(), &dashboard.url(), dir.path())).toml();
    let proxy = TestProxy::start_with(&text, dir).await;
    proxy
        .wait_quota("critical", |s| s["state"] == "critical")
        .await;
    Rig {
        proxy,
        claude,
        quota,
        _dashboard: dashboard,
    }
}

impl Rig {
    async fn wait_until_waiting(&self, n: usize) {
        self.proxy.wait_waiting(n as u64).await;
    }

    fn recover(&self) {
        self.quota.store(10, Ordering::SeqCst);
    }
}

fn request(proxy: &TestProxy, model: &str, prompt: &str, stream: bool) -> reqwest::RequestBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .json(&json!({"model": model, "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}))
}

#[tokio::test]
async fn complex_work_waits_for_the_quota_then_completes_on_claude() {
    let claude = MockUpstream::start(|req| anthropic_reply(req, "done after the wait")).await;
    let rig = rig(claude, |c| c).await;
    let pending = tokio::spawn(
        request(
            &rig.proxy,
            "claude-opus-4-8",
            "design the architecture",
            false,
        )
        .send(),
    );
    rig.wait_until_waiting(1).await;
    assert!(
        rig.claude.requests().is_empty(),
        "nothing sent while critical"
    );
    rig.recover();
    let response = tokio::time::timeout(LIMIT, pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{headers:?} {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    // Released and routed again for the recovered quota: Claude Opus.
    assert_eq!(headers["x-pai-route"], "claude:opus");
    assert_eq!(body["content"][0]["text"], "done after the wait");
    assert_eq!(rig.claude.requests()[0].json()["model"], "claude-opus-4-8");
}

#[tokio::test]
async fn a_held_stream_is_kept_alive_with_pings_then_streams_the_answer() {
    let claude = MockUpstream::start(|req| anthropic_reply(req, "streamed after the wait")).await;
    let rig = rig(claude, |c| c).await;
    let response = request(
        &rig.proxy,
        "claude-opus-4-8",
        "design the architecture",
        true,
    )
    .send()
    .await
    .unwrap();
    // Headers came at once, while the request waits.
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-pai-route"], "queue");
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    // Two pings (ping_secs = 1) prove the connection is kept alive while waiting.
    while seen.matches("event: ping").count() < 2 {
        let chunk = tokio::time::timeout(LIMIT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(rig.claude.requests().is_empty());
    rig.recover();
    while let Some(chunk) = tokio::time::timeout(LIMIT, stream.next()).await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(seen.contains("event: message_start"));
    assert!(seen.contains("streamed after the wait") || seen.contains("streamed after "));
    assert!(
        seen.trim_end()
            .ends_with("data: {\"type\":\"message_stop\"}"),
        "{seen}"
    );
}

#[tokio::test]
async fn past_the_max_wait_with_nothing_else_it_is_a_529_with_retry_after() {
    let claude = MockUpstream::start(|req| anthropic_reply(req, "never")).await;
    // A reset always 1.5 s away that never brings the quota back.
    let rig = rig_resetting_in(claude, 1_500, |c| c.queue(|q| q.max_wait_secs = Some(2))).await;
    let response = request(
        &rig.proxy,
        "claude-opus-4-8",
        "design the architecture",
        false,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 529);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "overloaded_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("stayed critical"));
    // A held stream ends with an error event in Anthropic's shape.
    let text = request(
        &rig.proxy,
        "claude-opus-4-8",
        "design the architecture",
        true,
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(text.starts_with("event: ping"));
    assert!(
        text.contains(
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\""
        ),
        "{text}"
    );
    assert!(rig.claude.requests().is_empty());
}

#[tokio::test]
async fn released_requests_leave_by_priority_then_arrival_within_the_limit() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let release = Arc::new(Notify::new());
    let (i, m, o, r) = (
        in_flight.clone(),
        most.clone(),
        order.clone(),
        release.clone(),
    );
    let ended = in_flight.clone();
    // Each answer is held until the test lets one go, so concurrency is observable.
    let claude = MockUpstream::start(move |req: &Recorded| {
        let now = i.fetch_add(1, Ordering::SeqCst) + 1;
        m.fetch_max(now, Ordering::SeqCst);
        let prompt = req.json()["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        o.lock().unwrap().push(prompt);
        let ended = ended.clone();
        Reply::Sse {
            headers: vec![],
            events: pai_e2e::anthropic::text_stream("m", "ok"),
            gates: vec![(0, r.clone())],
            dropped: None,
            on_end: Some(Arc::new(move || {
                ended.fetch_sub(1, Ordering::SeqCst);
            })),
        }
    })
    .await;
    let rig = rig(claude, |c| c).await;
    let mut tasks = Vec::new();
    for n in 0..20 {
        // Alternate background (simple) and interactive (medium) work.
        let (model, name) = if n % 2 == 0 {
            ("claude-haiku-4-5-20251001", format!("summarize bg-{n:02}"))
        } else {
            ("claude-sonnet-5", format!("fix ia-{n:02}"))
        };
        let send = request(&rig.proxy, model, &name, true).send();
        tasks.push(tokio::spawn(async move {
            send.await.unwrap().text().await.unwrap()
        }));
        // Arrival order is the order sent.
        rig.wait_until_waiting(n + 1).await;
    }
    rig.recover();
    // Everyone is at the gate (2 in flight, 18 waiting) before the first slot frees.
    rig.proxy
        .wait_health("2 in flight and 18 at claude's gate", |health| {
            let claude = &health["providers"][0];
            claude["in_flight"] == 2 && claude["gate_waiting"] == 18
        })
        .await;
    // Let answers go one at a time until all 20 are through.
    let mut released = 0;
    while released < 20 {
        if rig.claude.requests().len() > released {
            release.notify_one();
            released += 1;
        }
        tokio::task::yield_now().await;
    }
    for task in tasks {
        let text = tokio::time::timeout(LIMIT, task).await.unwrap().unwrap();
        assert!(text.contains("message_stop"));
    }
    assert!(
        most.load(Ordering::SeqCst) <= 2,
        "max_concurrent = 2 was exceeded"
    );
    let order = order.lock().unwrap().clone();
    let expected: Vec<String> = (0..20)
        .filter(|n| n % 2 == 1)
        .map(|n| format!("fix ia-{n:02}"))
        .chain(
            (0..20)
                .filter(|n| n % 2 == 0)
                .map(|n| format!("summarize bg-{n:02}")),
        )
        .collect();
    // The first two slots go to whoever the recovery reaches first; after them, the
    // gate's order holds for everyone else.
    let rest: Vec<String> = expected
        .into_iter()
        .filter(|name| !order[..2].contains(name))
        .collect();
    assert_eq!(order[2..], rest[..], "release order: {order:?}");
}

#[tokio::test]
async fn identical_requests_in_flight_share_one_upstream_call() {
    let gate = Arc::new(Notify::new());
    let held = gate.clone();
    let claude = MockUpstream::start(move |_| Reply::Sse {
        headers: vec![],
        events: vec![serde_json::to_string(&pai_e2e::anthropic::text_message(
            "claude-sonnet-5",
            "shared answer",
        ))
        .unwrap()],
        gates: vec![(0, held.clone())],
        dropped: None,
        on_end: None,
    })
    .await;
    let rig = rig(claude, |c| c).await;
    rig.recover();
    rig.proxy
        .wait_quota("normal", |s| s["state"] == "normal")
        .await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let send = request(&rig.proxy, "claude-sonnet-5", "the same question", false).send();
            tokio::spawn(async move { send.await.unwrap().text().await.unwrap() })
        })
        .collect();
    rig.proxy
        .wait_health("9 joined the first's call", |health| {
            health["coalesced"] == 9
        })
        .await;
    gate.notify_one();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(tokio::time::timeout(LIMIT, task).await.unwrap().unwrap());
    }
    assert_eq!(rig.claude.requests().len(), 1, "one upstream call");
    assert!(answers.iter().all(|a| a == &answers[0]));
    assert!(answers[0].contains("shared answer"));
}

#[tokio::test]
async fn a_client_that_hangs_up_leaves_the_queue() {
    let claude = MockUpstream::start(|req| anthropic_reply(req, "never")).await;
    let rig = rig(claude, |c| c).await;
    let response = request(
        &rig.proxy,
        "claude-opus-4-8",
        "design the architecture",
        true,
    )
    .send()
    .await
    .unwrap();
    let mut stream = response.bytes_stream();
    stream.next().await.unwrap().unwrap();
    rig.wait_until_waiting(1).await;
    drop(stream);
    rig.wait_until_waiting(0).await;
    rig.recover();
    assert!(
        rig.claude.requests().is_empty(),
        "the abandoned request was never sent"
    );
}
