//! The tray (menu bar) icon: the engine's state, Start, Stop, Open and Quit. Where the
//! desktop has no tray (no StatusNotifier host), the app runs without one.

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Wry};

use crate::desktop::Desktop;

/// The tray's state line, kept to be updated.
pub struct TrayState(pub MenuItem<Wry>);

pub fn install(app: &AppHandle) -> tauri::Result<()> {
    let state = MenuItem::with_id(app, "state", "Engine: stopped", false, None::<&str>)?;
    let start = MenuItem::with_id(app, "start", "Start", true, None::<&str>)?;
    let stop = MenuItem::with_id(app, "stop", "Stop", true, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Berth", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&state, &separator, &start, &stop, &open, &quit])?;
    let mut tray = TrayIconBuilder::with_id("berth").tooltip("Berth").menu(&menu);
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.on_menu_event(|app, event| {
        let desktop = app.state::<Desktop>();
        let result = match event.id().as_ref() {
            "start" => desktop.begin_start(app.clone()),
            "stop" => desktop.begin_stop(app.clone()),
            "open" => {
                if let Some(window) = app.get_webview_window("main") {
                    let _ = window.show();
                    let _ = window.unminimize();
                    let _ = window.set_focus();
                }
                Ok(())
            }
            "quit" => {
                app.exit(0);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(err) = result {
            tracing::warn!(error = %err.message, "tray action refused");
        }
    })
    .build(app)?;
    app.manage(TrayState(state));
    Ok(())
}
