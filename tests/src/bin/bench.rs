//! The benchmarks behind README's performance table, in one run on this machine:
//! baselines and PAI Orchestrator measured side by side, interleaved, medians of three.
//!
//! - `proxy`: `wrk` against an instant nginx mock directly, through nginx as a reverse
//!   proxy (keep-alive upstream: the practical limit of a proxy on this box), and through
//!   the release binary (headless; all-Claude matrix, coalescing off; classification,
//!   routing, the request log and the quota monitor on). c=1 latency, c=64 throughput.
//! - `stream`: time to the first byte of a streamed answer at c=10, the same three ways.
//! - `startup`: cold start to the first `/health` 200; idle memory of the headless binary
//!   and (with `--tray`, under Xvfb) of the tray app with its window closed.
//! - `queue`: durable enqueue latency (`POST /v1/queue/messages`, on disk when answered).
//! - `translate`, `classify`: the core's own work on a Claude Code-sized request.
//!
//! `scripts/bench.sh [--quick] [--tray] [SECTION…]` builds the release binaries and runs
//! this; nginx and wrk come from Debian (`nginx-light`, `wrk`), started and stopped here.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

/// The allocator the shipped binaries use, so the core's own work is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One row of the results: what, its target, its baseline, what was measured, met or not.
struct Row {
    measure: String,
    target: String,
    baseline: String,
    measured: String,
    met: Option<bool>,
}

fn row(measure: &str, target: &str, baseline: String, measured: String, met: Option<bool>) -> Row {
    Row {
        measure: measure.to_owned(),
        target: target.to_owned(),
        baseline,
        measured,
        met,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `port` answers `GET path` with 200; returns how long it took.
fn wait_http(port: u16, path: &str, limit: Duration) -> Duration {
    use std::io::{Read, Write};
    let start = Instant::now();
    loop {
        if let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let request =
                format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
            if socket.write_all(request.as_bytes()).is_ok() {
                let mut head = [0u8; 12];
                if socket.read_exact(&mut head).is_ok() && &head[9..12] == b"200" {
                    return start.elapsed();
                }
            }
        }
        assert!(start.elapsed() < limit, "nothing answered on port {port}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn binary(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(default))
}

/// A Messages answer as Anthropic sends it, and a streamed one.
fn answers() -> (String, String) {
    let message =
        pai_e2e::anthropic::text_message("claude-sonnet-5", "Hi! How can I help you today?");
    let stream =
        pai_e2e::anthropic::text_stream("claude-sonnet-5", "Hi! How can I help you today?")
            .concat();
    (message.to_string(), stream)
}

/// nginx serving the instant mock upstream on `mock` and proxying to it on `proxy`.
struct Nginx {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(mock: u16, proxy: u16) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let (message, stream) = answers();
        let d = dir.path().display();
        let config = format!(
            r#"worker_processes auto;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_requests 1000000;
  upstream mock {{ server 127.0.0.1:{mock}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{mock} backlog=4096;
    location = /v1/messages {{
      default_type application/json;
      if ($arg_beta = "stream") {{ rewrite ^ /stream last; }}
      return 200 '{message}';
    }}
    location = /stream {{
      default_type text/event-stream;
      return 200 '{stream}';
    }}
    location / {{ return 200 'ok'; }}
  }}
  server {{
    listen 127.0.0.1:{proxy} backlog=4096;
    location / {{
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"#
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir.path())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is missing: apt-get install nginx-light (scripts/bench.sh does)");
        wait_http(mock, "/", Duration::from_secs(10));
        wait_http(proxy, "/", Duration::from_secs(10));
        Nginx { child, _dir: dir }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The release binary, headless, in front of the nginx mock.
struct Orchestrator {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Orchestrator {
    fn config(mock: u16, port: u16, dir: &Path) -> PathBuf {
        pai_e2e::config::ConfigBuilder::new(dir)
            .claude(&format!("http://127.0.0.1:{mock}"))
            .everywhere(&["claude"])
            .queue(|q| q.coalesce = Some(false))
            .server(|s| s.listen = Some(format!("127.0.0.1:{port}")))
            .write(dir)
    }

    fn start(mock: u16) -> (Orchestrator, Duration) {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = Self::config(mock, port, dir.path());
        let started = Instant::now();
        let child = Command::new(binary("PAI_BIN", "target/release/pai-orchestrator"))
            .args(["--headless", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_http(port, "/health", Duration::from_secs(30));
        let cold = started.elapsed();
        (
            Orchestrator {
                child,
                port,
                _dir: dir,
            },
            cold,
        )
    }

    fn rss_mb(&self) -> f64 {
        rss_mb(self.child.id())
    }
}

impl Drop for Orchestrator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process, in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// What one `wrk` run measured.
struct Wrk {
    p50: f64,
    p99: f64,
    rps: f64,
}

const BODY: &str = r#"{"model":"claude-sonnet-5","max_tokens":16,"messages":[{"role":"user","content":"say hi"}]}"#;

fn wrk(port: u16, connections: u32, seconds: u32) -> Wrk {
    let script = std::env::temp_dir().join("pai-bench-post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = '{BODY}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"x-api-key\"] = \"sk-ant-bench\"\nwrk.headers[\"anthropic-version\"] = \"2023-06-01\"\n"
        ),
    )
    .unwrap();
    let threads = connections.min(2);
    let output = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/v1/messages"))
        .output()
        .expect("wrk is missing: apt-get install wrk (scripts/bench.sh does)");
    let text = String::from_utf8_lossy(&output.stdout);
    let latency = |label: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("wrk printed no {label}: {text}"));
        let value = line.split_whitespace().nth(1).unwrap();
        let (number, unit) = value.split_at(value.find(|c: char| c.is_alphabetic()).unwrap());
        let number: f64 = number.parse().unwrap();
        match unit {
            "us" => number / 1000.0,
            "ms" => number,
            "s" => number * 1000.0,
            other => panic!("unit {other}"),
        }
    };
    let rps: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("wrk printed no rate: {text}"));
    let errors = text.contains("Non-2xx") || text.contains("Socket errors");
    assert!(!errors, "wrk saw errors: {text}");
    Wrk {
        p50: latency("50%"),
        p99: latency("99%"),
        rps,
    }
}

/// c=1 latency and c=64 throughput: direct, nginx, PAI Orchestrator, three interleaved
/// rounds, medians.
fn proxy_bench(quick: bool, rows: &mut Vec<Row>) {
    let (mock, via_nginx) = (free_port(), free_port());
    let _nginx = Nginx::start(mock, via_nginx);
    let (orchestrator, _) = Orchestrator::start(mock);
    let ours = orchestrator.port;
    let seconds = if quick { 2 } else { 5 };
    // Warm every path.
    for port in [mock, via_nginx, ours] {
        wrk(port, 4, 1);
    }
    let mut runs: [Vec<Wrk>; 3] = Default::default();
    let mut wide: [Vec<Wrk>; 3] = Default::default();
    for _ in 0..3 {
        for (i, port) in [mock, via_nginx, ours].into_iter().enumerate() {
            runs[i].push(wrk(port, 1, seconds));
            wide[i].push(wrk(port, 64, seconds));
        }
    }
    let p50 = |i: usize| median(runs[i].iter().map(|w| w.p50).collect());
    let p99 = |i: usize| median(runs[i].iter().map(|w| w.p99).collect());
    let rps = |i: usize| median(wide[i].iter().map(|w| w.rps).collect());
    let (direct, nginx, pai) = (p50(0), p50(1), p50(2));
    rows.push(row(
        "added p50 at c=1, non-streaming",
        "<= 0.08 ms",
        format!("nginx +{:.3} ms (direct {direct:.3} ms)", nginx - direct),
        format!("+{:.3} ms ({pai:.3} ms)", pai - direct),
        Some(pai - direct <= 0.08),
    ));
    rows.push(row(
        "p99 at c=1",
        "<= 1 ms",
        format!("direct {:.3} ms, nginx {:.3} ms", p99(0), p99(1)),
        format!("{:.3} ms", p99(2)),
        Some(p99(2) <= 1.0),
    ));
    rows.push(row(
        "c=64 throughput",
        ">= 50 % of nginx",
        format!("direct {:.0}/s, nginx {:.0}/s", rps(0), rps(1)),
        format!(
            "{:.0}/s ({:.0} % of nginx)",
            rps(2),
            100.0 * rps(2) / rps(1)
        ),
        Some(rps(2) >= 0.5 * rps(1)),
    ));
}

/// Time to the first byte of a streamed answer, ten clients at once.
async fn stream_bench(quick: bool, rows: &mut Vec<Row>) {
    let (mock, via_nginx) = (free_port(), free_port());
    let _nginx = Nginx::start(mock, via_nginx);
    let (orchestrator, _) = Orchestrator::start(mock);
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let body = r#"{"model":"claude-sonnet-5","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"say hi"}]}"#;
    let per_client = if quick { 100 } else { 500 };
    let mut results = Vec::new();
    for port in [mock, via_nginx, orchestrator.port] {
        let url = format!("http://127.0.0.1:{port}/v1/messages?beta=stream");
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    for _ in 0..per_client {
                        let start = Instant::now();
                        let response = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("x-api-key", "sk-ant-bench")
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), 200);
                        let mut stream = response.bytes_stream();
                        stream.next().await.unwrap().unwrap();
                        samples.push(start.elapsed());
                        while stream.next().await.is_some() {}
                    }
                    samples
                })
            })
            .collect();
        let mut samples = Vec::new();
        for task in tasks {
            samples.extend(task.await.unwrap());
        }
        samples.sort();
        results.push(ms(percentile(&samples, 0.5)));
    }
    rows.push(row(
        "streaming time to first byte, c=10, added",
        "<= 0.2 ms",
        format!(
            "direct {:.3} ms, nginx +{:.3} ms",
            results[0],
            results[1] - results[0]
        ),
        format!("+{:.3} ms", results[2] - results[0]),
        Some(results[2] - results[0] <= 0.2),
    ));
}

/// Cold start to the first `/health` 200, and idle memory.
fn startup_bench(tray: bool, rows: &mut Vec<Row>) {
    let mock = free_port();
    let _nginx = Nginx::start(mock, free_port());
    let mut colds = Vec::new();
    for _ in 0..5 {
        let (orchestrator, cold) = Orchestrator::start(mock);
        colds.push(ms(cold));
        drop(orchestrator);
    }
    let cold = median(colds);
    rows.push(row(
        "cold start to first /health 200",
        "<= 50 ms",
        "-".to_owned(),
        format!("{cold:.1} ms"),
        Some(cold <= 50.0),
    ));
    let (orchestrator, _) = Orchestrator::start(mock);
    for _ in 0..20 {
        wait_http(orchestrator.port, "/health", Duration::from_secs(5));
    }
    std::thread::sleep(Duration::from_secs(3));
    let rss = orchestrator.rss_mb();
    rows.push(row(
        "idle RSS, headless",
        "<= 25 MB",
        "-".to_owned(),
        format!("{rss:.1} MB"),
        Some(rss <= 25.0),
    ));
    if tray {
        rows.push(tray_rss(mock));
    }
}

/// The tray app under Xvfb, its window never opened: resident memory once idle.
fn tray_rss(mock: u16) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = Orchestrator::config(mock, port, dir.path());
    let mut xvfb = Command::new("Xvfb")
        .args([":97", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb is missing (scripts/setup.sh --tests installs it)");
    let mut tray = Command::new(binary(
        "PAI_TRAY_BIN",
        "target/release/pai-orchestrator-tray",
    ))
    .args(["--config"])
    .arg(&config)
    .arg("--data-dir")
    .arg(dir.path().join("data"))
    .env("DISPLAY", ":97")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_http(port, "/health", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(5));
    let rss = rss_mb(tray.id());
    let _ = tray.kill();
    let _ = tray.wait();
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    row(
        "idle RSS, tray app, window closed",
        "<= 80 MB",
        "-".to_owned(),
        format!("{rss:.1} MB"),
        Some(rss <= 80.0),
    )
}

/// `POST /v1/queue/messages` one after another: each answered once the job is on disk.
async fn queue_bench(quick: bool, rows: &mut Vec<Row>) {
    let mock = free_port();
    let _nginx = Nginx::start(mock, free_port());
    let (orchestrator, _) = Orchestrator::start(mock);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://127.0.0.1:{}/v1/queue/messages", orchestrator.port);
    let n = if quick { 200 } else { 1000 };
    let mut latencies = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(BODY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.bytes().await.unwrap();
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let (p50, p99) = (
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
    );
    rows.push(row(
        "durable enqueue p99",
        "<= 1 ms",
        "-".to_owned(),
        format!("{p99:.3} ms (p50 {p50:.3} ms)"),
        Some(p99 <= 1.0),
    ));
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let tray = args.iter().any(|a| a == "--tray");
    let sections: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let wants = |name: &str| sections.is_empty() || sections.contains(&name);
    let mut rows = Vec::new();
    if wants("proxy") {
        tokio::task::block_in_place(|| proxy_bench(quick, &mut rows));
    }
    if wants("stream") {
        stream_bench(quick, &mut rows).await;
    }
    if wants("startup") {
        tokio::task::block_in_place(|| startup_bench(tray, &mut rows));
    }
    if wants("queue") {
        queue_bench(quick, &mut rows).await;
    }
    if wants("translate") {
        rows.push(translate_bench(quick));
    }
    println!("| measure | target | baseline (same run) | PAI Orchestrator | |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        let verdict = match r.met {
            Some(true) => "met",
            Some(false) => "missed",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {verdict} |",
            r.measure, r.target, r.baseline, r.measured
        );
    }
    if wants("classify") {
        println!();
        classify_bench(quick);
    }
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

/// Anthropic -> OpenAI request translation of a Claude Code-sized request, and the
/// streamed answer's translation back, per chunk.
fn translate_bench(quick: bool) -> Row {
    use pai_core::translate::request::{to_openai, Limits};
    use pai_core::translate::stream::StreamTranslator;
    let body = claude_code_sized();
    let text = body.to_string();
    let estimated = pai_core::wire::tokens::estimate(text.as_bytes());
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
                    images: true,
                },
            )
            .unwrap(),
        );
    }
    let per_request = ms(start.elapsed()) / n as f64;

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
    let per_chunk = per_op(start.elapsed(), rounds * 2000);
    row(
        &format!(
            "translate a Claude Code request ({} KB, {} tools) to OpenAI",
            text.len() / 1000,
            body["tools"].as_array().unwrap().len()
        ),
        "<= 0.35 ms",
        "-".to_owned(),
        format!("{per_request:.3} ms (stream back: {per_chunk} per chunk)"),
        Some(per_request <= 0.35),
    )
}

fn classify_bench(quick: bool) {
    use pai_core::classify::{Classifier, RequestFacts};
    use pai_core::config::ClassifyRules;
    use pai_core::wire::summary::MessagesSummary;
    let text = claude_code_sized().to_string();
    let classifier = Classifier::new(&ClassifyRules::default());
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
        let facts = RequestFacts::from_summary(&summary, text.as_bytes());
        std::hint::black_box(classifier.classify(&facts, None));
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
