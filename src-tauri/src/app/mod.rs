//! The tray app: a thin Tauri shell over the same core as `--headless`.
//!
//! The core runs on the tokio runtime created in `main`; Tauri shares it, so the proxy
//! keeps serving while the event loop owns the main thread.

mod tray;

use std::process::ExitCode;

use tauri::RunEvent;

use crate::daemon::{Daemon, DaemonOptions};

pub fn run(runtime: tokio::runtime::Runtime, options: DaemonOptions) -> Result<ExitCode, String> {
    let daemon = runtime
        .block_on(Daemon::start(options))
        .map_err(|e| e.to_string())?;
    tauri::async_runtime::set(runtime.handle().clone());
    let shutdown = daemon.shutdown_token();
    let proxy_addr = daemon.local_addr;
    let app = tauri::Builder::default()
        .setup(move |app| {
            tray::create(app.handle(), proxy_addr)?;
            Ok(())
        })
        .build(tauri::generate_context!())
        .map_err(|e| format!("cannot start the tray app: {e}"))?;
    app.run(move |_app, event| match event {
        // Closing the last window keeps the app in the tray; Quit exits with a code.
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        RunEvent::Exit => shutdown.cancel(),
        _ => {}
    });
    if let Err(error) = runtime.block_on(daemon.wait()) {
        tracing::warn!(%error, "proxy stopped with an error");
    }
    Ok(ExitCode::SUCCESS)
}
