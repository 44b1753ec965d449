//! The proxy under test, started in-process on a random loopback port.

use std::net::SocketAddr;
use std::path::PathBuf;

use pai_orchestrator::config::Config;
use pai_orchestrator::daemon::{Daemon, DaemonOptions};

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
        let config = Config::from_toml(config_text).unwrap();
        let daemon = Daemon::start(DaemonOptions {
            config,
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
    pub async fn logged(&self) -> Vec<pai_orchestrator::store::RequestRecord> {
        self.daemon.state.recorder.flush().await;
        let conn = pai_orchestrator::store::open(&pai_orchestrator::store::database_path(
            &self.data_dir(),
        ))
        .unwrap();
        pai_orchestrator::store::recent(&conn, 1000).unwrap()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.daemon.shutdown();
    }
}
