//! Shows what the core decides to notify: quota changes (debounced), providers going down
//! or coming back.

use std::time::{Duration, Instant};

use tauri::{AppHandle, Runtime};
use tauri_plugin_notification::NotificationExt;

use pai_core::notify::{Debouncer, Kind, Notification};
use pai_core::providers::Health;
use pai_server::ProxyState;

fn show<R: Runtime>(app: &AppHandle<R>, notification: &Notification) {
    let shown = app
        .notification()
        .builder()
        .title(&notification.title)
        .body(&notification.body)
        .show();
    if let Err(error) = shown {
        tracing::debug!(%error, "cannot show a notification");
    }
}

pub fn start<R: Runtime>(app: AppHandle<R>, state: ProxyState) {
    tauri::async_runtime::spawn(async move {
        let mut quota = state.core.quota.events();
        let mut caps = state.core.quota.cap_events();
        let mut health = state.core.health.events();
        let mut demotions = state.core.outcomes.demotions();
        let window = Duration::from_secs(state.config().notifications.debounce_secs);
        let mut debouncer = Debouncer::new(window);
        let mut ticks = tokio::time::interval(Duration::from_secs(5));
        let mut waiting = state.core.queue.waiting();
        let mut most_waiting = 0usize;
        loop {
            let settings = state.config().notifications.clone();
            let now = Instant::now();
            let ready = tokio::select! {
                event = quota.recv() => match event {
                    Ok(event) if settings.quota => debouncer.quota(&event, &state.config(), now).into_iter().collect(),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Vec::new(),
                    Err(_) => return,
                },
                event = caps.recv() => match event {
                    Ok(event) if settings.quota => vec![debouncer.cap(&event, &state.config())],
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Vec::new(),
                    Err(_) => return,
                },
                event = health.recv() => match event {
                    Ok((provider, health)) if settings.providers => {
                        let (title, body) = match health {
                            Health::Unhealthy => (format!("{provider} is down"), "Requests go to the next target in the chain.".to_owned()),
                            _ => (format!("{provider} is back"), "It takes requests again.".to_owned()),
                        };
                        debouncer.other(Notification { kind: Kind::Provider, title, body }, now).into_iter().collect()
                    }
                    _ => Vec::new(),
                },
                event = demotions.recv() => match event {
                    Ok(demotion) if settings.providers => debouncer
                        .other(pai_core::notify::demotion_notification(&demotion), now)
                        .into_iter()
                        .collect(),
                    _ => Vec::new(),
                },
                changed = waiting.changed() => {
                    if changed.is_err() { return; }
                    let now_waiting = *waiting.borrow_and_update();
                    most_waiting = most_waiting.max(now_waiting);
                    if now_waiting == 0 && most_waiting > 0 && settings.queue {
                        let released = std::mem::take(&mut most_waiting);
                        debouncer.other(pai_core::notify::released_notification(released), now).into_iter().collect()
                    } else {
                        Vec::new()
                    }
                }
                _ = ticks.tick() => debouncer.due(now),
            };
            for notification in ready {
                show(&app, &notification);
            }
        }
    });
}

/// Tells the user, once, that the app starts at login and how to change it.
pub fn first_run<R: Runtime>(app: &AppHandle<R>) {
    show(
        app,
        &Notification {
            kind: Kind::Queue,
            title: "PAI Orchestrator starts at login".to_owned(),
            body: "It sits in the tray and keeps Claude Code working. Turn this off with \"Start at login\" in its menu.".to_owned(),
        },
    );
}
