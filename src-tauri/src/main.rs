// No console window behind the tray app on Windows release builds.
#![cfg_attr(
    all(not(debug_assertions), target_os = "windows"),
    windows_subsystem = "windows"
)]

#[cfg(feature = "gui")]
mod app;
mod cli;
mod connect;
mod logging;
mod service;
mod status;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, Paths};
use pai_core::config::{self, Config};
use pai_server::daemon::{Daemon, DaemonOptions};

/// A proxy allocates and frees small buffers for every request on every thread; mimalloc
/// does that with less work and less memory held than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Logs, databases and tokens this process writes are the user's alone.
    pai_core::fsutil::private_by_default();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("pai-orchestrator: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let paths = Paths::resolve(&cli)?;
    let mut config = Config::load_or_create(&paths.config).map_err(|e| e.to_string())?;
    if let Some(listen) = &cli.listen {
        config.server.listen = config::parse_listen(listen)
            .map_err(|reason| format!("--listen {listen:?} {reason}"))?;
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    match cli.command {
        Some(Command::Status { json }) => runtime.block_on(print_status(config, json)),
        Some(Command::ConnectClaude { settings }) => {
            connect_claude(&config, &paths, settings, true)
        }
        Some(Command::DisconnectClaude { settings }) => {
            connect_claude(&config, &paths, settings, false)
        }
        Some(Command::SettingsUrl) => {
            let token = pai_server::admin::token::load_or_create(&paths.data_dir)
                .map_err(|e| e.to_string())?;
            say(&format!("http://{}/?token={token}", config.server.listen));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::InstallService) => {
            let path = crate::service::install(&paths).map_err(|e| e.to_string())?;
            say(&format!(
                "Installed {}.\nStart it now and at every login with:\n  systemctl --user daemon-reload && systemctl --user enable --now pai-orchestrator",
                path.display()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Qualify { provider, json }) => {
            runtime.block_on(qualify(config, &paths.data_dir, &provider, json))
        }
        Some(Command::Run) | None => {
            let _log_guard = logging::init(&paths.data_dir);
            let options = DaemonOptions {
                config,
                config_path: Some(paths.config),
                data_dir: paths.data_dir,
            };
            if cli.headless || !cfg!(feature = "gui") || !cli::has_display() {
                runtime.block_on(run_headless(options))
            } else {
                run_gui(runtime, options)
            }
        }
    }
}

#[allow(clippy::print_stdout)]
fn say(text: &str) {
    println!("{text}");
}

fn connect_claude(
    config: &Config,
    paths: &Paths,
    settings: Option<std::path::PathBuf>,
    connect: bool,
) -> Result<ExitCode, String> {
    use crate::connect;
    let settings = settings
        .or_else(connect::default_settings_path)
        .ok_or("no home directory: pass --settings FILE")?;
    let url = format!("http://{}", config.server.listen);
    if connect {
        let backup =
            connect::connect(&settings, &paths.data_dir, &url).map_err(|e| e.to_string())?;
        say(&format!(
            "Claude Code now talks to {url} ({}).",
            settings.display()
        ));
        if let Some(backup) = backup {
            say(&format!(
                "Backup of the previous file: {}",
                backup.display()
            ));
        }
    } else if connect::disconnect(&settings, &paths.data_dir, &url).map_err(|e| e.to_string())? {
        say(&format!(
            "Claude Code's settings are back as they were ({}).",
            settings.display()
        ));
    } else {
        say(&format!(
            "Claude Code was not pointed at {url}; nothing changed."
        ));
    }
    Ok(ExitCode::SUCCESS)
}

async fn print_status(config: Config, json: bool) -> Result<ExitCode, String> {
    match status::fetch(config.server.listen).await {
        Ok((health, raw)) => {
            #[allow(clippy::print_stdout)]
            if json {
                println!("{raw}");
            } else {
                print!("{}", status::render(&health));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn qualify(
    config: Config,
    data_dir: &std::path::Path,
    name: &str,
    json: bool,
) -> Result<ExitCode, String> {
    use pai_core::providers::{qualify, HealthBoard};
    let http = pai_core::net::Http::new();
    let report = qualify::qualify_named(&config, name, &http, &HealthBoard::default()).await?;
    let text = serde_json::to_string(&report).map_err(|e| e.to_string())?;
    let conn = pai_core::store::open(&pai_core::store::database_path(data_dir))
        .map_err(|e| e.to_string())?;
    pai_core::store::put_qualification(&conn, name, report.verdict_name(), &text)
        .map_err(|e| e.to_string())?;
    #[allow(clippy::print_stdout)]
    if json {
        println!("{text}");
    } else {
        print!("{}", report.render());
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_headless(options: DaemonOptions) -> Result<ExitCode, String> {
    let daemon = Daemon::start(options).await.map_err(|e| e.to_string())?;
    let token = daemon.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    daemon.wait().await.map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(feature = "gui")]
fn run_gui(runtime: tokio::runtime::Runtime, options: DaemonOptions) -> Result<ExitCode, String> {
    crate::app::run(runtime, options)
}

#[cfg(not(feature = "gui"))]
fn run_gui(runtime: tokio::runtime::Runtime, options: DaemonOptions) -> Result<ExitCode, String> {
    runtime.block_on(run_headless(options))
}
