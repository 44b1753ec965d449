//! `pai-orchestrator statusline`: the line Claude Code shows under its prompt
//! (`"statusLine": {"type": "command", "command": "pai-orchestrator statusline"}`).
//!
//! Claude Code runs it often and passes its session as JSON on stdin; the line says the
//! quota windows, the state and where this session's latest request went:
//! `5h 42% · week 81% · caution → lmstudio (simple)`. It asks the running proxy's
//! `/health` (loopback, never waits on an upstream); when the proxy does not answer it
//! says so, with the last quota the proxy wrote to its state file. Every wait is short:
//! a status line that hangs is worse than one that says less.
//!
//! Uses `status` (the `/health` request) and the core's snapshot types; starts nothing.

use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pai_core::pipeline::sessions::SessionRoute;
use pai_core::quota::QuotaSnapshot;
use pai_core::types::QuotaState;
use pai_server::HealthResponse;

/// How long Claude Code may take to hand over its session JSON.
const STDIN_WAIT: Duration = Duration::from_millis(300);
/// How long the proxy may take to answer `/health`.
const HEALTH_WAIT: Duration = Duration::from_millis(500);
/// Largest session JSON read (Claude Code's is a few hundred bytes).
const MAX_INPUT: u64 = 64 * 1024;

/// The command Claude Code should run for its status line: this installation's
/// command-line binary (next to the tray app when the tray runs this), with `--config`
/// when the config is not in its default place.
pub fn command(config: Option<&Path>) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let light = exe.with_file_name(crate::LIGHT_BINARY);
    let binary = if light.exists() { light } else { exe };
    let mut command = shell_word(&binary.to_string_lossy());
    if let Some(config) = config {
        command.push_str(" --config ");
        command.push_str(&shell_word(&config.to_string_lossy()));
    }
    command.push_str(" statusline");
    Some(command)
}

/// `word` as one shell word: as it is when it is plain, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The session id from Claude Code's status line input, if stdin carries one. A terminal
/// on stdin (someone trying the command by hand) is not waited for.
pub fn session_from_stdin() -> Option<String> {
    if std::io::stdin().is_terminal() {
        return None;
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    // A thread, so a writer that never closes stdin costs STDIN_WAIT and not the line.
    std::thread::spawn(move || {
        let mut input = Vec::new();
        let read = std::io::stdin()
            .lock()
            .take(MAX_INPUT)
            .read_to_end(&mut input);
        let _ = sender.send(read.map(|_| input));
    });
    let input = receiver.recv_timeout(STDIN_WAIT).ok()?.ok()?;
    session_id(&input)
}

/// `session_id` from the status line input, when it is a plausible id (letters, digits,
/// `-`, `_`: it goes into a URL as it is).
pub fn session_id(input: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(input).ok()?;
    let id = value.get("session_id")?.as_str()?;
    let plausible = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plausible.then(|| id.to_owned())
}

/// The line: from the running proxy, else from the state file, saying the proxy is down.
pub async fn line(addr: SocketAddr, state_file: &Path, session: Option<&str>) -> String {
    let path = match session {
        Some(id) => format!("/health?session={id}"),
        None => "/health".to_owned(),
    };
    match crate::status::fetch_path(addr, &path, HEALTH_WAIT).await {
        Ok((health, _)) => live(&health),
        Err(_) => down(read_state_file(state_file).as_ref()),
    }
}

fn read_state_file(path: &Path) -> Option<QuotaSnapshot> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// `5h 42% · week 81% · caution → lmstudio (simple)`.
pub fn live(health: &HealthResponse) -> String {
    let mut parts = vec![quota_part(&health.quota)];
    let mode = health.mode.name();
    if mode != "auto" {
        parts.push(mode.replace('_', " "));
    }
    for provider in &health.providers {
        if let Some(loading) = &provider.loading {
            parts.push(format!("{} loading {}", provider.name, loading.model));
        }
    }
    if health.queue_waiting > 0 {
        parts.push(format!("{} waiting", health.queue_waiting));
    }
    if health.status != "ok" {
        parts.push(health.status.clone());
    }
    let mut line = parts.join(" · ");
    if let Some(route) = &health.session {
        line.push_str(" → ");
        line.push_str(&route_part(route));
    }
    line
}

/// `proxy down · last 5h 42% · week 81% at 14:02`.
pub fn down(last: Option<&QuotaSnapshot>) -> String {
    match last {
        Some(snapshot) if snapshot.state != QuotaState::Unknown => format!(
            "PAI proxy down · last {} at {}",
            quota_part(snapshot),
            pai_core::quota::tracker::clock(snapshot.updated_at)
        ),
        _ => "PAI proxy down · start it: pai-orchestrator".to_owned(),
    }
}

/// Every window, then the state: `5h 42% · week 81% · caution`.
fn quota_part(snapshot: &QuotaSnapshot) -> String {
    let windows = snapshot.windows_line();
    let state = snapshot.state.name();
    if windows.is_empty() {
        format!("quota {state}")
    } else {
        format!("{windows} · {state}")
    }
}

/// `lmstudio (simple)`, or `claude:sonnet (complex, past claude:opus)` when the first
/// choice was skipped or failed.
fn route_part(route: &SessionRoute) -> String {
    let passed: Vec<&str> = route.passed_over_targets().collect();
    let line = if passed.is_empty() {
        format!("{} ({})", route.target, route.complexity)
    } else {
        format!(
            "{} ({}, past {})",
            route.target,
            route.complexity,
            passed.join(", ")
        )
    };
    // A changed model, or a Claude-only request answered elsewhere: the user sees it.
    let mut line = line;
    if let Some(change) = &route.model_change {
        line = format!("{line} · {change}");
    }
    if let Some(degraded) = &route.degraded {
        let what = degraded.split(';').next().unwrap_or(degraded);
        line = format!("{line} · {what}");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_id_comes_from_claude_codes_input() {
        let input = br#"{"hook_event_name":"Status","session_id":"4f1c2d3e-aaaa-bbbb","transcript_path":"/tmp/t.jsonl","cwd":"/w","model":{"id":"claude-opus-4-1","display_name":"Opus"},"workspace":{"current_dir":"/w","project_dir":"/w"},"version":"2.0.1","output_style":{"name":"default"},"cost":{"total_cost_usd":0.01}}"#;
        assert_eq!(session_id(input).as_deref(), Some("4f1c2d3e-aaaa-bbbb"));
        assert_eq!(session_id(br#"{"session_id":"../x?y=1"}"#), None);
        assert_eq!(session_id(b"not json"), None);
        assert_eq!(session_id(b"{}"), None);
    }

    #[test]
    fn a_down_proxy_says_so_with_the_last_known_quota() {
        assert_eq!(down(None), "PAI proxy down · start it: pai-orchestrator");
        let snapshot = QuotaSnapshot {
            state: QuotaState::Caution,
            ..QuotaSnapshot::default()
        };
        let line = down(Some(&snapshot));
        assert!(
            line.starts_with("PAI proxy down · last quota caution at "),
            "{line}"
        );
    }

    #[test]
    fn odd_paths_stay_one_shell_word() {
        assert_eq!(
            shell_word("/usr/bin/pai-orchestrator"),
            "/usr/bin/pai-orchestrator"
        );
        assert_eq!(shell_word("/home/a b/it's"), "'/home/a b/it'\\''s'");
    }

    #[test]
    fn a_route_names_what_it_passed_over() {
        let route = SessionRoute {
            target: "claude:sonnet".to_owned(),
            complexity: "complex".to_owned(),
            quota_state: "normal".to_owned(),
            passed_over: vec!["claude:opus: Opus week cap reached, resets Tue 14:00".to_owned()],
            model_change: Some(
                "Opus 5.5 → Sonnet 5.5: Opus week cap reached, resets Tue 14:00".to_owned(),
            ),
            degraded: None,
            at: chrono::Utc::now(),
        };
        assert_eq!(
            route_part(&route),
            "claude:sonnet (complex, past claude:opus) · Opus 5.5 → Sonnet 5.5: Opus week cap reached, resets Tue 14:00"
        );
    }
}
