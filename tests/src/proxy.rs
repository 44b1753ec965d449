//! The proxy under test, started in-process on a random loopback port.

use std::net::SocketAddr;
use std::path::PathBuf;

use pai_core::config::Config;
use pai_server::daemon::{Daemon, DaemonOptions};

/// A config whose `claude` provider is `upstream` (passing the client's credentials, as
/// for Anthropic's own API), with polling off and every file in `dir`.
pub fn config_toml(upstream: &str, dir: &std::path::Path) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[quota]
poll_url = ""
state_file = "{state}"

[[providers]]
name = "claude"
kind = "anthropic"
base_url = "{upstream}"
pass_client_credentials = true
tiers = {{ haiku = "claude-haiku-4-5-20251001", sonnet = "claude-sonnet-5", opus = "claude-opus-4-8" }}

[queue]
retry_attempts = 1

[routing]
fallback = []
[routing.matrix]
normal   = {{ simple = ["claude:haiku"], medium = ["claude:sonnet"], complex = ["claude:opus"] }}
caution  = {{ simple = ["claude"], medium = ["claude:sonnet"], complex = ["claude:sonnet"] }}
warning  = {{ simple = ["claude"], medium = ["claude"], complex = ["claude"] }}
critical = {{ simple = ["claude"], medium = ["claude"], complex = ["queue", "claude"] }}
"#,
        state = dir.join("quota-state.json").display(),
    )
}

pub struct TestProxy {
    pub daemon: Daemon,
    pub dir: tempfile::TempDir,
}

impl TestProxy {
    /// Starts the proxy in front of `upstream` (a base URL).
    pub async fn start(upstream: &str) -> TestProxy {
        let dir = tempfile::tempdir().unwrap();
        let text = config_toml(upstream, dir.path());
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

    /// Every request-log row written so far, newest first (waits for pending writes).
    pub async fn logged(&self) -> Vec<pai_core::store::RequestRecord> {
        self.daemon.state.core.recorder.flush().await;
        let conn =
            pai_core::store::open(&pai_core::store::database_path(&self.data_dir())).unwrap();
        pai_core::store::recent(&conn, 1000).unwrap()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.daemon.shutdown();
    }
}

/// A config with `claude` (Anthropic mock), `local` (an OpenAI-compatible mock on
/// loopback) and `fallback` (another OpenAI-compatible mock with its own key from
/// `PAI_TEST_FALLBACK_KEY`), routed by the seed's matrix with `local` as LM Studio.
pub fn routing_toml(
    anthropic: &str,
    local: &str,
    fallback: &str,
    dashboard: Option<&str>,
    dir: &std::path::Path,
) -> String {
    let poll = match dashboard {
        Some(url) => format!("poll_url = \"{url}/api/quota\"\npoll_interval_secs = 1"),
        None => "poll_url = \"\"".to_owned(),
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[quota]
{poll}
state_file = "{state}"

[[providers]]
name = "claude"
kind = "anthropic"
base_url = "{anthropic}"
pass_client_credentials = true
tiers = {{ haiku = "claude-haiku-4-5-20251001", sonnet = "claude-sonnet-5", opus = "claude-opus-4-8" }}

[[providers]]
name = "local"
kind = "openai"
base_url = "{local}/v1"
model = "local-model"
context_window = 200000

[[providers]]
name = "fallback"
kind = "openai"
base_url = "{fallback}/v1"
api_key_env = "PAI_TEST_FALLBACK_KEY"
model = "fallback-model"

[queue]
max_wait_secs = 2
retry_attempts = 1

[routing]
fallback = ["fallback"]
breaker_failures = 2
breaker_cooldown_secs = 1
[routing.matrix]
normal   = {{ simple = ["claude:haiku"], medium = ["claude:sonnet"], complex = ["claude:opus"] }}
caution  = {{ simple = ["local"], medium = ["claude:sonnet"], complex = ["claude:sonnet"] }}
warning  = {{ simple = ["local"], medium = ["local"], complex = ["local"] }}
critical = {{ simple = ["local"], medium = ["local"], complex = ["queue", "local"] }}
"#,
        state = dir.join("quota-state.json").display(),
    )
}
