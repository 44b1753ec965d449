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
use super::{headers, CapEvent, QuotaEvent, QuotaSnapshot, Reading, Source};
use crate::config::QuotaConfig;
use crate::fsutil;
use crate::store::{QuotaRow, Recorder};

/// A reading goes to the history at most this often per window, unless it moved by more
/// than [`HISTORY_MIN_CHANGE`] points.
const HISTORY_EVERY: chrono::Duration = chrono::Duration::seconds(60);
const HISTORY_MIN_CHANGE: f64 = 1.0;

/// The largest state file read back at start.
const STATE_FILE_LIMIT: u64 = 4 << 20;

/// Cheap to clone; every clone is the same monitor.
#[derive(Clone)]
pub struct QuotaMonitor {
    shared: Arc<Shared>,
}

struct Shared {
    tracker: Mutex<Tracker>,
    snapshot: watch::Sender<QuotaSnapshot>,
    events: broadcast::Sender<QuotaEvent>,
    caps: broadcast::Sender<CapEvent>,
    wake: Notify,
    state_file: Mutex<PathBuf>,
    recorder: Option<Recorder>,
    last_persisted: Mutex<HashMap<super::burn::WindowKey, (DateTime<Utc>, f64)>>,
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
                tracker: Mutex::new({
                    let mut tracker = Tracker::new(config.thresholds, freshness(config));
                    tracker.allow_extra_usage(config.allow_extra_usage);
                    tracker
                }),
                snapshot,
                events,
                caps: broadcast::channel(16).0,
                wake: Notify::new(),
                state_file: Mutex::new(config.state_file.clone()),
                recorder,
                last_persisted: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Takes up what the previous run wrote to the state file (a block until 22:03 is
    /// still a block after a restart). A file that is missing, not a regular file or not
    /// a snapshot is ignored: it is only what the last run knew.
    pub fn restore_from_state_file(&self) {
        let path = lock(&self.shared.state_file).clone();
        let Some(previous) = fsutil::read_regular(&path, STATE_FILE_LIMIT)
            .and_then(|text| serde_json::from_slice::<QuotaSnapshot>(&text).ok())
        else {
            return;
        };
        lock(&self.shared.tracker).restore(&previous, Utc::now());
        let snapshot = {
            self.refresh();
            self.snapshot()
        };
        if snapshot.state != crate::types::QuotaState::Unknown {
            tracing::info!(state = snapshot.state.name(), reason = %snapshot.reason, "quota taken up from the last run's state file");
        }
    }

    /// Starts the publisher and the configured pollers; they stop with `shutdown`.
    pub fn start(&self, config: &QuotaConfig, http: crate::net::Http, shutdown: CancellationToken) {
        tokio::spawn(self.clone().publish_loop(shutdown.clone()));
        if let Some(url) = &config.poll_url {
            tokio::spawn(super::dashboard::poll(
                self.clone(),
                http.clone(),
                super::dashboard::Dashboard {
                    url: url.clone(),
                    usage_pointer: config.usage_pointer.clone(),
                    reset_pointer: config.reset_pointer.clone(),
                    interval: config.poll_interval,
                    timeout: config.dashboard_timeout,
                },
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
        {
            let mut tracker = lock(&self.shared.tracker);
            tracker.reconfigure(config.thresholds, freshness(config));
            tracker.allow_extra_usage(config.allow_extra_usage);
        }
        *lock(&self.shared.state_file) = config.state_file.clone();
        self.refresh();
        self.shared.wake.notify_one();
    }

    pub fn subscribe(&self) -> watch::Receiver<QuotaSnapshot> {
        self.shared.snapshot.subscribe()
    }

    pub fn events(&self) -> broadcast::Receiver<QuotaEvent> {
        self.shared.events.subscribe()
    }

    /// Follows model families capped and freed.
    pub fn cap_events(&self) -> broadcast::Receiver<CapEvent> {
        self.shared.caps.subscribe()
    }

    pub fn snapshot(&self) -> QuotaSnapshot {
        self.shared.snapshot.borrow().clone()
    }

    /// What an Anthropic response says of the quota: rate-limit headers, and a 429.
    /// `model` is the model that was asked: a refusal scoped to it blocks its family.
    pub fn observe_response(
        &self,
        status: StatusCode,
        response_headers: &HeaderMap,
        model: Option<&str>,
    ) {
        let now = Utc::now();
        let mut report = headers::parse(response_headers);
        let refused = status == StatusCode::TOO_MANY_REQUESTS;
        if report.readings.is_empty() && report.overage.is_none() && !refused {
            return;
        }
        {
            let mut tracker = lock(&self.shared.tracker);
            tracker.observe(Source::Headers, &report.readings, now);
            if let Some(overage) = report.overage.take() {
                tracker.observe_overage(Source::Headers, overage, now);
            }
            if refused {
                let rejection = headers::rejection(&report, response_headers, model, now);
                match &rejection.scope {
                    Some(family) => {
                        tracing::warn!(family, until = %rejection.until, "Anthropic refused a model family; its targets are skipped until then")
                    }
                    None => {
                        tracing::warn!(until = %rejection.until, "Anthropic rate-limited a request; quota is critical until then")
                    }
                }
                tracker.rejected(rejection);
            }
        }
        self.persist(Source::Headers, &report.readings, now);
        self.refresh();
        if refused {
            // A block must survive a crash that comes right after it: written now, not
            // when the publisher gets to it.
            self.write_state_file_now();
        }
        self.shared.wake.notify_one();
    }

    /// Writes the state file at once, from the calling thread.
    fn write_state_file_now(&self) {
        let path = lock(&self.shared.state_file).clone();
        let snapshot = self.snapshot();
        let written = serde_json::to_vec_pretty(&snapshot)
            .map_err(std::io::Error::other)
            .and_then(|mut json| {
                json.push(b'\n');
                fsutil::write_atomic(&path, &json)
            });
        if let Err(error) = written {
            tracing::warn!(path = %path.display(), %error, "cannot write the quota state file");
        }
    }

    /// Readings from a poller, and what it says of extra usage.
    pub(super) fn observe(
        &self,
        source: Source,
        readings: &[Reading],
        overage: Option<headers::OverageReport>,
    ) {
        let now = Utc::now();
        {
            let mut tracker = lock(&self.shared.tracker);
            tracker.observe(source, readings, now);
            if let Some(overage) = overage {
                tracker.observe_overage(source, overage, now);
            }
        }
        self.persist(source, readings, now);
        self.refresh();
        self.shared.wake.notify_one();
    }

    fn persist(&self, source: Source, readings: &[Reading], now: DateTime<Utc>) {
        let Some(recorder) = &self.shared.recorder else {
            return;
        };
        let mut last = lock(&self.shared.last_persisted);
        for reading in readings {
            let key = (reading.window, reading.scope.clone());
            let due = last.get(&key).is_none_or(|(at, percent)| {
                now - *at >= HISTORY_EVERY
                    || (reading.percent - percent).abs() >= HISTORY_MIN_CHANGE
            });
            if !due {
                continue;
            }
            let window = match &reading.scope {
                None => enum_name(&reading.window),
                Some(family) => format!("{}-{family}", enum_name(&reading.window)),
            };
            last.insert(key, (now, reading.percent));
            recorder.quota_reading(QuotaRow {
                at: now,
                source: enum_name(&source),
                window,
                percent: reading.percent,
                resets_at: reading.resets_at,
            });
        }
    }

    /// Keeps the snapshot current as time passes (a reading going stale, a reset) and
    /// writes the state file whenever the snapshot changed.
    async fn publish_loop(self, shutdown: CancellationToken) {
        let mut written: Option<QuotaSnapshot> = None;
        loop {
            let deadline = self.refresh();
            let snapshot = self.snapshot();
            if written.as_ref().is_none_or(|w| !snapshot.same_as(w)) {
                let path = lock(&self.shared.state_file).clone();
                if let Err(error) = write_state_file(path.clone(), &snapshot).await {
                    tracing::warn!(path = %path.display(), %error, "cannot write the quota state file");
                }
                written = Some(snapshot);
            }
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

    /// Computes the snapshot and, if it changed, publishes it at once (what the next
    /// request and `/health` see) with its events; the state file follows in the
    /// background. Returns when the snapshot will next change by itself.
    fn refresh(&self) -> Option<DateTime<Utc>> {
        let (snapshot, deadline) = {
            let mut tracker = lock(&self.shared.tracker);
            (tracker.snapshot(Utc::now()), tracker.next_deadline())
        };
        let mut previous = None;
        self.shared.snapshot.send_if_modified(|current| {
            if snapshot.same_as(current) {
                return false;
            }
            previous = Some(std::mem::replace(current, snapshot.clone()));
            true
        });
        if let Some(previous) = previous {
            if snapshot.state != previous.state {
                tracing::info!(from = previous.state.name(), to = snapshot.state.name(), reason = %snapshot.reason, "quota state changed");
                let _ = self.shared.events.send(QuotaEvent {
                    from: previous.state,
                    to: snapshot.state,
                    snapshot: snapshot.clone(),
                });
            }
            for change in cap_changes(&previous, &snapshot) {
                tracing::info!(family = %change.cap.family, reached = change.reached, reason = %change.cap.reason, "model family cap changed");
                let _ = self.shared.caps.send(change);
            }
        }
        deadline
    }
}

/// Caps reached in `now` that were not in `before`, and caps of `before` lifted.
fn cap_changes(before: &QuotaSnapshot, now: &QuotaSnapshot) -> Vec<CapEvent> {
    let reached = now
        .caps
        .iter()
        .filter(|cap| !before.caps.iter().any(|b| b.family == cap.family))
        .map(|cap| CapEvent {
            cap: cap.clone(),
            reached: true,
        });
    let lifted = before
        .caps
        .iter()
        .filter(|cap| !now.caps.iter().any(|n| n.family == cap.family))
        .map(|cap| CapEvent {
            cap: cap.clone(),
            reached: false,
        });
    reached.chain(lifted).collect()
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
