//! The tray icon and its menu. Labels are updated in place (a rebuilt menu would close
//! the one the user has open); the icon's colour is the quota state.

use std::path::Path;

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_autostart::ManagerExt;
use tauri_plugin_clipboard_manager::ClipboardExt;

use pai_core::quota::QuotaSnapshot;
use pai_core::router::Mode;
use pai_core::types::QuotaState;
use pai_server::ProxyState;

const TRAY: &str = "main";

/// The routing modes in the menu, in its order.
const MODES: [(Mode, &str); 4] = [
    (Mode::Auto, "Automatic"),
    (Mode::ClaudeOnly, "Claude only"),
    (Mode::LocalOnly, "Local only"),
    (Mode::Paused, "Paused"),
];

fn icon(state: QuotaState) -> tauri::Result<Image<'static>> {
    Image::from_bytes(match state {
        QuotaState::Unknown => include_bytes!("../../../icons/tray-unknown.png"),
        QuotaState::Normal => include_bytes!("../../../icons/tray-normal.png"),
        QuotaState::Caution => include_bytes!("../../../icons/tray-caution.png"),
        QuotaState::Warning => include_bytes!("../../../icons/tray-warning.png"),
        QuotaState::Critical => include_bytes!("../../../icons/tray-critical.png"),
    })
}

/// "5h 42% · week 81% · Opus week 100% until Tue 14:00 · caution": every window, then
/// the state.
pub fn quota_line(snapshot: &QuotaSnapshot) -> String {
    let windows = snapshot.windows_line();
    if windows.is_empty() {
        return format!("Claude quota: {}", snapshot.state.name());
    }
    format!("{windows} · {}", snapshot.state.name())
}

pub fn burn_line(snapshot: &QuotaSnapshot) -> String {
    match (snapshot.burn_rate, snapshot.projected_exhaustion) {
        (Some(rate), Some(when)) => format!(
            "Burning {rate:.1}%/h · out at {}{}",
            pai_core::quota::tracker::clock(when),
            if snapshot.exhausts_before_reset {
                " (before reset)"
            } else {
                ""
            }
        ),
        (Some(rate), None) => format!("Burning {rate:.1}%/h"),
        _ => "Burn rate: not enough readings yet".to_owned(),
    }
}

fn claude_settings() -> Option<std::path::PathBuf> {
    crate::connect::default_settings_path()
}

pub fn create<R: Runtime>(app: &AppHandle<R>, state: &ProxyState) -> tauri::Result<()> {
    let proxy_url = format!("http://{}", state.listen);
    let snapshot = state.core.quota.snapshot();
    let quota = MenuItem::with_id(app, "quota", quota_line(&snapshot), false, None::<&str>)?;
    let burn = MenuItem::with_id(app, "burn", burn_line(&snapshot), false, None::<&str>)?;
    let current = state.core.mode.get();
    let modes: Vec<CheckMenuItem<R>> = MODES
        .iter()
        .map(|(mode, label)| {
            CheckMenuItem::with_id(
                app,
                format!("mode:{}", mode.name()),
                *label,
                true,
                *mode == current,
                None::<&str>,
            )
        })
        .collect::<tauri::Result<_>>()?;
    let route = MenuItem::with_id(app, "route", "Last route: none yet", false, None::<&str>)?;
    let settings = MenuItem::with_id(app, "settings", "Open settings…", true, None::<&str>)?;
    let connected = claude_settings().is_some_and(|p| crate::connect::is_connected(&p, &proxy_url));
    let connect = CheckMenuItem::with_id(
        app,
        "connect",
        "Connect Claude Code",
        true,
        connected,
        None::<&str>,
    )?;
    let copy = MenuItem::with_id(
        app,
        "copy",
        format!("Copy proxy address ({proxy_url})"),
        true,
        None::<&str>,
    )?;
    let autostart_on = app.autolaunch().is_enabled().unwrap_or(false);
    let autostart = CheckMenuItem::with_id(
        app,
        "autostart",
        "Start at login",
        true,
        autostart_on,
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let separator = || PredefinedMenuItem::separator(app);
    let (s1, s2, s3) = (separator()?, separator()?, separator()?);
    let mut items: Vec<&dyn tauri::menu::IsMenuItem<R>> = vec![&quota, &burn, &s1];
    for mode in &modes {
        items.push(mode);
    }
    items.extend([
        &route as &dyn tauri::menu::IsMenuItem<R>,
        &s2,
        &settings,
        &connect,
        &copy,
        &autostart,
        &s3,
        &quit,
    ]);
    let menu = Menu::with_items(app, &items)?;

    let menu_state = state.clone();
    let mode_items = modes.clone();
    let connect_item = connect.clone();
    let url = proxy_url.clone();
    TrayIconBuilder::with_id(TRAY)
        .icon(icon(snapshot.state)?)
        .tooltip(format!("PAI Orchestrator — {}", quota_line(&snapshot)))
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                super::open_settings(tray.app_handle());
            }
        })
        .on_menu_event(move |app, event| match event.id().as_ref() {
            "settings" => super::open_settings(app),
            "copy" => {
                if let Err(error) = app.clipboard().write_text(url.clone()) {
                    tracing::warn!(%error, "cannot copy to the clipboard");
                }
            }
            "connect" => {
                let Some(path) = claude_settings() else {
                    return;
                };
                let data_dir = menu_state.data_dir.clone();
                let result = if crate::connect::is_connected(&path, &url) {
                    crate::connect::disconnect(&path, &data_dir, &url).map(|_| ())
                } else {
                    crate::connect::connect(
                        &path,
                        &data_dir,
                        &url,
                        crate::statusline::command(None).as_deref(),
                    )
                    .map(|_| ())
                };
                if let Err(error) = result {
                    tracing::warn!(%error, "cannot change Claude Code's settings");
                }
                let _ = connect_item.set_checked(crate::connect::is_connected(&path, &url));
            }
            "autostart" => {
                let launcher = app.autolaunch();
                let enabled = launcher.is_enabled().unwrap_or(false);
                let result = if enabled {
                    launcher.disable()
                } else {
                    launcher.enable()
                };
                if let Err(error) = result {
                    tracing::warn!(%error, "cannot change start at login");
                }
                show_autostart(app);
            }
            "quit" => app.exit(0),
            id => {
                if let Some(mode) = id
                    .strip_prefix("mode:")
                    .and_then(|name| name.parse::<Mode>().ok())
                {
                    menu_state.core.mode.set(mode);
                    show_mode(&mode_items, mode);
                }
            }
        })
        .build(app)?;
    app.manage(AutostartItem(autostart));
    follow(app.clone(), state.clone(), quota, burn, route, modes);
    Ok(())
}

/// The menu's "Start at login", kept so that a change made elsewhere (the settings
/// window) shows in the menu too.
struct AutostartItem<R: Runtime>(CheckMenuItem<R>);

/// Shows in the menu whether the app starts at login, as the system says it now.
pub fn show_autostart<R: Runtime>(app: &AppHandle<R>) {
    if let Some(item) = app.try_state::<AutostartItem<R>>() {
        let _ = item
            .0
            .set_checked(app.autolaunch().is_enabled().unwrap_or(false));
    }
}

/// Checks the mode in force and only it (GTK toggles a clicked item by itself).
fn show_mode<R: Runtime>(items: &[CheckMenuItem<R>], mode: Mode) {
    for (item, m) in items.iter().zip(MODES.iter().map(|(m, _)| *m)) {
        let _ = item.set_checked(m == mode);
    }
}

/// Keeps the icon, tooltip and labels in step with the quota and the last route.
fn follow<R: Runtime>(
    app: AppHandle<R>,
    state: ProxyState,
    quota: MenuItem<R>,
    burn: MenuItem<R>,
    route: MenuItem<R>,
    modes: Vec<CheckMenuItem<R>>,
) {
    tauri::async_runtime::spawn(async move {
        let mut mode = state.core.mode.subscribe();
        let mut snapshots = state.core.quota.subscribe();
        let mut routes = state.core.last_route.subscribe();
        let mut loads = state.core.health.loads();
        loop {
            tokio::select! {
                changed = mode.changed() => {
                    if changed.is_err() { return; }
                    let now = *mode.borrow_and_update();
                    show_mode(&modes, now);
                }
                changed = snapshots.changed() => {
                    if changed.is_err() { return; }
                    let snapshot = snapshots.borrow_and_update().clone();
                    let _ = quota.set_text(quota_line(&snapshot));
                    let _ = burn.set_text(burn_line(&snapshot));
                    if let Some(tray) = app.tray_by_id(TRAY) {
                        if let Ok(image) = icon(snapshot.state) {
                            let _ = tray.set_icon(Some(image));
                        }
                        let _ = tray.set_tooltip(Some(format!("PAI Orchestrator — {}", quota_line(&snapshot))));
                    }
                }
                changed = routes.changed() => {
                    if changed.is_err() { return; }
                    if let Some(last) = routes.borrow_and_update().clone() {
                        let _ = route.set_text(format!("Last route: {last}"));
                    }
                }
                changed = loads.changed() => {
                    if changed.is_err() { return; }
                    let now = loads.borrow_and_update().clone();
                    // While a model loads, its line says so; then the last route again.
                    let text = match now.iter().next() {
                        Some((provider, loading)) => format!(
                            "Loading {} in {provider} ({} tokens of context)…",
                            loading.model, loading.context_length
                        ),
                        None => match state.core.last_route.borrow().clone() {
                            Some(last) => format!("Last route: {last}"),
                            None => "Last route: none yet".to_owned(),
                        },
                    };
                    let _ = route.set_text(text);
                }
            }
        }
    });
}

/// On the very first run, start at login is turned on (the user can turn it off in the
/// menu); afterwards their choice stands.
pub fn first_run_autostart<R: Runtime>(app: &AppHandle<R>, data_dir: &Path) {
    let marker = data_dir.join("autostart-asked");
    if marker.exists() {
        return;
    }
    if let Err(error) = app.autolaunch().enable() {
        tracing::warn!(%error, "cannot turn on start at login");
    }
    let _ = pai_core::fsutil::write_atomic(&marker, b"1\n");
    crate::app::notifications::first_run(app);
}
