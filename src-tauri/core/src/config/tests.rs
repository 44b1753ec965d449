use super::*;
use secrecy::ExposeSecret;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_with_env(text, &no_env)
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Err(ConfigError::Invalid(p)) => p.iter().map(Problem::to_string).collect(),
        other => panic!("expected validation problems, got {other:?}"),
    }
}

#[test]
fn default_file_is_valid_and_matches_the_design() {
    let config = parse(DEFAULT_TOML).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8766");
    assert_eq!(config.providers.len(), 3);
    let claude = config.provider("claude").unwrap();
    assert!(matches!(claude.credentials, Credentials::PassThrough));
    let grok = config.provider("grok").unwrap();
    assert!(
        matches!(&grok.credentials, Credentials::Env { var, key: None } if var == "XAI_API_KEY"),
        "{:?}",
        grok.credentials
    );
    let cell = config
        .routing
        .matrix
        .cell(QuotaLevel::Normal, Complexity::Simple);
    assert_eq!(
        cell,
        &[Target::Provider {
            provider: "claude".into(),
            model: ModelChoice::Tier {
                tier: "haiku".into(),
                model: "claude-haiku-5-5".into()
            }
        }]
    );
    let critical = config
        .routing
        .matrix
        .cell(QuotaLevel::Critical, Complexity::Complex);
    assert_eq!(critical[0], Target::Queue);
    assert_eq!(critical[1].to_string(), "lmstudio");
    assert_eq!(config.routing.fallback[0].to_string(), "grok");
    assert_eq!(config.quota.thresholds.critical, 90.0);
}

#[test]
fn an_empty_file_takes_every_default() {
    let config = parse("").unwrap();
    assert_eq!(config.providers.len(), 3);
    assert_eq!(config.quota.poll_interval, Duration::from_secs(60));
    assert!(config
        .quota
        .state_file
        .ends_with(".claude/BUDGET/quota-state.json"));
}

#[test]
fn a_bad_url_names_the_key_and_value() {
    let text = r#"
[[providers]]
name = "claude"
kind = "anthropic"
base_url = "https://api.anthropic.com"

[[providers]]
name = "x"
kind = "openai"
base_url = "htp:/x"

[routing]
fallback = []
[routing.matrix]
normal   = { simple = ["claude"], medium = ["claude"], complex = ["claude"] }
caution  = { simple = ["claude"], medium = ["claude"], complex = ["claude"] }
warning  = { simple = ["claude"], medium = ["claude"], complex = ["claude"] }
critical = { simple = ["claude"], medium = ["claude"], complex = ["claude"] }
"#;
    assert_eq!(
        problems(text),
        vec![r#"providers[1].base_url: "htp:/x" is not an http(s) URL"#]
    );
}

#[test]
fn unknown_provider_in_the_matrix_is_an_error() {
    let text = DEFAULT_TOML.replace(
        r#"simple = ["lmstudio"], medium = ["claude:sonnet"]"#,
        r#"simple = ["ollama"], medium = ["claude:sonnet"]"#,
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(r#"routing.matrix.caution.simple[0]: "ollama" names no provider"#),
        "{found:?}"
    );
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let err = parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("lisen"), "{text}");
}

#[test]
fn listen_must_be_loopback() {
    let found = problems("[server]\nlisten = \"0.0.0.0:8766\"\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with(r#"server.listen: "0.0.0.0:8766" is not a loopback address"#));
    assert_eq!(
        parse("[server]\nlisten = \"localhost:9000\"\n")
            .unwrap()
            .server
            .listen
            .to_string(),
        "127.0.0.1:9000"
    );
    assert_eq!(
        parse("[server]\nlisten = \"[::1]:9000\"\n")
            .unwrap()
            .server
            .listen
            .to_string(),
        "[::1]:9000"
    );
}

#[test]
fn thresholds_must_rise() {
    let found = problems("[quota]\nthresholds = { caution = 80, warning = 75, critical = 90 }\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("caution < warning < critical"));
}

#[test]
fn secrets_come_from_the_environment_and_never_print() {
    let env = |var: &str| (var == "XAI_API_KEY").then(|| "xai-secret-123".to_owned());
    let config = Config::from_toml_with_env(DEFAULT_TOML, &env).unwrap();
    let grok = config.provider("grok").unwrap();
    match &grok.credentials {
        Credentials::Env { key: Some(key), .. } => {
            assert_eq!(key.expose_secret(), "xai-secret-123")
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{config:?}").contains("xai-secret-123"));
}

#[test]
fn a_local_anthropic_kind_provider_never_gets_client_credentials() {
    let text = DEFAULT_TOML.replace(
        "[[providers]]\nname = \"lmstudio\"\nkind = \"openai\"\nbase_url = \"http://localhost:1234/v1\"",
        "[[providers]]\nname = \"lmstudio\"\nkind = \"anthropic\"\nbase_url = \"http://localhost:1234\"",
    );
    let config = parse(&text).unwrap();
    let lmstudio = config.provider("lmstudio").unwrap();
    assert_eq!(lmstudio.kind, ProviderKind::Anthropic);
    assert!(matches!(lmstudio.credentials, Credentials::None));
}

#[test]
fn duplicate_provider_names_are_rejected() {
    let text = format!(
        "{DEFAULT_TOML}\n[[providers]]\nname = \"grok\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\n"
    );
    // The appended provider lands after [routing]; TOML puts it in the providers array.
    let found = problems(&text);
    assert!(
        found
            .iter()
            .any(|p| p
                .starts_with(r#"providers[3].name: "grok" is already the name of providers[2]"#)),
        "{found:?}"
    );
}

#[test]
fn load_or_create_writes_the_commented_defaults_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/config.toml");
    Config::load_or_create(&path).unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(written, DEFAULT_TOML);
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:9999\"\n").unwrap();
    let config = Config::load_or_create(&path).unwrap();
    assert_eq!(config.server.listen.port(), 9999);
}

#[test]
fn the_usage_endpoint_only_goes_to_anthropic_or_loopback() {
    let found =
        problems("[quota]\nusage_api = true\nusage_api_url = \"https://evil.example/usage\"\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(
        r#"quota.usage_api_url: "https://evil.example/usage" must be https://api.anthropic.com"#
    ));
    let config = parse("[quota]\nusage_api = true\n").unwrap();
    let usage = config.quota.usage_api.unwrap();
    assert_eq!(
        usage.url.as_str(),
        "https://api.anthropic.com/api/oauth/usage"
    );
    assert_eq!(usage.interval, Duration::from_secs(300));
    assert!(parse("[quota]\nusage_api = true\nusage_api_interval_secs = 60\n").is_err());
    assert!(parse("").unwrap().quota.usage_api.is_none());
}
