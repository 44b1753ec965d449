//! Benchmarks, reported as tables for README.
//!
//! - `proxy`: the same load against the mock upstream directly and through the proxy,
//!   interleaved in one run, reported as ratios against the direct baseline.
//! - `translate`: a Claude Code-sized request (24 tools, ~30k tokens) to OpenAI, and a
//!   2,000-chunk OpenAI stream to Anthropic events.
//! - `classify`: classification of a Claude Code-sized request.
//!
//! `cargo run --release -p pai-e2e --bin bench [-- proxy|translate|classify] [--quick]`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use pai_e2e::mock::{anthropic_reply, MockUpstream};
use pai_e2e::proxy::TestProxy;
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    Stats {
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        max: *samples.last().unwrap(),
    }
}

/// A distinct body each time, so identical-request coalescing never flatters the proxy.
fn body(stream: bool) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    json!({"model": "claude-sonnet-5", "max_tokens": 1024, "stream": stream,
        "messages": [{"role": "user", "content": format!("benchmark request {n}")}]})
    .to_string()
}

async fn round_trip(client: &reqwest::Client, url: &str, body: &str) -> Duration {
    let start = Instant::now();
    let response = client
        .post(url)
        .header("x-api-key", "sk-ant-bench")
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    response.bytes().await.unwrap();
    start.elapsed()
}

async fn time_to_first_byte(client: &reqwest::Client, url: &str, body: &str) -> Duration {
    let start = Instant::now();
    let response = client
        .post(url)
        .header("x-api-key", "sk-ant-bench")
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    stream.next().await.unwrap().unwrap();
    let ttfb = start.elapsed();
    while stream.next().await.is_some() {}
    ttfb
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| only.is_empty() || only.contains(&name);
    if wants("translate") {
        translate_bench(quick);
    }
    if wants("classify") {
        classify_bench(quick);
    }
    if wants("jobs") {
        jobs_bench(quick).await;
    }
    if wants("proxy") {
        proxy_bench(quick).await;
    }
}

/// Durable enqueue (`synchronous=FULL`): latency and throughput of `POST /v1/queue/messages`,
/// and the added latency of the queue path when nothing waits (a `queue` target first in
/// the chain while the quota is normal).
async fn jobs_bench(quick: bool) {
    let upstream = MockUpstream::start(|req| anthropic_reply(req, "job")).await;
    let dir = tempfile::tempdir().unwrap();
    let text = pai_e2e::config::ConfigBuilder::claude_only(&upstream.url(), dir.path()).toml();
    let proxy = TestProxy::start_with(&text, dir).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let n = if quick { 100 } else { 1000 };
    let mut latencies = Vec::new();
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let response = client
            .post(proxy.url("/v1/queue/messages"))
            .header("content-type", "application/json")
            .body(body(false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.bytes().await.unwrap();
        latencies.push(t.elapsed());
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let enqueue = stats(latencies);

    // The queue path when nothing waits: a chain starting with `queue` vs the same
    // provider directly.
    let upstream2 = MockUpstream::start(|req| anthropic_reply(req, "x")).await;
    let dir = tempfile::tempdir().unwrap();
    let queued = pai_e2e::config::ConfigBuilder::claude_only(&upstream2.url(), dir.path())
        .matrix(&[
            (
                "normal",
                [
                    &["claude:haiku"],
                    &["queue", "claude:sonnet"],
                    &["claude:opus"],
                ],
            ),
            (
                "caution",
                [&["claude"], &["claude:sonnet"], &["claude:sonnet"]],
            ),
            ("warning", [&["claude"], &["claude"], &["claude"]]),
            ("critical", [&["claude"], &["claude"], &["queue", "claude"]]),
        ])
        .toml();
    let queue_proxy = TestProxy::start_with(&queued, dir).await;
    let plain_proxy = TestProxy::start(&upstream2.url()).await;
    let rounds = if quick { 300 } else { 3000 };
    let (mut plain, mut through_queue) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        plain.push(round_trip(&client, &plain_proxy.url("/v1/messages"), &body(false)).await);
        through_queue
            .push(round_trip(&client, &queue_proxy.url("/v1/messages"), &body(false)).await);
    }
    let (plain, through_queue) = (stats(plain), stats(through_queue));
    println!("Queue ({n} durable enqueues, {rounds} interleaved requests)");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| enqueue p50 / p99 (synchronous=FULL) | {:.3} ms / {:.3} ms |",
        ms(enqueue.p50),
        ms(enqueue.p99)
    );
    println!("| enqueue throughput (one client) | {rate:.0} jobs/s |");
    println!(
        "| queue target passed while the quota is normal, p50 / p99 added | {:+.3} ms / {:+.3} ms |",
        ms(through_queue.p50) - ms(plain.p50),
        ms(through_queue.p99) - ms(plain.p99)
    );
    println!();
}

/// A Claude Code request grown to ~30k tokens of history, its real 24 tools kept.
fn claude_code_sized() -> serde_json::Value {
    let mut body: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/claude-code-request.json")).unwrap();
    let filler = "fn main() { println!(\"hello\"); } // a line of code seen earlier\n".repeat(60);
    let messages = body["messages"].as_array_mut().unwrap();
    for i in 0..20 {
        messages.insert(0, json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": filler.clone()}));
    }
    body
}

fn per_op(total: Duration, n: usize) -> String {
    let micros = total.as_secs_f64() * 1e6 / n as f64;
    if micros >= 1000.0 {
        format!("{:.3} ms", micros / 1000.0)
    } else {
        format!("{micros:.2} µs")
    }
}

fn translate_bench(quick: bool) {
    use pai_core::translate::request::{to_openai, Limits};
    use pai_core::translate::stream::StreamTranslator;
    use pai_core::translate::tokens;
    let body = claude_code_sized();
    let text = body.to_string();
    let estimated = tokens::estimate(&body);
    let n = if quick { 50 } else { 500 };
    let start = Instant::now();
    for _ in 0..n {
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        std::hint::black_box(
            to_openai(
                &parsed,
                "local",
                Limits {
                    context_window: Some(131072),
                    input_tokens: estimated as u32,
                },
            )
            .unwrap(),
        );
    }
    let request_time = start.elapsed();

    let mut stream = String::new();
    for i in 0..2000 {
        let delta = if i % 10 == 9 {
            json!({"tool_calls": [{"index": 0, "id": if i == 9 { json!("call_1") } else { json!(null) }, "function": {"name": "Bash", "arguments": "{\"a\":1}"}}]})
        } else {
            json!({"content": "token "})
        };
        stream.push_str(&format!("data: {}\n\n", json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})));
    }
    stream.push_str("data: [DONE]\n\n");
    let rounds = if quick { 5 } else { 50 };
    let start = Instant::now();
    for _ in 0..rounds {
        let mut translator = StreamTranslator::new("m", 10);
        for chunk in stream.as_bytes().chunks(512) {
            std::hint::black_box(translator.feed(chunk));
        }
        std::hint::black_box(translator.finish());
    }
    let stream_time = start.elapsed();
    println!(
        "Translation ({} bytes, ~{estimated} tokens, {} tools; 2,000-chunk stream)",
        text.len(),
        body["tools"].as_array().unwrap().len()
    );
    println!("| measure | time |");
    println!("|---|---|");
    println!(
        "| request Anthropic -> OpenAI (parse + translate) | {} per request |",
        per_op(request_time, n)
    );
    println!(
        "| stream OpenAI -> Anthropic | {} per chunk |",
        per_op(stream_time, rounds * 2000)
    );
    println!();
}

fn classify_bench(quick: bool) {
    use pai_core::classify::{classify, RequestFacts};
    use pai_core::config::ClassifyRules;
    use pai_core::wire::summary::MessagesSummary;
    let text = claude_code_sized().to_string();
    let rules = ClassifyRules::default();
    let n = if quick { 200 } else { 2000 };
    let start = Instant::now();
    for _ in 0..n {
        let summary = MessagesSummary::parse(text.as_bytes()).unwrap();
        std::hint::black_box(&summary);
    }
    let parse_time = start.elapsed();
    let summary = MessagesSummary::parse(text.as_bytes()).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        let facts = RequestFacts::from_summary(&summary, text.len());
        std::hint::black_box(classify(&facts, None, &rules));
    }
    let classify_time = start.elapsed();
    println!("Classification ({} bytes)", text.len());
    println!("| measure | time |");
    println!("|---|---|");
    println!(
        "| borrowed parse (done for every request anyway) | {} |",
        per_op(parse_time, n)
    );
    println!("| facts + classification | {} |", per_op(classify_time, n));
    println!();
}

async fn proxy_bench(quick: bool) {
    let scale = if quick { 10 } else { 1 };
    let upstream = MockUpstream::start(|req| anthropic_reply(req, "benchmark answer text")).await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let direct = format!("{}/v1/messages", upstream.url());
    let proxied = proxy.url("/v1/messages");
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(128)
        .build()
        .unwrap();

    // Warm both paths (connections, caches).
    for _ in 0..50 {
        round_trip(&client, &direct, &body(false)).await;
        round_trip(&client, &proxied, &body(false)).await;
    }

    // c=1 non-streaming round trips, interleaved.
    let rounds = 3000 / scale;
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        d.push(round_trip(&client, &direct, &body(false)).await);
        p.push(round_trip(&client, &proxied, &body(false)).await);
    }
    let (d1, p1) = (stats(d), stats(p));

    // c=10 streaming, time to first byte, interleaved per task.
    let per_task = 300 / scale;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (client, direct, proxied) = (client.clone(), direct.clone(), proxied.clone());
            tokio::spawn(async move {
                let (mut d, mut p) = (Vec::new(), Vec::new());
                for _ in 0..per_task {
                    d.push(time_to_first_byte(&client, &direct, &body(true)).await);
                    p.push(time_to_first_byte(&client, &proxied, &body(true)).await);
                }
                (d, p)
            })
        })
        .collect();
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for task in tasks {
        let (dd, pp) = task.await.unwrap();
        d.extend(dd);
        p.extend(pp);
    }
    let (d10, p10) = (stats(d), stats(p));

    // c=64 throughput, alternating blocks.
    let per_worker = 100 / scale;
    let mut direct_rps = Vec::new();
    let mut proxied_rps = Vec::new();
    for block in 0..4 {
        let url = if block % 2 == 0 { &direct } else { &proxied };
        let start = Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    for _ in 0..per_worker {
                        round_trip(&client, &url, &body(false)).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let rps = (64 * per_worker) as f64 / start.elapsed().as_secs_f64();
        if block % 2 == 0 {
            direct_rps.push(rps);
        } else {
            proxied_rps.push(rps);
        }
    }
    let direct_rps = direct_rps.iter().sum::<f64>() / direct_rps.len() as f64;
    let proxied_rps = proxied_rps.iter().sum::<f64>() / proxied_rps.len() as f64;

    println!(
        "PAI Orchestrator proxy benchmark (mock upstream on loopback, {} rounds at c=1)",
        rounds
    );
    println!("| measure | direct | proxied | ratio / added |");
    println!("|---|---|---|---|");
    println!(
        "| c=1 round trip p50 | {:.3} ms | {:.3} ms | {:.2}x |",
        ms(d1.p50),
        ms(p1.p50),
        ms(p1.p50) / ms(d1.p50)
    );
    println!(
        "| c=1 round trip p99 | {:.3} ms | {:.3} ms | {:.2}x |",
        ms(d1.p99),
        ms(p1.p99),
        ms(p1.p99) / ms(d1.p99)
    );
    println!(
        "| c=1 round trip max | {:.3} ms | {:.3} ms | (no ~40 ms keep-alive stall: {}) |",
        ms(d1.max),
        ms(p1.max),
        if ms(p1.p99) < 40.0 { "yes" } else { "NO" }
    );
    println!(
        "| c=10 stream TTFB p50 | {:.3} ms | {:.3} ms | +{:.3} ms |",
        ms(d10.p50),
        ms(p10.p50),
        ms(p10.p50) - ms(d10.p50)
    );
    println!(
        "| c=10 stream TTFB p99 | {:.3} ms | {:.3} ms | +{:.3} ms |",
        ms(d10.p99),
        ms(p10.p99),
        ms(p10.p99) - ms(d10.p99)
    );
    println!(
        "| c=64 throughput | {:.0} req/s | {:.0} req/s | {:.2}x |",
        direct_rps,
        proxied_rps,
        proxied_rps / direct_rps
    );
}
