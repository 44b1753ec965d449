//! What each command does: the subcommands, and running the proxy headless. The light
//! binary (`pai-orchestrator`) and the tray binary (`pai-orchestrator-tray`) both call
//! [`run`]; only the tray binary passes a way to start the tray app.

use std::process::ExitCode;

use crate::cli::{Cli, Command, Paths};
use crate::{doctor, logging, status, statusline};
use pai_core::config::{self, Config};
use pai_server::daemon::{Daemon, DaemonOptions};

/// Starts the tray app on the given runtime (only the tray binary has one), with the
/// arguments its start-at-login entry runs it with.
pub type Gui = fn(tokio::runtime::Runtime, DaemonOptions, Vec<String>) -> Result<ExitCode, String>;

/// Runs the command line: a subcommand, or the proxy — with `gui` where there is a
/// display and it was not asked to run headless, else headless.
pub fn run(cli: Cli, gui: Option<Gui>) -> ExitCode {
    // Logs, databases and tokens this process writes are the user's alone.
    pai_core::fsutil::private_by_default();
    match dispatch(cli, gui) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("pai-orchestrator: {message}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli, gui: Option<Gui>) -> Result<ExitCode, String> {
    let paths = Paths::resolve(&cli)?;
    let mut config = Config::load_or_create(&paths.config).map_err(|e| e.to_string())?;
    if let Some(listen) = &cli.listen {
        config.server.listen = config::parse_listen(listen)
            .map_err(|reason| format!("--listen {listen:?} {reason}"))?;
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let autostart_args = cli.autostart_args();
    match cli.command {
        Some(Command::Status { json }) => runtime.block_on(print_status(config, json)),
        Some(Command::Statusline) => {
            let session = statusline::session_from_stdin();
            let line = runtime.block_on(statusline::line(
                config.server.listen,
                &config.quota.state_file,
                session.as_deref(),
            ));
            say(&line);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::ConnectClaude {
            settings,
            no_statusline,
        }) => {
            let statusline = (!no_statusline)
                .then(|| statusline::command(cli.config.as_deref()))
                .flatten();
            connect_claude(&config, &paths, settings, Some(statusline))
        }
        Some(Command::DisconnectClaude { settings }) => {
            connect_claude(&config, &paths, settings, None)
        }
        Some(Command::Doctor { settings }) => {
            let settings = settings.or_else(crate::connect::default_settings_path);
            let home = directories::BaseDirs::new().map(|d| d.home_dir().to_owned());
            let places = doctor::Places {
                claude_settings: settings.as_deref(),
                home: home.as_deref(),
            };
            let findings = runtime.block_on(doctor::examine(&config, &places));
            #[allow(clippy::print_stdout)]
            {
                print!("{}", doctor::render(&findings));
            }
            let failed = findings.iter().any(|f| f.verdict == doctor::Verdict::Fail);
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Some(Command::SettingsUrl) => {
            let token = pai_server::admin::token::load_or_create(&paths.data_dir)
                .map_err(|e| e.to_string())?;
            say(&format!("http://{}/?token={token}", config.server.listen));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::InstallService) => {
            let installed = crate::service::install(&paths).map_err(|e| e.to_string())?;
            say(&format!(
                "Installed {}.\n{}",
                installed.path.display(),
                installed.next
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
            match gui {
                Some(gui) if !cli.headless && crate::cli::has_display() => {
                    gui(runtime, options, autostart_args)
                }
                _ => runtime.block_on(run_headless(options)),
            }
        }
    }
}

#[allow(clippy::print_stdout)]
fn say(text: &str) {
    println!("{text}");
}

/// Connects Claude Code (`Some(status line command)`) or disconnects it (`None`).
fn connect_claude(
    config: &Config,
    paths: &Paths,
    settings: Option<std::path::PathBuf>,
    connect: Option<Option<String>>,
) -> Result<ExitCode, String> {
    use crate::connect::{self, StatusLine};
    let settings = settings
        .or_else(connect::default_settings_path)
        .ok_or("no home directory: pass --settings FILE")?;
    let url = format!("http://{}", config.server.listen);
    let Some(statusline) = connect else {
        if connect::disconnect(&settings, &paths.data_dir, &url).map_err(|e| e.to_string())? {
            say(&format!(
                "Claude Code's settings are back as they were ({}).",
                settings.display()
            ));
        } else {
            say(&format!(
                "Claude Code was not pointed at {url}; nothing changed."
            ));
        }
        return Ok(ExitCode::SUCCESS);
    };
    let done = connect::connect(&settings, &paths.data_dir, &url, statusline.as_deref())
        .map_err(|e| e.to_string())?;
    say(&format!(
        "Claude Code now talks to {url} ({}).",
        settings.display()
    ));
    match (&done.statusline, &statusline) {
        (StatusLine::Installed | StatusLine::AlreadyOurs, _) => {
            say("Its status line shows the quota and where each request went.")
        }
        (StatusLine::KeptTheirs(theirs), Some(ours)) => say(&format!(
            "Your status line ({theirs}) was kept; to show the quota there instead, set its command to: {ours}"
        )),
        _ => {}
    }
    if let Some(backup) = done.backup {
        say(&format!(
            "Backup of the previous file: {}",
            backup.display()
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
