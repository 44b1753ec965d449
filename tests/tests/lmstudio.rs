//! LM Studio 0.4 as a provider, against a mock of its documented API: the model named in
//! the config is loaded once with the context Claude Code needs (a smaller instance
//! unloaded first, never a duplicate), requests wait for the load (streams get pings),
//! the load shows in `/health`, the token is sent, and a request too large for
//! `load_context` goes to the next target instead of loading anything.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use futures_util::StreamExt;
use pai_e2e::config::ConfigBuilder;
use pai_e2e::lmstudio::MockLmStudio;
use pai_e2e::mock::MockUpstream;
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};
use tokio::sync::Notify;

const MODEL: &str = "qwen/qwen3-coder-30b";
const TOKEN: &str = "lm-secret-token";

/// A request the size of Claude Code's first turn (~20k tokens of system prompt).
fn claude_code_sized(stream: bool) -> Value {
    json!({"model": "claude-haiku-4-5", "max_tokens": 64, "stream": stream,
        "system": "You are Claude Code. ".repeat(4_000),
        "messages": [{"role": "user", "content": "hi"}]})
}

/// A Claude-Code-sized non-streaming request through the proxy.
async fn ask(proxy: &TestProxy) -> reqwest::Response {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .json(&claude_code_sized(false))
        .send()
        .await
        .unwrap()
}

fn config(lmstudio: &str, kind: &str, load_context: u32, dir: &std::path::Path) -> String {
    let base = if kind == "openai" {
        format!("{lmstudio}/v1")
    } else {
        lmstudio.to_owned()
    };
    let edit = |p: &mut pai_core::config::raw::RawProvider| {
        p.model = Some(MODEL.to_owned());
        p.load_context = Some(load_context);
        p.api_key_env = Some("LM_API_TOKEN".to_owned());
    };
    let builder = ConfigBuilder::new(dir).claude("http://127.0.0.1:9");
    let builder = if kind == "openai" {
        builder.openai("lmstudio", &base, edit)
    } else {
        builder.anthropic("lmstudio", &base, edit)
    };
    builder.everywhere(&["lmstudio"]).toml()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_named_model_is_loaded_once_with_enough_context_while_requests_wait() {
    let gate = Arc::new(Notify::new());
    // Loaded the way LM Studio loads on first use: with a 4k context.
    let lmstudio = MockLmStudio::start(
        &[MODEL, "gemma-3"],
        &[(MODEL, 4096)],
        Some(TOKEN),
        Some(gate.clone()),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&lmstudio.url(), "openai", 65_536, dir.path());
    let proxy = TestProxy::start_with_env(&text, dir, &[("LM_API_TOKEN", TOKEN)]).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    // What the tray and the settings page follow.
    let mut events = proxy.events().await;

    let streamed = client
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .json(&claude_code_sized(true))
        .send();
    let plain = |client: reqwest::Client| {
        let url = proxy.url("/v1/messages");
        async move {
            client
                .post(url)
                .header("x-api-key", "sk-ant-test")
                .json(&claude_code_sized(false))
                .send()
                .await
                .unwrap()
        }
    };
    let (first, second) = (
        tokio::spawn(plain(client.clone())),
        tokio::spawn(plain(client.clone())),
    );

    // The stream is answered at once with its headers and a ping while the model loads.
    let streamed = streamed.await.unwrap();
    assert_eq!(streamed.status(), 200);
    let mut body = streamed.bytes_stream();
    let ping = String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(ping.starts_with("event: ping"), "{ping}");

    events
        .next_where("the load announced", |e| {
            e["type"] == "loading" && e["loads"]["lmstudio"]["model"] == MODEL
        })
        .await;
    let health = proxy
        .wait_health("loading the model", |h| {
            !h["providers"][1]["loading"].is_null()
        })
        .await;
    let loading = &health["providers"][1]["loading"];
    assert_eq!(loading["model"], MODEL);
    assert_eq!(loading["context_length"], 65_536);
    // The small instance went first, so the load cannot make a second one.
    assert_eq!(lmstudio.unloads(), [MODEL]);
    gate.notify_one();
    events
        .next_where("the load over", |e| {
            e["type"] == "loading" && e["loads"].as_object().is_some_and(|l| l.is_empty())
        })
        .await;

    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.contains("\"text\":\"answering\""), "{rest}");
    assert!(rest.contains("event: message_stop"), "{rest}");
    for answer in [first.await.unwrap(), second.await.unwrap()] {
        assert_eq!(answer.status(), 200);
        let message: Value = answer.json().await.unwrap();
        assert_eq!(message["content"][0]["text"], "loaded and answering");
    }

    assert_eq!(
        lmstudio.loads().len(),
        1,
        "one load for three waiting requests: {:?}",
        lmstudio.loads()
    );
    assert_eq!(
        lmstudio.loads()[0],
        json!({"model": MODEL, "context_length": 65_536, "echo_load_config": true})
    );
    let instances = lmstudio.instances();
    assert_eq!(
        instances.len(),
        1,
        "never a duplicate instance: {instances:?}"
    );
    assert_eq!(instances[0].context_length, 65_536);

    let health = proxy.health().await;
    let provider = &health["providers"][1];
    assert!(provider["loading"].is_null());
    assert_eq!(provider["context_window"], 65_536);
    assert_eq!(provider["models"]["api"], "lmstudio-v1");
    assert_eq!(provider["models"]["capabilities"]["tool_use"], true);
}

#[tokio::test]
async fn lm_studios_own_messages_endpoint_gets_the_same_lifecycle() {
    let lmstudio = MockLmStudio::start(&[MODEL], &[], Some(TOKEN), None).await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&lmstudio.url(), "anthropic", 32_768, dir.path());
    let proxy = TestProxy::start_with_env(&text, dir, &[("LM_API_TOKEN", TOKEN)]).await;
    for _ in 0..2 {
        let answer = ask(&proxy).await;
        assert_eq!(answer.status(), 200);
        let message: Value = answer.json().await.unwrap();
        assert_eq!(message["content"][0]["text"], "loaded and answering");
    }
    assert_eq!(lmstudio.loads().len(), 1, "loaded once, not per request");
    assert!(lmstudio.unloads().is_empty());
}

#[tokio::test]
async fn a_request_larger_than_load_context_goes_elsewhere_without_a_load() {
    let lmstudio = MockLmStudio::start(&[MODEL], &[(MODEL, 4096)], Some(TOKEN), None).await;
    let claude = MockUpstream::anthropic("from claude").await;
    let dir = tempfile::tempdir().unwrap();
    let text = ConfigBuilder::new(dir.path())
        .claude(&claude.url())
        .openai("lmstudio", &format!("{}/v1", lmstudio.url()), |p| {
            p.model = Some(MODEL.to_owned());
            p.load_context = Some(8_192);
            p.api_key_env = Some("LM_API_TOKEN".to_owned());
        })
        .everywhere(&["lmstudio", "claude:haiku"])
        .toml();
    let proxy = TestProxy::start_with_env(&text, dir, &[("LM_API_TOKEN", TOKEN)]).await;
    let answer = ask(&proxy).await;
    assert_eq!(answer.status(), 200);
    let skipped = answer.headers()["x-pai-skipped"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        skipped.contains("do not fit its 8192-token context"),
        "{skipped}"
    );
    assert_eq!(answer.headers()["x-pai-route"], "claude:haiku");
    assert!(lmstudio.loads().is_empty());
    assert!(lmstudio.unloads().is_empty(), "the user's instance stays");
}

#[tokio::test]
async fn without_the_token_lm_studio_shows_as_refusing_it() {
    let lmstudio = MockLmStudio::start(&[MODEL], &[(MODEL, 65_536)], Some(TOKEN), None).await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&lmstudio.url(), "openai", 65_536, dir.path());
    let proxy = TestProxy::start_with_env(&text, dir, &[("LM_API_TOKEN", "wrong")]).await;
    let health = proxy
        .wait_health("the check to fail", |h| {
            h["providers"][1]["health"] == "unhealthy"
        })
        .await;
    let error = health["providers"][1]["last_error"].as_str().unwrap();
    assert!(error.contains("refused the token"), "{error}");
}

#[tokio::test]
async fn auto_on_lm_studios_messages_endpoint_asks_for_the_loaded_model() {
    let lmstudio = MockLmStudio::start(&["gemma-3", MODEL], &[(MODEL, 65_536)], None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let text = ConfigBuilder::new(dir.path())
        .claude("http://127.0.0.1:9")
        .anthropic("lmstudio", &lmstudio.url(), |p| {
            p.model = Some("auto".to_owned())
        })
        .everywhere(&["lmstudio"])
        .toml();
    let proxy = TestProxy::start_with(&text, dir).await;
    let answer = ask(&proxy).await;
    assert_eq!(answer.status(), 200);
    let message: Value = answer.json().await.unwrap();
    // The mock answers only a model it has loaded, and echoes its name.
    assert_eq!(message["model"], MODEL);
    assert!(lmstudio.loads().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_during_the_load_does_not_cause_a_second_one() {
    let gate = Arc::new(Notify::new());
    let lmstudio =
        MockLmStudio::start(&[MODEL], &[(MODEL, 4096)], Some(TOKEN), Some(gate.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&lmstudio.url(), "openai", 65_536, dir.path());
    let proxy = TestProxy::start_with_env(&text, dir, &[("LM_API_TOKEN", TOKEN)]).await;

    // A stream starts the load, gets its ping, and its client goes away (Esc).
    let streamed = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .json(&claude_code_sized(true))
        .send()
        .await
        .unwrap();
    let mut body = streamed.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    proxy
        .wait_health("loading the model", |h| {
            !h["providers"][1]["loading"].is_null()
        })
        .await;

    // The next request arrives while LM Studio is still loading, then the load ends.
    let next = tokio::spawn({
        let url = proxy.url("/v1/messages");
        async move {
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .post(url)
                .header("x-api-key", "sk-ant-test")
                .json(&claude_code_sized(false))
                .send()
                .await
                .unwrap()
        }
    });
    gate.notify_one();
    let answer = next.await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(lmstudio.loads().len(), 1, "{:?}", lmstudio.loads());
    assert_eq!(lmstudio.instances().len(), 1, "{:?}", lmstudio.instances());
}

fn claude_fallback_config(
    lmstudio: &str,
    claude: &str,
    load_context: u32,
    dir: &std::path::Path,
) -> String {
    ConfigBuilder::new(dir)
        .claude(claude)
        .openai("lmstudio", &format!("{lmstudio}/v1"), |p| {
            p.model = Some(MODEL.to_owned());
            p.load_context = Some(load_context);
        })
        .everywhere(&["lmstudio", "claude"])
        .toml()
}

#[tokio::test]
async fn a_load_lm_studio_says_it_did_but_does_not_list_is_not_sent_on_every_request() {
    let lmstudio = MockLmStudio::start(&[MODEL], &[], None, None).await;
    lmstudio.state.lock().unwrap().phantom_loads = true;
    let claude = MockUpstream::anthropic("claude answers").await;
    let dir = tempfile::tempdir().unwrap();
    let text = claude_fallback_config(&lmstudio.url(), &claude.url(), 65_536, dir.path());
    let proxy = TestProxy::start_with(&text, dir).await;
    for _ in 0..5 {
        let response = ask(&proxy).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-pai-route"], "claude");
    }
    assert_eq!(
        lmstudio.loads().len(),
        1,
        "one load, then the next target: {:?}",
        lmstudio.loads()
    );
    assert_eq!(
        lmstudio.state.lock().unwrap().jit_loads,
        0,
        "no chat with nothing loaded"
    );
}

#[tokio::test]
async fn a_load_that_comes_back_smaller_is_used_and_not_reloaded_on_every_request() {
    let lmstudio = MockLmStudio::start(&[MODEL], &[], None, None).await;
    lmstudio.state.lock().unwrap().max_context = Some(40_000);
    let dir = tempfile::tempdir().unwrap();
    let text = config(&lmstudio.url(), "openai", 65_536, dir.path());
    let proxy = TestProxy::start_with_env(&text, dir, &[("LM_API_TOKEN", TOKEN)]).await;
    for _ in 0..4 {
        let response = ask(&proxy).await;
        assert_eq!(response.status(), 200, "~20k tokens fit the 40k it got");
    }
    assert_eq!(lmstudio.loads().len(), 1, "{:?}", lmstudio.loads());
    assert!(lmstudio.unloads().is_empty());
    assert_eq!(lmstudio.instances().len(), 1);
}

#[tokio::test]
async fn a_model_lm_studio_unloaded_by_itself_is_loaded_again_with_its_context_before_the_chat() {
    let lmstudio = MockLmStudio::start(&[MODEL], &[(MODEL, 65_536)], None, None).await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&lmstudio.url(), "openai", 65_536, dir.path());
    let proxy = TestProxy::start_with_env(&text, dir, &[("LM_API_TOKEN", TOKEN)]).await;
    let first = ask(&proxy).await;
    assert_eq!(first.status(), 200, "{}", first.text().await.unwrap());
    assert!(lmstudio.loads().is_empty(), "loaded already");
    // Its idle TTL passes: LM Studio unloads it.
    lmstudio.evict();
    let response = ask(&proxy).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        lmstudio.state.lock().unwrap().jit_loads,
        0,
        "never loaded with the small default"
    );
    assert_eq!(lmstudio.loads().len(), 1);
    assert_eq!(lmstudio.instances()[0].context_length, 65_536);
}
