//! The router: complexity x quota state -> an ordered chain of targets.
//!
//! The matrix cell for the current state, then `[routing.fallback]`; targets that cannot
//! take the request (breaker open, context too small, no key) are filtered out with the
//! reason. Predictive step-down routes as if one state higher when the quota is projected
//! to run out before its reset. Modes switch it all at run time.
//!
//! Imports: `config`, `classify`, `providers` (health, breakers), `quota` (the snapshot),
//! `types`; decides only — it sends nothing.

mod mode;
mod outcomes;

use serde::Serialize;

pub use mode::{Mode, ModeSwitch};
pub use outcomes::{Demotion, Flaw, Outcome, OutcomeRow, Outcomes};

use crate::classify::Classification;
use crate::config::{Config, Credentials, ModelChoice, ProviderConfig, ProviderKind, Target};
use crate::models::{Family, Model};
use crate::providers::claude::Catalog;
use crate::providers::{Breaker, HealthBoard};
use crate::quota::QuotaSnapshot;
pub use crate::types::ClaudeOnly;
use crate::types::{Complexity, QuotaLevel, QuotaState};

/// Where a tool call came from: the target, and the provider and model that answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Issuer {
    pub target: String,
    pub provider: String,
    pub model: String,
}

/// How a Claude target left out for a 429 that holds begins its reason.
pub const RATE_LIMITED: &str = "Claude refused every model (429)";

/// One target to try, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The target as written in the config, e.g. `claude:opus`.
    pub target: String,
    /// `None` for the `queue` target.
    pub provider: Option<String>,
    /// The model to ask for (`auto` is resolved by the provider).
    pub model: String,
    /// Its place among the targets the cell and the fallback list named, skipped ones
    /// included: what was passed over *before* it is what comes earlier.
    pub position: usize,
    /// A Claude model other than the client's, and why: "Opus 5.5 → Sonnet 5.5: Opus
    /// week cap reached, resets Tue 14:00".
    pub model_change: Option<String>,
}

impl Candidate {
    pub fn is_queue(&self) -> bool {
        self.provider.is_none()
    }
}

/// A target left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub target: String,
    pub why: String,
    /// Its place among the targets named (see [`Candidate::position`]).
    pub position: usize,
}

/// What the router decided for one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub mode: Mode,
    pub complexity: Complexity,
    pub classification: String,
    pub quota_state: QuotaState,
    /// The matrix row used (one above the state with predictive step-down).
    pub level: QuotaLevel,
    pub chain: Vec<Candidate>,
    pub skipped: Vec<Skipped>,
    /// The whole decision in words.
    pub reason: String,
}

/// What the request needs of a target.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    pub input_tokens: u64,
    /// The request offers tools (the target must be able to call them).
    pub tools: bool,
    /// The request carries images.
    pub images: bool,
    /// Only Anthropic can do what it asks (see [`ClaudeOnly`]).
    pub claude_only: Option<ClaudeOnly>,
}

/// The state of things a decision depends on, besides the request.
#[derive(Clone, Copy)]
pub struct Situation<'a> {
    pub mode: Mode,
    pub quota: &'a QuotaSnapshot,
    pub health: &'a HealthBoard,
    pub outcomes: &'a Outcomes,
    /// The models Anthropic serves now.
    pub models: &'a Catalog,
    /// A tool loop: the target that issued the tool calls this request answers.
    pub continues_on: Option<&'a Issuer>,
}

pub fn plan(
    config: &Config,
    situation: Situation<'_>,
    classification: &Classification,
    requested_model: Option<&str>,
    needs: Needs,
) -> Decision {
    let Situation {
        mode,
        quota,
        health,
        outcomes,
        models,
        continues_on,
    } = situation;
    let requested = requested_model.unwrap_or("");
    let mut level = quota.state.level();
    let mut notes = vec![format!(
        "{} ({})",
        classification.complexity.name(),
        classification.reason
    )];
    let targets: Vec<Target> = match mode {
        Mode::Auto => {
            if config.routing.predictive
                && quota.exhausts_before_reset
                && level < QuotaLevel::Critical
            {
                level = level.up();
                notes.push(format!(
                    "quota {} but projected to run out before its reset: routed as {}",
                    quota.state.name(),
                    level.name()
                ));
            } else {
                notes.push(format!("quota {}", quota.state.name()));
            }
            let mut targets = config
                .routing
                .matrix
                .cell(level, classification.complexity)
                .to_vec();
            for target in &config.routing.fallback {
                if !targets.contains(target) {
                    targets.push(target.clone());
                }
            }
            targets
        }
        Mode::ClaudeOnly | Mode::Paused => {
            notes.push(format!("mode {}", mode.name()));
            claude_provider(config)
                .map(|p| Target::Provider {
                    provider: p.name.clone(),
                    model: ModelChoice::Requested,
                })
                .into_iter()
                .collect()
        }
        Mode::LocalOnly => {
            notes.push("mode local-only".to_owned());
            config
                .providers
                .iter()
                .filter(|p| is_local(p))
                .map(|p| Target::Provider {
                    provider: p.name.clone(),
                    model: ModelChoice::Requested,
                })
                .collect()
        }
    };

    // A tool loop continues on the target that issued its tool calls, as long as that
    // target can take it: switching mid-loop costs both prompt caches and hands the
    // tool results to a model that did not ask for them.
    let targets = match continues_on.filter(|_| mode == Mode::Auto) {
        Some(issuer) => {
            notes.push(format!("tool loop: continues on {}", issuer.target));
            let (first, rest): (Vec<Target>, Vec<Target>) = targets
                .into_iter()
                .partition(|t| t.to_string() == issuer.target);
            let first = first
                .into_iter()
                .next()
                .unwrap_or_else(|| issuer_target(config, issuer));
            std::iter::once(first).chain(rest).collect()
        }
        None => targets,
    };
    let targets = match needs.claude_only {
        Some(why) if mode == Mode::Auto => {
            notes.push(format!("Claude's alone: {}", why.describe()));
            claude_first(
                config,
                targets,
                requested,
                classification.complexity,
                level > QuotaLevel::Normal,
            )
        }
        _ => targets,
    };
    // The quota forces a step-down (the row is not the normal one, or the client's model
    // family is capped): a tier then means its own family even for a client that asked
    // for a higher one.
    let forced = level > QuotaLevel::Normal || quota.cap_for(requested).is_some();
    let now = chrono::Utc::now();
    let mut chain = Vec::new();
    let mut skipped = Vec::new();
    for (position, target) in targets.into_iter().enumerate() {
        let label = target.to_string();
        match &target {
            Target::Queue => chain.push(Candidate {
                target: label,
                provider: None,
                model: String::new(),
                position,
                model_change: None,
            }),
            Target::Provider { provider, model } => {
                let Some(p) = config.provider(provider) else {
                    continue;
                };
                if let Some(why) = unfit(p, needs, health) {
                    skipped.push(Skipped {
                        target: label,
                        why,
                        position,
                    });
                    continue;
                }
                let model = model_for(p, model, requested, forced, models);
                // A model family whose own cap is used up: the next target (Sonnet after
                // Opus, say) takes the request until the cap's reset.
                if let Some(cap) = p.is_claude().then(|| quota.cap_for(&model)).flatten() {
                    skipped.push(Skipped {
                        target: label,
                        why: cap.reason.clone(),
                        position,
                    });
                    continue;
                }
                // Anthropic refused every model until a reset: asking again before it
                // only brings another 429.
                if let Some(until) = quota
                    .rate_limited_until
                    .filter(|until| p.is_claude() && mode == Mode::Auto && *until > now)
                {
                    skipped.push(Skipped {
                        target: label,
                        why: format!(
                            "{RATE_LIMITED} until {}",
                            crate::quota::tracker::clock(until)
                        ),
                        position,
                    });
                    continue;
                }
                let model_change = (p.is_claude() && !requested.is_empty() && model != requested)
                    .then(|| {
                        let why = match quota.cap_for(requested) {
                            Some(cap) => cap.reason.clone(),
                            None if forced => format!(
                                "quota {}: {} work goes to {label}",
                                quota.state.name(),
                                classification.complexity.name()
                            ),
                            None => {
                                format!("{} work goes to {label}", classification.complexity.name())
                            }
                        };
                        format!(
                            "{} → {}: {why}",
                            crate::models::display_name(requested),
                            crate::models::display_name(&model)
                        )
                    });
                chain.push(Candidate {
                    target: label,
                    provider: Some(p.name.clone()),
                    model,
                    position,
                    model_change,
                });
            }
        }
    }
    // A target that keeps failing for this class goes last, still a last resort — unless
    // its breaker is half-open: then it goes first as the probe, or nothing would ever
    // find out that it recovered.
    let (demoted, mut kept): (Vec<Candidate>, Vec<Candidate>) = chain.into_iter().partition(|c| {
        c.provider.as_deref().is_some_and(|p| {
            outcomes
                .demoted(classification.complexity, p, now)
                .is_some()
                && health.report(p).breaker != Breaker::HalfOpen
        })
    });
    for candidate in &demoted {
        if let Some(why) = candidate
            .provider
            .as_deref()
            .and_then(|p| outcomes.demoted(classification.complexity, p, now))
        {
            notes.push(format!("{} {why}", candidate.target));
        }
    }
    kept.extend(demoted);
    let chain = kept;
    let route: Vec<&str> = chain.iter().map(|c| c.target.as_str()).collect();
    notes.push(format!(
        "-> {}",
        if route.is_empty() {
            "nothing".to_owned()
        } else {
            route.join(", ")
        }
    ));
    Decision {
        mode,
        complexity: classification.complexity,
        classification: classification.reason.clone(),
        quota_state: quota.state,
        level,
        chain,
        skipped,
        reason: notes.join("; "),
    }
}

/// The provider that is Anthropic's API (the client's credentials go there).
pub fn claude_provider(config: &Config) -> Option<&ProviderConfig> {
    let anthropic = || {
        config
            .providers
            .iter()
            .filter(|p| p.kind == ProviderKind::Anthropic)
    };
    anthropic()
        .find(|p| p.is_claude())
        .or_else(|| anthropic().next())
}

/// A model served on this machine (LM Studio, Ollama, llama.cpp): a loopback provider that
/// is not standing in for Anthropic's API.
pub fn is_local(provider: &ProviderConfig) -> bool {
    !provider.is_claude()
        && provider
            .base_url
            .host_str()
            .is_some_and(crate::config::is_loopback_host)
}

/// The target an issuer's label names (`claude:sonnet`, `lmstudio`), as the config would
/// have written it: its tier, the provider alone, or else the exact model it used.
fn issuer_target(config: &Config, issuer: &Issuer) -> Target {
    let provider = issuer.provider.clone();
    let model = match issuer.target.split_once(':') {
        Some((_, tier))
            if config
                .provider(&provider)
                .is_some_and(|p| p.tiers.contains_key(tier)) =>
        {
            ModelChoice::Tier {
                tier: tier.to_owned(),
                model: issuer.model.clone(),
            }
        }
        None if issuer.target == provider => ModelChoice::Requested,
        _ => ModelChoice::Model(issuer.model.clone()),
    };
    Target::Provider { provider, model }
}

/// A Claude-only request's targets: Claude first, and the cell's other targets after, to
/// answer without what only Claude can do should Claude be out of reach. The Claude
/// targets are the cell's own if it has any (a caution row's Sonnet still saves quota);
/// else, while the quota is fine, the client's model and each tier below it (a step-down
/// should a family be capped); and when the quota forces a step-down, the tier the work
/// needs first — Haiku for simple work, Sonnet for medium, the client's model for
/// complex — then the others below the client's model, so auto mode and web search keep
/// working without spending the scarce quota on Opus.
fn claude_first(
    config: &Config,
    targets: Vec<Target>,
    requested: &str,
    complexity: Complexity,
    forced: bool,
) -> Vec<Target> {
    let Some(claude) = claude_provider(config) else {
        return targets;
    };
    let is_claude =
        |t: &Target| matches!(t, Target::Provider { provider, .. } if *provider == claude.name);
    if targets.iter().any(is_claude) {
        let (mut first, rest): (Vec<Target>, Vec<Target>) =
            targets.into_iter().partition(is_claude);
        first.extend(rest);
        return first;
    }
    let asked = Model::parse(requested).map(|m| m.family);
    let tier = |family: Family| {
        claude
            .tiers
            .iter()
            .find(|(name, _)| Family::of(name) == Some(family))
            .map(|(name, model)| Target::Provider {
                provider: claude.name.clone(),
                model: ModelChoice::Tier {
                    tier: name.clone(),
                    model: model.clone(),
                },
            })
    };
    let own = Target::Provider {
        provider: claude.name.clone(),
        model: ModelChoice::Requested,
    };
    let below: Vec<Target> = Family::ALL
        .into_iter()
        .rev()
        .filter(|family| asked.is_none_or(|a| *family < a))
        .filter_map(tier)
        .collect();
    let needed = match complexity {
        Complexity::Simple => Some(Family::Haiku),
        Complexity::Medium => Some(Family::Sonnet),
        Complexity::Complex => None,
    }
    .filter(|family| forced && asked.is_some_and(|a| *family < a))
    .and_then(tier);
    let mut first: Vec<Target> = Vec::new();
    match needed {
        Some(needed) => {
            first.push(needed.clone());
            first.extend(below.into_iter().filter(|t| *t != needed));
            first.push(own);
        }
        None => {
            first.push(own);
            first.extend(below);
        }
    }
    first.extend(targets);
    first
}

/// The model a target asks for. A Claude tier (`claude:sonnet`) is the client's own
/// model when it is of that family; the client's model too when it ranks above the tier
/// and the quota does not force a step-down (`forced`): the user's model is the user's.
/// Otherwise the newest of the family Anthropic lists, else the tier's configured id.
fn model_for(
    provider: &ProviderConfig,
    choice: &ModelChoice,
    requested: &str,
    forced: bool,
    models: &Catalog,
) -> String {
    match choice {
        ModelChoice::Tier { tier, model } if provider.is_claude() => {
            let Some(family) = Family::of(tier).or_else(|| Family::of(model)) else {
                return model.clone();
            };
            let asked = Model::parse(requested).map(|m| m.family);
            if asked == Some(family) || (!forced && asked.is_some_and(|a| a > family)) {
                return requested.to_owned();
            }
            models.newest(family).unwrap_or_else(|| model.clone())
        }
        ModelChoice::Tier { model, .. } => model.clone(),
        ModelChoice::Model(model) => model.clone(),
        ModelChoice::Requested => match provider.kind {
            // The client's Claude model means nothing to another API: use the provider's.
            ProviderKind::OpenAi => provider
                .model
                .clone()
                .unwrap_or_else(|| requested.to_owned()),
            ProviderKind::Anthropic if provider.is_claude() => requested.to_owned(),
            ProviderKind::Anthropic => provider
                .model
                .clone()
                .unwrap_or_else(|| requested.to_owned()),
        },
    }
}

/// Why `provider` cannot take the request now, if it cannot.
fn unfit(provider: &ProviderConfig, needs: Needs, health: &HealthBoard) -> Option<String> {
    let report = health.report(&provider.name);
    if report.breaker == Breaker::Open {
        return Some(format!(
            "circuit open ({})",
            report.last_error.as_deref().unwrap_or("repeated failures")
        ));
    }
    if let Credentials::Env { var, key: None } = &provider.credentials {
        return Some(format!("no API key (set {var})"));
    }
    if let Some(error) = &report.check_failed {
        return Some(format!("down (health check: {error})"));
    }
    if needs.tools && !provider.supports_tools {
        return Some("cannot call tools (supports_tools = false)".to_owned());
    }
    if needs.tools {
        if let Some(q) = &report.qualification {
            if q.verdict != crate::providers::qualify::Verdict::Agentic {
                return Some(format!(
                    "qualified {}, not for tools: {}",
                    q.verdict_words(),
                    q.reason
                ));
            }
        }
    }
    if needs.images && !provider.supports_images {
        return Some("cannot read images (supports_images = false)".to_owned());
    }
    // A model the proxy loads will have `load_context`, whatever is loaded now.
    let window = provider
        .context_window
        .or(provider.load_context)
        .or_else(|| report.info.and_then(|i| i.context_window));
    if let Some(window) = window {
        if needs.input_tokens >= u64::from(window) {
            return Some(format!(
                "~{} input tokens do not fit its {window}-token context",
                needs.input_tokens
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests;
