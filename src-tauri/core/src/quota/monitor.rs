//! The running quota monitor: sources feed the tracker; one task publishes the snapshot
//! (state file first, then the `watch`), and emits an event on every change of state.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode};
use tokio::sync::{broadcast, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::tracker::{Freshness, Tracker};
use super::{headers, QuotaEvent, QuotaSnapshot, Reading, Source, Window};
use crate::config::QuotaConfig;
use crate::fsutil;
use crate::store::{QuotaRow, Recorder};

/// A reading goes to the history at most this often per window, unless it moved by more
/// than [`HISTORY_MIN_CHANGE`] points.
const HISTORY_EVERY: chrono::Duration = chrono::Duration::seconds(60);
const HISTORY_MIN_CHANGE: f64 = 1.0;

/// Cheap to clone; every clone is the same monitor.
#[derive(Clone)]
pub struct QuotaMonitor {
    shared: Arc<Shared>,
}

struct Shared {
    tracker: Mutex<Tracker>,
    snapshot: watch::Sender<QuotaSnapshot>,
    events: broadcast::Sender<QuotaEvent>,
    wake: Notify,
    state_file: Mutex<PathBuf>,
    recorder: Option<Recorder>,
    last_persisted: Mutex<HashMap<Window, (DateTime<Utc>, f64)>>,
}

fn freshness(config: &QuotaConfig) -> Freshness {
    let secs = |d: std::time::Duration| chrono::Duration::seconds(d.as_secs() as i64);
    Freshness {
        headers: secs(config.header_ttl),
        dashboard: secs(config.dashboard_ttl),
        usage_api: config
            .usage_api
            .as_ref()
            .map_or(chrono::Duration::minutes(15), |u| secs(u.interval) * 3),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent even if a holder panicked: recover the guard.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl QuotaMonitor {
    pub fn new(config: &QuotaConfig, recorder: Option<Recorder>) -> QuotaMonitor {
        let (snapshot, _) = watch::channel(QuotaSnapshot::default());
        let (events, _) = broadcast::channel(64);
        QuotaMonitor {
            shared: Arc::new(Shared {
                tracker: Mutex::new(Tracker::new(config.thresholds, freshness(config))),
                snapshot,
                events,
                wake: Notify::new(),
                state_file: Mutex::new(config.state_file.clone()),
                recorder,
                last_persisted: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts the publisher and the configured pollers; they stop with `shutdown`.
    pub fn start(&self, config: &QuotaConfig, http: reqwest::Client, shutdown: CancellationToken) {
        tokio::spawn(self.clone().publish_loop(shutdown.clone()));
        if let Some(url) = &config.poll_url {
            tokio::spawn(super::dashboard::poll(
                self.clone(),
                http.clone(),
                url.clone(),
                config.usage_pointer.clone(),
                config.poll_interval,
                config.dashboard_timeout,
                shutdown.clone(),
            ));
        }
        if let Some(usage) = &config.usage_api {
            tokio::spawn(super::usage_api::poll(
                self.clone(),
                http,
                usage.clone(),
                shutdown,
            ));
        }
    }

    /// Applies edited thresholds and freshness; the state is recomputed at once.
    pub fn reconfigure(&self, config: &QuotaConfig) {
        lock(&self.shared.tracker).reconfigure(config.thresholds, freshness(config));
        *lock(&self.shared.state_file) = config.state_file.clone();
        self.shared.wake.notify_one();
    }

    pub fn subscribe(&self) -> watch::Receiver<QuotaSnapshot> {
        self.shared.snapshot.subscribe()
    }

    pub fn events(&self) -> broadcast::Receiver<QuotaEvent> {
        self.shared.events.subscribe()
    }

    pub fn snapshot(&self) -> QuotaSnapshot {
        self.shared.snapshot.borrow().clone()
    }

    /// What an Anthropic response says of the quota: rate-limit headers, and a 429.
    pub fn observe_response(&self, status: StatusCode, response_headers: &HeaderMap) {
        let now = Utc::now();
        let report = headers::parse(response_headers);
        let rejected = status == StatusCode::TOO_MANY_REQUESTS
            || report.unified_status.as_deref() == Some("rejected");
        if report.readings.is_empty() && !rejected {
            return;
        }
        {
            let mut tracker = lock(&self.shared.tracker);
            tracker.observe(Source::Headers, &report.readings, now);
            if rejected {
                let until = headers::rate_limited_until(response_headers, now);
                tracing::warn!(until = %until, "Anthropic rate-limited a request; quota is critical until then");
                tracker.rate_limited(until);
            }
        }
        self.persist(Source::Headers, &report.readings, now);
        self.shared.wake.notify_one();
    }

    /// Readings from a poller.
    pub(super) fn observe(&self, source: Source, readings: &[Reading]) {
        let now = Utc::now();
        lock(&self.shared.tracker).observe(source, readings, now);
        self.persist(source, readings, now);
        self.shared.wake.notify_one();
    }

    fn persist(&self, source: Source, readings: &[Reading], now: DateTime<Utc>) {
        let Some(recorder) = &self.shared.recorder else {
            return;
        };
        let mut last = lock(&self.shared.last_persisted);
        for reading in readings {
            let due = last.get(&reading.window).is_none_or(|(at, percent)| {
                now - *at >= HISTORY_EVERY
                    || (reading.percent - percent).abs() >= HISTORY_MIN_CHANGE
            });
            if !due {
                continue;
            }
            last.insert(reading.window, (now, reading.percent));
            recorder.quota_reading(QuotaRow {
                at: now,
                source: enum_name(&source),
                window: enum_name(&reading.window),
                percent: reading.percent,
                resets_at: reading.resets_at,
            });
        }
    }

    async fn publish_loop(self, shutdown: CancellationToken) {
        loop {
            let deadline = self.publish().await;
            let wait = deadline
                .and_then(|at| (at - Utc::now()).to_std().ok())
                .unwrap_or(std::time::Duration::from_secs(3600));
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Computes the snapshot; if it changed, writes the state file, then publishes.
    /// Returns when the snapshot will next change by itself.
    async fn publish(&self) -> Option<DateTime<Utc>> {
        let (snapshot, deadline) = {
            let mut tracker = lock(&self.shared.tracker);
            (tracker.snapshot(Utc::now()), tracker.next_deadline())
        };
        let previous = self.shared.snapshot.borrow().clone();
        if snapshot.same_as(&previous) {
            return deadline;
        }
        let path = lock(&self.shared.state_file).clone();
        if let Err(error) = write_state_file(path.clone(), &snapshot).await {
            tracing::warn!(path = %path.display(), %error, "cannot write the quota state file");
        }
        if snapshot.state != previous.state {
            tracing::info!(from = previous.state.name(), to = snapshot.state.name(), reason = %snapshot.reason, "quota state changed");
            let _ = self.shared.events.send(QuotaEvent {
                from: previous.state,
                to: snapshot.state,
                snapshot: snapshot.clone(),
            });
        }
        self.shared.snapshot.send_replace(snapshot);
        deadline
    }
}

fn enum_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn write_state_file(path: PathBuf, snapshot: &QuotaSnapshot) -> std::io::Result<()> {
    let mut json = serde_json::to_vec_pretty(snapshot).map_err(std::io::Error::other)?;
    json.push(b'\n');
    tokio::task::spawn_blocking(move || fsutil::write_atomic(&path, &json))
        .await
        .map_err(std::io::Error::other)?
}
