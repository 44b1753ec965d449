//! Quota monitor: how much of the Claude quota is used, as one shared snapshot.
//!
//! Sources (each optional): a dashboard polled over HTTP, the rate-limit headers on every
//! Anthropic response the proxy relays, 429s, and (opt-in) Anthropic's OAuth usage
//! endpoint. [`tracker`] merges them into one [`QuotaSnapshot`]; [`monitor`] publishes it on
//! a `watch` that every consumer (router, tray, `/health`) reads, writes it to the state
//! file, and emits a [`QuotaEvent`] on every change of state.
//!
//! Imports: `config`, `store` (the history), `net`, `fsutil`, `types`; never providers
//! or the router: the pipeline hands it the responses it reads.

mod burn;
mod dashboard;
pub mod headers;
mod level;
mod monitor;
pub mod tracker;
mod usage_api;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use monitor::QuotaMonitor;

use crate::types::QuotaState;

/// Which quota a reading measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Window {
    /// The subscription's rolling 5-hour window.
    #[serde(rename = "5h")]
    FiveHour,
    /// The subscription's weekly window.
    #[serde(rename = "7d")]
    SevenDay,
    /// Whatever the dashboard measures.
    #[serde(rename = "dashboard")]
    Dashboard,
    /// An API key's per-minute limits.
    #[serde(rename = "api-key")]
    ApiKey,
}

impl Window {
    pub fn describe(self) -> &'static str {
        match self {
            Window::FiveHour => "5h window",
            Window::SevenDay => "7d window",
            Window::Dashboard => "dashboard",
            Window::ApiKey => "API-key limit",
        }
    }
}

/// Where a reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Headers,
    Dashboard,
    UsageApi,
}

/// One measurement of one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub window: Window,
    /// Percent used; can exceed 100 when over the limit.
    pub percent: f64,
    pub resets_at: Option<DateTime<Utc>>,
}

/// A fresh reading as shown in the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadingView {
    pub window: Window,
    pub source: Source,
    pub percent: f64,
    pub resets_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// What the quota monitor currently knows; every consumer reads this one value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaSnapshot {
    pub state: QuotaState,
    /// Percent used of the window closest to its limit, when any reading is fresh.
    pub percent: Option<f64>,
    pub source: Option<Source>,
    pub window: Option<Window>,
    pub resets_at: Option<DateTime<Utc>>,
    /// Percent per hour over the last 30 minutes.
    pub burn_rate: Option<f64>,
    /// When the window reaches 100% at the current burn rate.
    pub projected_exhaustion: Option<DateTime<Utc>>,
    /// The projection comes before the window's reset: the quota runs out first.
    pub exhausts_before_reset: bool,
    /// Set while a 429 from Anthropic holds the state at critical.
    pub rate_limited_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The state in words: "5h window at 91% (critical ≥ 90%), resets 14:20".
    pub reason: String,
    pub readings: Vec<ReadingView>,
}

impl Default for QuotaSnapshot {
    fn default() -> Self {
        QuotaSnapshot {
            state: QuotaState::Unknown,
            percent: None,
            source: None,
            window: None,
            resets_at: None,
            burn_rate: None,
            projected_exhaustion: None,
            exhausts_before_reset: false,
            rate_limited_until: None,
            updated_at: Utc::now(),
            reason: "no quota reading yet; routing as normal".to_owned(),
            readings: Vec::new(),
        }
    }
}

impl QuotaSnapshot {
    /// Equal for the user: everything but when it was computed and when each reading
    /// arrived (a new reading with the same value changes nothing worth publishing).
    pub fn same_as(&self, other: &QuotaSnapshot) -> bool {
        let mut a = self.clone();
        a.updated_at = other.updated_at;
        for (mine, theirs) in a.readings.iter_mut().zip(&other.readings) {
            mine.at = theirs.at;
        }
        a == *other
    }
}

/// A change of quota state, for notifications and the tray.
#[derive(Debug, Clone, Serialize)]
pub struct QuotaEvent {
    pub from: QuotaState,
    pub to: QuotaState,
    pub snapshot: QuotaSnapshot,
}
