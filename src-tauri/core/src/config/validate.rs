//! Second stage of loading: raw values checked and turned into runtime types.
//!
//! Validation collects every problem instead of stopping at the first, so the settings
//! window can show them all at once.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::raw::{RawConfig, RawProvider, RawQuota, RawServer};
use super::{
    Config, ConfigError, Credentials, Matrix, ModelChoice, Problem, ProviderConfig, ProviderKind,
    QuotaConfig, RoutingConfig, Secret, ServerConfig, Target, Thresholds, UsageApiConfig,
    DEFAULT_LISTEN, DEFAULT_TOML,
};
use crate::fsutil::expand_home;
use crate::types::{Complexity, QuotaLevel};

const DEFAULT_TIMEOUT_SECS: u64 = 600;
const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;

/// Collects problems while validating.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, value: impl std::fmt::Debug, reason: &str) {
        self.0.push(Problem {
            key: key.into(),
            value: format!("{value:?}"),
            reason: reason.to_owned(),
        });
    }
}

pub(super) fn validate(
    raw: RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let defaults: RawConfig =
        toml::from_str(DEFAULT_TOML).map_err(|e| ConfigError::Parse(e.to_string()))?;
    let mut problems = Problems::default();

    let server = server(&raw.server, &mut problems);
    let quota = quota(&raw.quota, &mut problems);
    let raw_providers = raw.providers.or(defaults.providers).unwrap_or_default();
    let providers = providers(&raw_providers, env, &mut problems);
    let breaker = breaker(&raw.routing, &mut problems);
    let predictive = raw.routing.predictive.unwrap_or(true);
    let matrix_raw = raw
        .routing
        .matrix
        .or(defaults.routing.matrix)
        .unwrap_or_default();
    let fallback_raw = raw
        .routing
        .fallback
        .or(defaults.routing.fallback)
        .unwrap_or_default();
    let matrix = matrix(&matrix_raw, &providers, &mut problems);
    let fallback = fallback_raw
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            target(
                &format!("routing.fallback[{i}]"),
                t,
                &providers,
                &mut problems,
            )
        })
        .collect();

    let queue = queue(&raw.queue, env, &mut problems);
    let classify = raw.classify;
    if classify.simple_at_most >= classify.complex_at_least {
        problems.add(
            "classify.simple_at_most",
            classify.simple_at_most,
            "must be below classify.complex_at_least",
        );
    }

    if !problems.0.is_empty() {
        return Err(ConfigError::Invalid(problems.0));
    }
    Ok(Config {
        server,
        quota,
        providers,
        routing: RoutingConfig {
            matrix,
            fallback,
            predictive,
            auto_mode_on_claude: raw.routing.auto_mode_on_claude.unwrap_or(true),
            breaker,
        },
        classify,
        queue,
        notifications: raw.notifications,
    })
}

fn queue(
    raw: &super::raw::RawQueue,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> super::QueueConfig {
    let max_wait = raw.max_wait_secs.unwrap_or(300);
    if !(1..600).contains(&max_wait) {
        problems.add(
            "queue.max_wait_secs",
            max_wait,
            "must be between 1 and 599 (Claude Code gives up after 600 s)",
        );
    }
    let ping = raw.ping_secs.unwrap_or(10);
    if ping == 0 {
        problems.add("queue.ping_secs", ping, "must be at least 1");
    }
    let attempts = raw.retry_attempts.unwrap_or(3);
    if attempts == 0 {
        problems.add(
            "queue.retry_attempts",
            attempts,
            "must be at least 1 (1 = no retry)",
        );
    }
    let base = raw.retry_base_ms.unwrap_or(500);
    let cap = raw.retry_cap_ms.unwrap_or(30_000);
    if base == 0 || cap < base {
        problems.add(
            "queue.retry_base_ms",
            base,
            "must be at least 1 and at most queue.retry_cap_ms",
        );
    }
    super::QueueConfig {
        max_wait: Duration::from_secs(max_wait.clamp(1, 599)),
        ping_every: Duration::from_secs(ping.max(1)),
        retry: super::Backoff {
            base: Duration::from_millis(base.max(1)),
            cap: Duration::from_millis(cap.max(base.max(1))),
            attempts: attempts.max(1),
        },
        job_attempts: raw.job_attempts.unwrap_or(5).max(1),
        grace: Duration::from_secs(raw.grace_secs.unwrap_or(10)),
        coalesce: raw.coalesce.unwrap_or(true),
        jobs_key: raw
            .jobs_api_key_env
            .as_deref()
            .and_then(env)
            .filter(|key| !key.is_empty())
            .map(Secret::from),
    }
}

fn breaker(raw: &super::raw::RawRouting, problems: &mut Problems) -> super::BreakerConfig {
    let defaults = super::BreakerConfig::default();
    let failures = raw.breaker_failures.unwrap_or(defaults.failures);
    if failures == 0 {
        problems.add("routing.breaker_failures", failures, "must be at least 1");
    }
    super::BreakerConfig {
        failures: failures.max(1),
        window: raw
            .breaker_window_secs
            .map_or(defaults.window, Duration::from_secs),
        cooldown: raw
            .breaker_cooldown_secs
            .map_or(defaults.cooldown, Duration::from_secs),
    }
}

fn server(raw: &RawServer, problems: &mut Problems) -> ServerConfig {
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = match parse_listen(listen_text) {
        Ok(addr) => addr,
        Err(reason) => {
            problems.add("server.listen", listen_text, reason);
            SocketAddr::from((Ipv4Addr::LOCALHOST, 8766))
        }
    };
    for (i, origin) in raw.allowed_origins.iter().enumerate() {
        if Url::parse(origin).is_err() {
            problems.add(
                format!("server.allowed_origins[{i}]"),
                origin,
                "is not an origin like \"http://localhost:3000\"",
            );
        }
    }
    let max_connections = raw.max_connections.unwrap_or(1024);
    if max_connections == 0 {
        problems.add("server.max_connections", 0, "must be at least 1");
    }
    let idle_timeout = raw.idle_timeout_secs.unwrap_or(60);
    if idle_timeout == 0 {
        problems.add("server.idle_timeout_secs", 0, "must be at least 1 second");
    }
    ServerConfig {
        listen,
        max_connections: max_connections.max(1),
        idle_timeout: Duration::from_secs(idle_timeout.max(1)),
        allowed_origins: raw
            .allowed_origins
            .iter()
            .map(|o| o.trim_end_matches('/').to_owned())
            .collect(),
    }
}

/// Parses a listen address, accepting `localhost:PORT`; only loopback is allowed.
pub fn parse_listen(text: &str) -> Result<SocketAddr, &'static str> {
    let addr = match text.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .map_err(|_| "is not an address like \"127.0.0.1:8766\"")?,
        None => text
            .parse::<SocketAddr>()
            .map_err(|_| "is not an address like \"127.0.0.1:8766\"")?,
    };
    if !is_loopback(addr.ip()) {
        return Err("is not a loopback address (the proxy listens on 127.0.0.1 or ::1 only)");
    }
    Ok(addr)
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

fn quota(raw: &RawQuota, problems: &mut Problems) -> QuotaConfig {
    let poll_url = match raw.poll_url.as_deref() {
        None => Url::parse("http://localhost:8765/api/quota").ok(),
        Some("") => None,
        Some(text) => http_url("quota.poll_url", text, problems),
    };
    let poll_interval_secs = raw.poll_interval_secs.unwrap_or(60);
    if poll_interval_secs == 0 || poll_interval_secs > 86_400 {
        problems.add(
            "quota.poll_interval_secs",
            poll_interval_secs,
            "must be between 1 and 86400 seconds",
        );
    }
    let usage_pointer = raw
        .usage_pointer
        .clone()
        .unwrap_or_else(|| "/usage_percent".to_owned());
    if !(usage_pointer.is_empty() || usage_pointer.starts_with('/')) {
        problems.add(
            "quota.usage_pointer",
            &usage_pointer,
            "is not a JSON pointer (it starts with '/', e.g. \"/usage_percent\")",
        );
    }
    let reset_pointer = raw.reset_pointer.clone().filter(|p| !p.is_empty());
    if let Some(pointer) = reset_pointer.as_ref().filter(|p| !p.starts_with('/')) {
        problems.add(
            "quota.reset_pointer",
            pointer,
            "is not a JSON pointer (it starts with '/', e.g. \"/resets_at\")",
        );
    }
    let state_file_text = raw
        .state_file
        .as_deref()
        .unwrap_or("~/.claude/BUDGET/quota-state.json");
    let state_file = if state_file_text.is_empty() {
        problems.add("quota.state_file", state_file_text, "is empty");
        PathBuf::new()
    } else {
        expand_home(state_file_text)
    };

    let t = &raw.thresholds;
    let thresholds = Thresholds {
        caution: t.caution.unwrap_or(50.0),
        warning: t.warning.unwrap_or(75.0),
        critical: t.critical.unwrap_or(90.0),
        hysteresis: t.hysteresis.unwrap_or(3.0),
    };
    for (key, value) in [
        ("caution", thresholds.caution),
        ("warning", thresholds.warning),
        ("critical", thresholds.critical),
    ] {
        if !(0.0..=100.0).contains(&value) {
            problems.add(
                format!("quota.thresholds.{key}"),
                value,
                "must be a percent between 0 and 100",
            );
        }
    }
    if !(thresholds.caution < thresholds.warning && thresholds.warning < thresholds.critical) {
        problems.add(
            "quota.thresholds",
            format!(
                "caution {} / warning {} / critical {}",
                thresholds.caution, thresholds.warning, thresholds.critical
            ),
            "must rise strictly: caution < warning < critical",
        );
    }
    if !(0.0..=20.0).contains(&thresholds.hysteresis) {
        problems.add(
            "quota.thresholds.hysteresis",
            thresholds.hysteresis,
            "must be between 0 and 20 percent points",
        );
    }
    let mut seconds = |key: &str, value: Option<u64>, default: u64, min: u64| {
        let value = value.unwrap_or(default);
        if value < min || value > 7 * 86_400 {
            problems.add(
                format!("quota.{key}"),
                value,
                &format!("must be between {min} and 604800 seconds"),
            );
        }
        Duration::from_secs(value.max(min))
    };
    let dashboard_timeout = seconds("dashboard_timeout_secs", raw.dashboard_timeout_secs, 5, 1);
    let dashboard_ttl = seconds(
        "dashboard_ttl_secs",
        raw.dashboard_ttl_secs,
        3 * poll_interval_secs.max(1),
        1,
    );
    let header_ttl = seconds("header_ttl_secs", raw.header_ttl_secs, 600, 1);
    let usage_interval = seconds(
        "usage_api_interval_secs",
        raw.usage_api_interval_secs,
        300,
        300,
    );
    let usage_api = if raw.usage_api.unwrap_or(false) {
        let text = raw
            .usage_api_url
            .as_deref()
            .unwrap_or("https://api.anthropic.com/api/oauth/usage");
        let url = http_url("quota.usage_api_url", text, problems);
        // The token goes to Anthropic (or a test server on this machine), nowhere else.
        let url = url.filter(|url| {
            let trusted = url.host_str() == Some("api.anthropic.com") && url.scheme() == "https"
                || url.host_str().is_some_and(super::is_loopback_host);
            if !trusted {
                problems.add(
                    "quota.usage_api_url",
                    text,
                    "must be https://api.anthropic.com/… (Claude Code's token is sent there)",
                );
            }
            trusted
        });
        url.map(|url| UsageApiConfig {
            url,
            interval: usage_interval,
            credentials_file: expand_home(
                raw.credentials_file
                    .as_deref()
                    .unwrap_or("~/.claude/.credentials.json"),
            ),
        })
    } else {
        None
    };
    QuotaConfig {
        poll_url,
        poll_interval: Duration::from_secs(poll_interval_secs.max(1)),
        usage_pointer,
        reset_pointer,
        state_file,
        allow_extra_usage: raw.allow_extra_usage.unwrap_or(false),
        thresholds,
        dashboard_timeout,
        dashboard_ttl,
        header_ttl,
        usage_api,
    }
}

fn http_url(key: &str, text: &str, problems: &mut Problems) -> Option<Url> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        Ok(_) => {
            problems.add(key, text, "is not an http(s) URL");
            None
        }
        Err(_) => {
            problems.add(key, text, "is not a URL");
            None
        }
    }
}

fn providers(
    raw: &[RawProvider],
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Vec<ProviderConfig> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for (i, provider) in raw.iter().enumerate() {
        let key = |field: &str| format!("providers[{i}].{field}");
        let name = provider.name.as_str();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problems.add(key("name"), name, "must be letters, digits, '-' or '_'");
        } else if name == "queue" {
            problems.add(key("name"), name, "is reserved for the queue target");
        } else if let Some(first) = seen.insert(name.to_owned(), i) {
            problems.add(
                key("name"),
                name,
                &format!("is already the name of providers[{first}]"),
            );
        }
        if provider.max_concurrent == Some(0) {
            problems.add(
                key("max_concurrent"),
                0,
                "must be at least 1 (leave it out for no limit)",
            );
        }
        let kind = provider.kind;
        if kind == ProviderKind::OpenAi && provider.pass_client_credentials.is_some() {
            problems.add(
                key("pass_client_credentials"),
                provider.pass_client_credentials,
                "is for kind = \"anthropic\" only (an OpenAI-compatible API never gets the client's key)",
            );
        }
        let pass = match kind {
            ProviderKind::Anthropic => provider.pass_client_credentials,
            ProviderKind::OpenAi => Some(false),
        };
        let (base_url, api_key_env, model, context_window, tiers) = (
            &provider.base_url,
            &provider.api_key_env,
            &provider.model,
            provider.context_window,
            &provider.tiers,
        );
        let (timeout_secs, idle_timeout_secs) = (provider.timeout_secs, provider.idle_timeout_secs);
        let Some(base_url) = http_url(&key("base_url"), base_url, problems) else {
            continue;
        };
        let is_anthropic_api = base_url.host_str() == Some("api.anthropic.com");
        let credentials = match (pass.unwrap_or(is_anthropic_api), api_key_env) {
            (true, Some(var)) => {
                problems.add(
                    key("api_key_env"),
                    var,
                    "cannot be combined with pass_client_credentials = true",
                );
                Credentials::PassThrough
            }
            (true, None) => Credentials::PassThrough,
            (false, Some(var)) => Credentials::Env {
                var: var.clone(),
                key: env(var).filter(|v| !v.is_empty()).map(Secret::from),
            },
            (false, None) => Credentials::None,
        };
        if context_window == Some(0) {
            problems.add(
                key("context_window"),
                0,
                "must be a positive number of tokens",
            );
        }
        match (provider.load_context, model.as_deref()) {
            (Some(0), _) => problems.add(
                key("load_context"),
                0,
                "must be a positive number of tokens",
            ),
            (Some(tokens), None | Some("auto")) => problems.add(
                key("load_context"),
                tokens,
                "needs a model to load: set model to an LM Studio model key",
            ),
            _ => {}
        }
        let timeout_secs = timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if timeout_secs == 0 {
            problems.add(key("timeout_secs"), 0, "must be at least 1 second");
        }
        let idle_timeout_secs = idle_timeout_secs.unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS);
        if idle_timeout_secs == 0 {
            problems.add(key("idle_timeout_secs"), 0, "must be at least 1 second");
        }
        out.push(ProviderConfig {
            name: name.to_owned(),
            kind,
            base_url,
            credentials,
            model: model.clone(),
            context_window,
            load_context: provider.load_context.filter(|n| *n > 0),
            tiers: tiers.clone(),
            timeout: Duration::from_secs(timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(idle_timeout_secs.max(1)),
            max_concurrent: provider.max_concurrent.filter(|n| *n > 0),
            supports_tools: provider.supports_tools.unwrap_or(true),
            supports_images: provider.supports_images.unwrap_or(true),
            discover_models: provider.discover_models.unwrap_or(true),
        });
    }
    out
}

fn matrix(
    raw: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    providers: &[ProviderConfig],
    problems: &mut Problems,
) -> Matrix {
    for state in raw.keys() {
        if state.parse::<QuotaLevel>().is_err() {
            problems.add(
                format!("routing.matrix.{state}"),
                state,
                "is not a quota state (normal, caution, warning, critical)",
            );
        }
    }
    let mut cells: [[Vec<Target>; 3]; 4] = Default::default();
    for level in QuotaLevel::ALL.iter().copied() {
        let Some(row) = raw.get(level.name()) else {
            problems.add(format!("routing.matrix.{}", level.name()), "", "is missing");
            continue;
        };
        for class in row.keys() {
            if class.parse::<Complexity>().is_err() {
                problems.add(
                    format!("routing.matrix.{}.{class}", level.name()),
                    class,
                    "is not a complexity (simple, medium, complex)",
                );
            }
        }
        for complexity in Complexity::ALL.iter().copied() {
            let key = format!("routing.matrix.{}.{}", level.name(), complexity.name());
            let Some(targets) = row.get(complexity.name()) else {
                problems.add(key, "", "is missing");
                continue;
            };
            cells[level as usize][complexity as usize] = targets
                .iter()
                .enumerate()
                .filter_map(|(i, t)| target(&format!("{key}[{i}]"), t, providers, problems))
                .collect();
        }
    }
    Matrix { cells }
}

/// Parses `provider`, `provider:tier`, `provider:model-id` or `queue`.
fn target(
    key: &str,
    text: &str,
    providers: &[ProviderConfig],
    problems: &mut Problems,
) -> Option<Target> {
    if text == "queue" {
        return Some(Target::Queue);
    }
    let (name, model) = match text.split_once(':') {
        Some((name, model)) => (name, Some(model)),
        None => (text, None),
    };
    let Some(provider) = providers.iter().find(|p| p.name == name) else {
        problems.add(
            key,
            text,
            &format!("names no provider (known: {})", known(providers)),
        );
        return None;
    };
    let model = match model {
        None => ModelChoice::Requested,
        Some("") => {
            problems.add(key, text, "has an empty model after ':'");
            return None;
        }
        Some(m) => match provider.tiers.get(m) {
            Some(id) => ModelChoice::Tier {
                tier: m.to_owned(),
                model: id.clone(),
            },
            None => ModelChoice::Model(m.to_owned()),
        },
    };
    Some(Target::Provider {
        provider: name.to_owned(),
        model,
    })
}

fn known(providers: &[ProviderConfig]) -> String {
    let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
