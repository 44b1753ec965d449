//! What is known of each provider: health from active checks and from what the proxy
//! sees, a circuit breaker, and the models it serves.
//!
//! Breaker: `failures` errors within `window` open it; after `cooldown` one request may
//! probe (half-open); a success closes it, a failure opens it again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
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
        }
    }
}

/// Breaker settings.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    pub failures: usize,
    pub window: Duration,
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 3,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Default)]
struct Entry {
    report: HealthReport,
    failures: VecDeque<DateTime<Utc>>,
    opened_at: Option<DateTime<Utc>>,
    probing: bool,
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
}

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
    /// breaker lets one probe through at a time.
    pub fn admit(&self, provider: &str) -> Result<(), String> {
        let now = Utc::now();
        let mut board = self.lock();
        let cooldown = board.breaker.cooldown;
        let Some(entry) = board.entries.get_mut(provider) else {
            return Ok(());
        };
        refresh_breaker(entry, cooldown, now);
        match entry.report.breaker {
            Breaker::Closed => Ok(()),
            Breaker::HalfOpen if !entry.probing => {
                entry.probing = true;
                Ok(())
            }
            _ => Err(format!(
                "circuit open after repeated failures ({})",
                entry.report.last_error.as_deref().unwrap_or("errors")
            )),
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
        entry.probing = false;
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
        entry.probing = false;
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
            entry.probing = false;
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
        // Cool-down of zero: half-open at once; one probe at a time.
        assert_eq!(board.report("p").breaker, Breaker::HalfOpen);
        assert!(board.admit("p").is_ok());
        assert!(board.admit("p").unwrap_err().contains("circuit open"));
        board.mark_unhealthy("p", "still down".into());
        assert!(
            board.admit("p").is_ok(),
            "half-open again after the cool-down"
        );
        board.mark_healthy("p");
        assert_eq!(board.report("p").breaker, Breaker::Closed);
        assert!(board.admit("p").is_ok());
        assert!(board.admit("p").is_ok());
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
