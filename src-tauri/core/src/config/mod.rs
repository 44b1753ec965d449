//! Typed configuration: the TOML file, validated into runtime types.
//!
//! Loading has two stages (see [`raw`] and [`validate`]): serde reads the file into raw
//! structs that reject unknown keys, then validation checks every value and produces the
//! types the rest of the program uses. Every error names the key and the value at fault.
//!
//! The bottom layer: imports `types` and `fsutil` only, no domain module — each
//! section's settings type lives here, and the modules that act on it import it.

mod classify;
pub mod edit;
mod net;
mod notifications;
pub mod raw;
mod validate;
mod view;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::fsutil;
use crate::types::{Complexity, QuotaLevel};

pub use classify::{ClassifyRules, Weights};
pub use net::is_loopback_host;
pub use notifications::NotifySettings;
pub use raw::RawConfig;
pub use validate::parse_listen;

/// The commented default config written when the user has none.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Default listen address of the proxy.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8766";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write config {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config is not valid TOML: {0}")]
    Parse(String),
    #[error("invalid config: {}", join_problems(.0))]
    Invalid(Vec<Problem>),
}

/// One invalid value: `providers[1].base_url: "htp:/x" is not a URL`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.key, self.value, self.reason)
    }
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub server: ServerConfig,
    pub quota: QuotaConfig,
    pub providers: Vec<ProviderConfig>,
    pub routing: RoutingConfig,
    pub classify: ClassifyRules,
    pub queue: QueueConfig,
    pub notifications: NotifySettings,
}

/// Retries: exponential backoff with full jitter (see `queue::backoff`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Backoff {
    #[serde(serialize_with = "view::secs")]
    pub base: Duration,
    #[serde(serialize_with = "view::secs")]
    pub cap: Duration,
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            attempts: 3,
        }
    }
}

/// Circuit breaker: `failures` errors within `window` open it; after `cooldown` one
/// request may probe.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BreakerConfig {
    pub failures: usize,
    #[serde(serialize_with = "view::secs")]
    pub window: Duration,
    #[serde(serialize_with = "view::secs")]
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 3,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(30),
        }
    }
}

/// `[queue]`: waiting for quota, retries, shutdown.
#[derive(Debug, Clone, Serialize)]
pub struct QueueConfig {
    /// Longest an interactive request waits for the quota (below Claude Code's 600 s).
    #[serde(serialize_with = "view::secs")]
    pub max_wait: Duration,
    /// How often a held stream sends a `ping` event.
    #[serde(serialize_with = "view::secs")]
    pub ping_every: Duration,
    pub retry: Backoff,
    /// Attempts of an async job before it fails.
    pub job_attempts: u32,
    /// How long in-flight requests may finish on shutdown.
    #[serde(serialize_with = "view::secs")]
    pub grace: Duration,
    pub coalesce: bool,
    /// An Anthropic key for async jobs whose client's key is not in memory.
    #[serde(serialize_with = "view::is_set")]
    pub jobs_key: Option<Secret>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Client connections open at once; beyond, a `503`.
    pub max_connections: usize,
    /// How long a client connection may wait for (or read) a request's headers.
    #[serde(serialize_with = "view::secs")]
    pub idle_timeout: Duration,
    /// Browser origins allowed to call the proxy (exact match, e.g. `http://localhost:3000`).
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuotaConfig {
    /// Dashboard to poll; `None` when polling is turned off.
    pub poll_url: Option<Url>,
    #[serde(serialize_with = "view::secs")]
    pub poll_interval: Duration,
    pub usage_pointer: String,
    /// Where the dashboard says its window resets, when it says.
    pub reset_pointer: Option<String>,
    pub state_file: PathBuf,
    /// Spending extra usage (billed beyond the subscription) is fine; else it routes as
    /// critical.
    pub allow_extra_usage: bool,
    pub thresholds: Thresholds,
    #[serde(serialize_with = "view::secs")]
    pub dashboard_timeout: Duration,
    /// How long a dashboard reading stays fresh (default: 3 poll intervals).
    #[serde(serialize_with = "view::secs")]
    pub dashboard_ttl: Duration,
    /// How long a rate-limit header reading stays fresh.
    #[serde(serialize_with = "view::secs")]
    pub header_ttl: Duration,
    /// Anthropic's OAuth usage endpoint, when opted in.
    pub usage_api: Option<UsageApiConfig>,
}

/// The opt-in poll of `GET /api/oauth/usage` with Claude Code's stored token.
#[derive(Debug, Clone, Serialize)]
pub struct UsageApiConfig {
    pub url: Url,
    #[serde(serialize_with = "view::secs")]
    pub interval: Duration,
    /// Claude Code's `.credentials.json`; read each time (the token refreshes), never copied.
    pub credentials_file: PathBuf,
}

/// Percent-used thresholds at which each quota level begins.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub caution: f64,
    pub warning: f64,
    pub critical: f64,
    pub hysteresis: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: Url,
    pub credentials: Credentials,
    /// The model this provider serves when a target does not name one.
    pub model: Option<String>,
    pub context_window: Option<u32>,
    /// LM Studio: the context length to load `model` with (see `providers::lmstudio`).
    pub load_context: Option<u32>,
    /// Tier aliases (`haiku`, `sonnet`, `opus`, …) to model ids.
    pub tiers: BTreeMap<String, String>,
    /// Time allowed until the response headers arrive.
    #[serde(serialize_with = "view::secs")]
    pub timeout: Duration,
    /// The longest silence allowed once an answer has begun: between the headers and the
    /// body, and between chunks of a stream.
    #[serde(serialize_with = "view::secs")]
    pub idle_timeout: Duration,
    /// Requests in flight at once (`None`: unlimited).
    pub max_concurrent: Option<usize>,
    pub supports_tools: bool,
    pub supports_images: bool,
    /// Anthropic's API: its model list is read to resolve tiers (`GET /v1/models`).
    pub discover_models: bool,
}

impl ProviderConfig {
    /// Whether this is Anthropic's own API: the client's credentials go there, and its
    /// answers carry the Claude quota.
    pub fn is_claude(&self) -> bool {
        matches!(self.credentials, Credentials::PassThrough)
    }
}

/// Whose credentials a provider receives.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// The client's own `x-api-key` / `authorization` (Anthropic's API only, by default).
    PassThrough,
    /// A key of the provider's own, read from an environment variable.
    Env { var: String, key: Option<Secret> },
    /// No credentials at all (a local server).
    None,
}

/// A key from the environment: never printed (its `Debug` is redacted), read only where
/// it is sent, with `expose_secret`.
pub type Secret = secrecy::SecretString;

#[derive(Debug, Clone, Serialize)]
pub struct RoutingConfig {
    pub matrix: Matrix,
    pub fallback: Vec<Target>,
    /// Route as if one state higher when the quota is projected to run out before its reset.
    pub predictive: bool,
    /// Auto mode's requests (`safeguards`) stay on Claude while Claude can take them.
    pub auto_mode_on_claude: bool,
    pub breaker: BreakerConfig,
}

/// The decision matrix: quota level x complexity -> targets tried in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    cells: [[Vec<Target>; 3]; 4],
}

impl Matrix {
    pub fn cell(&self, level: QuotaLevel, complexity: Complexity) -> &[Target] {
        &self.cells[level as usize][complexity as usize]
    }
}

/// One entry of a matrix cell or of the fallback list.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Wait for the quota to recover.
    Queue,
    Provider {
        provider: String,
        model: ModelChoice,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModelChoice {
    /// The model the client asked for (or the provider's own `model`).
    Requested,
    /// A tier alias, resolved to the model id of the provider's `tiers`.
    Tier { tier: String, model: String },
    /// An explicit model id.
    Model(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Queue => f.write_str("queue"),
            Target::Provider { provider, model } => match model {
                ModelChoice::Requested => f.write_str(provider),
                ModelChoice::Tier { tier, .. } => write!(f, "{provider}:{tier}"),
                ModelChoice::Model(model) => write!(f, "{provider}:{model}"),
            },
        }
    }
}

impl Config {
    /// Parses and validates a config from TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Self::from_toml_with_env(text, &|var| std::env::var(var).ok())
    }

    /// Like [`Config::from_toml`], reading secrets through `env` (tests pass their own).
    pub fn from_toml_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        validate::validate(raw, env)
    }

    /// Loads the config at `path`, first writing the commented defaults there if the file
    /// does not exist.
    pub fn load_or_create(path: &Path) -> Result<Config, ConfigError> {
        if !path.exists() {
            fsutil::write_atomic(path, DEFAULT_TOML.as_bytes()).map_err(|source| {
                ConfigError::Write {
                    path: path.to_owned(),
                    source,
                }
            })?;
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text)
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests;
