//! The config file as written: plain serde structs that mirror the TOML.
//!
//! Nothing here is trusted yet. `deny_unknown_fields` turns a typo into an error
//! instead of a silently ignored key; [`super::validate`] turns these into runtime types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Written back (the test kit builds configs from these), a section left as it is by
/// default is left out.
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub quota: RawQuota,
    pub providers: Option<Vec<RawProvider>>,
    #[serde(default)]
    pub routing: RawRouting,
    #[serde(default, skip_serializing_if = "is_default")]
    pub classify: super::ClassifyRules,
    #[serde(default)]
    pub queue: RawQueue,
    #[serde(default, skip_serializing_if = "is_default")]
    pub notifications: super::NotifySettings,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    pub max_wait_secs: Option<u64>,
    pub ping_secs: Option<u64>,
    pub retry_attempts: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub retry_cap_ms: Option<u64>,
    pub grace_secs: Option<u64>,
    pub coalesce: Option<bool>,
    pub job_attempts: Option<u32>,
    /// An environment variable with an Anthropic key for async jobs whose client's key is
    /// not in memory (after a restart).
    pub jobs_api_key_env: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    /// Client connections open at once; beyond, a `503`.
    pub max_connections: Option<usize>,
    /// How long a client connection may sit without a complete request (keep-alive idle
    /// time, and a slow client's headers).
    pub idle_timeout_secs: Option<u64>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    pub poll_url: Option<String>,
    pub poll_interval_secs: Option<u64>,
    pub usage_pointer: Option<String>,
    /// JSON pointer to when the dashboard's window resets (RFC 3339 or epoch seconds).
    pub reset_pointer: Option<String>,
    /// Whether extra usage (billed beyond the subscription) may be spent.
    pub allow_extra_usage: Option<bool>,
    pub state_file: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub thresholds: RawThresholds,
    pub dashboard_timeout_secs: Option<u64>,
    pub dashboard_ttl_secs: Option<u64>,
    pub header_ttl_secs: Option<u64>,
    pub usage_api: Option<bool>,
    pub usage_api_url: Option<String>,
    pub usage_api_interval_secs: Option<u64>,
    pub credentials_file: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawThresholds {
    pub caution: Option<f64>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub hysteresis: Option<f64>,
}

/// One `[[providers]]` entry; `kind` selects the provider code that serves it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    /// `anthropic` (the Messages API) or `openai` (Chat Completions).
    pub kind: super::ProviderKind,
    pub base_url: String,
    /// Forward the client's own `x-api-key` / `authorization` to this provider (kind
    /// `anthropic` only). Defaults to true only for Anthropic's own API.
    pub pass_client_credentials: Option<bool>,
    pub api_key_env: Option<String>,
    pub model: Option<String>,
    pub context_window: Option<u32>,
    /// LM Studio: load `model` with this context length (tokens) when it is not loaded, or
    /// is loaded with less than a request needs.
    pub load_context: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tiers: BTreeMap<String, String>,
    pub timeout_secs: Option<u64>,
    /// Longest silence allowed once an answer has begun.
    pub idle_timeout_secs: Option<u64>,
    /// Requests in flight at once (unlimited when absent).
    pub max_concurrent: Option<usize>,
    /// Whether it can call tools (default true); requests with tools skip it otherwise.
    pub supports_tools: Option<bool>,
    /// Whether it reads images (default true).
    pub supports_images: Option<bool>,
    /// Anthropic's API: read its model list once a day (with the client's credentials),
    /// so tiers follow the newest model of their family (default true).
    pub discover_models: Option<bool>,
}

impl RawProvider {
    /// A provider of `kind` with only its name and address set.
    pub fn new(name: &str, kind: super::ProviderKind, base_url: &str) -> RawProvider {
        RawProvider {
            name: name.to_owned(),
            kind,
            base_url: base_url.to_owned(),
            pass_client_credentials: None,
            api_key_env: None,
            model: None,
            context_window: None,
            load_context: None,
            tiers: BTreeMap::new(),
            timeout_secs: None,
            idle_timeout_secs: None,
            max_concurrent: None,
            supports_tools: None,
            supports_images: None,
            discover_models: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    pub fallback: Option<Vec<String>>,
    pub matrix: Option<BTreeMap<String, BTreeMap<String, Vec<String>>>>,
    /// Route as if one state higher when the quota runs out before its reset.
    pub predictive: Option<bool>,
    /// Auto mode's requests stay on Claude (its safety check runs there); `false` saves
    /// quota instead, and auto mode cannot check actions on a local route.
    pub auto_mode_on_claude: Option<bool>,
    pub breaker_failures: Option<usize>,
    pub breaker_window_secs: Option<u64>,
    pub breaker_cooldown_secs: Option<u64>,
}
