//! The admin API behind the settings window: token, config edits that keep comments and
//! apply at once, mode, stats, route preview, request log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pai_e2e::config::ConfigBuilder;
use pai_e2e::mock::{anthropic_reply, MockUpstream};
use pai_e2e::openai::agent_reply;
use pai_e2e::proxy::TestProxy;
use serde_json::{json, Value};

struct Admin {
    proxy: TestProxy,
    claude: MockUpstream,
    local: MockUpstream,
    token: String,
    http: reqwest::Client,
}

async fn admin() -> Admin {
    let claude = MockUpstream::start(|req| anthropic_reply(req, "claude")).await;
    let local = MockUpstream::start(|req| agent_reply(req, "local")).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "# my own comment at the top\n{}",
        ConfigBuilder::seed(&claude.url(), &local.url(), &local.url(), dir.path()).toml()
    );
    let proxy = TestProxy::start_with_env(&text, dir, &[("PAI_TEST_FALLBACK_KEY", "k")]).await;
    let token = std::fs::read_to_string(proxy.data_dir().join("admin-token")).unwrap();
    Admin {
        proxy,
        claude,
        local,
        token,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

impl Admin {
    fn call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.proxy.url(path))
            .bearer_auth(&self.token)
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn message(&self, model: &str) -> reqwest::Response {
        self.http
            .post(self.proxy.url("/v1/messages"))
            .json(&json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "fix the failing test"}]}))
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_admin_api_needs_the_token_and_a_local_origin() {
    let admin = admin().await;
    let response = admin
        .http
        .get(admin.proxy.url("/api/mode"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    let wrong = admin
        .http
        .get(admin.proxy.url("/api/mode"))
        .bearer_auth("0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // The token alone is not enough from a foreign page.
    let foreign = admin
        .call(reqwest::Method::GET, "/api/mode")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    // The settings page, served from the proxy's own origin, may call it.
    let own = admin
        .call(reqwest::Method::GET, "/api/mode")
        .header(
            "origin",
            format!("http://127.0.0.1:{}", admin.proxy.addr().port()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn config_edits_keep_comments_validate_and_apply_without_restart() {
    let admin = admin().await;
    let (status, config) = admin
        .json(admin.call(reqwest::Method::GET, "/api/config"))
        .await;
    assert_eq!(status, 200);
    assert!(config["text"]
        .as_str()
        .unwrap()
        .starts_with("# my own comment"));

    // A bad value: refused, named, nothing written.
    let bad = json!({"set": {"routing.matrix.normal.medium": ["nosuch"]}});
    let (status, answer) = admin
        .json(admin.call(reqwest::Method::PATCH, "/api/config").json(&bad))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["problems"][0]["key"],
        "routing.matrix.normal.medium[0]"
    );
    assert!(answer["problems"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("names no provider"));
    let on_disk = std::fs::read_to_string(admin.proxy.dir.path().join("config.toml")).unwrap();
    assert_eq!(on_disk, config["text"].as_str().unwrap());

    // Dry run: validated, not written.
    let good = json!({"set": {"routing.matrix.normal.medium": ["local", "claude:sonnet"]}});
    let (_, dry) = admin
        .json(
            admin
                .call(reqwest::Method::PATCH, "/api/config?dry_run=true")
                .json(&good),
        )
        .await;
    assert_eq!(dry["ok"], true);
    assert_eq!(
        std::fs::read_to_string(admin.proxy.dir.path().join("config.toml")).unwrap(),
        on_disk
    );
    assert_eq!(
        admin.message("claude-sonnet-5").await.headers()["x-pai-route"],
        "claude:sonnet"
    );

    // Saved: comments kept, applied at once.
    let (status, saved) = admin
        .json(
            admin
                .call(reqwest::Method::PATCH, "/api/config")
                .json(&good),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["restart_needed"], false);
    let on_disk = std::fs::read_to_string(admin.proxy.dir.path().join("config.toml")).unwrap();
    assert!(on_disk.starts_with("# my own comment"));
    assert!(
        on_disk.contains("medium = [\"local\", \"claude:sonnet\"]"),
        "{on_disk}"
    );
    let response = admin.message("claude-sonnet-5").await;
    assert_eq!(response.headers()["x-pai-route"], "local");
    assert_eq!(
        admin
            .local
            .requests()
            .iter()
            .filter(|r| r.uri.ends_with("/chat/completions"))
            .count(),
        1
    );

    // A whole-file PUT that does not validate is refused too.
    let (status, answer) = admin
        .json(
            admin
                .call(reqwest::Method::PUT, "/api/config")
                .json(&json!({"text": "[server]\nlisten = \"0.0.0.0:1\"\n"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["problems"][0]["key"], "server.listen");
}

#[tokio::test]
async fn mode_switch_stats_preview_and_request_log() {
    let admin = admin().await;
    let (_, mode) = admin
        .json(admin.call(reqwest::Method::GET, "/api/mode"))
        .await;
    assert_eq!(mode["mode"], "auto");
    assert_eq!(
        admin.message("claude-sonnet-5").await.headers()["x-pai-route"],
        "claude:sonnet"
    );

    let (status, _) = admin
        .json(
            admin
                .call(reqwest::Method::PUT, "/api/mode")
                .json(&json!({"mode": "local-only"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        admin.message("claude-sonnet-5").await.headers()["x-pai-route"],
        "local"
    );
    let (status, error) = admin
        .json(
            admin
                .call(reqwest::Method::PUT, "/api/mode")
                .json(&json!({"mode": "turbo"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("turbo"));

    let (_, preview) = admin
        .json(
            admin
                .call(reqwest::Method::POST, "/api/route/preview?complexity=complex")
                .json(&json!({"model": "claude-opus-4-8", "messages": [{"role": "user", "content": "x"}]})),
        )
        .await;
    assert_eq!(preview["decision"]["complexity"], "complex");
    assert_eq!(preview["decision"]["mode"], "local-only");
    assert_eq!(preview["decision"]["chain"][0]["target"], "local");
    assert!(
        admin.claude.requests().len() == 1,
        "a preview sends nothing"
    );

    admin.proxy.daemon.flush_log().await;
    let (_, log) = admin
        .json(admin.call(reqwest::Method::GET, "/api/requests?limit=10"))
        .await;
    let rows = log["requests"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["target"], "local");
    assert_eq!(rows[1]["target"], "claude:sonnet");
    assert_eq!(rows[1]["complexity"], "medium");

    let (_, stats) = admin
        .json(admin.call(reqwest::Method::GET, "/api/stats"))
        .await;
    let table = stats["by_class_and_target"].as_array().unwrap();
    assert!(
        table
            .iter()
            .any(|r| r["target"] == "local" && r["successes"] == 1),
        "{stats}"
    );
    assert!(stats["live"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["provider"] == "claude" && r["successes"] == 1));

    let (status, _) = admin
        .json(admin.call(reqwest::Method::GET, "/api/quota/history?hours=1"))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn replay_shows_where_logged_requests_would_go_under_an_edited_matrix() {
    let admin = admin().await;
    assert_eq!(
        admin.message("claude-sonnet-5").await.headers()["x-pai-route"],
        "claude:sonnet"
    );
    let complex = admin
        .http
        .post(admin.proxy.url("/v1/messages"))
        .header("x-pai-complexity", "complex")
        .json(&json!({"model": "claude-opus-4-8", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(complex.headers()["x-pai-route"], "claude:opus");
    admin.proxy.daemon.flush_log().await;
    let before = std::fs::read_to_string(admin.proxy.dir.path().join("config.toml")).unwrap();
    let edit = json!({"limit": 10, "edit": {"set": {"routing.matrix.normal.medium": ["local"]}}});
    let (status, replay) = admin
        .json(
            admin
                .call(reqwest::Method::POST, "/api/route/replay")
                .json(&edit),
        )
        .await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay["changed"], 1);
    let rows = replay["requests"].as_array().unwrap();
    let medium = rows.iter().find(|r| r["complexity"] == "medium").unwrap();
    assert_eq!(
        (medium["was"].as_str(), medium["would"].as_str()),
        (Some("claude:sonnet"), Some("local"))
    );
    let complex = rows.iter().find(|r| r["complexity"] == "complex").unwrap();
    assert_eq!(complex["changed"], false);
    // Nothing was written or sent.
    assert_eq!(
        std::fs::read_to_string(admin.proxy.dir.path().join("config.toml")).unwrap(),
        before
    );
    assert_eq!(admin.claude.requests().len(), 2);
}
