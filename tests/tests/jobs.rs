//! Async jobs: accepted durably, run through the router, retried, cancelled, and never
//! lost when the process is killed (`kill -9`) at any point.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pai_e2e::binary::Running;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::{client, get_json_as};
use pai_e2e::mock::{anthropic_reply, MockUpstream, Reply};
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

fn job(n: usize) -> Value {
    json!({"model": "claude-sonnet-5", "max_tokens": 20,
        "messages": [{"role": "user", "content": format!("job number {n}")}]})
}

async fn submit(base: &str, body: &Value) -> (u16, Value) {
    let response = client()
        .post(format!("{base}/v1/queue/messages"))
        .header("x-api-key", "sk-ant-job-key")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The client's next request — any, even one the proxy refuses — brings its key back to
/// a restarted proxy, so the jobs it submitted before the restart can run.
async fn bring_credentials(base: &str) {
    let response = client()
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", "sk-ant-job-key")
        .json(&json!({"model": "claude-sonnet-5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

async fn wait_done(base: &str, id: &str) -> Value {
    get_json_as(&format!("{base}/v1/queue/{id}?wait=30"), "sk-ant-job-key").await
}

#[tokio::test]
async fn a_job_is_accepted_run_and_its_answer_kept() {
    let upstream = MockUpstream::anthropic("the job's answer").await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let base = proxy.url("");
    let (status, accepted) = submit(&base, &job(1)).await;
    assert_eq!(status, 202);
    assert_eq!(accepted["status"], "queued");
    let id = accepted["id"].as_str().unwrap();
    let done = wait_done(&base, id).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["response"]["content"][0]["text"], "the job's answer");
    let seen = &upstream.requests()[0];
    assert_eq!(seen.header("idempotency-key"), Some(id));
    assert_eq!(
        seen.header("x-api-key"),
        Some("sk-ant-job-key"),
        "the key went along, from memory"
    );
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.json()["stream"], Value::Null);
    // The key was never written to the database.
    let db = std::fs::read(proxy.data_dir().join("pai-orchestrator.sqlite3")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains("sk-ant-job-key"));

    let list: Value = get_json_as(&format!("{base}/v1/queue"), "sk-ant-job-key").await;
    assert_eq!(list["jobs"][0]["id"], id);
}

#[tokio::test]
async fn bad_jobs_are_refused_and_queued_ones_can_be_cancelled() {
    let upstream = MockUpstream::anthropic("x").await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let base = proxy.url("");
    let (status, error) = submit(&base, &json!({"model": "m"})).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let mut bad = job(1);
    bad["priority"] = json!(42);
    assert_eq!(submit(&base, &bad).await.0, 400);
    let mut bad = job(1);
    bad["deadline"] = json!("tomorrow");
    let (status, error) = submit(&base, &bad).await;
    assert_eq!(status, 400);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("deadline:"));

    let mut later = job(2);
    later["not_before"] = json!((chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339());
    let (_, accepted) = submit(&base, &later).await;
    let id = accepted["id"].as_str().unwrap();
    let cancelled = client()
        .delete(format!("{base}/v1/queue/{id}"))
        .header("x-api-key", "sk-ant-job-key")
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let job: Value = get_json_as(&format!("{base}/v1/queue/{id}"), "sk-ant-job-key").await;
    assert_eq!(job["status"], "cancelled");
    let again = client()
        .delete(format!("{base}/v1/queue/{id}"))
        .header("x-api-key", "sk-ant-job-key")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let missing = client()
        .get(format!("{base}/v1/queue/job_nope"))
        .header("x-api-key", "sk-ant-job-key")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn a_failing_upstream_is_retried_with_backoff_then_succeeds() {
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let upstream = MockUpstream::start(move |req| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(
                529,
                &[("retry-after", "0")],
                json!({"type":"error","error":{"type":"overloaded_error","message":"busy"}}),
            )
        } else {
            anthropic_reply(req, "second time lucky")
        }
    })
    .await;
    let proxy = TestProxy::start(&upstream.url()).await;
    let base = proxy.url("");
    let (_, accepted) = submit(&base, &job(1)).await;
    let done = wait_done(&base, accepted["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["attempts"], 2);
    assert_eq!(done["response"]["content"][0]["text"], "second time lucky");
}

/// Enqueue jobs, `kill -9` the binary again and again while jobs are in flight, restart
/// on the same data dir: every job ends `done` exactly once; none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_again_and_again_no_job_is_lost() {
    const JOBS: usize = 12;
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let release = Arc::new(Notify::new());
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel::<()>();
    let (record, gate) = (seen.clone(), release.clone());
    // Every answer waits for the test, so the kills land while jobs are running.
    let upstream = MockUpstream::start(move |req| {
        let key = req.header("idempotency-key").unwrap_or("").to_owned();
        *record.lock().unwrap().entry(key).or_default() += 1;
        let _ = arrived_tx.send(());
        let answer = pai_e2e::anthropic::text_message("claude-sonnet-5", "job answer");
        Reply::Sse {
            headers: vec![],
            events: vec![answer.to_string()],
            gates: vec![(0, gate.clone())],
            dropped: None,
            on_end: None,
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        ConfigBuilder::claude_only(&upstream.url(), dir.path()).toml(),
    )
    .unwrap();
    let data = dir.path().join("data");

    let mut ids = Vec::new();
    let mut rounds = 0;
    // Pseudo-random but reproducible: how many answers to let through before each kill.
    let mut let_through = [1usize, 0, 2, 1, 3, 0, 2].into_iter().cycle();
    loop {
        let mut running = Running::start(&config, &data, &[]);
        let base = format!("http://{}", running.addr);
        if ids.is_empty() {
            for n in 0..JOBS {
                let (status, accepted) = submit(&base, &job(n)).await;
                assert_eq!(status, 202);
                ids.push(accepted["id"].as_str().unwrap().to_owned());
            }
        } else {
            bring_credentials(&base).await;
        }
        if rounds == 5 {
            // The last life: let everything finish.
            let mut done = 0;
            while done < JOBS {
                tokio::select! {
                    _ = arrived.recv() => release.notify_one(),
                    answer = wait_done(&base, &ids[done]) => {
                        if answer["status"] == "done" { done += 1; }
                        else { assert_eq!(answer["status"], "running", "{answer}"); }
                    }
                }
            }
            assert!(running.terminate().success());
            break;
        }
        // A job reaches the upstream; let a few answers through; kill -9 mid-flight.
        tokio::time::timeout(Duration::from_secs(20), arrived.recv())
            .await
            .unwrap();
        for _ in 0..let_through.next().unwrap() {
            release.notify_one();
            let _ = tokio::time::timeout(Duration::from_secs(5), arrived.recv()).await;
        }
        running.child.kill().unwrap();
        running.child.wait().unwrap();
        // Drop answers held for the dead process.
        while arrived.try_recv().is_ok() {}
        rounds += 1;
    }

    let conn = rusqlite::Connection::open(data.join("pai-orchestrator.sqlite3")).unwrap();
    let mut stmt = conn.prepare("SELECT id, status FROM jobs").unwrap();
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0).unwrap(), r.get(1).unwrap())))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), JOBS, "one row per job, none lost or duplicated");
    assert!(rows.iter().all(|(_, status)| status == "done"), "{rows:?}");
    let seen = seen.lock().unwrap();
    for id in &ids {
        assert!(
            seen.get(id).copied().unwrap_or(0) >= 1,
            "{id} never reached the upstream"
        );
    }
    let retried = seen.values().filter(|n| **n > 1).count();
    assert!(
        retried >= 1,
        "the kills interrupted running jobs (at-least-once)"
    );
}
