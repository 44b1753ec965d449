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

/// Is there a display the tray app could use?
pub fn has_display() -> bool {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    cfg!(any(target_os = "macos", target_os = "windows"))
        || set("DISPLAY")
        || set("WAYLAND_DISPLAY")
}
