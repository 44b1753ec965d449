//! Real clients: the official Anthropic Python SDK and Claude Code's CLI, installed by
//! `scripts/setup.sh` into `.venv/` and `tests/node/`.

use std::path::PathBuf;
use std::process::Output;

use tokio::process::Command;

use crate::binary::repo_root;

fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} is missing at {}: run scripts/setup.sh --tests first",
        path.display()
    );
    path
}

/// Python of the venv that has `anthropic` installed (`$PAI_PYTHON` overrides).
pub fn python() -> PathBuf {
    let path = std::env::var_os("PAI_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    require(path, "the test venv's python")
}

/// Claude Code's CLI (`$PAI_CLAUDE` overrides).
pub fn claude() -> PathBuf {
    let path = std::env::var_os("PAI_CLAUDE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/node/node_modules/.bin/claude"));
    require(path, "Claude Code's CLI")
}

/// Runs `tests/python/<script>` with `args` (async: the mock upstream shares the runtime).
pub async fn run_python(script: &str, args: &[&str]) -> Output {
    Command::new(python())
        .arg(repo_root().join("tests/python").join(script))
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

/// Runs `claude -p <prompt> --output-format json` against `base_url` in an empty home.
pub async fn run_claude(base_url: &str, prompt: &str, extra: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    Command::new(claude())
        .args(["-p", prompt, "--output-format", "json"])
        .args(extra)
        .current_dir(work.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("ANTHROPIC_BASE_URL", base_url)
        .env("ANTHROPIC_API_KEY", "sk-ant-test")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}
