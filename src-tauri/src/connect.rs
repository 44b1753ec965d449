//! "Connect Claude Code": points Claude Code at the proxy through the `env` block of its
//! `settings.json` (`ANTHROPIC_BASE_URL`), keeping every other key, the key order and the
//! indentation, after a timestamped backup; and, when asked, Claude Code's status line
//! (`statusLine`: `pai-orchestrator statusline`), never replacing one the user has.
//! Disconnect puts back exactly what was there.
//! A settings file that is not valid JSON is never overwritten.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use pai_core::fsutil;

const KEY: &str = "ANTHROPIC_BASE_URL";

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{path} is not valid JSON ({reason}); fix it first, it was left untouched")]
    Malformed { path: PathBuf, reason: String },
    #[error("{path} is not a JSON object; it was left untouched")]
    NotAnObject { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Claude Code's user settings: `$CLAUDE_CONFIG_DIR/settings.json` or
/// `~/.claude/settings.json`.
pub fn default_settings_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("settings.json"));
    }
    directories::BaseDirs::new().map(|d| d.home_dir().join(".claude/settings.json"))
}

/// What was there before connecting, kept in our data dir so disconnect can restore it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Previous {
    settings: PathBuf,
    /// The old `env.ANTHROPIC_BASE_URL`, if there was one.
    value: Option<String>,
    /// Whether there was an `env` object at all.
    had_env: bool,
    /// Whether connect put in our status line (disconnect then takes it out).
    #[serde(default)]
    added_statusline: bool,
}

fn previous_path(data_dir: &Path) -> PathBuf {
    data_dir.join("claude-connect.json")
}

struct Settings {
    root: Map<String, Value>,
    indent: usize,
    existed: bool,
    raw: Vec<u8>,
}

fn read(path: &Path) -> Result<Settings, ConnectError> {
    let raw = match std::fs::read(path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Settings {
                root: Map::new(),
                indent: 2,
                existed: false,
                raw: Vec::new(),
            })
        }
        Err(source) => {
            return Err(ConnectError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let text = String::from_utf8_lossy(&raw);
    let value: Value = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(&text).map_err(|e| ConnectError::Malformed {
            path: path.to_owned(),
            reason: e.to_string(),
        })?
    };
    let Value::Object(root) = value else {
        return Err(ConnectError::NotAnObject {
            path: path.to_owned(),
        });
    };
    // Keep the file's own indentation (Claude Code writes two spaces).
    let indent = text
        .lines()
        .nth(1)
        .map(|line| line.len() - line.trim_start_matches(' ').len())
        .filter(|n| (1..=8).contains(n))
        .unwrap_or(2);
    Ok(Settings {
        root,
        indent,
        existed: true,
        raw,
    })
}

fn write(path: &Path, settings: &Settings) -> Result<(), ConnectError> {
    let indent = " ".repeat(settings.indent);
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    Value::Object(settings.root.clone())
        .serialize(&mut serializer)
        .map_err(|e| ConnectError::Write {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        })?;
    out.push(b'\n');
    fsutil::write_atomic(path, &out).map_err(|source| ConnectError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Whether Claude Code's settings point at `base_url`.
pub fn is_connected(settings_path: &Path, base_url: &str) -> bool {
    read(settings_path)
        .ok()
        .and_then(|s| s.root.get("env")?.get(KEY)?.as_str().map(|v| v == base_url))
        .unwrap_or(false)
}

/// What `connect` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The backup of the file as it was, if there was a file and it changed.
    pub backup: Option<PathBuf>,
    pub statusline: StatusLine,
}

/// What became of Claude Code's status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusLine {
    /// Not asked for.
    Untouched,
    /// Ours was put in.
    Installed,
    /// Ours was there already.
    AlreadyOurs,
    /// The user has one of their own (its command): it stays.
    KeptTheirs(String),
}

/// The `statusLine` Claude Code runs: `command` (`pai-orchestrator statusline`).
fn status_line_value(command: &str) -> Value {
    serde_json::json!({"type": "command", "command": command, "padding": 0})
}

fn status_line_command(root: &Map<String, Value>) -> Option<&str> {
    root.get("statusLine")?.get("command")?.as_str()
}

/// Sets `env.ANTHROPIC_BASE_URL` to `base_url` and, given `statusline` (the command to
/// run), puts in Claude Code's status line unless the user has one of their own. Backs
/// the file up first when it changes.
pub fn connect(
    settings_path: &Path,
    data_dir: &Path,
    base_url: &str,
    statusline_command: Option<&str>,
) -> Result<Connected, ConnectError> {
    let mut settings = read(settings_path)?;
    let env = settings.root.get("env").and_then(Value::as_object);
    let current = env
        .and_then(|e| e.get(KEY))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let had_env = env.is_some();
    let url_is_ours = current.as_deref() == Some(base_url);
    let statusline = match (statusline_command, status_line_command(&settings.root)) {
        (None, _) => StatusLine::Untouched,
        (Some(ours), Some(theirs)) if ours == theirs => StatusLine::AlreadyOurs,
        (Some(_), Some(theirs)) => StatusLine::KeptTheirs(theirs.to_owned()),
        (Some(_), None) if settings.root.contains_key("statusLine") => {
            StatusLine::KeptTheirs("(not a command)".to_owned())
        }
        (Some(_), None) => StatusLine::Installed,
    };
    if url_is_ours && statusline != StatusLine::Installed {
        return Ok(Connected {
            backup: None,
            statusline,
        });
    }
    let backup = if settings.existed {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let backup = settings_path.with_file_name(format!("settings.json.pai-backup-{stamp}"));
        fsutil::write_atomic(&backup, &settings.raw).map_err(|source| ConnectError::Write {
            path: backup.clone(),
            source,
        })?;
        Some(backup)
    } else {
        None
    };
    // Connected before: what was there before that is still what to put back.
    let earlier = read_previous(data_dir, settings_path);
    let previous = match earlier {
        Some(earlier) if url_is_ours => Previous {
            added_statusline: statusline == StatusLine::Installed || earlier.added_statusline,
            ..earlier
        },
        _ => Previous {
            settings: settings_path.to_owned(),
            value: current.filter(|_| !url_is_ours),
            had_env,
            added_statusline: statusline == StatusLine::Installed,
        },
    };
    let record = serde_json::to_vec_pretty(&previous).unwrap_or_default();
    fsutil::write_atomic(&previous_path(data_dir), &record).map_err(|source| {
        ConnectError::Write {
            path: previous_path(data_dir),
            source,
        }
    })?;
    let env = settings
        .root
        .entry("env")
        .or_insert_with(|| Value::Object(Map::new()));
    if !env.is_object() {
        *env = Value::Object(Map::new());
    }
    if let Some(env) = env.as_object_mut() {
        env.insert(KEY.to_owned(), Value::String(base_url.to_owned()));
    }
    if let (StatusLine::Installed, Some(command)) = (&statusline, statusline_command) {
        settings
            .root
            .insert("statusLine".to_owned(), status_line_value(command));
    }
    write(settings_path, &settings)?;
    Ok(Connected { backup, statusline })
}

fn read_previous(data_dir: &Path, settings_path: &Path) -> Option<Previous> {
    std::fs::read(previous_path(data_dir))
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .filter(|p: &Previous| p.settings == settings_path)
}

/// Restores what `connect` replaced: the old base URL, and no status line if ours was put
/// in and is still there. Leaves the file alone if it no longer points at `base_url` (the
/// user changed it since).
pub fn disconnect(
    settings_path: &Path,
    data_dir: &Path,
    base_url: &str,
) -> Result<bool, ConnectError> {
    let mut settings = read(settings_path)?;
    let current = settings
        .root
        .get("env")
        .and_then(|e| e.get(KEY))
        .and_then(Value::as_str);
    if current != Some(base_url) {
        return Ok(false);
    }
    let previous = read_previous(data_dir, settings_path);
    let added_statusline = previous.as_ref().is_some_and(|p| p.added_statusline);
    let (value, had_env) = previous.map_or((None, true), |p| (p.value, p.had_env));
    if let Some(env) = settings.root.get_mut("env").and_then(Value::as_object_mut) {
        match value {
            Some(old) => {
                env.insert(KEY.to_owned(), Value::String(old));
            }
            None => {
                env.remove(KEY);
            }
        }
        if env.is_empty() && !had_env {
            settings.root.remove("env");
        }
    }
    let ours = status_line_command(&settings.root).is_some_and(is_our_statusline);
    if added_statusline && ours {
        settings.root.remove("statusLine");
    }
    write(settings_path, &settings)?;
    let _ = std::fs::remove_file(previous_path(data_dir));
    Ok(true)
}

/// A variable in the `env` block of Claude Code's settings, if it is set there.
pub fn env_value(settings_path: &Path, name: &str) -> Option<String> {
    let settings = read(settings_path).ok()?;
    settings
        .root
        .get("env")?
        .get(name)?
        .as_str()
        .map(str::to_owned)
}

/// The command of Claude Code's status line, if it has one.
pub fn status_line(settings_path: &Path) -> Option<String> {
    let settings = read(settings_path).ok()?;
    status_line_command(&settings.root).map(str::to_owned)
}

/// A status line command that runs ours (`… pai-orchestrator statusline …`).
pub fn is_our_statusline(command: &str) -> bool {
    command.contains("pai-orchestrator") && command.contains("statusline")
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:8766";

    #[test]
    fn connect_keeps_everything_else_and_disconnect_restores_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let original = "{\n    \"model\": \"opus\",\n    \"env\": {\n        \"ANTHROPIC_BASE_URL\": \"https://gateway.example\",\n        \"FOO\": \"1\"\n    },\n    \"permissions\": {\n        \"allow\": [\n            \"Bash(ls:*)\"\n        ]\n    }\n}\n";
        std::fs::write(&path, original).unwrap();
        let backup = connect(&path, dir.path(), URL, None)
            .unwrap()
            .backup
            .unwrap();
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), original);
        let connected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(connected, original.replace("https://gateway.example", URL));
        assert!(is_connected(&path, URL));
        assert!(disconnect(&path, dir.path(), URL).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
        assert!(!is_connected(&path, URL));
    }

    #[test]
    fn a_missing_file_or_env_comes_back_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claude/settings.json");
        assert_eq!(connect(&path, dir.path(), URL, None).unwrap().backup, None);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"env\": {\n    \"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:8766\"\n  }\n}\n"
        );
        disconnect(&path, dir.path(), URL).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");

        std::fs::write(&path, "{\n  \"theme\": \"dark\"\n}\n").unwrap();
        connect(&path, dir.path(), URL, None).unwrap();
        disconnect(&path, dir.path(), URL).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"theme\": \"dark\"\n}\n"
        );
    }

    #[test]
    fn a_malformed_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, "{ \"model\": \"opus\", ").unwrap();
        let err = connect(&path, dir.path(), URL, None).unwrap_err();
        assert!(err.to_string().contains("is not valid JSON"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{ \"model\": \"opus\", "
        );
        std::fs::write(&path, "[1]").unwrap();
        assert!(matches!(
            connect(&path, dir.path(), URL, None),
            Err(ConnectError::NotAnObject { .. })
        ));
    }

    #[test]
    fn disconnect_leaves_a_changed_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        connect(&path, dir.path(), URL, None).unwrap();
        std::fs::write(
            &path,
            "{\"env\": {\"ANTHROPIC_BASE_URL\": \"http://elsewhere\"}}",
        )
        .unwrap();
        assert!(!disconnect(&path, dir.path(), URL).unwrap());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("elsewhere"));
    }

    const OURS: &str = "/opt/pai/pai-orchestrator statusline";

    #[test]
    fn the_status_line_is_put_in_and_taken_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let original = "{\n  \"model\": \"opus\"\n}\n";
        std::fs::write(&path, original).unwrap();
        let done = connect(&path, dir.path(), URL, Some(OURS)).unwrap();
        assert_eq!(done.statusline, StatusLine::Installed);
        let settings: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(settings["statusLine"]["type"], "command");
        assert_eq!(settings["statusLine"]["command"], OURS);
        assert_eq!(
            connect(&path, dir.path(), URL, Some(OURS)).unwrap(),
            Connected {
                backup: None,
                statusline: StatusLine::AlreadyOurs
            }
        );
        assert!(disconnect(&path, dir.path(), URL).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
    }

    #[test]
    fn the_users_own_status_line_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let original = "{\n  \"statusLine\": {\n    \"type\": \"command\",\n    \"command\": \"~/bin/my-line\"\n  }\n}\n";
        std::fs::write(&path, original).unwrap();
        let done = connect(&path, dir.path(), URL, Some(OURS)).unwrap();
        assert_eq!(
            done.statusline,
            StatusLine::KeptTheirs("~/bin/my-line".to_owned())
        );
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("~/bin/my-line"));
        assert!(disconnect(&path, dir.path(), URL).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
    }

    #[test]
    fn connecting_again_for_the_status_line_keeps_what_to_restore() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let original =
            "{\n  \"env\": {\n    \"ANTHROPIC_BASE_URL\": \"https://gateway.example\"\n  }\n}\n";
        std::fs::write(&path, original).unwrap();
        connect(&path, dir.path(), URL, None).unwrap();
        let done = connect(&path, dir.path(), URL, Some(OURS)).unwrap();
        assert_eq!(done.statusline, StatusLine::Installed);
        assert!(done.backup.is_some());
        assert!(disconnect(&path, dir.path(), URL).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
    }
}
