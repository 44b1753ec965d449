//! What is known of each provider: health from active checks and from what the proxy
//! sees, a circuit breaker, and the models it serves.
//!
//! Breaker: `failures` errors within `window` open it; after `cooldown` one request may
//! probe (half-open); a success closes it, a failure opens it again. Every request holds
//! an [`Admission`] while it is tried: a probe that is neither a success nor a failure
//! (the client hung up, the request did not fit) frees the probe slot when the guard
//! drops, and a probe that takes longer than the cool-down lets another one through — a
//! breaker can never stay half-open for good.

// Hand-written: the breaker is a few lines of state tied to this board's health and
// notifications; the breaker crates on crates.io wrap calls (`call(f)`), which does not
// fit a probe whose outcome is decided after its first streamed event.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::BreakerConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Nothing tried yet.
    Unknown,
    Healthy,
    Unhealthy,
}

/// What a health check learnt of a provider's models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Every model it lists.
    pub models: Vec<String>,
    /// The model it has loaded (LM Studio), used for `model = "auto"`.
    pub loaded: Option<String>,
    /// The loaded model's context window, when it says.
    pub context_window: Option<u32>,
    /// Loaded instances (LM Studio 0.4+): which model, with which context.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Instance>,
    /// What the loaded model can do, when the server says (LM Studio 0.4+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Which API answered: `lmstudio-v1`, `lmstudio-v0`, `models`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
}

/// One loaded instance of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub model: String,
    pub context_length: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub vision: bool,
    pub tool_use: bool,
}

/// A model being loaded for requests that wait for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loading {
    pub model: String,
    pub context_length: u32,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Breaker {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthReport {
    pub health: Health,
    /// Why it is unhealthy, in words (never a secret).
    pub last_error: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub breaker: Breaker,
    pub info: Option<ModelInfo>,
    pub checked_at: Option<DateTime<Utc>>,
    /// The last qualification exam's result.
    pub qualification: Option<super::qualify::Qualification>,
    /// Why the last active health check failed, while it does.
    pub check_failed: Option<String>,
    /// The model being loaded now, if one is.
    #[serde(default)]
    pub loading: Option<Loading>,
}

impl Default for HealthReport {
    fn default() -> Self {
        HealthReport {
            health: Health::Unknown,
            last_error: None,
            since: None,
            breaker: Breaker::Closed,
            info: None,
            checked_at: None,
            qualification: None,
            check_failed: None,
            loading: None,
        }
    }
}

#[derive(Default)]
struct Entry {
    report: HealthReport,
    failures: VecDeque<DateTime<Utc>>,
    opened_at: Option<DateTime<Utc>>,
    /// When the current half-open probe was let through.
    probing: Option<DateTime<Utc>>,
}

struct Board {
    entries: HashMap<String, Entry>,
    breaker: BreakerConfig,
    /// Every change of a provider's health, for notifications.
    events: tokio::sync::broadcast::Sender<(String, Health)>,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            entries: HashMap::new(),
            breaker: BreakerConfig::default(),
            events: tokio::sync::broadcast::channel(32).0,
        }
    }
}

/// Shared, cheap-to-clone health board for all providers.
#[derive(Clone, Default)]
pub struct HealthBoard {
    inner: Arc<Mutex<Board>>,
    /// The loads under way, by provider (the tray and the settings page follow it).
    loads: Arc<tokio::sync::watch::Sender<Loads>>,
}

/// Models being loaded now, by provider.
pub type Loads = std::collections::BTreeMap<String, Loading>;

impl HealthBoard {
    pub fn set_breaker(&self, breaker: BreakerConfig) {
        self.lock().breaker = breaker;
    }

    pub fn report(&self, provider: &str) -> HealthReport {
        let now = Utc::now();
        let mut board = self.lock();
        let cooldown = board.breaker.cooldown;
        match board.entries.get_mut(provider) {
            Some(entry) => {
                refresh_breaker(entry, cooldown, now);
                entry.report.clone()
            }
            None => HealthReport::default(),
        }
    }

    /// Whether a request may go to `provider` now; `Err` says why not. A half-open
    /// breaker lets one probe through at a time (another once the probe has taken longer
    /// than the cool-down). Report the outcome on the guard; dropping it unreported
    /// counts as neither.
    pub fn admit(&self, provider: &str) -> Result<Admission, String> {
        let now = Utc::now();
        let mut board = self.lock();
        let cooldown = board.breaker.cooldown;
        let mut admission = Admission {
            board: self.clone(),
            provider: provider.to_owned(),
            probe: None,
        };
        let Some(entry) = board.entries.get_mut(provider) else {
            return Ok(admission);
        };
        refresh_breaker(entry, cooldown, now);
        let cooldown = chrono::Duration::from_std(cooldown).unwrap_or_default();
        match entry.report.breaker {
            Breaker::Closed => Ok(admission),
            Breaker::HalfOpen if entry.probing.is_none_or(|at| now - at >= cooldown) => {
                entry.probing = Some(now);
                admission.probe = Some(now);
                Ok(admission)
            }
            _ => Err(format!(
                "circuit open after repeated failures ({})",
                entry.report.last_error.as_deref().unwrap_or("errors")
            )),
        }
    }

    /// Frees the half-open probe slot taken at `at` (if it is still that probe's).
    fn release_probe(&self, provider: &str, at: DateTime<Utc>) {
        let mut board = self.lock();
        if let Some(entry) = board.entries.get_mut(provider) {
            if entry.probing == Some(at) {
                entry.probing = None;
            }
        }
    }

    /// Follows changes of health (a provider going down or coming back).
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<(String, Health)> {
        self.lock().events.subscribe()
    }

    pub fn mark_healthy(&self, provider: &str) {
        let mut board = self.lock();
        let events = board.events.clone();
        let entry = board.entries.entry(provider.to_owned()).or_default();
        if entry.report.health != Health::Healthy {
            tracing::info!(provider, "provider is healthy");
            entry.report.since = Some(Utc::now());
            let _ = events.send((provider.to_owned(), Health::Healthy));
        }
        entry.report.health = Health::Healthy;
        entry.report.last_error = None;
        entry.report.breaker = Breaker::Closed;
        entry.failures.clear();
        entry.opened_at = None;
        entry.probing = None;
    }

    pub fn mark_unhealthy(&self, provider: &str, error: String) {
        let now = Utc::now();
        let mut board = self.lock();
        let breaker = board.breaker;
        let events = board.events.clone();
        let entry = board.entries.entry(provider.to_owned()).or_default();
        if entry.report.health != Health::Unhealthy {
            tracing::warn!(provider, %error, "provider is unhealthy");
            entry.report.since = Some(now);
            let _ = events.send((provider.to_owned(), Health::Unhealthy));
        }
        entry.report.health = Health::Unhealthy;
        entry.report.last_error = Some(error);
        entry.failures.push_back(now);
        let window = chrono::Duration::from_std(breaker.window).unwrap_or_default();
        while entry.failures.front().is_some_and(|t| now - *t > window) {
            entry.failures.pop_front();
        }
        let reopen = entry.report.breaker == Breaker::HalfOpen;
        if reopen || entry.failures.len() >= breaker.failures {
            if entry.report.breaker != Breaker::Open {
                tracing::warn!(
                    provider,
                    failures = entry.failures.len(),
                    "circuit breaker opened"
                );
            }
            entry.report.breaker = Breaker::Open;
            entry.opened_at = Some(now);
        }
        entry.probing = None;
    }

    /// Records what a health check learnt.
    pub fn set_info(&self, provider: &str, info: ModelInfo) {
        let mut board = self.lock();
        let entry = board.entries.entry(provider.to_owned()).or_default();
        entry.report.info = Some(info);
        entry.report.checked_at = Some(Utc::now());
        entry.report.check_failed = None;
    }

    /// A health check could not reach the provider: the router skips it until one can.
    pub fn check_failed(&self, provider: &str, error: String) {
        {
            let mut board = self.lock();
            let entry = board.entries.entry(provider.to_owned()).or_default();
            entry.report.checked_at = Some(Utc::now());
            entry.report.check_failed = Some(error.clone());
        }
        self.mark_unhealthy(provider, error);
    }

    /// A load began (`Some`) or ended (`None`).
    pub fn set_loading(&self, provider: &str, loading: Option<Loading>) {
        {
            let mut board = self.lock();
            let entry = board.entries.entry(provider.to_owned()).or_default();
            entry.report.loading = loading.clone();
        }
        self.loads.send_modify(|loads| match loading {
            Some(loading) => {
                loads.insert(provider.to_owned(), loading);
            }
            None => {
                loads.remove(provider);
            }
        });
    }

    /// The loads under way now and every change to them.
    pub fn loads(&self) -> tokio::sync::watch::Receiver<Loads> {
        self.loads.subscribe()
    }

    pub fn set_qualification(&self, qualification: super::qualify::Qualification) {
        let mut board = self.lock();
        let entry = board
            .entries
            .entry(qualification.provider.clone())
            .or_default();
        entry.report.qualification = Some(qualification);
    }

    fn lock(&self) -> MutexGuard<'_, Board> {
        // A panic while holding this lock cannot leave the map inconsistent: recover it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn refresh_breaker(entry: &mut Entry, cooldown: Duration, now: DateTime<Utc>) {
    if entry.report.breaker == Breaker::Open {
        let cooldown = chrono::Duration::from_std(cooldown).unwrap_or_default();
        if entry.opened_at.is_some_and(|at| now - at >= cooldown) {
            entry.report.breaker = Breaker::HalfOpen;
            entry.probing = None;
        }
    }
}

/// A request let through to a provider. Say how it went with [`Admission::succeeded`] or
/// [`Admission::failed`]; dropped without either (cancelled, or the request did not fit),
/// it only frees the half-open probe slot it may hold.
#[must_use = "report the outcome, or drop the admission to count it as neither"]
pub struct Admission {
    board: HealthBoard,
    provider: String,
    /// When this request was let through as the half-open probe.
    probe: Option<DateTime<Utc>>,
}

impl Admission {
    /// The provider answered properly: healthy, breaker closed.
    pub fn succeeded(mut self) {
        self.probe = None;
        self.board.mark_healthy(&self.provider);
    }

    /// The provider failed this request: counts against its breaker.
    pub fn failed(mut self, error: String) {
        self.probe = None;
        self.board.mark_unhealthy(&self.provider, error);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(at) = self.probe.take() {
            self.board.release_probe(&self.provider, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_repeated_failures_and_a_probe_closes_it() {
        let board = HealthBoard::default();
        board.set_breaker(BreakerConfig {
            failures: 2,
            window: Duration::from_secs(60),
            cooldown: Duration::ZERO,
        });
        assert!(board.admit("p").is_ok());
        board.mark_unhealthy("p", "HTTP 500".into());
        assert_eq!(board.report("p").breaker, Breaker::Closed);
        board.mark_unhealthy("p", "HTTP 500".into());
        // Cool-down of zero: half-open at once.
        assert_eq!(board.report("p").breaker, Breaker::HalfOpen);
        board.admit("p").unwrap().failed("still down".into());
        let probe = board
            .admit("p")
            .expect("half-open again after the cool-down");
        probe.succeeded();
        assert_eq!(board.report("p").breaker, Breaker::Closed);
        let (_a, _b) = (board.admit("p").unwrap(), board.admit("p").unwrap());
    }

    fn half_open_board() -> HealthBoard {
        let board = HealthBoard::default();
        board.set_breaker(BreakerConfig {
            failures: 1,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(3600),
        });
        board.mark_unhealthy("p", "HTTP 529".into());
        let mut inner = board.lock();
        let entry = inner.entries.get_mut("p").unwrap();
        entry.opened_at = Some(Utc::now() - chrono::Duration::hours(2));
        drop(inner);
        assert_eq!(board.report("p").breaker, Breaker::HalfOpen);
        board
    }

    #[test]
    fn one_probe_at_a_time_and_a_cancelled_probe_frees_the_slot() {
        let board = half_open_board();
        let probe = board.admit("p").unwrap();
        assert!(board.admit("p").err().unwrap().contains("circuit open"));
        // The client hung up: neither success nor failure.
        drop(probe);
        assert_eq!(board.report("p").breaker, Breaker::HalfOpen);
        board
            .admit("p")
            .expect("the next request probes")
            .succeeded();
        assert_eq!(board.report("p").breaker, Breaker::Closed);
    }

    #[test]
    fn a_probe_that_never_ends_lets_another_through_after_the_cool_down() {
        let board = half_open_board();
        let stuck = board.admit("p").unwrap();
        std::mem::forget(stuck);
        let mut inner = board.lock();
        let entry = inner.entries.get_mut("p").unwrap();
        entry.probing = Some(Utc::now() - chrono::Duration::hours(2));
        drop(inner);
        board
            .admit("p")
            .expect("a new probe after the cool-down")
            .succeeded();
        assert_eq!(board.report("p").breaker, Breaker::Closed);
    }

    #[test]
    fn an_open_breaker_waits_for_its_cool_down() {
        let board = HealthBoard::default();
        board.set_breaker(BreakerConfig {
            failures: 1,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(3600),
        });
        board.mark_unhealthy("p", "refused".into());
        assert_eq!(board.report("p").breaker, Breaker::Open);
        assert!(board.admit("p").is_err());
    }
}
