//! `pai-orchestrator-tray`: the tray app (feature `gui`). Without a display, or with
//! `--headless`, it runs the proxy headless like `pai-orchestrator`.

// No console window behind the tray app on Windows release builds.
#![cfg_attr(
    all(not(debug_assertions), target_os = "windows"),
    windows_subsystem = "windows"
)]

use std::process::ExitCode;

use clap::Parser;

use pai_orchestrator::cli::Cli;
use pai_orchestrator::{app, commands};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before any thread starts: it changes the environment GTK reads.
    app::without_gl_at_start();
    commands::run(Cli::parse(), Some(app::run))
}
