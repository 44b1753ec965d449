//! Proxy overhead benchmark: the same load against the mock upstream directly and through
//! the proxy, interleaved in one run, reported as ratios against the direct baseline.
//!
//! `cargo run --release -p pai-e2e --bin bench [-- --quick]`

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

fn body(stream: bool) -> String {
    json!({"model": "claude-sonnet-5", "max_tokens": 1024, "stream": stream,
        "messages": [{"role": "user", "content": "benchmark"}]})
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
    let quick = std::env::args().any(|a| a == "--quick");
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
