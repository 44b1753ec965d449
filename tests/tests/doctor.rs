//! `pai-orchestrator doctor` on a machine set up halfway, then all the way: the built
//! binary, a running proxy, a mock LM Studio with a model loaded with too small a context.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use pai_e2e::binary::{binary_path, Running};
use pai_e2e::config::ConfigBuilder;
use pai_e2e::lmstudio::MockLmStudio;

const MODEL: &str = "qwen/qwen3-coder-30b";

/// Runs a command of the binary as the user `home` would; returns (success, stdout).
fn run(home: &Path, config: &Path, listen: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(binary_path())
        .args(args)
        .args(["--listen", listen, "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(home.join("data"))
        .env("HOME", home)
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("PAI_TEST_UNSET_KEY")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_says_what_is_missing_and_how_to_fix_it() {
    let lmstudio = MockLmStudio::start(&[MODEL], &[(MODEL, 4096)], None, None).await;
    let home = tempfile::tempdir().unwrap();
    let config = ConfigBuilder::new(home.path())
        .claude("http://127.0.0.1:9")
        .openai("lmstudio", &format!("{}/v1", lmstudio.url()), |p| {
            p.model = Some("auto".to_owned())
        })
        .openai("lmstudio-big", &format!("{}/v1", lmstudio.url()), |p| {
            p.model = Some("qwen/qwen3-235b".to_owned());
            p.load_context = Some(65_536);
        })
        .openai("grok", "https://api.x.ai/v1", |p| {
            p.model = Some("grok-4".to_owned());
            p.api_key_env = Some("PAI_TEST_UNSET_KEY".to_owned());
        })
        .everywhere(&["claude:haiku", "lmstudio"])
        .write(home.path());
    let mut running = Running::start(&config, &home.path().join("data"), &[]);
    let listen = running.addr.to_string();
    let settings = home.path().join(".claude/settings.json");

    let (healthy, said) = run(home.path(), &config, &listen, &["doctor"]);
    assert!(
        !healthy,
        "Claude Code is not connected: doctor fails\n{said}"
    );
    for line in [
        &format!("✓ the proxy runs at http://{listen}"),
        &format!(
            "✗ Claude Code does not talk to the proxy: env.ANTHROPIC_BASE_URL in {} is not http://{listen}",
            settings.display()
        ),
        "    fix: pai-orchestrator connect-claude",
        &format!("! lmstudio answers with {MODEL}, but its context (4096 tokens) is too small for Claude Code"),
        &format!("    fix: set model = \"{MODEL}\" and load_context = 65536 under [[providers]] lmstudio"),
        "! grok: its key is not set (PAI_TEST_UNSET_KEY is empty where this runs)",
        "✗ lmstudio-big answers, but has no model \"qwen/qwen3-235b\" to load",
        &format!("    fix: download it in LM Studio (or `lms get qwen/qwen3-235b`), or set model to one of: {MODEL}"),
        "! nothing starts the proxy at login",
    ] {
        assert!(said.contains(line), "missing {line:?} in:\n{said}");
    }

    let (connected, _) = run(home.path(), &config, &listen, &["connect-claude"]);
    assert!(connected);
    let (healthy, said) = run(home.path(), &config, &listen, &["doctor"]);
    assert!(
        !healthy,
        "a model to load that LM Studio does not have still fails\n{said}"
    );
    let failures: Vec<&str> = said.lines().filter(|l| l.starts_with('✗')).collect();
    assert_eq!(failures.len(), 1, "only that one is left: {failures:?}");
    assert!(
        said.contains(&format!("✓ Claude Code talks to http://{listen}")),
        "{said}"
    );
    assert!(
        said.contains("✓ Claude Code's status line shows the quota"),
        "{said}"
    );

    assert!(running.terminate().success());
    let (healthy, said) = run(home.path(), &config, &listen, &["doctor"]);
    assert!(!healthy);
    assert!(
        said.contains(&format!("✗ the proxy does not answer at http://{listen}")),
        "{said}"
    );
    assert!(
        said.contains("    fix: start it: pai-orchestrator"),
        "{said}"
    );
}
