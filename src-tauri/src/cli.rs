//! Command line: `pai-orchestrator [--headless] [--config FILE] [--data-dir DIR] [--listen ADDR]`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pai-orchestrator",
    version,
    about = "Keeps Claude Code working when its quota runs out: a local Anthropic API proxy that routes by quota and task."
)]
pub struct Cli {
    /// Run without the tray app (also the default when there is no display).
    #[arg(long, global = true)]
    pub headless: bool,
    /// Config file [default: ~/.config/pai-orchestrator/config.toml]; created with
    /// commented defaults if missing.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Where the database and logs live [default: ~/.local/share/pai-orchestrator].
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (loopback only), overriding [server].listen.
    #[arg(long, value_name = "ADDR", global = true)]
    pub listen: Option<String>,
    /// Start in the tray without opening a window: how start at login runs the app.
    #[arg(long)]
    pub minimized: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (the default).
    Run,
    /// Print what the running proxy's /health says.
    Status {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// One line for Claude Code's status line: the quota windows, the state, and where
    /// this session's latest request went. Reads Claude Code's session JSON on stdin.
    Statusline,
    /// Point Claude Code at this proxy (`env.ANTHROPIC_BASE_URL` in its settings.json),
    /// after a timestamped backup; and shows the quota in its status line (`statusline`)
    /// unless it has one of its own.
    ConnectClaude {
        /// Claude Code's settings file [default: ~/.claude/settings.json].
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
        /// Leave Claude Code's status line alone.
        #[arg(long)]
        no_statusline: bool,
    },
    /// Undo `connect-claude`: put back exactly what was there.
    DisconnectClaude {
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
    },
    /// Check that everything is in place — the proxy, Claude Code, the local model, the
    /// keys, the dashboard, start at login — and say how to fix what is not.
    Doctor {
        /// Claude Code's settings file [default: ~/.claude/settings.json].
        #[arg(long, value_name = "FILE")]
        settings: Option<PathBuf>,
    },
    /// Print the settings page's address, with the admin token.
    SettingsUrl,
    /// Start the headless proxy at login: a systemd user unit (Linux) or a LaunchAgent
    /// (macOS).
    InstallService,
    /// Examine a provider: can it drive Claude Code's tools, or only chat? Stores the result.
    Qualify {
        /// The provider's name in the config.
        provider: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Where the config and data live.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config: PathBuf,
    pub data_dir: PathBuf,
}

impl Paths {
    pub fn resolve(cli: &Cli) -> Result<Paths, String> {
        let dirs = directories::ProjectDirs::from("", "", "pai-orchestrator");
        let config = match (&cli.config, &dirs) {
            (Some(path), _) => path.clone(),
            (None, Some(dirs)) => dirs.config_dir().join("config.toml"),
            (None, None) => return Err("no home directory: pass --config FILE".to_owned()),
        };
        let data_dir = match (&cli.data_dir, &dirs) {
            (Some(path), _) => path.clone(),
            (None, Some(dirs)) => dirs.data_dir().to_owned(),
            (None, None) => return Err("no home directory: pass --data-dir DIR".to_owned()),
        };
        Ok(Paths { config, data_dir })
    }
}

impl Cli {
    /// The arguments start at login runs the tray app with: `--minimized`, and the config,
    /// data dir and listen address this run was given, so the app that starts at login is
    /// this one — quoted as a desktop entry's `Exec` line wants (the autostart plugin joins
    /// them with spaces).
    pub fn autostart_args(&self) -> Vec<String> {
        let mut args = vec!["--minimized".to_owned()];
        let absolute = |path: &PathBuf| std::path::absolute(path).unwrap_or_else(|_| path.clone());
        if let Some(config) = &self.config {
            args.push("--config".to_owned());
            args.push(exec_quoted(&absolute(config).display().to_string()));
        }
        if let Some(data_dir) = &self.data_dir {
            args.push("--data-dir".to_owned());
            args.push(exec_quoted(&absolute(data_dir).display().to_string()));
        }
        if let Some(listen) = &self.listen {
            args.push("--listen".to_owned());
            args.push(exec_quoted(listen));
        }
        args
    }
}

/// One argument of a desktop entry's `Exec` line: as it is when it has nothing to quote,
/// else in double quotes with `"`, `` ` ``, `$` and `\` escaped (Desktop Entry
/// Specification, "The Exec key").
pub fn exec_quoted(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c));
    if plain {
        return arg.to_owned();
    }
    let mut quoted = String::from("\"");
    for c in arg.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Splits a desktop entry's `Exec` line into its program and arguments (the reverse of
/// [`exec_quoted`]); `None` when its quotes do not close.
pub fn exec_split(line: &str) -> Option<Vec<String>> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Some(args);
        };
        let mut arg = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => arg.push(chars.next()?),
                    c => arg.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                arg.push(c);
            }
        }
        args.push(arg);
    }
}

/// Is there a display the tray app could use?
pub fn has_display() -> bool {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    cfg!(any(target_os = "macos", target_os = "windows"))
        || set("DISPLAY")
        || set("WAYLAND_DISPLAY")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_autostart_line_gives_back_the_arguments_it_was_given() {
        let cli = Cli::parse_from([
            "pai-orchestrator-tray",
            "--config",
            "/home/a b/my \"conf\".toml",
            "--data-dir",
            "/data/$HOME",
        ]);
        let line = format!(
            "/usr/bin/pai-orchestrator-tray {}",
            cli.autostart_args().join(" ")
        );
        let split = exec_split(&line).unwrap();
        assert_eq!(
            split,
            [
                "/usr/bin/pai-orchestrator-tray",
                "--minimized",
                "--config",
                "/home/a b/my \"conf\".toml",
                "--data-dir",
                "/data/$HOME"
            ]
        );
        let parsed = Cli::try_parse_from(&split).unwrap();
        assert!(parsed.minimized);
        assert_eq!(parsed.data_dir, Some(PathBuf::from("/data/$HOME")));
        assert_eq!(exec_split("a \"b"), None);
    }
}
