//! The proxy under test, started in-process on a random loopback port, and reached the
//! way its users reach it: the proxy, `/health`, the admin API and its event stream.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use pai_core::config::Config;
use pai_server::daemon::{Daemon, DaemonOptions};
use serde_json::Value;

use crate::config::ConfigBuilder;
use crate::http::client;

/// Upper bound for anything the tests wait for.
const LIMIT: Duration = Duration::from_secs(15);

pub struct TestProxy {
    pub daemon: Daemon,
    pub dir: tempfile::TempDir,
}

impl TestProxy {
    /// Starts the proxy with one provider, `claude`, in front of `upstream` (a base URL).
    pub async fn start(upstream: &str) -> TestProxy {
        let dir = tempfile::tempdir().unwrap();
        let text = ConfigBuilder::claude_only(upstream, dir.path()).toml();
        Self::start_with(&text, dir).await
    }

    /// Starts with the config `build` makes (given the test's dir).
    pub async fn start_config(build: impl FnOnce(&std::path::Path) -> ConfigBuilder) -> TestProxy {
        let dir = tempfile::tempdir().unwrap();
        let text = build(dir.path()).toml();
        Self::start_with(&text, dir).await
    }

    pub async fn start_with(config_text: &str, dir: tempfile::TempDir) -> TestProxy {
        Self::start_with_env(config_text, dir, &[]).await
    }

    /// Starts with `env` as the only environment the config's `api_key_env` reads.
    pub async fn start_with_env(
        config_text: &str,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
    ) -> TestProxy {
        let lookup = |var: &str| {
            env.iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| (*v).to_owned())
        };
        let config = Config::from_toml_with_env(config_text, &lookup).unwrap();
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config_text).unwrap();
        let daemon = Daemon::start(DaemonOptions {
            config,
            config_path: Some(config_path),
            data_dir: dir.path().join("data"),
        })
        .await
        .unwrap();
        TestProxy { daemon, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.daemon.local_addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin-token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Every request-log row written so far, newest first (waits for pending writes).
    pub async fn logged(&self) -> Vec<pai_core::store::RequestRecord> {
        self.daemon.flush_log().await;
        let conn =
            pai_core::store::open(&pai_core::store::database_path(&self.data_dir())).unwrap();
        pai_core::store::recent(&conn, 1000).unwrap()
    }

    pub async fn health(&self) -> Value {
        crate::http::get_json(&self.url("/health")).await
    }

    /// Calls the admin API; returns the status and the JSON body.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = client()
            .request(method.parse().unwrap(), self.url(path))
            .bearer_auth(self.admin_token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Switches the routing mode (`PUT /api/mode`).
    pub async fn set_mode(&self, mode: &str) {
        let (status, body) = self
            .admin("PUT", "/api/mode", Some(serde_json::json!({"mode": mode})))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The config in force, as `GET /api/config` shows it.
    pub async fn config(&self) -> Value {
        self.admin("GET", "/api/config", None).await.1["config"].clone()
    }

    /// The core's events from now on (`GET /api/events`).
    pub async fn events(&self) -> Events {
        let response = client()
            .get(self.url("/api/events"))
            .bearer_auth(self.admin_token())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        Events {
            stream: Box::pin(response.bytes_stream()),
            pending: String::new(),
        }
    }

    /// Follows the quota snapshot from now on, as the settings page does: the one in force
    /// (`/health`), then each change announced.
    pub async fn follow_quota(&self) -> QuotaFollower {
        let events = self.events().await;
        let current = self.health().await["quota"].clone();
        QuotaFollower { events, current }
    }

    /// Waits until the quota snapshot satisfies `check`, and returns it.
    pub async fn wait_quota(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.follow_quota().await.wait_for(what, check).await
    }

    /// Waits until `count` interactive requests wait for the quota.
    pub async fn wait_waiting(&self, count: u64) {
        let mut events = self.events().await;
        if self.health().await["queue_waiting"] == count {
            return;
        }
        events
            .next_where(&format!("{count} waiting"), |event| {
                event["type"] == "waiting" && event["count"] == count
            })
            .await;
    }

    /// Polls `/health` (every 20 ms, at most 15 s) until `check` holds: for what the
    /// proxy shows but does not announce (a gate's load, say).
    pub async fn wait_health(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let health = self.health().await;
            if check(&health) {
                return health;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never {what}: {health}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.daemon.shutdown();
    }
}

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// The core's events, as the settings page reads them.
pub struct Events {
    stream: ByteStream,
    pending: String,
}

impl Events {
    /// The next event (at most 15 s away).
    pub async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if !data.is_empty() {
                    return serde_json::from_str(&data.join("\n")).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(LIMIT, self.stream.next())
                .await
                .expect("no event came")
                .expect("the event stream ended")
                .unwrap();
            self.pending.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event that satisfies `check`.
    pub async fn next_where(&mut self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.next())
                .await
                .unwrap_or_else(|_| panic!("never: {what}"));
            if check(&event) {
                return event;
            }
        }
    }
}

/// The quota snapshot as it changes.
pub struct QuotaFollower {
    events: Events,
    /// The latest snapshot seen.
    pub current: Value,
}

impl QuotaFollower {
    /// The first snapshot, from the latest on, that satisfies `check`.
    pub async fn wait_for(&mut self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        if check(&self.current) {
            return self.current.clone();
        }
        let event = self
            .events
            .next_where(&format!("quota {what}"), |event| {
                event["type"] == "quota" && check(&event["snapshot"])
            })
            .await;
        self.current = event["snapshot"].clone();
        self.current.clone()
    }

    /// The next snapshot announced, whatever it says.
    pub async fn next(&mut self) -> Value {
        let event = self
            .events
            .next_where("a quota change", |event| event["type"] == "quota")
            .await;
        self.current = event["snapshot"].clone();
        self.current.clone()
    }
}
