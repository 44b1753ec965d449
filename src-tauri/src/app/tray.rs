//! The tray icon and its menu.

use std::net::SocketAddr;

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Runtime};

const QUIT: &str = "quit";

pub fn create<R: Runtime>(app: &AppHandle<R>, proxy_addr: SocketAddr) -> tauri::Result<()> {
    let address = MenuItem::with_id(
        app,
        "address",
        format!("Proxy: http://{proxy_addr}"),
        false,
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(app, QUIT, "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&address, &quit])?;
    TrayIconBuilder::with_id("main")
        .icon(Image::from_bytes(include_bytes!(
            "../../../icons/tray-unknown.png"
        ))?)
        .tooltip("PAI Orchestrator")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| {
            if event.id().as_ref() == QUIT {
                app.exit(0);
            }
        })
        .build(app)?;
    Ok(())
}
