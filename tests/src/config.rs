//! Configs for the tests, built from typed values (the core's own raw config structs)
//! and written as TOML: one builder instead of TOML templates patched by string.

use std::collections::BTreeMap;
use std::path::Path;

use pai_core::config::raw::{RawConfig, RawProvider, RawQueue, RawQuota, RawRouting, RawServer};
use pai_core::config::ProviderKind;

/// A config under construction. Starts on loopback with a random port, polling off, the
/// state file in the test's dir, one attempt per target (no retries unless a test asks).
pub struct ConfigBuilder {
    raw: RawConfig,
}

/// The tiers Claude Code's models map to.
pub fn claude_tiers() -> BTreeMap<String, String> {
    [
        ("haiku", "claude-haiku-4-5-20251001"),
        ("sonnet", "claude-sonnet-5"),
        ("opus", "claude-opus-4-8"),
    ]
    .into_iter()
    .map(|(tier, model)| (tier.to_owned(), model.to_owned()))
    .collect()
}

/// A matrix row: the targets for simple, medium and complex work.
pub type Row<'a> = [&'a [&'a str]; 3];

impl ConfigBuilder {
    pub fn new(dir: &Path) -> ConfigBuilder {
        let raw = RawConfig {
            server: RawServer {
                listen: Some("127.0.0.1:0".to_owned()),
                ..RawServer::default()
            },
            quota: RawQuota {
                poll_url: Some(String::new()),
                state_file: Some(dir.join("quota-state.json").display().to_string()),
                ..RawQuota::default()
            },
            providers: Some(Vec::new()),
            queue: RawQueue {
                retry_attempts: Some(1),
                ..RawQueue::default()
            },
            routing: RawRouting {
                fallback: Some(Vec::new()),
                ..RawRouting::default()
            },
            ..RawConfig::default()
        };
        ConfigBuilder { raw }
    }

    /// One Anthropic provider, `claude`, passing the client's credentials (as Anthropic's
    /// own API does), with Claude's tiers, and the seed's matrix for it alone.
    pub fn claude_only(upstream: &str, dir: &Path) -> ConfigBuilder {
        ConfigBuilder::new(dir).claude(upstream).matrix(&[
            (
                "normal",
                [&["claude:haiku"], &["claude:sonnet"], &["claude:opus"]],
            ),
            (
                "caution",
                [&["claude"], &["claude:sonnet"], &["claude:sonnet"]],
            ),
            ("warning", [&["claude"], &["claude"], &["claude"]]),
            ("critical", [&["claude"], &["claude"], &["queue", "claude"]]),
        ])
    }

    /// `claude` (Anthropic), `local` (an OpenAI-compatible server on loopback, as LM Studio)
    /// and `fallback` (OpenAI-compatible, its own key from `PAI_TEST_FALLBACK_KEY`), routed
    /// by the seed's matrix with `local` as LM Studio.
    pub fn seed(anthropic: &str, local: &str, fallback: &str, dir: &Path) -> ConfigBuilder {
        ConfigBuilder::new(dir)
            .claude(anthropic)
            .openai("local", &format!("{local}/v1"), |p| {
                p.model = Some("local-model".to_owned());
                p.context_window = Some(200_000);
            })
            .openai("fallback", &format!("{fallback}/v1"), |p| {
                p.model = Some("fallback-model".to_owned());
                p.api_key_env = Some("PAI_TEST_FALLBACK_KEY".to_owned());
            })
            .queue(|q| q.max_wait_secs = Some(2))
            .routing(|r| {
                r.fallback = Some(vec!["fallback".to_owned()]);
                r.breaker_failures = Some(2);
                r.breaker_cooldown_secs = Some(1);
            })
            .matrix(&[
                (
                    "normal",
                    [
                        &["claude:haiku"],
                        &["claude:sonnet"],
                        &["claude:opus", "claude:sonnet"],
                    ],
                ),
                (
                    "caution",
                    [&["local"], &["claude:sonnet"], &["claude:sonnet"]],
                ),
                ("warning", [&["local"], &["local"], &["local"]]),
                ("critical", [&["local"], &["local"], &["queue", "local"]]),
            ])
    }

    /// Adds the Anthropic provider `claude` at `base_url`.
    pub fn claude(self, base_url: &str) -> ConfigBuilder {
        self.anthropic("claude", base_url, |p| {
            p.pass_client_credentials = Some(true);
            p.tiers = claude_tiers();
            // The mocks answer the Messages API; a test that wants the model list asks.
            p.discover_models = Some(false);
        })
    }

    pub fn anthropic(
        self,
        name: &str,
        base_url: &str,
        edit: impl FnOnce(&mut RawProvider),
    ) -> ConfigBuilder {
        self.provider(name, ProviderKind::Anthropic, base_url, edit)
    }

    pub fn openai(
        self,
        name: &str,
        base_url: &str,
        edit: impl FnOnce(&mut RawProvider),
    ) -> ConfigBuilder {
        self.provider(name, ProviderKind::OpenAi, base_url, edit)
    }

    fn provider(
        mut self,
        name: &str,
        kind: ProviderKind,
        base_url: &str,
        edit: impl FnOnce(&mut RawProvider),
    ) -> ConfigBuilder {
        let mut provider = RawProvider::new(name, kind, base_url);
        edit(&mut provider);
        self.providers().push(provider);
        self
    }

    fn providers(&mut self) -> &mut Vec<RawProvider> {
        self.raw.providers.get_or_insert_with(Vec::new)
    }

    /// Changes the provider called `name` (of either kind) as JSON, e.g.
    /// `{"idle_timeout_secs": 1}`.
    pub fn provider_set(mut self, name: &str, fields: serde_json::Value) -> ConfigBuilder {
        for provider in self.providers() {
            if provider.name != name {
                continue;
            }
            let mut value = serde_json::to_value(&*provider).unwrap();
            for (key, field) in fields.as_object().unwrap() {
                value[key] = field.clone();
            }
            *provider = serde_json::from_value(value).unwrap();
        }
        self
    }

    /// The decision matrix, row by row.
    pub fn matrix(mut self, rows: &[(&str, Row<'_>)]) -> ConfigBuilder {
        let matrix = rows
            .iter()
            .map(|(state, cells)| {
                let row = ["simple", "medium", "complex"]
                    .iter()
                    .zip(cells.iter())
                    .map(|(class, targets)| {
                        let targets = targets.iter().map(|t| (*t).to_owned()).collect();
                        ((*class).to_owned(), targets)
                    })
                    .collect();
                ((*state).to_owned(), row)
            })
            .collect();
        self.raw.routing.matrix = Some(matrix);
        self
    }

    /// Every cell of the matrix the same `targets`.
    pub fn everywhere(self, targets: &[&str]) -> ConfigBuilder {
        self.matrix(&[
            ("normal", [targets, targets, targets]),
            ("caution", [targets, targets, targets]),
            ("warning", [targets, targets, targets]),
            ("critical", [targets, targets, targets]),
        ])
    }

    pub fn fallback(mut self, targets: &[&str]) -> ConfigBuilder {
        self.raw.routing.fallback = Some(targets.iter().map(|t| (*t).to_owned()).collect());
        self
    }

    /// Polls `{dashboard}/api/quota` every second (the percent at `/usage_percent`, the
    /// window's reset, when it says, at `/resets_at`).
    pub fn dashboard(self, dashboard: &str) -> ConfigBuilder {
        let url = format!("{dashboard}/api/quota");
        self.quota(|q| {
            q.poll_url = Some(url);
            q.poll_interval_secs = Some(1);
            q.reset_pointer = Some("/resets_at".to_owned());
        })
    }

    pub fn server(mut self, edit: impl FnOnce(&mut RawServer)) -> ConfigBuilder {
        edit(&mut self.raw.server);
        self
    }

    pub fn quota(mut self, edit: impl FnOnce(&mut RawQuota)) -> ConfigBuilder {
        edit(&mut self.raw.quota);
        self
    }

    pub fn queue(mut self, edit: impl FnOnce(&mut RawQueue)) -> ConfigBuilder {
        edit(&mut self.raw.queue);
        self
    }

    pub fn routing(mut self, edit: impl FnOnce(&mut RawRouting)) -> ConfigBuilder {
        edit(&mut self.raw.routing);
        self
    }

    /// Anything else, on the raw config itself.
    pub fn raw(mut self, edit: impl FnOnce(&mut RawConfig)) -> ConfigBuilder {
        edit(&mut self.raw);
        self
    }

    pub fn toml(&self) -> String {
        toml::to_string(&self.raw).unwrap()
    }

    /// Writes `dir/config.toml`; returns its path.
    pub fn write(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join("config.toml");
        std::fs::write(&path, self.toml()).unwrap();
        path
    }
}
