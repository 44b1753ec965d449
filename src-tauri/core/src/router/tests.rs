//! The seed's decision matrix, every state x class, with filters, modes and step-down.

use super::*;
use crate::classify::Classification;
use crate::config::DEFAULT_TOML;
use crate::providers::HealthBoard;
use crate::quota::QuotaSnapshot;

fn config_with_grok_key() -> Config {
    Config::from_toml_with_env(DEFAULT_TOML, &|var| {
        (var == "XAI_API_KEY").then(|| "k".to_owned())
    })
    .unwrap()
}

fn classified(complexity: Complexity) -> Classification {
    Classification {
        complexity,
        score: 0.0,
        reason: "test".into(),
    }
}

fn quota(state: QuotaState) -> QuotaSnapshot {
    QuotaSnapshot {
        state,
        ..QuotaSnapshot::default()
    }
}

fn chain(config: &Config, state: QuotaState, complexity: Complexity) -> Vec<String> {
    let decision = plan(
        config,
        Situation {
            mode: Mode::Auto,
            quota: &quota(state),
            health: &HealthBoard::default(),
            outcomes: &Outcomes::default(),
            models: &Catalog::default(),
            continues_on: None,
        },
        &classified(complexity),
        Some("claude-opus-5-5"),
        Needs::default(),
    );
    decision
        .chain
        .iter()
        .map(|c| format!("{}={}", c.target, c.model))
        .collect()
}

#[test]
fn the_seed_matrix_holds_for_every_state_and_class() {
    let config = config_with_grok_key();
    use Complexity::*;
    use QuotaState::*;
    // The session runs on Opus 5.5 (Claude Code's default). While the quota is fine its
    // model is kept whatever the cell's tier; once the quota forces a step-down, the tier
    // is its own family.
    let table: &[(QuotaState, Complexity, &[&str])] = &[
        (
            Unknown,
            Simple,
            &["claude:haiku=claude-opus-5-5", "grok=grok-4"],
        ),
        (
            Normal,
            Simple,
            &["claude:haiku=claude-opus-5-5", "grok=grok-4"],
        ),
        (
            Normal,
            Medium,
            &["claude:sonnet=claude-opus-5-5", "grok=grok-4"],
        ),
        (
            Normal,
            Complex,
            &[
                "claude:opus=claude-opus-5-5",
                "claude:sonnet=claude-opus-5-5",
                "grok=grok-4",
            ],
        ),
        (Caution, Simple, &["lmstudio=auto", "grok=grok-4"]),
        (
            Caution,
            Medium,
            &["claude:sonnet=claude-sonnet-5-5", "grok=grok-4"],
        ),
        (
            Caution,
            Complex,
            &["claude:sonnet=claude-sonnet-5-5", "grok=grok-4"],
        ),
        (Warning, Simple, &["lmstudio=auto", "grok=grok-4"]),
        (Warning, Medium, &["lmstudio=auto", "grok=grok-4"]),
        (Warning, Complex, &["lmstudio=auto", "grok=grok-4"]),
        (Critical, Simple, &["lmstudio=auto", "grok=grok-4"]),
        (Critical, Medium, &["lmstudio=auto", "grok=grok-4"]),
        (
            Critical,
            Complex,
            &["queue=", "lmstudio=auto", "grok=grok-4"],
        ),
    ];
    for (state, complexity, expected) in table {
        assert_eq!(
            chain(&config, *state, *complexity),
            expected.to_vec(),
            "{state:?} x {complexity:?}"
        );
    }
}

#[test]
fn a_fallback_without_its_key_is_skipped_with_the_reason() {
    let config = Config::from_toml_with_env(DEFAULT_TOML, &|_| None).unwrap();
    let decision = plan(
        &config,
        Situation {
            mode: Mode::Auto,
            quota: &quota(QuotaState::Warning),
            health: &HealthBoard::default(),
            outcomes: &Outcomes::default(),
            models: &Catalog::default(),
            continues_on: None,
        },
        &classified(Complexity::Medium),
        None,
        Needs::default(),
    );
    assert_eq!(decision.chain.len(), 1);
    assert_eq!(decision.skipped[0].target, "grok");
    assert_eq!(decision.skipped[0].why, "no API key (set XAI_API_KEY)");
}

#[test]
fn too_large_for_the_context_window_and_open_breakers_are_filtered() {
    let config = config_with_grok_key();
    let health = HealthBoard::default();
    for _ in 0..3 {
        health.mark_unhealthy("grok", "HTTP 500".into());
    }
    let decision = plan(
        &config,
        Situation {
            mode: Mode::Auto,
            quota: &quota(QuotaState::Warning),
            health: &health,
            outcomes: &Outcomes::default(),
            models: &Catalog::default(),
            continues_on: None,
        },
        &classified(Complexity::Simple),
        None,
        Needs {
            input_tokens: 40_000,
            ..Needs::default()
        },
    );
    assert!(decision.chain.is_empty(), "{:?}", decision.chain);
    assert_eq!(
        decision.skipped[0].why,
        "~40000 input tokens do not fit its 32768-token context"
    );
    assert!(decision.skipped[1]
        .why
        .starts_with("circuit open (HTTP 500)"));
}

#[test]
fn predictive_step_down_routes_one_state_higher() {
    let config = config_with_grok_key();
    let mut snapshot = quota(QuotaState::Normal);
    snapshot.exhausts_before_reset = true;
    let decision = plan(
        &config,
        Situation {
            mode: Mode::Auto,
            quota: &snapshot,
            health: &HealthBoard::default(),
            outcomes: &Outcomes::default(),
            models: &Catalog::default(),
            continues_on: None,
        },
        &classified(Complexity::Simple),
        None,
        Needs::default(),
    );
    assert_eq!(decision.level, QuotaLevel::Caution);
    assert_eq!(decision.chain[0].target, "lmstudio");
    assert!(decision
        .reason
        .contains("projected to run out before its reset"));
}

#[test]
fn modes() {
    let config = config_with_grok_key();
    let run = |mode| {
        plan(
            &config,
            Situation {
                mode,
                quota: &quota(QuotaState::Critical),
                health: &HealthBoard::default(),
                outcomes: &Outcomes::default(),
                models: &Catalog::default(),
                continues_on: None,
            },
            &classified(Complexity::Complex),
            Some("claude-opus-4-8"),
            Needs::default(),
        )
        .chain
        .iter()
        .map(|c| format!("{}={}", c.target, c.model))
        .collect::<Vec<_>>()
    };
    assert_eq!(run(Mode::ClaudeOnly), ["claude=claude-opus-4-8"]);
    assert_eq!(run(Mode::Paused), ["claude=claude-opus-4-8"]);
    assert_eq!(run(Mode::LocalOnly), ["lmstudio=auto"]);
}

#[test]
fn a_demoted_target_goes_last_with_the_reason() {
    let config = config_with_grok_key();
    let outcomes = Outcomes::default();
    for _ in 0..3 {
        outcomes.failure(
            Complexity::Medium,
            "claude",
            "HTTP 529".into(),
            chrono::Utc::now(),
        );
    }
    let decision = plan(
        &config,
        Situation {
            mode: Mode::Auto,
            quota: &quota(QuotaState::Normal),
            health: &HealthBoard::default(),
            outcomes: &outcomes,
            models: &Catalog::default(),
            continues_on: None,
        },
        &classified(Complexity::Medium),
        None,
        Needs::default(),
    );
    let order: Vec<&str> = decision.chain.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(order, ["grok", "claude:sonnet"]);
    assert!(
        decision
            .reason
            .contains("claude:sonnet demoted for medium work"),
        "{}",
        decision.reason
    );
}

#[test]
fn requests_with_tools_or_images_skip_targets_that_cannot_take_them() {
    let text = DEFAULT_TOML.replace(
        "model = \"auto\"\ncontext_window = 32768",
        "model = \"auto\"\ncontext_window = 32768\nsupports_tools = false\nsupports_images = false",
    );
    let config =
        Config::from_toml_with_env(&text, &|var| (var == "XAI_API_KEY").then(|| "k".to_owned()))
            .unwrap();
    let run = |needs: Needs| {
        plan(
            &config,
            Situation {
                mode: Mode::Auto,
                quota: &quota(QuotaState::Warning),
                health: &HealthBoard::default(),
                outcomes: &Outcomes::default(),
                models: &Catalog::default(),
                continues_on: None,
            },
            &classified(Complexity::Simple),
            None,
            needs,
        )
    };
    let with_tools = run(Needs {
        tools: true,
        ..Needs::default()
    });
    assert_eq!(with_tools.chain[0].target, "grok");
    assert_eq!(
        with_tools.skipped[0].why,
        "cannot call tools (supports_tools = false)"
    );
    let with_images = run(Needs {
        images: true,
        ..Needs::default()
    });
    assert_eq!(
        with_images.skipped[0].why,
        "cannot read images (supports_images = false)"
    );
    assert_eq!(run(Needs::default()).chain[0].target, "lmstudio");
}

#[test]
fn a_provider_whose_health_check_fails_is_skipped_until_it_answers() {
    let config = config_with_grok_key();
    let health = HealthBoard::default();
    health.check_failed("lmstudio", "Connection refused (os error 111)".into());
    let run = |health: &HealthBoard| {
        plan(
            &config,
            Situation {
                mode: Mode::Auto,
                quota: &quota(QuotaState::Warning),
                health,
                outcomes: &Outcomes::default(),
                models: &Catalog::default(),
                continues_on: None,
            },
            &classified(Complexity::Simple),
            None,
            Needs::default(),
        )
    };
    let decision = run(&health);
    assert_eq!(decision.chain[0].target, "grok");
    assert_eq!(
        decision.skipped[0].why,
        "down (health check: Connection refused (os error 111))"
    );
    health.set_info("lmstudio", crate::providers::ModelInfo::default());
    assert_eq!(run(&health).chain[0].target, "lmstudio");
}

#[test]
fn a_capped_model_family_is_skipped_and_the_next_claude_target_takes_the_work() {
    let config = config_with_grok_key();
    let quota = QuotaSnapshot {
        state: QuotaState::Normal,
        caps: vec![crate::quota::Cap {
            family: "opus".into(),
            label: "Opus week".into(),
            until: None,
            reason: "Opus week cap reached, resets Tue 14:00".into(),
        }],
        ..QuotaSnapshot::default()
    };
    let decision = plan(
        &config,
        Situation {
            mode: Mode::Auto,
            quota: &quota,
            health: &HealthBoard::default(),
            outcomes: &Outcomes::default(),
            models: &Catalog::default(),
            continues_on: None,
        },
        &classified(Complexity::Complex),
        Some("claude-opus-4-8"),
        Needs::default(),
    );
    let targets: Vec<&str> = decision.chain.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(targets, ["claude:sonnet", "grok"]);
    assert_eq!(decision.skipped[0].target, "claude:opus");
    assert_eq!(
        decision.skipped[0].why,
        "Opus week cap reached, resets Tue 14:00"
    );
    // Simple work (Haiku) is not touched by an Opus cap.
    let decision = plan(
        &config,
        Situation {
            mode: Mode::Auto,
            quota: &quota,
            health: &HealthBoard::default(),
            outcomes: &Outcomes::default(),
            models: &Catalog::default(),
            continues_on: None,
        },
        &classified(Complexity::Simple),
        Some("claude-haiku-4-5-20251001"),
        Needs::default(),
    );
    assert_eq!(decision.chain[0].target, "claude:haiku");
}

fn decide(
    requested: &str,
    state: QuotaState,
    complexity: Complexity,
    models: &Catalog,
    needs: Needs,
) -> Decision {
    plan(
        &config_with_grok_key(),
        Situation {
            mode: Mode::Auto,
            quota: &quota(state),
            health: &HealthBoard::default(),
            outcomes: &Outcomes::default(),
            models,
            continues_on: None,
        },
        &classified(complexity),
        Some(requested),
        needs,
    )
}

fn routed(decision: &Decision) -> Vec<String> {
    decision
        .chain
        .iter()
        .map(|c| format!("{}={}", c.target, c.model))
        .collect()
}

#[test]
fn the_users_model_is_kept_and_tiers_are_the_newest_anthropic_lists() {
    let none = Catalog::default();
    // Fable ranks above the Opus tier: kept in the normal state.
    let fable = decide(
        "claude-fable-5-2",
        QuotaState::Normal,
        Complexity::Complex,
        &none,
        Needs::default(),
    );
    assert_eq!(routed(&fable)[0], "claude:opus=claude-fable-5-2");
    // A Haiku session's complex work goes up to the Opus tier: the default generation.
    let haiku = decide(
        "claude-haiku-5-5",
        QuotaState::Normal,
        Complexity::Complex,
        &none,
        Needs::default(),
    );
    assert_eq!(routed(&haiku)[0], "claude:opus=claude-opus-5-5");
    // Anthropic lists a newer Sonnet: the tier follows it.
    let listed = Catalog::default();
    listed
        .accept(br#"{"data":[{"id":"claude-sonnet-5-7"},{"id":"claude-sonnet-5-5"},{"id":"claude-opus-5-5"}]}"#, chrono::Utc::now())
        .unwrap();
    let caution = decide(
        "claude-opus-5-5",
        QuotaState::Caution,
        Complexity::Medium,
        &listed,
        Needs::default(),
    );
    assert_eq!(routed(&caution)[0], "claude:sonnet=claude-sonnet-5-7");
}

#[test]
fn claude_only_requests_stay_on_claude_while_ordinary_work_follows_the_matrix() {
    let none = Catalog::default();
    let web_search = Needs {
        claude_only: Some(ClaudeOnly::ServerTool),
        ..Needs::default()
    };
    for state in [
        QuotaState::Caution,
        QuotaState::Warning,
        QuotaState::Critical,
    ] {
        let decision = decide(
            "claude-opus-5-5",
            state,
            Complexity::Simple,
            &none,
            web_search,
        );
        let chain = routed(&decision);
        assert!(chain[0].starts_with("claude"), "{state:?}: {chain:?}");
        assert!(
            chain.iter().any(|t| t.starts_with("lmstudio")),
            "local stays a last resort: {chain:?}"
        );
        let ordinary = decide(
            "claude-opus-5-5",
            state,
            Complexity::Simple,
            &none,
            Needs::default(),
        );
        assert_eq!(routed(&ordinary)[0], "lmstudio=auto", "{state:?}");
    }
    // Warning: no Claude in the cell, so the tier the work needs first, then the others
    // below the client's model, then its own.
    let warning = decide(
        "claude-opus-5-5",
        QuotaState::Warning,
        Complexity::Medium,
        &none,
        web_search,
    );
    assert_eq!(
        routed(&warning)[..3],
        [
            "claude:sonnet=claude-sonnet-5-5",
            "claude:haiku=claude-haiku-5-5",
            "claude=claude-opus-5-5"
        ]
    );
    let complex = decide(
        "claude-opus-5-5",
        QuotaState::Critical,
        Complexity::Complex,
        &none,
        web_search,
    );
    assert_eq!(routed(&complex)[0], "claude=claude-opus-5-5");
    // Caution: the cell's own Claude target (Sonnet) comes first.
    let caution = decide(
        "claude-opus-5-5",
        QuotaState::Caution,
        Complexity::Medium,
        &none,
        web_search,
    );
    assert_eq!(routed(&caution)[0], "claude:sonnet=claude-sonnet-5-5");
}
