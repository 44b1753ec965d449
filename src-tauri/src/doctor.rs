//! `pai-orchestrator doctor`: whether everything the product needs is in place, in plain
//! words, with the fix for each thing that is not — the proxy runs, Claude Code points at
//! it (and shows the quota), each local model server answers with a model that has room
//! for Claude Code, the fallback keys are set, the dashboard answers, it starts at login.
//!
//! It asks; it changes nothing. Every question has a short bound. Uses `status`,
//! `connect` and `service` to read what they write, and the core's providers to ask.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use pai_core::config::{Config, Credentials, ProviderConfig};
use pai_core::providers::{AnyProvider, HealthBoard, ModelInfo, Provider};

/// Claude Code's system prompt and tools alone are ~20k tokens; less context than this
/// cannot hold a first turn and an answer.
const CLAUDE_CODE_CONTEXT: u32 = 32_768;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Works, but less than it could.
    Warn,
    /// Something the user relies on does not work.
    Fail,
}

#[derive(Debug)]
pub struct Finding {
    pub verdict: Verdict,
    pub what: String,
    pub fix: Option<String>,
}

impl Finding {
    fn ok(what: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Ok,
            what: what.into(),
            fix: None,
        }
    }

    fn warn(what: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Warn,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            verdict: Verdict::Fail,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Where to look besides the config.
pub struct Places<'a> {
    /// Claude Code's settings file.
    pub claude_settings: Option<&'a Path>,
    /// The user's home (service files, autostart entries).
    pub home: Option<&'a Path>,
}

/// Every check, in the order a user would fix them.
pub async fn examine(config: &Config, places: &Places<'_>) -> Vec<Finding> {
    let health = crate::status::fetch_path(config.server.listen, "/health", Duration::from_secs(2))
        .await
        .map(|(health, _)| health);
    let mut findings = vec![proxy(config, &health)];
    findings.extend(claude_code(config, places.claude_settings));
    findings.push(third_party_mode(places.claude_settings));
    if let Ok(health) = &health {
        findings.extend(unknown_features(health));
    }
    let http = pai_core::net::Http::new();
    // All at once, each bounded: ten providers that hang cost one bound, not ten.
    let providers = config
        .providers
        .iter()
        .filter(|p| !p.is_claude())
        .map(|provider| bounded_provider_finding(provider, &http));
    findings.extend(futures_util::future::join_all(providers).await);
    findings.push(dashboard(config, &http).await);
    findings.push(autostart(places.home).await);
    findings
}

/// How long one provider's check may take.
const PROVIDER_CHECK_BOUND: Duration = Duration::from_secs(10);

async fn bounded_provider_finding(
    provider: &ProviderConfig,
    http: &pai_core::net::Http,
) -> Finding {
    match tokio::time::timeout(PROVIDER_CHECK_BOUND, provider_finding(provider, http)).await {
        Ok(finding) => finding,
        Err(_) => Finding::warn(
            format!(
                "{} did not answer within {}s at {}",
                provider.name,
                PROVIDER_CHECK_BOUND.as_secs(),
                provider.base_url
            ),
            "check that it runs and its base_url; until then its work goes to the next target",
        ),
    }
}

/// The findings as lines: `✓ …`, `! …`, `✗ …`, each fix under its finding.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for finding in findings {
        let mark = match finding.verdict {
            Verdict::Ok => "✓",
            Verdict::Warn => "!",
            Verdict::Fail => "✗",
        };
        let _ = writeln!(out, "{mark} {}", finding.what);
        if let Some(fix) = &finding.fix {
            let _ = writeln!(out, "    fix: {fix}");
        }
    }
    out
}

fn proxy(
    config: &Config,
    health: &Result<pai_server::HealthResponse, crate::status::StatusError>,
) -> Finding {
    let addr = config.server.listen;
    match health {
        Ok(health) if health.degraded.is_empty() => Finding::ok(format!(
            "the proxy runs at http://{addr} (version {})",
            health.version
        )),
        Ok(health) => Finding::warn(
            format!(
                "the proxy runs at http://{addr}, degraded: {}",
                health.degraded.join("; ")
            ),
            "see its log in the data directory's logs/; free disk space or fix the data directory's permissions, then restart it",
        ),
        Err(error) => Finding::fail(
            format!(
                "the proxy does not answer at http://{addr} ({})",
                match error {
                    crate::status::StatusError::NotRunning { reason, .. } => reason.clone(),
                    other => other.to_string(),
                }
            ),
            "start it: pai-orchestrator (or pai-orchestrator install-service to start it at every login)",
        ),
    }
}

/// Claude Code's variable that makes it treat any base URL as Anthropic's own
/// (undocumented; see README, "Third-party mode").
pub const ASSUME_FIRST_PARTY: &str = "_CLAUDE_CODE_ASSUME_FIRST_PARTY_BASE_URL";

/// What Claude Code turns off behind a base URL other than api.anthropic.com, and what
/// the user can do.
fn third_party_mode(settings: Option<&Path>) -> Finding {
    let asserted = settings.and_then(|s| crate::connect::env_value(s, ASSUME_FIRST_PARTY));
    let shell = std::env::var(ASSUME_FIRST_PARTY).ok();
    match asserted.or(shell) {
        Some(value) if value == "1" => Finding::ok(
            "Claude Code treats the proxy as Anthropic's own API (first-party asserted): 1M context and auto mode's server check stay on while requests go to Claude",
        ),
        _ => Finding::warn(
            "Claude Code runs in third-party mode behind the proxy: no 1M context window, no rate_limits in its status-line input, and auto mode's server-side check only while requests stay on Claude",
            "the quota shows in the status line anyway (connect-claude); for 1M context see README, \"Third-party mode\"",
        ),
    }
}

/// What Claude Code sends that this version of the proxy has never seen.
fn unknown_features(health: &pai_server::HealthResponse) -> Option<Finding> {
    if health.unknown_features.is_empty() {
        return None;
    }
    let named: Vec<String> = health
        .unknown_features
        .iter()
        .take(8)
        .map(|f| format!("{} {}", f.kind, f.name))
        .collect();
    let client = health.unknown_features[0]
        .client
        .as_deref()
        .unwrap_or("a client");
    Some(Finding::warn(
        format!(
            "{client} sends what this proxy has never seen: {}{}",
            named.join(", "),
            if health.unknown_features.len() > 8 { ", …" } else { "" }
        ),
        "Anthropic gets it unchanged and other targets go without it; a newer PAI Orchestrator may know it",
    ))
}

fn claude_code(config: &Config, settings: Option<&Path>) -> Vec<Finding> {
    let url = format!("http://{}", config.server.listen);
    let Some(settings) = settings else {
        return vec![Finding::warn(
            "Claude Code's settings: no home directory to look in",
            "pass --settings FILE",
        )];
    };
    let mut findings = Vec::new();
    if crate::connect::is_connected(settings, &url) {
        findings.push(Finding::ok(format!(
            "Claude Code talks to {url} ({})",
            settings.display()
        )));
    } else {
        findings.push(Finding::fail(
            format!(
                "Claude Code does not talk to the proxy: env.ANTHROPIC_BASE_URL in {} is not {url}",
                settings.display()
            ),
            "pai-orchestrator connect-claude",
        ));
    }
    if let Some(shell) = std::env::var("ANTHROPIC_BASE_URL")
        .ok()
        .filter(|v| !v.is_empty() && v.trim_end_matches('/') != url)
    {
        findings.push(Finding::warn(
            format!("this shell's ANTHROPIC_BASE_URL is {shell}, not {url}"),
            format!("unset ANTHROPIC_BASE_URL, or export ANTHROPIC_BASE_URL={url}"),
        ));
    }
    findings.push(match crate::connect::status_line(settings) {
        Some(command) if crate::connect::is_our_statusline(&command) => {
            Finding::ok("Claude Code's status line shows the quota")
        }
        Some(command) => Finding::warn(
            format!("Claude Code's status line is your own ({command})"),
            "to show the quota there, set its command to: pai-orchestrator statusline",
        ),
        None => Finding::warn(
            "Claude Code's status line does not show the quota",
            "pai-orchestrator connect-claude",
        ),
    });
    findings
}

fn is_local(provider: &ProviderConfig) -> bool {
    provider
        .base_url
        .host_str()
        .is_some_and(|h| h == "localhost" || h == "[::1]" || h.starts_with("127."))
}

async fn provider_finding(provider: &ProviderConfig, http: &pai_core::net::Http) -> Finding {
    let name = &provider.name;
    if let Credentials::Env { var, key: None } = &provider.credentials {
        return Finding::warn(
            format!("{name}: its key is not set ({var} is empty where this runs)"),
            format!("export {var}=… where the proxy starts (for the service: systemctl --user edit pai-orchestrator, then [Service] Environment={var}=…)"),
        );
    }
    let checked = AnyProvider::new(provider.clone(), HealthBoard::default())
        .check(http)
        .await;
    let url = provider.base_url.as_str();
    match checked {
        None => Finding::ok(format!("{name}: nothing to ask before a request")),
        Some(Err(error)) if is_local(provider) => Finding::fail(
            format!("{name} does not answer at {url} ({error})"),
            "start the local model server (LM Studio: Developer → Start server, or `lms server start`)",
        ),
        Some(Err(error)) => Finding::warn(
            format!("{name} does not answer at {url} ({error})"),
            "check its base_url and key; until then its work goes to the next target",
        ),
        Some(Ok(info)) => model_finding(provider, &info),
    }
}

fn model_finding(provider: &ProviderConfig, info: &ModelInfo) -> Finding {
    let name = &provider.name;
    let wanted = provider.model.as_deref().unwrap_or("auto");
    if provider.load_context.is_some() && !info.models.iter().any(|m| m == wanted) {
        return Finding::fail(
            format!("{name} answers, but has no model {wanted:?} to load"),
            format!(
                "download it in LM Studio (or `lms get {wanted}`), or set model to one of: {}",
                info.models.join(", ")
            ),
        );
    }
    if provider.load_context.is_some() {
        return Finding::ok(format!(
            "{name} answers; the proxy loads {wanted} with {} tokens of context when needed",
            provider.load_context.unwrap_or_default()
        ));
    }
    let loaded = match (wanted, &info.loaded) {
        ("auto", Some(loaded)) => loaded.clone(),
        ("auto", None) => {
            return Finding::warn(
                format!("{name} answers, but has no model loaded"),
                "load one in LM Studio, or set model = \"<model key>\" and load_context = 65536 so the proxy loads it",
            )
        }
        (model, _) => model.to_owned(),
    };
    let context = provider.context_window.or(info.context_window);
    match context {
        Some(context) if context < CLAUDE_CODE_CONTEXT => Finding::warn(
            format!("{name} answers with {loaded}, but its context ({context} tokens) is too small for Claude Code (~20k tokens of system prompt and tools)"),
            format!("set model = \"{loaded}\" and load_context = 65536 under [[providers]] {name}, or load it in LM Studio with a context of at least {CLAUDE_CODE_CONTEXT}"),
        ),
        Some(context) => Finding::ok(format!("{name} answers with {loaded} ({context} tokens of context)")),
        None => Finding::ok(format!("{name} answers with {loaded}")),
    }
}

async fn dashboard(config: &Config, http: &pai_core::net::Http) -> Finding {
    let Some(url) = &config.quota.poll_url else {
        return Finding::ok(
            "quota dashboard: none configured (the quota comes from Claude's answers)",
        );
    };
    match http
        .get(url.as_str(), http::HeaderMap::new(), Duration::from_secs(5))
        .await
    {
        Ok(response) if response.status.is_success() => {
            Finding::ok(format!("the quota dashboard answers at {url}"))
        }
        Ok(response) => Finding::warn(
            format!(
                "the quota dashboard at {url} answers HTTP {}",
                response.status.as_u16()
            ),
            "check [quota] poll_url; without it the quota comes from Claude's answers alone",
        ),
        Err(error) => Finding::warn(
            format!("the quota dashboard does not answer at {url} ({error})"),
            "start it, or set [quota] poll_url = \"\" to stop polling",
        ),
    }
}

async fn autostart(home: Option<&Path>) -> Finding {
    let Some(home) = home else {
        return Finding::warn("start at login: no home directory to look in", "—");
    };
    if let Some(path) = crate::service::installed_path(home) {
        return Finding::ok(format!("the proxy starts at login ({})", path.display()));
    }
    let desktop_entry = std::fs::read_dir(home.join(".config/autostart"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .find_map(|entry| {
            let text = read_bounded(&entry.path(), 64 * 1024)?;
            text.contains("pai-orchestrator")
                .then(|| (entry.path(), text))
        });
    let Some((path, text)) = desktop_entry else {
        return Finding::warn(
            "nothing starts the proxy at login",
            "the tray menu's \"Start at login\", or pai-orchestrator install-service for the headless proxy",
        );
    };
    let fix = "turn \"Start at login\" off and on again in the tray menu: it writes the entry anew";
    match runs_at_login(&text).await {
        Ok(()) => Finding::ok(format!("the tray app starts at login ({})", path.display())),
        Err(why) => Finding::fail(
            format!(
                "the start-at-login entry {} does not start the app: {why}",
                path.display()
            ),
            fix,
        ),
    }
}

/// Runs the entry's `Exec` line as the desktop would at login, with `--version` after
/// its arguments: the program must exist and accept every argument the entry gives it
/// (clap reads them in order, so an argument it refuses fails before `--version` ends
/// the run with success).
async fn runs_at_login(entry: &str) -> Result<(), String> {
    let exec = entry
        .lines()
        .find_map(|line| line.strip_prefix("Exec="))
        .ok_or("it has no Exec line")?;
    let args = crate::cli::exec_split(exec).ok_or("its Exec line has an unclosed quote")?;
    let (program, args) = args.split_first().ok_or("its Exec line is empty")?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(10), command.output())
        .await
        .map_err(|_| format!("{program} did not finish within 10 s"))?
        .map_err(|e| format!("{program} cannot run: {e}"))?;
    if run.status.success() && String::from_utf8_lossy(&run.stdout).contains("pai-orchestrator") {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&run.stderr);
    let said = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    Err(format!(
        "`{exec}` exits with {} ({said})",
        run.status
            .code()
            .map_or("a signal".to_owned(), |c| c.to_string())
    ))
}

/// A small text file's contents, read without waiting on anything that is not a file.
fn read_bounded(path: &Path, limit: u64) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(limit).read_to_string(&mut text).ok()?;
    Some(text)
}
