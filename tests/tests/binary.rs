//! The built binary, end to end: CLI, config file, status, logging, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use pai_e2e::binary::{binary_path, Running};
use pai_e2e::http::{client, get_json};
use pai_e2e::mock::MockUpstream;
use serde_json::{json, Value};

#[tokio::test]
async fn first_run_writes_the_default_config_and_serves_health_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("conf/config.toml");
    let mut running = Running::start(&config, &dir.path().join("data"), &[]);
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.starts_with("# PAI Orchestrator configuration."));
    assert!(written.contains("[routing.matrix]"));

    let health: Value = get_json(&running.url("/health")).await;
    assert_eq!(health["status"], "ok");
    let names: Vec<&str> = health["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["claude", "lmstudio", "grok"]);

    let addr = running.addr.to_string();
    let status = Command::new(binary_path())
        .args(["status", "--json", "--listen", &addr, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(status.status.success());
    let printed: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(printed["listen"], addr);

    let readable = Command::new(binary_path())
        .args(["status", "--listen", &addr, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8(readable.stdout).unwrap();
    assert!(text.contains(&format!("ok at http://{addr}")), "{text}");
    assert!(text.contains("Quota: unknown"), "{text}");
    assert!(text.contains("grok"), "{text}");

    let exit = running.terminate();
    assert!(exit.success(), "SIGTERM should exit 0, got {exit:?}");

    let after = Command::new(binary_path())
        .args(["status", "--listen", &addr, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(after.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&after.stderr).contains("is not running"));
}

#[test]
fn a_bad_config_is_refused_naming_the_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let good = pai_core::config::DEFAULT_TOML;
    let bad = good.replace("https://api.x.ai/v1", "htp:/x");
    std::fs::write(&config, &bad).unwrap();
    let output = Command::new(binary_path())
        .args(["--headless", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"providers[2].base_url: "htp:/x" is not an http(s) URL"#),
        "{stderr}"
    );
    // The user's file is left as it was.
    assert_eq!(std::fs::read_to_string(&config).unwrap(), bad);
}

#[test]
fn listening_beyond_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary_path())
        .args(["--headless", "--listen", "0.0.0.0:8766", "--config"])
        .arg(dir.path().join("config.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a loopback address"));
}

#[tokio::test]
async fn secrets_never_reach_the_log_even_at_trace_level() {
    let upstream = MockUpstream::anthropic("logged?").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let text = pai_e2e::config::ConfigBuilder::claude_only(&upstream.url(), dir.path())
        .anthropic("local", "http://127.0.0.1:9", |p| {
            p.api_key_env = Some("PAI_TEST_LOCAL_KEY".to_owned())
        })
        .toml();
    std::fs::write(&config, text).unwrap();
    let data = dir.path().join("data");
    let mut running = Running::start(
        &config,
        &data,
        &[
            ("RUST_LOG", "trace"),
            ("PAI_TEST_LOCAL_KEY", "local-key-SECRET-3"),
        ],
    );
    for stream in [false, true] {
        let response = client()
            .post(running.url("/v1/messages?beta=true"))
            .header("x-api-key", "sk-ant-api-SECRET-1")
            .header("authorization", "Bearer sk-ant-oat01-SECRET-2")
            .json(
                &json!({"model": "claude-sonnet-5", "max_tokens": 5, "stream": stream,
                "messages": [{"role": "user", "content": "hi"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    assert!(running.terminate().success());
    let mut logged = String::new();
    while let Ok(line) = running.stderr.try_recv() {
        logged.push_str(&line);
        logged.push('\n');
    }
    let log_dir = data.join("logs");
    let mut files = 0;
    for entry in std::fs::read_dir(&log_dir).unwrap() {
        logged.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
        files += 1;
    }
    assert_eq!(files, 1, "one log file in {}", log_dir.display());
    assert!(
        logged.contains("TRACE"),
        "the test must really run at trace level"
    );
    assert!(logged.contains("proxy listening"));
    for secret in ["SECRET-1", "SECRET-2", "SECRET-3"] {
        assert!(!logged.contains(secret), "{secret} leaked into the log");
    }
}
