//! `pai-orchestrator statusline` as Claude Code runs it: the built binary, its session JSON
//! on stdin (recorded from Claude Code), the running proxy behind it — and the proxy gone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pai_e2e::binary::{binary_path, Running};
use pai_e2e::config::ConfigBuilder;
use pai_e2e::http::client;
use pai_e2e::mock::{anthropic_reply, MockUpstream};
use serde_json::json;

const SESSION: &str = "0b9f3c1e-7d2a-4c55-9e61-5a8d2f4b7c10";

/// What Claude Code passes its status line command on stdin.
fn claude_code_input(session: &str) -> String {
    json!({
        "hook_event_name": "Status",
        "session_id": session,
        "transcript_path": "/home/u/.claude/projects/w/0b9f3c1e.jsonl",
        "cwd": "/home/u/w",
        "model": {"id": "claude-opus-4-1-20250805", "display_name": "Opus"},
        "workspace": {"current_dir": "/home/u/w", "project_dir": "/home/u/w"},
        "version": "2.0.14",
        "output_style": {"name": "default"},
        "cost": {"total_cost_usd": 0.42, "total_duration_ms": 12000}
    })
    .to_string()
}

/// Runs `command` as Claude Code runs a status line: `input` on stdin, then stdin closed;
/// returns the one line it printed.
fn status_line_of(mut command: Command, input: &str) -> String {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    stdout.trim_end().to_owned()
}

fn statusline(config: &Path, listen: &str, input: &str) -> String {
    let mut command = Command::new(binary_path());
    command
        .args(["statusline", "--listen", listen, "--config"])
        .arg(config);
    status_line_of(command, input)
}

fn quota_headers() -> Vec<(String, String)> {
    let now = chrono::Utc::now().timestamp();
    [
        ("anthropic-ratelimit-unified-status", "allowed".to_owned()),
        (
            "anthropic-ratelimit-unified-5h-status",
            "allowed".to_owned(),
        ),
        (
            "anthropic-ratelimit-unified-5h-utilization",
            "0.42".to_owned(),
        ),
        (
            "anthropic-ratelimit-unified-5h-reset",
            (now + 3 * 3600).to_string(),
        ),
        (
            "anthropic-ratelimit-unified-7d-status",
            "allowed".to_owned(),
        ),
        (
            "anthropic-ratelimit-unified-7d-utilization",
            "0.81".to_owned(),
        ),
        (
            "anthropic-ratelimit-unified-7d-reset",
            (now + 4 * 86_400).to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[tokio::test]
async fn the_status_line_shows_the_windows_the_state_and_where_this_session_went() {
    let upstream =
        MockUpstream::start(|req| anthropic_reply(req, "hi").with_headers(quota_headers())).await;
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("quota-state.json");
    let config = ConfigBuilder::claude_only(&upstream.url(), dir.path()).write(dir.path());
    let mut running = Running::start(&config, &dir.path().join("data"), &[]);
    let listen = running.addr.to_string();

    // Before any request: the state, and nothing about a route yet.
    let line = statusline(&config, &listen, &claude_code_input(SESSION));
    assert_eq!(line, "quota unknown");

    let response = client()
        .post(running.url("/v1/messages?beta=true"))
        .header("x-claude-code-session-id", SESSION)
        .header("x-api-key", "sk-ant-api-test")
        .json(&json!({"model": "claude-haiku-4-5", "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();

    let started = Instant::now();
    let line = statusline(&config, &listen, &claude_code_input(SESSION));
    let took = started.elapsed();
    assert_eq!(line, "week 81% · 5h 42% · warning → claude:haiku (simple)");
    // Not a timing assertion: a line that took seconds would mean a wait went unbounded.
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Another session's line says nothing of this one's route.
    let other = statusline(&config, &listen, &claude_code_input("another-session"));
    assert_eq!(other, "week 81% · 5h 42% · warning");
    // Run by hand, without Claude Code's input, it still answers.
    assert_eq!(statusline(&config, &listen, ""), other);

    // The proxy gone: it says so, with the last quota it wrote to its state file.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&state_file).is_ok_and(|s| s.contains("\"percent\": 81")) {
        assert!(
            Instant::now() < deadline,
            "the state file was never written"
        );
        tokio::task::yield_now().await;
    }
    assert!(running.terminate().success());
    let line = statusline(&config, &listen, &claude_code_input(SESSION));
    assert!(
        line.starts_with("PAI proxy down · last week 81% · 5h 42% · warning at "),
        "{line}"
    );
}

#[test]
fn connect_claude_installs_the_status_line_and_disconnect_takes_it_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let settings = dir.path().join("claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, "{\n  \"model\": \"opus\"\n}\n").unwrap();
    let run = |command: &str| {
        let output = Command::new(binary_path())
            .arg(command)
            .arg("--settings")
            .arg(&settings)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let said = run("connect-claude");
    assert!(said.contains("Its status line shows the quota"), "{said}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    let command = written["statusLine"]["command"].as_str().unwrap();
    assert!(
        command.starts_with(&binary_path().to_string_lossy().into_owned()),
        "{command}"
    );
    assert!(command.ends_with(" statusline"), "{command}");
    assert!(command.contains("--config"), "{command}");

    // The installed command works as Claude Code would run it, through a shell.
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(command);
    assert_eq!(
        status_line_of(shell, &claude_code_input(SESSION)),
        "PAI proxy down · start it: pai-orchestrator"
    );

    run("disconnect-claude");
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        "{\n  \"model\": \"opus\"\n}\n"
    );
}
