//! The tray app: a thin Tauri shell over the same core as `--headless`.
//!
//! The core runs on the tokio runtime created in `main`; Tauri shares it. The shell only
//! wires: the tray ([`tray`]), the settings window (the `ui/` page, talking to the core
//! through one command that calls the server's router, built once, and hearing the
//! core's events as they happen — no polling), notifications decided by the core
//! ([`notifications`]), autostart and single instance.

mod notifications;
mod tray;

use std::process::ExitCode;

use serde_json::Value;
use tauri::{AppHandle, Manager, RunEvent, Runtime, WebviewUrl, WebviewWindowBuilder};

use pai_server::daemon::{Daemon, DaemonOptions, Door};

const SETTINGS: &str = "settings";

/// The settings window's one door to the core: the same admin API the browser uses.
#[tauri::command]
async fn admin(
    door: tauri::State<'_, Door>,
    method: String,
    path: String,
    body: Option<Value>,
) -> Result<Value, String> {
    let (status, body) = door.call(&method, &path, body).await;
    Ok(serde_json::json!({"status": status, "body": body}))
}

/// The core's events, pushed to the window as they happen (`core-event`).
fn forward_events<R: Runtime>(app: AppHandle<R>, door: &Door) {
    use futures_util::StreamExt;
    use tauri::Emitter;
    let mut events = Box::pin(door.core().events());
    tauri::async_runtime::spawn(async move {
        while let Some(event) = events.next().await {
            let _ = app.emit_to(SETTINGS, "core-event", &event);
        }
    });
}

/// Start at login: read it, or set it when `enable` is given; answers the state after.
#[tauri::command]
fn autostart<R: Runtime>(app: AppHandle<R>, enable: Option<bool>) -> Result<bool, String> {
    use tauri_plugin_autostart::ManagerExt;
    let launcher = app.autolaunch();
    match enable {
        Some(true) => launcher.enable().map_err(|e| e.to_string())?,
        Some(false) => launcher.disable().map_err(|e| e.to_string())?,
        None => {}
    }
    tray::show_autostart(&app);
    launcher.is_enabled().map_err(|e| e.to_string())
}

/// Opens (or brings forward) the settings window.
pub fn open_settings<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(SETTINGS) {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, SETTINGS, WebviewUrl::App("index.html".into()))
        .title("PAI Orchestrator")
        .inner_size(1100.0, 820.0)
        .min_inner_size(720.0, 520.0)
        .build();
    if let Err(error) = built {
        tracing::warn!(%error, "cannot open the settings window");
    }
}

/// GTK opens an OpenGL context at start on X11 to choose its visuals, which maps the GPU
/// driver into a tray app that draws nothing with GL (Mesa's software one brings 50 MB of
/// LLVM: idle RSS 150 MB with it, 100 MB without). The settings window renders without it.
/// A `GDK_GL` the user set wins.
pub fn without_gl_at_start() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("GDK_GL").is_none() {
        std::env::set_var("GDK_GL", "disable");
    }
}

pub fn run(
    runtime: tokio::runtime::Runtime,
    options: DaemonOptions,
    autostart_args: Vec<String>,
) -> Result<ExitCode, String> {
    let data_dir = options.data_dir.clone();
    let daemon = runtime
        .block_on(Daemon::start(options))
        .map_err(|e| e.to_string())?;
    tauri::async_runtime::set(runtime.handle().clone());
    let shutdown = daemon.shutdown_token();
    let state = daemon.state.clone();
    let door = daemon.door();
    let app = tauri::Builder::default()
        // First, so a second launch only brings this one's window forward.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            open_settings(app)
        }))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        // The entry runs this binary with the arguments this run was given (`--minimized`,
        // and the config and data dir when they are not the default ones).
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .args(autostart_args)
                .build(),
        )
        .manage(door.clone())
        .invoke_handler(tauri::generate_handler![admin, autostart])
        .setup(move |app| {
            forward_events(app.handle().clone(), &door);
            // Before the menu is built, so its "Start at login" shows what was just set.
            tray::first_run_autostart(app.handle(), &data_dir);
            tray::create(app.handle(), &state)?;
            notifications::start(app.handle().clone(), state.clone());
            if std::env::var_os("PAI_SHOW_SETTINGS").is_some() {
                open_settings(app.handle());
            }
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
