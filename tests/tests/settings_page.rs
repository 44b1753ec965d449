//! The settings page in a real browser (Chromium through playwright-core) against the
//! running core: edits validated by the backend, saved with comments kept, route preview.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pai_e2e::binary::repo_root;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::mock::{anthropic_reply, MockUpstream};
use pai_e2e::openai::agent_reply;
use pai_e2e::proxy::TestProxy;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_page_edits_validates_saves_and_previews() {
    let claude = MockUpstream::start(|req| anthropic_reply(req, "x")).await;
    let local = MockUpstream::start(|req| agent_reply(req, "x")).await;
    let dashboard = MockUpstream::start(|_| {
        pai_e2e::mock::Reply::json(serde_json::json!({"usage_percent": 63}))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "# kept comment\n{}",
        ConfigBuilder::seed(&claude.url(), &local.url(), &local.url(), dir.path())
            .dashboard(&dashboard.url())
            .toml()
    );
    let proxy = TestProxy::start_with_env(&text, dir, &[("PAI_TEST_FALLBACK_KEY", "k")]).await;
    proxy
        .wait_quota("a reading", |s| s["percent"].is_number())
        .await;
    // Some traffic for the overview: a chore, a medium task, a complex one.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for (model, prompt) in [
        ("claude-haiku-4-5-20251001", "write a title"),
        ("claude-sonnet-5", "fix the failing test"),
        ("claude-opus-4-8", "design the architecture"),
    ] {
        let response = client
            .post(proxy.url("/v1/messages"))
            .json(&serde_json::json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": prompt}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    proxy.daemon.flush_log().await;
    let token = std::fs::read_to_string(proxy.data_dir().join("admin-token")).unwrap();
    let shots = std::env::var("PAI_SCREENSHOTS").unwrap_or_default();
    let output = tokio::process::Command::new("node")
        .arg(repo_root().join("tests/node/settings.mjs"))
        .arg(proxy.url(""))
        .arg(&token)
        .arg(&shots)
        .current_dir(repo_root().join("tests/node"))
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["state"], "caution");
    assert_eq!(seen["percent"], "63%");
    assert_eq!(seen["requests"], 3, "the overview lists the requests");
    assert_eq!(seen["after"], serde_json::json!(["local", "fallback"]));
    assert!(seen["preview"].as_str().unwrap().contains("Class: complex"));
    assert_eq!(
        seen["providers"],
        serde_json::json!(["claude", "local", "fallback"])
    );
    let saved = std::fs::read_to_string(proxy.dir.path().join("config.toml")).unwrap();
    assert!(saved.starts_with("# kept comment"));
    assert!(
        saved.contains("simple = [\"local\", \"fallback\"]"),
        "{saved}"
    );
    let (_, mode) = proxy.admin("GET", "/api/mode", None).await;
    assert_eq!(mode["mode"], "local-only");
    assert_eq!(seen["providersNotified"], false);
    assert!(
        saved.contains("[notifications]\nproviders = false"),
        "{saved}"
    );
    assert_eq!(proxy.config().await["notifications"]["providers"], false);
}
