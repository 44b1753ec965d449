//! `pai-orchestrator`: the command line and the headless proxy, without the desktop
//! libraries. See the crate's documentation for how it and the tray binary divide work.

use std::process::ExitCode;

use clap::Parser;

use pai_orchestrator::cli::{self, Cli, Command};
use pai_orchestrator::commands;

/// A proxy allocates and frees small buffers for every request on every thread; mimalloc
/// does that with less work and less memory held than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The tray binary, installed next to this one.
const TRAY: &str = "pai-orchestrator-tray";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runs_proxy = matches!(cli.command, None | Some(Command::Run));
    if runs_proxy && !cli.headless && cli::has_display() {
        match hand_over_to_tray() {
            Ok(code) => return code,
            Err(reason) => eprintln!("pai-orchestrator: running headless: {reason}"),
        }
    }
    commands::run(cli, None)
}

/// Runs the tray binary with this command line, in this process's place where the
/// platform allows it. Fails (so the proxy runs headless) when it is not installed.
fn hand_over_to_tray() -> Result<ExitCode, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let tray = exe.with_file_name(format!("{TRAY}{}", std::env::consts::EXE_SUFFIX));
    if !tray.is_file() {
        return Err(format!(
            "the tray app ({}) is not installed",
            tray.display()
        ));
    }
    let mut command = std::process::Command::new(&tray);
    command.args(std::env::args_os().skip(1));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let error = command.exec();
        Err(format!("cannot start {}: {error}", tray.display()))
    }
    #[cfg(not(unix))]
    {
        let status = command
            .status()
            .map_err(|e| format!("cannot start {}: {e}", tray.display()))?;
        Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
    }
}
