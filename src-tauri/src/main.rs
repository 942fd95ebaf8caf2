//! Berth Desktop: a window over berth-host. The Rust side only wires Tauri commands and
//! events to berth-host; the UI (ui/) renders the state it is sent.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod desktop;
mod tray;

use tauri::Manager;

/// WebKit takes the page's language (`navigator.language`) from the locale; with the
/// C/POSIX locale it says "C", which JavaScript's Intl (date formats in the charts)
/// refuses. Such a session gets a valid default; any real locale is kept.
fn ensure_a_language() {
    let set = ["LC_ALL", "LC_MESSAGES", "LANG"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    let plain = set.as_deref().map(|v| v.split(['.', '@']).next().unwrap_or(v)).is_none_or(|v| v == "C" || v == "POSIX");
    if plain {
        // Before any thread starts: nothing else reads the environment yet.
        std::env::set_var("LC_ALL", "en_US.UTF-8");
    }
}

fn main() {
    ensure_a_language();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .manage(desktop::Desktop::new(berth_host::home::BerthHome::from_env(), std::env::var("BERTH_HOST").ok()))
        .setup(|app| {
            desktop::watch(app.handle().clone());
            desktop::follow_events(app.handle().clone());
            if let Err(err) = tray::install(app.handle()) {
                tracing::warn!(error = %err, "no tray icon");
            }
            Ok(())
        })
        // The same list as berth_host::ui::names::Command (checked by `cargo xtask codegen --check`).
        .invoke_handler(tauri::generate_handler![
            commands::vm_state,
            commands::start_vm,
            commands::stop_vm,
            commands::engine_target,
            commands::list_containers,
            commands::container_action,
            commands::remove_containers,
            commands::run_image,
            commands::list_images,
            commands::pull_image,
            commands::remove_image,
            commands::tag_image,
            commands::list_volumes,
            commands::create_volume,
            commands::remove_volume,
            commands::list_networks,
            commands::create_network,
            commands::remove_network,
            commands::list_compose_projects,
            commands::add_compose_project,
            commands::forget_compose_project,
            commands::compose_up,
            commands::compose_down,
            commands::compose_pull,
            commands::read_settings,
            commands::apply_settings,
            commands::registry_login,
            commands::registry_logout,
            commands::write_diagnostics,
            commands::reset_vm,
            commands::watch_stats,
            commands::open_terminal,
            commands::terminal_input,
            commands::terminal_resize,
            commands::close_stream,
            commands::image_history,
            commands::push_image,
            commands::prune_images,
            commands::prune_volumes,
            commands::clone_volume,
            commands::export_volume,
            commands::import_volume,
            commands::volume_files,
            commands::volume_preview,
            commands::connect_network,
            commands::disconnect_network,
            commands::follow_logs,
            commands::save_logs,
            commands::cancel_pull,
            commands::inspect_container,
            commands::inspect_network,
            commands::open_url,
            commands::choose_path,
            commands::compose_build,
            commands::search_images,
        ])
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(err) => {
            eprintln!("berth-desktop: cannot start: {err}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            // Like Docker Desktop: quitting the app stops the VM it started.
            let desktop = handle.state::<desktop::Desktop>();
            tauri::async_runtime::block_on(desktop.shutdown());
        }
    });
}
